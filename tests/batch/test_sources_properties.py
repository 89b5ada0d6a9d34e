"""Properties of batch input parsing (CSV and JSON Lines), over arbitrary content.

- Any bytes at all, read as CSV or JSON Lines, give rows or a SourceError: nothing else
  escapes, row numbers only grow, every problem names a field.
- A CSV written by Python's csv module (Excel dialect, any delimiter the reader detects or
  is told, CRLF or LF, UTF-8 with or without a BOM, UTF-16) reads back cell for cell.
- Every non-blank JSON Lines line gives exactly one row, numbered by its line.
- Column mapping never maps one column twice, nor to a column that does not exist.

Hypothesis runs derandomized (a fixed seed per test) and without an example database.
"""

from __future__ import annotations

import csv
import encodings.aliases
import io
import json
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sendoso.batch import ColumnMapping, Source, SourceError, SourceRow
from sendoso.batch._columns import FIELDS, placeholder_name
from sendoso.batch._records import MAX_CELL_CHARS

PROPERTY = settings(
    max_examples=150,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

HEADER = ["First Name", "Email", "Message", "Notes"]
FIELD_OF = {"First Name": "first_name", "Email": "email", "Message": "message"}
PLACEHOLDER_OF = {h: placeholder_name(h) for h in HEADER}

# Anything a spreadsheet cell may hold: quotes, delimiters, line breaks, BOMs, control and
# bidi characters, astral characters. Not NUL and not lone surrogates, which no export can
# hold (a NUL is its own row problem, tested below).
_CELL_CHARS = st.characters(exclude_categories=["Cs"], exclude_characters="\x00")
_CELL = st.one_of(
    st.text(alphabet=_CELL_CHARS, max_size=30),
    st.text(alphabet=',;\t|"\r\n \ufeff=+-@xé', max_size=12),
)
_RECORDS = st.lists(st.lists(_CELL, min_size=4, max_size=4), max_size=8)


@contextmanager
def file_with(content: bytes, suffix: str) -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / f"input{suffix}"
        path.write_bytes(content)
        yield path


def read_all(path: Path, **options: Any) -> list[SourceRow] | SourceError:
    """Every row, or the SourceError the file raised (anything else escapes)."""
    try:
        return list(Source(path, **options).rows())
    except SourceError as exc:
        return exc


def check_rows(rows: list[SourceRow]) -> None:
    numbers = [row.number for row in rows]
    assert numbers == sorted(set(numbers))
    assert all(n >= 1 for n in numbers)
    for row in rows:
        assert set(row.fields) <= set(FIELDS)
        for value in [*row.fields.values(), *row.columns.values()]:
            assert value
            assert value == value.strip()
            assert len(value) <= MAX_CELL_CHARS
            assert "\x00" not in value
        for problem in row.problems:
            assert problem.field
            assert problem.code
            assert problem.message


# --- anything at all ------------------------------------------------------------------

_HOSTILE_TEXT = st.text(alphabet=',;\t|"\r\n {}[]:\\\x00\ufeffaé\u202e\ud800', max_size=200)
_ENCODINGS = st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "latin-1", "cp1252"])


@st.composite
def hostile_bytes(draw: st.DrawFn) -> bytes:
    if draw(st.booleans()):
        return draw(st.binary(max_size=300))
    encoding = draw(_ENCODINGS)
    # Lone surrogates kept as bytes where the codec can (invalid UTF-8/16 on purpose).
    errors = "surrogatepass" if encoding.startswith("utf") else "replace"
    return draw(_HOSTILE_TEXT).encode(encoding, errors=errors)


@settings(PROPERTY, max_examples=500)
@given(
    hostile_bytes(),
    st.sampled_from([".csv", ".jsonl", ".txt", ""]),
    st.sampled_from(["auto", "csv", "jsonl"]),
)
def test_any_bytes_give_rows_or_a_source_error(
    content: bytes, suffix: str, fmt: Literal["auto", "csv", "jsonl"]
) -> None:
    with file_with(content, suffix) as path:
        result = read_all(path, format=fmt)
    if isinstance(result, SourceError):
        assert str(result)
        assert result.row is None or result.row >= 1
    else:
        check_rows(result)


