"""Batch input: a CSV or JSON Lines file of recipients, read one record at a time.

Files come from CRM and spreadsheet exports (Salesforce, HubSpot, Excel, Google Sheets), so
their headers are mapped to the send fields automatically, and the quirks of those exports
(byte-order marks, UTF-16, semicolons, quoted line breaks) are expected rather than errors.
Everything streams: a million-row file needs no more memory than a ten-row one.

Two kinds of trouble: a :class:`SourceError` means the file as a whole cannot be trusted
(nothing from it should be sent); a problem in one record travels with that
:class:`SourceRow` so the record is skipped and the run goes on.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import dataclasses
import functools
import hashlib
import io
import json
import os
import re
import shlex
import stat
from collections import Counter
from collections.abc import Callable, Collection, Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any, Literal, TextIO

from sendoso.errors import FieldProblem, InputError, Param, Text
from sendoso.models import Address, Gift, SendRequest
from sendoso.validation import MISSING, normalize, validate

__all__ = [
    "FIELDS",
    "MAX_CELL_CHARS",
    "MAX_COLUMNS",
    "ColumnMapping",
    "Source",
    "SourceError",
    "SourceRow",
    "placeholder_name",
]

FIELDS: tuple[str, ...] = (
    "gift_id",
    "variant_id",
    "first_name",
    "last_name",
    "email",
    "company",
    "title",
    "message",
    "team_id",
    "contact_id",
    "address.line1",
    "address.line2",
    "address.city",
    "address.state",
    "address.postal_code",
    "address.country",
)

#: Longest cell kept; a longer one makes its row a problem (the longest real field is far
#: shorter, so such a cell is a mistake, often a quote left open).
MAX_CELL_CHARS = 10_000

# Most of a record that is ever held in memory. Above MAX_CELL_CHARS so that an oversized
# cell is reported with its size, bounded so that an unclosed quote near the top of a big
# file cannot pull the rest of it into one cell.
_MAX_RECORD_CHARS = 4 * 1024 * 1024
_MAX_HEADER_CHARS = 1_000
#: Most columns (CSV) or keys (a JSON Lines record) a file may have: as many as a spreadsheet
#: can hold (Excel: 16,384). Every column costs memory for the whole run, so a record of
#: nothing but delimiters must not be able to claim millions of them.
MAX_COLUMNS = 16_384
# Keys of JSON Lines records whose mapping is remembered, over all distinct key sets.
_MAX_KEY_PLAN_KEYS = 4 * MAX_COLUMNS
# The sniffer's regular expressions are quadratic in the sample on some inputs (0.3 s for
# 64 KB when only the last column is quoted, seconds for stray quotes); 16 KB is still a
# hundred lines of a typical export.
_SNIFF_CHARS = 16 * 1024
_HEAD_BYTES = 8 * 1024
_DELIMITERS = ",;\t|"

# Header spellings of CRM and spreadsheet exports. Within a field, most specific first: when
# two headers both fit a field, the earlier spelling wins; spellings are matched ignoring
# case, spaces and punctuation. A spelling that starts with "~" is a pattern (fnmatch) over
# the header from any of its words on: "~email*" is any header with a word that begins with
# "email" ("Work E-mail", "Emails"), "~mail" one whose last word is "mail" ("Business Mail"
# but not "Mailing List"), "~city*" a "City" but not an "Ethnicity". A pattern is only tried
# for a field that no header spells exactly, and only takes a column when one column fits it:
# two would be a guess. A header that fits the patterns of several fields goes to the first
# of them in this table ("Work Email Address" is an email, "Address City" a city), so the
# fields are in that order, and _NOT_SENT comes first: it claims headers that have a field's
# word but hold something else ("Last Activity Date", "Account Owner Email", "Company ID").
_NOT_SENT = "(not a field of a send)"
_ALIASES: dict[str, tuple[str, ...]] = {
    _NOT_SENT: (
        "~date*",
        "~time*",
        "~owner*",
        "~phone*",
        "~telephone*",
        "~mobile*",
        "~fax*",
        "~id",
    ),
    "email": ("email", "Email Address", "Work Email", "~email*", "~mail"),
    "address.line2": (
        "address.line2",
        "line2",
        "Mailing Street 2",
        "Street Address 2",
        "Address 2",
        "~line2*",
        "~address2*",
        "~addr2*",
        "~street2*",
    ),
    "address.postal_code": (
        "address.postal_code",
        "postal_code",
        "Mailing Zip/Postal Code",
        "Mailing Postal Code",
        "Zip/Postal Code",
        "ZIP Code",
        "Zip",
        "Postcode",
        "Postal",
        "~zip*",
        "~postcode*",
        "~postalcode*",
    ),
    "address.city": ("address.city", "Mailing City", "city", "~city*", "~town*"),
    # Codes first: validation wants ISO codes, and Salesforce exports carry both forms.
    "address.state": (
        "address.state",
        "Mailing State/Province Code",
        "Mailing State Code",
        "State/Province Code",
        "State Code",
        "Mailing State/Province",
        "Mailing State",
        "state",
        "State/Province",
        "Province",
        "State/Region",
        "Region",
        "~state",  # not "~state*": a "Statement" is no state
        "~statecode",
        "~stateprovince*",
        "~stateregion*",
        "~province*",
        "~region*",
    ),
    "address.country": (
        "address.country",
        "Mailing Country Code",
        "Country Code",
        "Mailing Country",
        "country",
        "Country/Region",
        "~country*",
    ),
    "address.line1": (
        "address.line1",
        "line1",
        "Mailing Street",
        "Street Address",
        "Address 1",
        "Street",
        "Address",
        "~street*",
        "~address*",
        "~addr*",
        "~line1*",
    ),
    "message": ("message", "Gift Message", "Note", "~message*", "~note", "~notes"),
    "company": (
        "company",
        "Company Name",
        "Account Name",
        "Organization",
        "Organisation",
        "~company*",
        "~organi[sz]ation*",
        "~employer*",
    ),
    "first_name": ("first_name", "Given Name", "~first*", "~given*"),
    "last_name": ("last_name", "Surname", "Family Name", "~last*", "~surname*", "~family*"),
    "gift_id": ("gift_id", "Gift"),
    "variant_id": ("variant_id", "Variant", "Size"),
    "title": ("title", "Job Title"),
    "team_id": ("team_id", "Team"),
    "contact_id": ("contact_id", "Record ID", "Id"),
}

_NOT_ALNUM = re.compile(r"[\W_]+")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _key(header: str) -> str:
    return _NOT_ALNUM.sub("", header.casefold())


def placeholder_name(header: str) -> str:
    """``"Mailing Zip/Postal Code"`` -> ``"mailing_zip_postal_code"``."""
    return _NOT_ALNUM.sub("_", header.lower()).strip("_")


def _field_placeholder(field: str) -> str:
    return field.replace(".", "_")


def _build_alias_index() -> dict[str, tuple[str, int]]:
    index: dict[str, tuple[str, int]] = {}
    for field, aliases in _ALIASES.items():
        for rank, alias in enumerate(aliases):
            if not alias.startswith("~"):
                index.setdefault(_key(alias), (field, rank))
    # A nested JSON "address": {"zip": ...} arrives as "address.zip".
    for field, aliases in _ALIASES.items():
        if field.startswith("address."):
            for rank, alias in enumerate(aliases):
                if not alias.startswith("~"):
                    index.setdefault("address" + _key(alias), (field, len(aliases) + rank))
    return index


_ALIAS_INDEX = _build_alias_index()
_PATTERN_FIELDS = [
    (alias[1:], field)
    for field, aliases in _ALIASES.items()
    for alias in aliases
    if alias.startswith("~")
]
# All the patterns in one expression, one group each in table order: where several fit, the
# first group that does is the one matched.
_PATTERNS = re.compile(
    "|".join(f"({pattern.replace('*', '.*')})" for pattern, _ in _PATTERN_FIELDS)
)
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")
_WORDS = re.compile(r"[^\W\d_]+|\d+")
# Longer headers are sentences, not field names, and each word costs a match.
_MAX_PATTERN_WORDS = 8


def _field_by_pattern(header: str) -> str | None:
    """The field (or _NOT_SENT) whose pattern ``header`` fits first, if any."""
    if len(header) > 100:
        return None
    return _pattern_field(header)


@functools.lru_cache(maxsize=4096)
def _pattern_field(header: str) -> str | None:
    words = _WORDS.findall(_CAMEL.sub(" ", header).casefold())
    if len(words) > _MAX_PATTERN_WORDS:
        return None
    first: int | None = None
    for start in range(len(words)):
        match = _PATTERNS.fullmatch("".join(words[start:]))
        if match is not None and match.lastindex is not None:
            first = match.lastindex if first is None else min(first, match.lastindex)
    return None if first is None else _PATTERN_FIELDS[first - 1][1]


# An address as people write one: something, an at-sign, a domain with a dot. Enough to tell
# a column of addresses from one of names, flags or dates; validation judges each one.
_EMAIL_LIKE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
# Records of the file's head sampled for their values (all of them within _SNIFF_CHARS).
_SAMPLE_ROWS = 100


def _holds_emails(values: Sequence[str]) -> bool | None:
    """Whether most of a column's sampled values are email addresses; None without values."""
    present = [v for v in values if v]
    if not present:
        return None
    return 2 * sum(1 for v in present if _EMAIL_LIKE.fullmatch(v)) > len(present)


