"""Which column of a file feeds which field of a send.

CRM and spreadsheet exports each spell their headers their own way ("Mailing Zip/Postal
Code", "Work E-mail"), so headers are matched to the send fields by their usual spellings and
words, and an email column by its values; what no column feeds is named before anything is
read further. This is apart from the reading of the file (``_sources``) because it works on
header names and a sample of values alone: :meth:`ColumnMapping.resolve` needs no file.

:class:`SourceError` is defined here, the lowest module that raises it: a ``mapping`` that
cannot work makes the whole file unusable.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import shlex
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sendoso.errors import InputError, Param, Text
from sendoso.models import Address, Gift, SendRequest
from sendoso.validation import MISSING, normalize, validate

__all__ = [
    "FIELDS",
    "ColumnMapping",
    "SourceError",
    "check_needed_columns",
    "explicit_fields",
    "field_placeholder",
    "header_key",
    "placeholder_name",
    "resolve_columns",
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


def header_key(header: str) -> str:
    """What headers are compared by: ``"Mailing Zip/Postal Code"`` -> ``"mailingzippostalcode"``."""
    return _NOT_ALNUM.sub("", header.casefold())


def placeholder_name(header: str) -> str:
    """``"Mailing Zip/Postal Code"`` -> ``"mailing_zip_postal_code"``."""
    return _NOT_ALNUM.sub("_", header.lower()).strip("_")


def field_placeholder(field: str) -> str:
    """A field's name in a message template: ``"address.city"`` -> ``"address_city"``."""
    return field.replace(".", "_")


def _build_alias_index() -> dict[str, tuple[str, int]]:
    index: dict[str, tuple[str, int]] = {}
    for field, aliases in _ALIASES.items():
        for rank, alias in enumerate(aliases):
            if not alias.startswith("~"):
                index.setdefault(header_key(alias), (field, rank))
    # A nested JSON "address": {"zip": ...} arrives as "address.zip".
    for field, aliases in _ALIASES.items():
        if field.startswith("address."):
            for rank, alias in enumerate(aliases):
                if not alias.startswith("~"):
                    index.setdefault("address" + header_key(alias), (field, len(aliases) + rank))
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


def _holds_emails(values: Sequence[str]) -> bool | None:
    """Whether most of a column's sampled values are email addresses; None without values."""
    present = [v for v in values if v]
    if not present:
        return None
    return 2 * sum(1 for v in present if _EMAIL_LIKE.fullmatch(v)) > len(present)


_MAP = Param("mapping")
# What a mapping accepts as a field name: "address.city", "address_city", "city".
_FIELD_NAMES = {header_key(f): f for f in FIELDS} | {
    header_key(f.removeprefix("address.")): f for f in FIELDS if f.startswith("address.")
}


class SourceError(InputError):
    """The input file cannot be used as a whole; nothing from it should be sent. ``field`` is
    the :class:`Source` parameter at fault (``mapping``, ``format``, ``encoding``,
    ``delimiter``), or ``None`` when it is the file itself."""


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


def explicit_fields(explicit: Mapping[str, str] | None) -> dict[str, str]:
    """``mapping`` entries keyed by canonical field."""
    fields: dict[str, str] = {}
    for name, column in (explicit or {}).items():
        field = _FIELD_NAMES.get(header_key(name))
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


def resolve_columns(
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
        hit = _ALIAS_INDEX.get(header_key(header))
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
        return resolve_columns(headers, explicit_fields(explicit), strict=True)

    def describe(self) -> list[tuple[str, str]]:
        """``(field, column)`` pairs, in field order, for showing the user."""
        return list(self.columns.items())


def check_needed_columns(
    name: str,
    headers: Sequence[str],
    mapping: ColumnMapping,
    fields: Iterable[str],
    supplied: Mapping[str, str],
    catalog: Iterable[Gift],
) -> None:
    """Raise one :class:`SourceError` (``field="mapping"``) when a field a send needs has no
    column among ``fields`` (those a column of the file ``name`` feeds) and is not
    ``supplied``: each such field is named, with the columns that look like it and the
    ``mapping`` that takes one. :meth:`Source.check_columns` says what is checked and why."""
    missing, gift = _missing_fields(fields, supplied, catalog)
    if not missing:
        return
    clauses: list[Text] = []
    plain: list[str] = []
    for field in missing:
        alike = mapping.lookalikes.get(field, ())
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
    if plain or any(field not in mapping.lookalikes for field in missing):
        clauses.append(Text(f"the columns are: {_listing(headers, most=20)}"))
    raise SourceError(Text(f"{name}: ", Text.joining("; ", clauses)), field="mapping")