# Every codec name Python knows, text or not (base64, rot13, idna, "undefined", ...).
_CODECS = sorted(
    set(encodings.aliases.aliases.values())
    | {"rot13", "hex", "undefined", "idna", "punycode", "unicode_escape", "utf-7", "utf-16"}
    | {"utf-32", "utf_8_sig", "mbcs", "klingon", ""}
)


@settings(PROPERTY, max_examples=300)
@given(st.sampled_from(_CODECS), hostile_bytes(), st.sampled_from([".csv", ".jsonl", ""]))
def test_any_encoding_option_gives_rows_or_a_source_error(
    encoding: str, content: bytes, suffix: str
) -> None:
    """Regression: --encoding base64 (a codec, not a text encoding) escaped as LookupError,
    "idna" and "undefined" as UnicodeError, and utf-16 on a file without a byte-order mark
    as UnicodeError: each a traceback from the CLI."""
    with file_with(content or b"Email\n", suffix) as path:
        result = read_all(path, encoding=encoding or None)
    if isinstance(result, SourceError):
        assert str(result)
    else:
        check_rows(result)


# --- CSV round trip -------------------------------------------------------------------


def expected(records: list[list[str]]) -> list[tuple[int, dict[str, str], dict[str, str]]]:
    """(row number, fields, columns) the reader must give for ``records`` under HEADER."""
    out = []
    for index, record in enumerate(records):
        stripped = [cell.strip() for cell in record]
        if not "".join(record).strip():
            continue  # blank rows are skipped, but still counted
        fields = {
            FIELD_OF[h]: v for h, v in zip(HEADER, stripped, strict=True) if v and h in FIELD_OF
        }
        columns = {PLACEHOLDER_OF[h]: v for h, v in zip(HEADER, stripped, strict=True) if v}
        out.append((index + 2, fields, columns))
    return out


def written(
    records: list[list[str]], *, delimiter: str, lineterminator: str, encoding: str
) -> bytes:
    buffer = io.StringIO(newline="")
    # Python 3.11's writer leaves a cell holding a lone CR unquoted when lines end in LF,
    # which makes a file no reader can read back; quote everything then.
    lone_cr = lineterminator == "\n" and any("\r" in cell for r in records for cell in r)
    writer = csv.writer(
        buffer,
        delimiter=delimiter,
        lineterminator=lineterminator,
        quoting=csv.QUOTE_ALL if lone_cr else csv.QUOTE_MINIMAL,
    )
    writer.writerow(HEADER)
    writer.writerows(records)
    return buffer.getvalue().encode(encoding)


@PROPERTY
@given(_RECORDS, st.sampled_from(["\r\n", "\n"]), st.sampled_from(["utf-8", "utf-8-sig", "utf-16"]))
def test_csv_round_trip_with_a_detected_delimiter(
    records: list[list[str]], lineterminator: str, encoding: str
) -> None:
    content = written(records, delimiter=",", lineterminator=lineterminator, encoding=encoding)
    with file_with(content, ".csv") as path:
        rows = read_all(path)
    assert not isinstance(rows, SourceError), rows
    assert [(r.number, r.fields, r.columns) for r in rows] == expected(records)
    assert all(r.problems == () for r in rows)


@PROPERTY
@given(_RECORDS, st.sampled_from([";", "\t", "|", ","]))
def test_csv_round_trip_with_a_given_delimiter(records: list[list[str]], delimiter: str) -> None:
    content = written(records, delimiter=delimiter, lineterminator="\r\n", encoding="utf-8")
    with file_with(content, ".csv") as path:
        rows = read_all(path, delimiter=delimiter)
    assert not isinstance(rows, SourceError), rows
    assert [(r.number, r.fields, r.columns) for r in rows] == expected(records)