_MAP = Param("mapping")
_ENCODING = Param("encoding")
# What a mapping accepts as a field name: "address.city", "address_city", "city".
_FIELD_NAMES = {_key(f): f for f in FIELDS} | {
    _key(f.removeprefix("address.")): f for f in FIELDS if f.startswith("address.")
}


class SourceError(InputError):
    """The input file cannot be used as a whole; nothing from it should be sent. ``field`` is
    the :class:`Source` parameter at fault (``mapping``, ``format``, ``encoding``,
    ``delimiter``), or ``None`` when it is the file itself."""


@dataclass(frozen=True)
class SourceRow:
    """One record. ``number`` is the row a spreadsheet shows (the CSV header is row 1) or the
    JSON Lines line number. A row with ``problems`` is to be skipped with them."""

    number: int
    #: Canonical field -> value, stripped; empty values are left out.
    fields: dict[str, str]
    #: Every non-empty cell by :func:`placeholder_name` of its column, for message templates.
    columns: dict[str, str]
    problems: tuple[FieldProblem, ...] = ()


def _listing(names: Sequence[str], *, most: int | None = None) -> str:
    shown = [n for n in names if n]
    if most is not None and len(shown) > most:
        return ", ".join(shown[:most]) + f", ... ({len(shown):,} in all)"
    return ", ".join(shown) or "(none)"


# What a run may give every row instead of a column: the parameter, and what it does.
_SUPPLIED_BY = {
    "gift_id": ("gift_id", "to send everyone one gift"),
    "variant_id": ("variant_id", "to give everyone one variant"),
    "message": ("message_template", "to write everyone's message"),
}


