"""One record of a batch file at a time: the lines it is read from, within bounds, and the
:class:`SourceRow` its cells become, with what is wrong with each cell.

Apart from ``_sources`` (which finds the file's encoding, format, delimiter and header, and
walks it) because this is the per-record work, the same for every file once those are known:
the bounds a hostile file meets, a CSV record's cells by column, a JSON Lines object's values
by key. A problem here belongs to its record, which is skipped; trouble with the whole file is
``_sources``'s to raise.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any, TextIO

from sendoso.batch._columns import header_key
from sendoso.errors import FieldProblem

__all__ = [
    "MAX_CELL_CHARS",
    "MAX_COLUMNS",
    "MAX_RECORD_CHARS",
    "SURROGATE",
    "BoundedLines",
    "CsvColumn",
    "KeyPlan",
    "RecordTooLong",
    "SourceRow",
    "csv_row",
    "flatten_json",
    "json_lines",
    "json_row",
    "problem_row",
]

#: Longest cell kept; a longer one makes its row a problem (the longest real field is far
#: shorter, so such a cell is a mistake, often a quote left open).
MAX_CELL_CHARS = 10_000

#: Most of a record that is ever held in memory. Above MAX_CELL_CHARS so that an oversized
#: cell is reported with its size, bounded so that an unclosed quote near the top of a big
#: file cannot pull the rest of it into one cell.
MAX_RECORD_CHARS = 4 * 1024 * 1024
#: Most columns (CSV) or keys (a JSON Lines record) a file may have: as many as a spreadsheet
#: can hold (Excel: 16,384). Every column costs memory for the whole run, so a record of
#: nothing but delimiters must not be able to claim millions of them.
MAX_COLUMNS = 16_384

#: A lone surrogate: an undecodable byte (the file is read with ``surrogateescape``), or a
#: JSON ``"\ud800"`` escape.
SURROGATE = re.compile("[\ud800-\udfff]")


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


class RecordTooLong(Exception):
    """A CSV record over MAX_RECORD_CHARS (raised by :class:`BoundedLines`)."""


class BoundedLines:
    """Feeds ``csv`` a line at a time and refuses a record longer than MAX_RECORD_CHARS,
    whatever ``csv.field_size_limit`` another part of the program has set."""

    def __init__(self, stream: TextIO) -> None:
        self._readline = stream.readline
        self.record_chars = 0
        self.exhausted = False

    def __iter__(self) -> BoundedLines:
        return self

    def __next__(self) -> str:
        line = self._readline(MAX_RECORD_CHARS)
        if not line:
            self.exhausted = True
            raise StopIteration
        self.record_chars += len(line)
        if self.record_chars > MAX_RECORD_CHARS or (
            len(line) == MAX_RECORD_CHARS and not line.endswith(("\n", "\r"))
        ):
            # The second test: readline stopped at the limit inside a line. csv would take
            # the piece for a whole record and the rest of the line for the next one.
            raise RecordTooLong
        return line


def json_lines(stream: TextIO) -> Iterator[str | None]:
    """Lines, with ``None`` for one over MAX_RECORD_CHARS (skipped without keeping it)."""
    readline = stream.readline
    while line := readline(MAX_RECORD_CHARS):
        if len(line) < MAX_RECORD_CHARS or line.endswith(("\n", "\r")):
            yield line
            continue
        while (rest := readline(MAX_RECORD_CHARS)) and not rest.endswith(("\n", "\r")):
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
    if from_json and SURROGATE.search(value):
        # A lone "\ud800" escape: valid JSON, but no text encoding can carry it.
        return _problem(field, "invalid", f"{label} contains an unpaired surrogate escape")
    return None


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    return "string" if isinstance(value, str) else "value"


def problem_row(number: int, code: str, message: str) -> SourceRow:
    """A row that is nothing but one problem with the whole record."""
    return SourceRow(number, {}, {}, (_problem(None, code, message),))


# --- CSV ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CsvColumn:
    """What a CSV column's cells become: the ``field`` and the template ``placeholder``
    they feed (``None``: none), and the ``label`` a problem with one names."""

    index: int
    label: str
    field: str | None
    placeholder: str | None


def csv_row(
    number: int, record: list[str], width: int, joined: str, plan: Sequence[CsvColumn]
) -> SourceRow:
    """Record ``number``'s cells (``joined``: all of them as one string) by the ``plan`` of
    a header ``width`` columns wide."""
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
    for column in plan[: len(record)]:
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


# --- JSON Lines -----------------------------------------------------------------------

#: For a record's keys, in order: ``(key, the field it feeds or None, its placeholder)``.
KeyPlan = Callable[[tuple[str, ...]], list[tuple[str, str | None, str]]]


def json_row(number: int, line: str, key_plan: KeyPlan) -> SourceRow:
    """Line ``number`` as a row, its keys mapped by ``key_plan``."""
    try:
        # Numbers keep their written form: 02134-style codes aside, "1.50" stays "1.50".
        value = json.loads(line, parse_int=str, parse_float=str, parse_constant=str)
    except json.JSONDecodeError as exc:
        return problem_row(
            number,
            "invalid_json",
            f"this line is not valid JSON: {exc.msg} (column {exc.colno})",
        )
    except (ValueError, RecursionError):
        return problem_row(number, "invalid_json", "this line is not valid JSON")
    if not isinstance(value, dict):
        return problem_row(
            number,
            "not_an_object",
            f"this line is a JSON {_json_kind(value)}, not an object of named fields",
        )
    if len(value) > MAX_COLUMNS:  # before flattening, which copies every key
        return _too_many_keys(number)
    values, nested = flatten_json(value)
    if len(values) > MAX_COLUMNS:  # a nested address adds keys
        return _too_many_keys(number)
    problems: list[FieldProblem] = []
    fields: dict[str, str] = {}
    columns: dict[str, str] = {}
    for key, field, name in key_plan(tuple(values)):
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


def flatten_json(obj: dict[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
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
        if isinstance(value, dict) and header_key(key) == "address":
            for part, inner in value.items():
                put(f"address.{part}", inner)
        else:
            put(key, value)
    return values, nested


def _too_many_keys(number: int) -> SourceRow:
    return problem_row(
        number,
        "too_many_keys",
        f"this line has more than {MAX_COLUMNS:,} keys; write only the fields you need",
    )