@PROPERTY
@given(_RECORDS, st.integers(min_value=0, max_value=7), st.integers(min_value=0, max_value=3))
def test_a_nul_or_an_oversized_cell_is_a_problem_of_its_row_only(
    records: list[list[str]], where: int, column: int
) -> None:
    # Enough rows that the bad one lies past the bytes sniffed for binary content.
    filler = [["Ada", f"a{i}@example.com", "x" * 90, ""] for i in range(100)]
    bad = ["Bob", "bob@example.com", "hi", ""]
    bad[column] = "b\x00d" if where % 2 else "y" * (MAX_CELL_CHARS + 1)
    rows_in = [*filler, bad, *records]
    with file_with(
        written(rows_in, delimiter=",", lineterminator="\r\n", encoding="utf-8"), ".csv"
    ) as path:
        rows = read_all(path)
    assert not isinstance(rows, SourceError), rows
    check_rows(rows)
    by_number = {r.number: r for r in rows}
    assert [p.code for p in by_number[102].problems] == ["invalid" if where % 2 else "too_long"]
    assert all(not by_number[n].problems for n in by_number if n != 102)


# --- JSON Lines -----------------------------------------------------------------------

_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(alphabet=_CELL_CHARS, max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
_LINES = st.lists(
    st.one_of(
        _JSON.map(json.dumps),
        st.dictionaries(
            st.sampled_from(["email", "First Name", "message", "address", "Zip", "x"]),
            st.text(alphabet=_CELL_CHARS, max_size=20) | st.integers(),
            max_size=5,
        ).map(json.dumps),
        st.text(alphabet='{}[]":,\\ 1aé', max_size=20),
        st.just(""),
    ),
    max_size=10,
)


@PROPERTY
@given(_LINES, st.sampled_from(["\n", "\r\n"]))
def test_every_jsonl_line_gives_one_row_numbered_by_its_line(
    lines: list[str], newline: str
) -> None:
    # A file whose first record is an array (a JSON document, not JSON Lines) or that is
    # empty is refused as a whole: tested in test_sources.py.
    first = next((line for line in lines if line.strip()), "")
    if not first or first.lstrip(" \t").startswith("["):
        lines = ["{}", *lines]
    with file_with(newline.join(lines).encode(), ".jsonl") as path:
        rows = read_all(path)
    assert not isinstance(rows, SourceError), rows
    check_rows(rows)
    non_blank = [n for n, line in enumerate(lines, start=1) if line.strip()]
    assert [r.number for r in rows] == non_blank
    for row in rows:
        try:
            value = json.loads(lines[row.number - 1])
        except ValueError:
            assert [p.code for p in row.problems] == ["invalid_json"]
            continue
        if not isinstance(value, dict):
            assert [p.code for p in row.problems] == ["not_an_object"]


@PROPERTY
@given(
    st.dictionaries(st.sampled_from(["email", "first_name", "Message", "Notes"]), _CELL, min_size=1)
)
def test_jsonl_text_values_read_back(record: dict[str, str]) -> None:
    with file_with((json.dumps(record) + "\n").encode(), ".jsonl") as path:
        rows = read_all(path)
    assert not isinstance(rows, SourceError), rows
    if not rows:
        return
    (row,) = rows
    assert row.problems == ()
    want = {placeholder_name(k): v.strip() for k, v in record.items() if v.strip()}
    assert row.columns == want


# --- column mapping -------------------------------------------------------------------

_HEADERS = st.lists(
    st.one_of(
        st.sampled_from(
            ["Email", "E-mail", "First Name", "Zip", "Mailing Street", "Id", "Note", "", " "]
        ),
        st.text(max_size=15),
    ),
    max_size=12,
)


@settings(PROPERTY, max_examples=300)
@given(_HEADERS)
def test_mapping_uses_each_existing_column_at_most_once(headers: list[str]) -> None:
    try:
        mapping = ColumnMapping.resolve(headers)
    except SourceError as exc:
        refusal = str(exc)
        assert "more than once" in refusal
        return
    columns = list(mapping.columns.values())
    assert len(columns) == len(set(columns))
    assert set(columns) <= set(headers)
    assert set(mapping.columns) <= set(FIELDS)


@PROPERTY
@given(st.text(max_size=40))
def test_placeholder_names_are_plain(header: str) -> None:
    name = placeholder_name(header)
    assert re.fullmatch(r"(\w*[^\W_])?", name)
    assert placeholder_name(name) == name