def _missing_fields(
    fields: Iterable[str], supplied: Mapping[str, str], catalog: Iterable[Gift]
) -> tuple[list[str], Gift | None]:
    """The fields validation finds missing in a send built from every column the file has
    (filled with a stand-in) and what the run supplies: missing there, they are missing
    from every row. Which fields a send needs is validation's to say, not this module's."""
    values: dict[str, Any] = {}
    address: dict[str, str] = {}
    for field in fields:
        if field.startswith("address."):
            address[field.removeprefix("address.")] = "?"
        elif field != "contact_id":  # not a field of the send (it goes in its metadata)
            values[field] = "?"
    values.update(supplied)
    request = normalize(SendRequest.model_validate(values))
    gift = None
    if "gift_id" in supplied:
        gift = next((g for g in catalog if g.id == request.gift_id), None)
    if gift is not None and gift.requires_address:
        # The stand-in country is no country: the checks that depend on the country (the
        # state, the postal code, where the gift ships) are each row's.
        request = request.model_copy(update={"address": Address(**address)})
    # Otherwise no address: an eGift's is dropped by the planner, and with a gift column
    # some rows may get a gift without one.
    missing = {p.field for p in validate(request, gift) if p.code == MISSING}
    return [field for field in FIELDS if field in missing], gift


def _explicit_fields(explicit: Mapping[str, str] | None) -> dict[str, str]:
    """``mapping`` entries keyed by canonical field."""
    fields: dict[str, str] = {}
    for name, column in (explicit or {}).items():
        field = _FIELD_NAMES.get(_key(name))
        if field is None:
            raise SourceError(
                Text(_MAP, f": unknown field {name!r}; use one of: {_listing(FIELDS)}"),
                field="mapping",
            )
        if field in fields:
            raise SourceError(
                Text(
                    _MAP, f": {field} is mapped twice ({fields[field]!r} and {column!r}); keep one"
                ),
                field="mapping",
            )
        fields[field] = column
    return fields


def _match_column(column: str, headers: Sequence[str]) -> str | None:
    if column in headers:
        return column
    # Forgiving about case and surrounding spaces, as long as that picks one column.
    folded = {h for h in headers if h.strip().casefold() == column.strip().casefold()}
    return folded.pop() if len(folded) == 1 else None


def _resolve(
    headers: Sequence[str],
    explicit: Mapping[str, str],
    *,
    strict: bool,
    sample: Callable[[], Mapping[str, Sequence[str]]] | None = None,
    excluded: Collection[str] = (),
) -> ColumnMapping:
    """``explicit`` columns, then exact spellings, then patterns (see _ALIASES); with a
    ``sample`` of the values by header, the email column is also told by its values. The
    ``excluded`` fields get no column."""
    fixed = set(explicit).union(excluded)
    chosen: dict[str, str] = {}
    for field, column in explicit.items():
        match = _match_column(column, headers) if strict else column
        if match is not None and match in headers:
            chosen[field] = match
        elif strict:
            raise SourceError(
                Text(
                    _MAP,
                    f" {field}={column}: there is no column {column!r}; "
                    f"the columns are: {_listing(headers)}",
                ),
                field="mapping",
            )
        # Otherwise a JSON Lines record without that key: the field stays empty there,
        # rather than being filled from some other key the user did not choose.
    taken = set(chosen.values())
    best: dict[str, tuple[int, int, str]] = {}
    spelled: list[str] = []
    for position, header in enumerate(headers):
        hit = _ALIAS_INDEX.get(_key(header))
        if hit is None:
            spelled.append(header)
            continue
        if header in taken or hit[0] in fixed:
            continue
        field, rank = hit
        candidate = (rank, position, header)
        if field not in best or candidate < best[field]:
            best[field] = candidate
    chosen.update((field, candidate[2]) for field, candidate in best.items())
    taken.update(chosen.values())
    fits: dict[str, list[str]] = {}
    for header in spelled:
        fit = _field_by_pattern(header) if header not in taken else None
        if fit is not None and fit not in chosen and fit not in fixed:
            fits.setdefault(fit, []).append(header)
    lookalikes: dict[str, tuple[str, ...]] = {}
    if sample is not None and "email" not in chosen and "email" not in fixed:
        _email_by_values(headers, taken, fits, lookalikes, sample())
    for field, columns in fits.items():
        if field == _NOT_SENT or not columns:
            continue
        if len(columns) == 1:
            chosen[field] = columns[0]
        else:
            lookalikes[field] = tuple(dict.fromkeys(columns))
    if strict:
        counts = Counter(headers)
        repeated = [c for c in dict.fromkeys(chosen.values()) if counts[c] > 1]
        if repeated:
            names = " and ".join(repr(c) for c in repeated)
            raise SourceError(
                Text(
                    f"the header has {names} more than once, so it is unclear which column to "
                    "use; rename the duplicates or choose one with ",
                    _MAP,
                    " FIELD=COLUMN",
                ),
                field="mapping",
            )
    return ColumnMapping(
        {field: chosen[field] for field in FIELDS if field in chosen},
        {field: lookalikes[field] for field in FIELDS if field in lookalikes},
    )


def _email_by_values(
    headers: Sequence[str],
    taken: set[str],
    fits: dict[str, list[str]],
    lookalikes: dict[str, tuple[str, ...]],
    sample: Mapping[str, Sequence[str]],
) -> None:
    """Headers that say email keep the email field only if their values agree ("Email Opt
    Out" holds flags); without such a header, a column of addresses is the email column."""
    named = fits.pop("email", [])
    agreeing = [h for h in named if _holds_emails(sample.get(h, ())) is not False]
    if not agreeing:
        claimed = taken.union(*fits.values())
        agreeing = [h for h in headers if h not in claimed and _holds_emails(sample.get(h, ()))]
    if agreeing:
        fits["email"] = agreeing
    elif named:
        lookalikes["email"] = tuple(dict.fromkeys(named))


