"""The chaos harness's checks on their own: each broken promise is seen, a clean run is not
flagged, and secrets in the CLI's output are found. Without these, a checker that looked at
nothing would pass every chaos run."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from chaos._harness import _Runs, tally
from chaos._recipients import Recipients, write_recipients

from chaos import ModeResult


@pytest.fixture
def recipients(tmp_path: Path) -> Recipients:
    return write_recipients(tmp_path / "crm.csv", 80, random.Random(3))


def _clean(recipients: Recipients) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A run as it should end: one send per valid row, the invalid ones skipped."""
    sends, report = [], []
    for number, email in sorted(recipients.emails.items()):
        if number in recipients.invalid:
            report.append({"row": number, "state": "skipped", "reason": "invalid"})
            continue
        send_id = f"snd_{number}"
        sends.append(
            {
                "id": send_id,
                "idempotency_key": f"key{number}",
                "request_body": {"send": {"email": email}},
                "cost": [{"currency": "USD", "low": "10.00", "high": "12.50"}],
            }
        )
        report.append({"row": number, "state": "submitted", "send_id": send_id})
    return sends, report


def _tally(
    recipients: Recipients,
    sends: list[dict[str, Any]],
    report: list[dict[str, Any]],
    unknown: set[int] | None = None,
    *,
    trusted: bool = True,
    budget: str = "",
) -> ModeResult:
    result = ModeResult("test", 0, budget=budget)
    tally(result, recipients, sends, report, unknown or set(), trusted=trusted)
    return result


def test_a_clean_run_passes(recipients: Recipients) -> None:
    sends, report = _clean(recipients)
    result = _tally(recipients, sends, report, budget="100000 USD")
    assert result.ok, result.problems
    assert (result.sends, result.duplicates, result.lost) == (recipients.valid, 0, 0)


def test_a_second_send_to_one_recipient_is_a_duplicate(recipients: Recipients) -> None:
    sends, report = _clean(recipients)
    sends.append({**sends[0], "id": "snd_again"})
    result = _tally(recipients, sends, report)
    assert result.duplicates == 1
    assert not result.ok


def test_a_row_recorded_as_sent_but_not_on_the_server_is_lost(recipients: Recipients) -> None:
    sends, report = _clean(recipients)
    del sends[3]
    assert _tally(recipients, sends, report).lost == 1


def test_a_row_left_planned_or_missing_from_the_report_is_lost(recipients: Recipients) -> None:
    sends, report = _clean(recipients)
    valid = [r for r in report if r["state"] == "submitted"]
    valid[0]["state"] = "planned"
    report.remove(valid[1])
    result = _tally(recipients, sends, report)
    assert result.lost == 2
    assert any("does not account" in p for p in result.problems)


def test_an_invalid_row_that_was_sent_is_flagged(recipients: Recipients) -> None:
    sends, report = _clean(recipients)
    invalid = min(recipients.invalid)
    sends.append(
        {
            "id": "snd_bad",
            "idempotency_key": "bad",
            "request_body": {"send": {"email": recipients.emails[invalid]}},
        }
    )
    assert any(
        f"invalid row {invalid} was sent" in p for p in _tally(recipients, sends, report).problems
    )


def test_unknown_rows_must_be_listed_and_are_a_failure_only_when_trusted(
    recipients: Recipients,
) -> None:
    sends, report = _clean(recipients)
    row = next(r for r in report if r["state"] == "submitted")
    row["state"] = "unknown"
    untrusted = _tally(recipients, sends, report, {row["row"]}, trusted=False)
    assert untrusted.ok, untrusted.problems
    assert (untrusted.unknown, untrusted.unknown_sent) == (1, 1)
    assert not _tally(recipients, sends, report, set(), trusted=False).ok
    assert not _tally(recipients, sends, report, {row["row"]}, trusted=True).ok


def test_spending_over_the_budget_is_flagged(recipients: Recipients) -> None:
    sends, report = _clean(recipients)
    result = _tally(recipients, sends, report, budget="100 USD")
    assert any("exceeds --max-spend" in p for p in result.problems)


def test_secrets_and_access_tokens_in_the_cli_output_are_found(tmp_path: Path) -> None:
    runs = _Runs(tmp_path, {})
    (tmp_path / "run01.json").write_text('{"end": "finished"}', encoding="utf-8")
    assert runs.leaks(["s3cret-value"]) == []
    (tmp_path / "stderr.log").write_text("Authorization: Bearer sbx_" + "A" * 43, encoding="utf-8")
    (tmp_path / "cli.log").write_text("client_secret=s3cret-value", encoding="utf-8")
    (tmp_path / "ledger.db").write_bytes(b"\x00\x01s3cret-value\x00")
    assert runs.leaks(["s3cret-value"]) == [
        "an access token in stderr.log",
        "s3cret-value in cli.log",
        "s3cret-value in ledger.db",
    ]


def test_a_cli_traceback_is_reported_even_if_a_resume_recovers(tmp_path: Path) -> None:
    runs = _Runs(tmp_path, {})
    assert runs.crashes() == []
    (tmp_path / "stderr.log").write_text(
        "--- start 1: batch run crm.csv\nsendoso: unexpected error: ValueError: boom\n",
        encoding="utf-8",
    )
    assert runs.crashes() == ["sendoso: unexpected error: ValueError: boom"]
