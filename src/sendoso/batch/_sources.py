"""Batch input: a CSV or JSON Lines file of recipients, read one record at a time.

Files come from CRM and spreadsheet exports (Salesforce, HubSpot, Excel, Google Sheets), so
their headers are mapped to the send fields automatically, and the quirks of those exports
(byte-order marks, UTF-16, semicolons, quoted line breaks) are expected rather than errors.
Everything streams: a million-row file needs no more memory than a ten-row one.

Two kinds of trouble: a :class:`SourceError` means the file as a whole cannot be trusted
(nothing from it should be sent); a problem in one record travels with that
:class:`SourceRow` so the record is skipped and the run goes on.

This module knows the file: its encoding, format, delimiter and header, and walking it.
Which column feeds which field is ``_columns``'s; what one record's cells become is
``_records``'s.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import hashlib
import io
import json
import os
import stat
from collections.abc import Generator, Iterable, Iterator, Mapping, Sequence
from itertools import islice
from pathlib import Path
from typing import Literal, TextIO

from sendoso.batch._columns import (
    FIELDS,
    ColumnMapping,
    SourceError,
    check_needed_columns,
    explicit_fields,
    field_placeholder,
    placeholder_name,
    resolve_columns,
)
from sendoso.batch._records import (
    MAX_COLUMNS,
    MAX_RECORD_CHARS,
    SURROGATE,
    BoundedLines,
    CsvColumn,
    RecordTooLong,
    SourceRow,
    csv_row,
    flatten_json,
    json_lines,
    json_row,
    problem_row,
)
from sendoso.errors import Param, Text
from sendoso.models import Gift

__all__ = ["Source"]

_ENCODING = Param("encoding")
_MAX_HEADER_CHARS = 1_000
# Keys of JSON Lines records whose mapping is remembered, over all distinct key sets.
_MAX_KEY_PLAN_KEYS = 4 * MAX_COLUMNS
# The sniffer's regular expressions are quadratic in the sample on some inputs (0.3 s for
# 64 KB when only the last column is quoted, seconds for stray quotes); 16 KB is still a
# hundred lines of a typical export.
_SNIFF_CHARS = 16 * 1024
_HEAD_BYTES = 8 * 1024
_DELIMITERS = ",;\t|"
# Records of the file's head sampled for their values (all of them within _SNIFF_CHARS).
_SAMPLE_ROWS = 100


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
        self._explicit = explicit_fields(mapping)
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
        self._plan: list[CsvColumn] = []
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
        names = {field_placeholder(f) for f in FIELDS}
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
        check_needed_columns(
            self._name, self._headers, self._mapping, self._head_fields(), given, catalog
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
                        yield flatten_json(value)[0]
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
            self._mapping = resolve_columns(
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
            self._plan.append(CsvColumn(index, label, field_of.get(header), name))

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
        if csv.field_size_limit() < MAX_RECORD_CHARS:
            csv.field_size_limit(MAX_RECORD_CHARS)
        with self._text() as stream:
            lines = BoundedLines(stream)
            # Quoting is always the RFC 4180 kind every exporter writes: the sniffer's guess
            # at it goes wrong on names such as O'Brien.
            reader = csv.reader(lines, delimiter=self._delimiter, skipinitialspace=self._skip_space)
            number = 0
            while True:
                try:
                    record = next(reader)
                except StopIteration:
                    return
                except RecordTooLong:
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
            f"{self._name}: row {row} is longer than {MAX_RECORD_CHARS:,} characters; "
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
            if SURROGATE.search("".join(record)):
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
                if SURROGATE.search(joined):
                    raise self._not_text(number)
                yield csv_row(number, record, width, joined, self._plan)

    # --- JSON Lines ---------------------------------------------------------------------

    def _open_jsonl(self) -> None:
        headers: list[str] = []
        first = True
        with self._text() as stream:
            try:
                for line in json_lines(stream):
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
                        headers = list(flatten_json(value)[0])[:MAX_COLUMNS]
                        break
            except UnicodeError:
                raise self._not_text(1) from None
        try:
            self._mapping = resolve_columns(
                headers, self._explicit, strict=True, sample=self._jsonl_sample
            )
        except SourceError as exc:
            raise SourceError(Text(f"{self._name}: ", exc.args[0]), field=exc.field) from None
        self._headers = headers
        by_keys = resolve_columns(headers, self._explicit, strict=False).columns.get("email")
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
            lines = json_lines(stream)
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
                    yield problem_row(
                        number,
                        "too_long",
                        f"this line is longer than {MAX_RECORD_CHARS:,} characters",
                    )
                    continue
                if not line.strip():
                    continue
                if SURROGATE.search(line):
                    raise self._not_text(number)
                yield json_row(
                    number, line.lstrip("\ufeff") if number == 1 else line, self._key_plan
                )

    def _key_plan(self, keys: tuple[str, ...]) -> list[tuple[str, str | None, str]]:
        # Records of one export share their keys, so the mapping is worked out once per
        # distinct key set, not once per record.
        plan = self._key_plans.get(keys)
        if plan is None:
            mapped = resolve_columns(
                keys, self._explicit, strict=False, excluded=self._excluded
            ).columns
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