@dataclass(frozen=True)
class ColumnMapping:
    """Which source column feeds each canonical field."""

    columns: dict[str, str]
    #: Fields no column was taken for although several look like theirs (two "... E-mail"
    #: headers): those columns, for saying which to choose rather than guessing.
    lookalikes: dict[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)

    @classmethod
    def resolve(
        cls, headers: Sequence[str], explicit: Mapping[str, str] | None = None
    ) -> ColumnMapping:
        """Map ``headers`` to fields: ``explicit`` (``{"field": "Column"}``) first, then the
        usual CRM spellings, then a field's usual words ("Office E-mail"), all matched
        ignoring case, spaces and punctuation. Where several headers have one field's words,
        none is taken: they are its ``lookalikes``. (A :class:`Source` also tells the email
        column by its values.)"""
        return _resolve(headers, _explicit_fields(explicit), strict=True)

    def describe(self) -> list[tuple[str, str]]:
        """``(field, column)`` pairs, in field order, for showing the user."""
        return list(self.columns.items())


class _RecordTooLong(Exception):
    pass


class _Lines:
    """Feeds ``csv`` a line at a time and refuses a record longer than _MAX_RECORD_CHARS,
    whatever ``csv.field_size_limit`` another part of the program has set."""

    def __init__(self, stream: TextIO) -> None:
        self._readline = stream.readline
        self.record_chars = 0
        self.exhausted = False

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        line = self._readline(_MAX_RECORD_CHARS)
        if not line:
            self.exhausted = True
            raise StopIteration
        self.record_chars += len(line)
        if self.record_chars > _MAX_RECORD_CHARS or (
            len(line) == _MAX_RECORD_CHARS and not line.endswith(("\n", "\r"))
        ):
            # The second test: readline stopped at the limit inside a line. csv would take
            # the piece for a whole record and the rest of the line for the next one.
            raise _RecordTooLong
        return line


def _json_lines(stream: TextIO) -> Iterator[str | None]:
    """Lines, with ``None`` for one over _MAX_RECORD_CHARS (skipped without keeping it)."""
    readline = stream.readline
    while line := readline(_MAX_RECORD_CHARS):
        if len(line) < _MAX_RECORD_CHARS or line.endswith(("\n", "\r")):
            yield line
            continue
        while (rest := readline(_MAX_RECORD_CHARS)) and not rest.endswith(("\n", "\r")):
            pass
        yield None


def _problem(field: str | None, code: str, message: str) -> FieldProblem:
    return FieldProblem(field=field or "row", code=code, message=message)


def _cell_problem(
    label: str, field: str | None, value: str, *, from_json: bool = False
) -> FieldProblem | None:
    if len(value) > MAX_CELL_CHARS:
        return _problem(
            field,
            "too_long",
            f"{label} is {len(value):,} characters; the limit is {MAX_CELL_CHARS:,}",
        )
    if "\x00" in value:
        return _problem(field, "invalid", f"{label} contains a NUL character")
    if from_json and _SURROGATE.search(value):
        # A lone "\ud800" escape: valid JSON, but no text encoding can carry it.
        return _problem(field, "invalid", f"{label} contains an unpaired surrogate escape")
    return None


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    return "string" if isinstance(value, str) else "value"


@dataclass(frozen=True)
class _Column:
    index: int
    label: str
    field: str | None
    placeholder: str | None


