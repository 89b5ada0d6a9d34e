"""Run reports: one line per input row, as CSV (for people and spreadsheets) or JSON.

CSV cells that a spreadsheet would read as a formula (``= + - @``, a tab or a carriage return
first) are neutralised with a leading apostrophe: recipient data comes from outside and a
report is opened in Excel, where ``=HYPERLINK(...)`` would otherwise run.

A row's error may name parameters and next steps (a :class:`sendoso.errors.Text`); the report
words them as ``wording`` says: the library's own by default, a front end's when it writes one.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Literal

from sendoso._display import visible
from sendoso.errors import FieldProblem, ValidationError, Wording, library_wording, worded
from sendoso.ledger import Ledger, LedgerRow, Totals
from sendoso.models import format_totals

__all__ = ["REPORT_COLUMNS", "neutralise", "report_record", "write_report", "write_report_to"]

REPORT_COLUMNS = (
    "row",
    "recipient",
    "name",
    "gift_id",
    "state",
    "reason",
    "send_id",
    "status",
    "error",
    "estimate",
    "actual_estimate",
)

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(cell: str) -> str:
    cell = visible(cell)
    return "'" + cell if cell.startswith(_FORMULA_STARTS) else cell


def report_record(row: LedgerRow, wording: Wording = library_wording) -> dict[str, Any]:
    return {
        "row": row.number,
        "recipient": row.recipient,
        "name": row.name,
        "gift_id": row.gift_id,
        "state": row.state.value,
        "reason": row.skip_kind,
        "send_id": row.send_id,
        "status": row.status,
        "error": None if row.error is None else worded(row.error, wording),
        "estimate": {
            cur: {"low": str(low), "high": str(high)} for cur, (low, high) in row.estimate.items()
        }
        if row.estimate
        else None,
        # What the row was sent at when its price had moved since the plan (else empty).
        "actual_estimate": _totals_record(row.actual_estimate),
    }


def _totals_record(totals: Totals | None) -> dict[str, dict[str, str]] | None:
    if not totals:
        return None
    return {cur: {"low": str(low), "high": str(high)} for cur, (low, high) in totals.items()}


def _csv_cells(row: LedgerRow, wording: Wording) -> list[str]:
    record = report_record(row, wording)
    record["estimate"] = format_totals(row.estimate or {}, dash="-")
    record["actual_estimate"] = format_totals(row.actual_estimate or {}, dash="-")
    return [neutralise("" if record[c] is None else str(record[c])) for c in REPORT_COLUMNS]


def _write_json(rows: Iterator[LedgerRow], out: IO[str], wording: Wording) -> int:
    # Written item by item so that a run of any size is never held in memory.
    count = 0
    out.write("[")
    for row in rows:
        out.write(",\n " if count else "\n ")
        out.write(json.dumps(report_record(row, wording), ensure_ascii=False))
        count += 1
    out.write("\n]\n" if count else "]\n")
    return count


def write_report(
    ledger: Ledger, run_id: str, path: str | Path, *, wording: Wording = library_wording
) -> int:
    """Write the run's report to ``path`` (``.csv`` or ``.json``); returns the row count."""
    ledger.require_run(run_id)
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in (".csv", ".json"):
        raise ValidationError(
            [FieldProblem("path", "invalid", f"{target.name}: the report must be .csv or .json")]
        )
    with target.open("w", encoding="utf-8", newline="") as out:
        return write_report_to(
            ledger, run_id, out, format="json" if suffix == ".json" else "csv", wording=wording
        )


def write_report_to(
    ledger: Ledger,
    run_id: str,
    out: IO[str],
    *,
    format: Literal["csv", "json"] = "csv",
    wording: Wording = library_wording,
) -> int:
    """Write the run's report to the open text stream ``out`` (stdout, say); returns the
    row count. Open a file with ``newline=""`` for CSV."""
    ledger.require_run(run_id)
    rows = ledger.rows(run_id)
    if format == "json":
        return _write_json(rows, out, wording)
    writer = csv.writer(out)
    writer.writerow(REPORT_COLUMNS)
    count = 0
    for row in rows:
        writer.writerow(_csv_cells(row, wording))
        count += 1
    return count