class Source:
    """One input file. Nothing is read until :meth:`open`, a property or :meth:`rows`."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        mapping: Mapping[str, str] | None = None,
        format: Literal["auto", "csv", "jsonl"] = "auto",
        encoding: str | None = None,
        delimiter: str | None = None,
    ) -> None:
        if format not in ("auto", "csv", "jsonl"):
            raise SourceError(
                Text(Param("format"), f" must be auto, csv or jsonl, not {format!r}"),
                field="format",
            )
        self.path = Path(path)
        self._explicit = _explicit_fields(mapping)
        self._format_choice = format
        self._encoding_choice = encoding
        self._delimiter_choice = _delimiter_option(delimiter)
        self._opened = False
        self._format: Literal["csv", "jsonl"] = "csv"
        self._encoding = "utf-8-sig"
        self._delimiter = ","
        self._skip_space = False
        self._headers: list[str] = []
        self._mapping = ColumnMapping({})
        self._plan: list[_Column] = []
        self._key_plans: dict[tuple[str, ...], list[tuple[str, str | None, str]]] = {}
        self._key_plan_keys = 0
        # Fields no key feeds, whatever later records are called (see _open_jsonl).
        self._excluded: frozenset[str] = frozenset()

    # --- what the file is -------------------------------------------------------------

    def open(self) -> Source:
        """Read the header and resolve the mapping, so that a bad file or ``mapping`` fails
        before any row is processed. Idempotent; returns ``self``."""
        if not self._opened:
            head = self._read_head()
            self._encoding = self._detect_encoding(head)
            self._format = self._detect_format(head)
            if self._format == "csv":
                self._open_csv()
            else:
                self._open_jsonl()
            self._opened = True
        return self

    @property
    def format(self) -> Literal["csv", "jsonl"]:
        return self.open()._format

    @property
    def headers(self) -> list[str]:
        """CSV: the header row. JSON Lines: the keys of the first object."""
        return list(self.open()._headers)

    @property
    def mapping(self) -> ColumnMapping:
        return self.open()._mapping

    def placeholders(self) -> set[str]:
        """The names a message template may use with this file."""
        names = {_field_placeholder(f) for f in FIELDS}
        names.update(placeholder_name(h) for h in self.headers)
        return {n for n in names if n and not n.isdecimal()}

    def check_columns(
        self, supplied: Mapping[str, str | None] | None = None, *, catalog: Iterable[Gift] = ()
    ) -> None:
        """Raise one :class:`SourceError` (``field="mapping"``) when a field a send needs has
        no column, so that every row would be skipped for it: each such field is named, with
        the columns that look like it and the ``mapping`` that takes one. A field that only
        some rows leave empty is left to those rows.

        ``supplied`` is what the run gives every row instead of a column: ``gift_id``,
        ``variant_id``, ``message`` (a message template); ``None`` is not given. When it
        names a gift of ``catalog``, that gift decides whether rows need an address (an
        eGift needs none) and a variant; with a gift column, each row's gift does.
        """
        self.open()
        given = {name: value for name, value in (supplied or {}).items() if value}
        missing, gift = _missing_fields(self._head_fields(), given, catalog)
        if not missing:
            return
        clauses: list[Text] = []
        plain: list[str] = []
        for field in missing:
            alike = self._mapping.lookalikes.get(field, ())
            instead = _SUPPLIED_BY.get(field)
            if not alike and instead is None:
                plain.append(field)
                continue
            if alike:
                names = ", ".join(repr(c) for c in alike)
                clause = Text(
                    f"no column maps to {field}; columns that look like {field}: {names} (use ",
                    _MAP,
                    f" {field}={shlex.quote(alike[0])}",
                )
            else:
                clause = Text(f"no column maps to {field} (use ", _MAP, f" {field}=COLUMN")
            if instead is not None:
                clause = Text(clause, ", or ", Param(instead[0]), f" {instead[1]}")
            clauses.append(Text(clause, ")"))
        address = [f for f in plain if f.startswith("address.")]
        others = [f for f in plain if f not in address]
        shipped = f", which {gift.name} needs" if gift is not None else ""
        for group, why in ((others, ""), (address, shipped)):
            if group:
                column = f"{group[0]}=COLUMN" if len(group) == 1 else "FIELD=COLUMN"
                clauses.append(
                    Text(f"no column maps to {', '.join(group)}{why} (use ", _MAP, f" {column})")
                )
        if plain or any(field not in self._mapping.lookalikes for field in missing):
            clauses.append(Text(f"the columns are: {_listing(self._headers, most=20)}"))
        raise SourceError(
            Text(f"{self._name}: ", Text.joining("; ", clauses)),
            field="mapping",
        )

    def _head_fields(self) -> set[str]:
        """The fields a column feeds: CSV, by the header; JSON Lines, by the keys of the
        records at the head of the file (a record may leave out a key that others have)."""
        fields = set(self._mapping.columns)
        if self._format == "jsonl":
            for values in self._head_records():
                fields.update(f for _, f, _ in self._key_plan(tuple(values)) if f)
        return fields

    def _head_records(self) -> Iterator[dict[str, str]]:
        """JSON Lines: the values of the records in the first _SNIFF_CHARS of the file, by
        key; a line cut short there, or that is not an object, is passed over."""
        with self._text() as stream:
            budget = _SNIFF_CHARS
            try:
                while budget > 0 and (line := stream.readline(budget)):
                    budget -= len(line)
                    if not line.endswith(("\n", "\r")) and budget <= 0:
                        return  # cut short: the rest of the line is not read
                    try:
                        value = json.loads(line.lstrip("\ufeff"))
                    except (ValueError, RecursionError):
                        continue
                    if isinstance(value, dict) and len(value) <= MAX_COLUMNS:
                        yield _flatten(value)[0]
            except UnicodeError:
                return  # the rows report it, with its line

    def _jsonl_sample(self) -> dict[str, list[str]]:
        sample: dict[str, list[str]] = {}
        for values in islice(self._head_records(), _SAMPLE_ROWS):
            for key, text in values.items():
                sample.setdefault(key, []).append(text)
        return sample

    def fingerprint(self) -> str:
        """SHA-256 of the file's bytes, so that a resumed run can tell the file changed."""
        self._check_regular()
        try:
            with self.path.open("rb") as f:
                return hashlib.file_digest(f, "sha256").hexdigest()
        except OSError as exc:
            raise self._unreadable(exc) from None

    def rows(self) -> Iterator[SourceRow]:
        """Every record, in file order; fully blank ones are skipped. Each call reads the
        file again. Raises :class:`SourceError` mid-way if the file turns out unreadable
        further down (bad encoding, an unclosed quote), so read it through once before
        acting on any row."""
        self.open()
        if self._format == "csv":
            return self._csv_rows()
        return self._jsonl_rows()

    # --- reading ------------------------------------------------------------------------

    @property
    def _name(self) -> str:
        return str(self.path)

    def _unreadable(self, exc: OSError) -> SourceError:
        return SourceError(f"cannot read {self._name}: {exc.strerror or exc}")

    def _check_regular(self) -> None:
        # A pipe, a device or a directory: /dev/zero would be read for ever, a FIFO would
        # block opening, and neither can be read twice (planning reads the file again).
        try:
            mode = self.path.stat().st_mode
        except OSError as exc:
            raise self._unreadable(exc) from None
        if not stat.S_ISREG(mode):
            raise SourceError(
                f"{self._name} is not a regular file; save the data to a file and pass that"
            )

    def _read_head(self) -> bytes:
        self._check_regular()
        try:
            with self.path.open("rb") as f:
                head = f.read(_HEAD_BYTES)
        except OSError as exc:
            raise self._unreadable(exc) from None
        if not head.strip():
            raise SourceError(f"{self._name} is empty; it has no header row")
        return head

    def _detect_encoding(self, head: bytes) -> str:
        if self._encoding_choice:
            try:
                info = codecs.lookup(self._encoding_choice)
                # Codecs such as base64, rot13, idna or "undefined" are known to Python but
                # cannot decode a file as text (with the error handler _text uses). The flag
                # is the one open() itself checks.
                if not getattr(info, "_is_text_encoding", True):
                    raise ValueError(info.name)
                info.incrementaldecoder(errors="surrogateescape").decode(b"a")
            except LookupError:
                raise SourceError(
                    Text("unknown ", _ENCODING, f" {self._encoding_choice!r}"), field="encoding"
                ) from None
            except (ValueError, TypeError):
                raise SourceError(
                    Text(
                        _ENCODING,
                        f" {self._encoding_choice!r} is not a text encoding; "
                        "use e.g. utf-8, utf-16, latin-1 or cp1252",
                    ),
                    field="encoding",
                ) from None
            return info.name
        if head.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
            return "utf-32"
        if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            # Excel's "Unicode Text": UTF-16 with a byte-order mark, tab-separated.
            return "utf-16"
        if head.startswith((b"PK\x03\x04", b"\xd0\xcf\x11\xe0")):
            raise SourceError(
                f"{self._name} looks like an Excel workbook; save it as 'CSV UTF-8' first"
            )
        if b"\x00" in head:
            raise SourceError(
                f"{self._name} is not a text file; export it as CSV (UTF-8) or JSON Lines"
            )
        return "utf-8-sig"

    def _detect_format(self, head: bytes) -> Literal["csv", "jsonl"]:
        if self._format_choice != "auto":
            return self._format_choice
        suffix = self.path.suffix.lower()
        if suffix in {".csv", ".tsv", ".txt"}:
            return "csv"
        if suffix in {".jsonl", ".ndjson", ".json"}:
            return "jsonl"
        try:
            text = codecs.getincrementaldecoder(self._encoding)(errors="replace").decode(head)
        except UnicodeError:  # e.g. encoding="utf-16" without a byte-order mark
            return "csv"  # whose reading then says what is wrong
        return "jsonl" if text.lstrip("\ufeff \t\r\n").startswith(("{", "[")) else "csv"

    @contextlib.contextmanager
    def _text(self) -> Iterator[TextIO]:
        # Undecodable bytes become lone surrogates instead of an error raised a whole
        # buffer ahead, so that the error can name the row that holds them.
        try:
            stream = self.path.open(encoding=self._encoding, errors="surrogateescape", newline="")
        except OSError as exc:
            raise self._unreadable(exc) from None
        with stream:
            yield stream

    def _not_text(self, row: int) -> SourceError:
        if self._encoding_choice:
            hint = Text(f"is not valid {self._encoding_choice} text (row {row}); check ", _ENCODING)
        elif self._encoding != "utf-8-sig":
            label = self._encoding.upper()
            hint = Text(f"is not valid {label} text (row {row}); re-save it or pass ", _ENCODING)
        else:
            save_as = "'CSV UTF-8'" if self._format == "csv" else "UTF-8"
            hint = Text(f"is not UTF-8 text (row {row}); save it as {save_as} or pass ", _ENCODING)
        return SourceError(Text(f"{self._name} ", hint), field="encoding", row=row)

    # --- CSV ----------------------------------------------------------------------------

    def _open_csv(self) -> None:
        with self._text() as stream:
            try:
                sample = stream.read(_SNIFF_CHARS)
            except UnicodeError:
                raise self._not_text(1) from None
        self._delimiter, self._skip_space = self._sniff(sample)
        with contextlib.closing(self._csv_records()) as records:
            number, headers = self._csv_header(records)
        if any("\x00" in h for h in headers):
            raise SourceError(
                Text(f"{self._name}: the header row contains NUL characters; check ", _ENCODING),
                field="encoding",
                row=number,
            )
        if any(len(h) > _MAX_HEADER_CHARS for h in headers):
            raise SourceError(
                f"{self._name}: the header row (row {number}) has a column name over "
                f'{_MAX_HEADER_CHARS:,} characters; is a quote (") left unclosed?',
                row=number,
            )
        try:
            self._mapping = _resolve(
                headers,
                self._explicit,
                strict=True,
                sample=lambda: self._sample_values(sample, headers),
            )
        except SourceError as exc:
            raise SourceError(
                Text(f"{self._name}: ", exc.args[0]), field=exc.field, row=number
            ) from None
        self._headers = headers
        field_of = {column: field for field, column in self._mapping.columns.items()}
        seen: set[str] = set()
        self._plan = []
        for index, header in enumerate(headers):
            name: str | None = placeholder_name(header)
            if not name or name in seen:
                name = None
            else:
                seen.add(name)
            label = f"column {header!r}" if header else f"column {index + 1}"
            self._plan.append(_Column(index, label, field_of.get(header), name))

    def _sample_values(self, sample: str, headers: Sequence[str]) -> dict[str, list[str]]:
        """Values of the first records by header, from the head of the file that was read
        for the sniffer already: the file is not read again, however long it is."""
        if len(sample) == _SNIFF_CHARS:  # the last line may be cut short
            sample = sample[: max(sample.rfind("\n"), sample.rfind("\r")) + 1]
        reader = csv.reader(
            io.StringIO(sample, newline=""),
            delimiter=self._delimiter,
            skipinitialspace=self._skip_space,
        )
        values: dict[str, list[str]] = {h: [] for h in headers}
        columns = [values[h] for h in headers]  # by position; a repeated header's are pooled
        seen_header = False
        try:
            for record in islice(reader, _SAMPLE_ROWS + 1):
                if not seen_header:
                    seen_header = any(cell.strip() for cell in record)
                    continue
                for column, cell in zip(columns, record, strict=False):
                    column.append(cell.strip())
        except csv.Error:
            pass  # a broken record is the rows' to report; the sample ends before it
        return values

    def _sniff(self, sample: str) -> tuple[str, bool]:
        if self._delimiter_choice:
            return self._delimiter_choice, False
        lines = sample.lstrip("\r\n").splitlines()
        first_line = lines[0] if lines else ""
        if len(sample) == _SNIFF_CHARS:
            # A sample cut mid-line would skew the counts the sniffer compares.
            cut = max(sample.rfind("\n"), sample.rfind("\r"))
            sample = sample[: cut + 1] if cut > 0 else sample
        try:
            dialect = csv.Sniffer().sniff(sample, delimiters=_DELIMITERS)
        except csv.Error:
            dialect = None
        # The sniffer can be fooled by the data; a header always contains its delimiter.
        if dialect is not None and dialect.delimiter in first_line:
            return dialect.delimiter, bool(dialect.skipinitialspace)
        counts = {d: first_line.count(d) for d in _DELIMITERS}
        best = max(counts, key=lambda d: counts[d])
        return (best if counts[best] else ","), False

    def _csv_records(self) -> Generator[tuple[int, list[str]], None, None]:
        """``(row number, cells)`` of every record, blank ones included."""
        if csv.field_size_limit() < _MAX_RECORD_CHARS:
            csv.field_size_limit(_MAX_RECORD_CHARS)
        with self._text() as stream:
            lines = _Lines(stream)
            # Quoting is always the RFC 4180 kind every exporter writes: the sniffer's guess
            # at it goes wrong on names such as O'Brien.
            reader = csv.reader(lines, delimiter=self._delimiter, skipinitialspace=self._skip_space)
            number = 0
            while True:
                try:
                    record = next(reader)
                except StopIteration:
                    return
                except _RecordTooLong:
                    raise self._too_long(number + 1) from None
                except csv.Error as exc:
                    if "field limit" in str(exc):
                        raise self._too_long(number + 1) from None
                    raise SourceError(
                        f"{self._name}: row {number + 1} cannot be read as CSV: {exc}",
                        row=number + 1,
                    ) from None
                except UnicodeError:
                    raise self._not_text(number + 1) from None
                except OSError as exc:
                    raise self._unreadable(exc) from None
                number += 1
                if lines.exhausted:
                    # csv only hands over a record after the input ran out when it was
                    # still inside quotes: the rest of the file went into one cell.
                    raise self._unclosed_quote(number)
                lines.record_chars = 0
                yield number, record

    def _too_long(self, row: int) -> SourceError:
        return SourceError(
            f"{self._name}: row {row} is longer than {_MAX_RECORD_CHARS:,} characters; "
            'is a quote (") left unclosed?',
            row=row,
        )

    def _unclosed_quote(self, row: int) -> SourceError:
        return SourceError(
            f'{self._name}: row {row} opens a quote (") that is never closed, so the rest '
            "of the file cannot be read; fix the quote and run again",
            row=row,
        )

    def _csv_header(self, records: Iterator[tuple[int, list[str]]]) -> tuple[int, list[str]]:
        for number, record in records:
            if _SURROGATE.search("".join(record)):
                raise self._not_text(number)
            if len(record) > MAX_COLUMNS:
                raise SourceError(
                    f"{self._name}: the header row (row {number}) has {len(record):,} columns; "
                    f"the limit is {MAX_COLUMNS:,} (as many as a spreadsheet holds): "
                    "export only the columns you need",
                    row=number,
                )
            # A byte-order mark survives when encoding="utf-8" was given explicitly.
            headers = [cell.strip() for cell in record]
            if headers and headers[0].startswith("\ufeff"):
                headers[0] = headers[0][1:].strip()
            if any(headers):
                return number, headers
        raise SourceError(f"{self._name} is empty; it has no header row")

    def _csv_rows(self) -> Iterator[SourceRow]:
        width = len(self._headers)
        with contextlib.closing(self._csv_records()) as records:
            _, headers = self._csv_header(records)
            if headers != self._headers:
                raise SourceError(f"{self._name} changed while it was being read; run again")
            for number, record in records:
                joined = "".join(record)
                if not joined or joined.isspace():
                    continue
                if _SURROGATE.search(joined):
                    raise self._not_text(number)
                yield self._csv_row(number, record, width, joined)

    def _csv_row(self, number: int, record: list[str], width: int, joined: str) -> SourceRow:
        problems: list[FieldProblem] = []
        if len(record) > width and not any(c.strip() for c in islice(record, width, None)):
            # Trailing delimiters: spreadsheets write them for columns that are empty.
            record = record[:width]
        if len(record) != width:
            hint = (
                'a quote (") may be left unclosed'
                if "\n" in joined or "\r" in joined
                else "a delimiter or quote is probably out of place"
            )
            problems.append(
                _problem(
                    None,
                    "cell_count",
                    f"this row has {len(record):,} cells but the header has {width:,}; {hint}",
                )
            )
        suspect = len(joined) > MAX_CELL_CHARS or "\x00" in joined
        fields: dict[str, str] = {}
        columns: dict[str, str] = {}
        for column in self._plan[: len(record)]:
            value = record[column.index].strip()
            if not value:
                continue
            if suspect:
                problem = _cell_problem(column.label, column.field, value)
                if problem is not None:
                    problems.append(problem)
                    continue
            if column.field is not None:
                fields[column.field] = value
            if column.placeholder is not None:
                columns[column.placeholder] = value
        return SourceRow(number, fields, columns, tuple(problems))

    # --- JSON Lines ---------------------------------------------------------------------

    def _open_jsonl(self) -> None:
        headers: list[str] = []
        first = True
        with self._text() as stream:
            try:
                for line in _json_lines(stream):
                    if line is None or not line.strip():
                        continue
                    if first and line.lstrip("\ufeff \t").startswith("["):
                        raise SourceError(
                            f"{self._name} is a JSON array, not JSON Lines; write one object "
                            "per line"
                        )
                    first = False
                    try:
                        value = json.loads(line.lstrip("\ufeff"))
                    except (ValueError, RecursionError):
                        continue
                    if isinstance(value, dict) and len(value) <= MAX_COLUMNS:
                        headers = list(_flatten(value)[0])[:MAX_COLUMNS]
                        break
            except UnicodeError:
                raise self._not_text(1) from None
        try:
            self._mapping = _resolve(
                headers, self._explicit, strict=True, sample=self._jsonl_sample
            )
        except SourceError as exc:
            raise SourceError(Text(f"{self._name}: ", exc.args[0]), field=exc.field) from None
        self._headers = headers
        by_keys = _resolve(headers, self._explicit, strict=False).columns.get("email")
        # Later records are matched on the key as the first object spells it.
        self._explicit = {field: self._mapping.columns[field] for field in self._explicit}
        email = self._mapping.columns.get("email")
        if email != by_keys:
            # The values decided, which later records (read one at a time) cannot repeat:
            # the key they chose is the email key, or (none agreed) no key is.
            if email is None:
                self._excluded = frozenset({"email"})
            else:
                self._explicit["email"] = email

    def _jsonl_rows(self) -> Iterator[SourceRow]:
        with self._text() as stream:
            number = 0
            lines = _json_lines(stream)
            while True:
                try:
                    line = next(lines)
                except StopIteration:
                    return
                except UnicodeError:
                    raise self._not_text(number + 1) from None
                except OSError as exc:
                    raise self._unreadable(exc) from None
                number += 1
                if line is None:
                    yield _bad_row(
                        number,
                        "too_long",
                        f"this line is longer than {_MAX_RECORD_CHARS:,} characters",
                    )
                    continue
                if not line.strip():
                    continue
                if _SURROGATE.search(line):
                    raise self._not_text(number)
                yield self._json_row(number, line.lstrip("\ufeff") if number == 1 else line)

    def _json_row(self, number: int, line: str) -> SourceRow:
        try:
            # Numbers keep their written form: 02134-style codes aside, "1.50" stays "1.50".
            value = json.loads(line, parse_int=str, parse_float=str, parse_constant=str)
        except json.JSONDecodeError as exc:
            return _bad_row(
                number,
                "invalid_json",
                f"this line is not valid JSON: {exc.msg} (column {exc.colno})",
            )
        except (ValueError, RecursionError):
            return _bad_row(number, "invalid_json", "this line is not valid JSON")
        if not isinstance(value, dict):
            return _bad_row(
                number,
                "not_an_object",
                f"this line is a JSON {_json_kind(value)}, not an object of named fields",
            )
        if len(value) > MAX_COLUMNS:  # before flattening, which copies every key
            return _too_many_keys(number)
        values, nested = _flatten(value)
        if len(values) > MAX_COLUMNS:  # a nested address adds keys
            return _too_many_keys(number)
        problems: list[FieldProblem] = []
        fields: dict[str, str] = {}
        columns: dict[str, str] = {}
        for key, field, name in self._key_plan(tuple(values)):
            if key in nested:
                problems.append(_problem(field, "nested", nested[key]))
                continue
            text = values[key]
            if not text:
                continue
            problem = _cell_problem(f"key {key!r}", field, text, from_json=True)
            if problem is not None:
                problems.append(problem)
                continue
            if field is not None:
                fields[field] = text
            if name and name not in columns:
                columns[name] = text
        return SourceRow(number, fields, columns, tuple(problems))

    def _key_plan(self, keys: tuple[str, ...]) -> list[tuple[str, str | None, str]]:
        # Records of one export share their keys, so the mapping is worked out once per
        # distinct key set, not once per record.
        plan = self._key_plans.get(keys)
        if plan is None:
            mapped = _resolve(keys, self._explicit, strict=False, excluded=self._excluded).columns
            field_of = {column: field for field, column in mapped.items()}
            plan = [(key, field_of.get(key), placeholder_name(key)) for key in keys]
            # Bounded by keys, not key sets: records with thousands of keys, each set
            # different, must not pile up.
            if len(self._key_plans) >= 256 or self._key_plan_keys + len(keys) > _MAX_KEY_PLAN_KEYS:
                self._key_plans.clear()
                self._key_plan_keys = 0
            self._key_plans[keys] = plan
            self._key_plan_keys += len(keys)
        return plan


def _flatten(obj: dict[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    """Scalar values as text by key (a nested ``address`` object as ``address.*`` keys),
    and what is wrong with the keys that cannot be used."""
    values: dict[str, str] = {}
    nested: dict[str, str] = {}

    def put(key: str, value: Any) -> None:
        if key in values:
            nested[key] = f"key {key!r} is given twice (nested and flat); keep one"
        elif isinstance(value, bool):
            values[key] = "true" if value else "false"
        elif isinstance(value, str):
            values[key] = value.strip()
        elif value is None:
            values[key] = ""
        else:
            values[key] = ""
            nested[key] = (
                f"key {key!r} holds a JSON {_json_kind(value)}; only text, numbers and "
                "true/false are accepted"
            )

    for key, value in obj.items():
        if isinstance(value, dict) and _key(key) == "address":
            for part, inner in value.items():
                put(f"address.{part}", inner)
        else:
            put(key, value)
    return values, nested


def _bad_row(number: int, code: str, message: str) -> SourceRow:
    return SourceRow(number, {}, {}, (_problem(None, code, message),))


def _too_many_keys(number: int) -> SourceRow:
    return _bad_row(
        number,
        "too_many_keys",
        f"this line has more than {MAX_COLUMNS:,} keys; write only the fields you need",
    )


def _delimiter_option(delimiter: str | None) -> str | None:
    if delimiter is None:
        return None
    # Shells make a literal tab awkward to type.
    delimiter = {"\\t": "\t", "tab": "\t", "TAB": "\t"}.get(delimiter, delimiter)
    if len(delimiter) != 1 or delimiter in '"\r\n':
        raise SourceError(
            Text(Param("delimiter"), f" must be one character, not {delimiter!r}"),
            field="delimiter",
        )
    return delimiter
