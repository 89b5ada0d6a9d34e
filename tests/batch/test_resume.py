"""Kill the real CLI with SIGKILL part-way, resume it, and count the sends on the server.

The issue's bar: a 300-row file with 10 invalid rows, faults on, the runner killed twice
and resumed, leaves exactly 290 sends on the server, one per valid recipient, and a report
that accounts for all 300 rows. Also: two workers on one PostgreSQL ledger, one killed.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from sendoso.batch import Ledger, RowState

from ._files import recipients_csv

SENDOSO = Path(sys.executable).with_name("sendoso")
FAULTS = {"error_rate": 0.1, "drop_rate": 0.05, "rate_limit": 40, "token_ttl": 2}


def _env(sandbox: Any) -> dict[str, str]:
    return {
        **os.environ,
        "SENDOSO_BASE_URL": sandbox.url,
        "SENDOSO_CLIENT_ID": sandbox.client_id,
        "SENDOSO_CLIENT_SECRET": sandbox.client_secret,
    }


def _start(args: list[str], sandbox: Any, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [str(SENDOSO), *args], env=_env(sandbox), stdout=out, stderr=subprocess.STDOUT
        )


def _kill_after(process: subprocess.Popen[bytes], sandbox: Any, sends: int) -> int:
    """SIGKILL ``process`` once the server holds at least ``sends`` sends."""
    deadline = time.monotonic() + 120
    while len(sandbox.sends()) < sends:
        assert process.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline, "the run made no progress"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    return len(sandbox.sends())


def _assert_each_valid_row_sent_once(sandbox: Any, ledger: Ledger, run_id: str) -> None:
    keys = Counter(send["idempotency_key"] for send in sandbox.sends())
    duplicates = {key: n for key, n in keys.items() if n > 1}
    assert not duplicates
    planned = {row.send_key for row in ledger.rows(run_id) if row.state is not RowState.SKIPPED}
    assert set(keys) == planned


def test_killed_twice_with_faults_on_resumes_to_exactly_one_send_per_valid_row(
    sandbox: Any, tmp_path: Path
) -> None:
    path, invalid = recipients_csv(tmp_path / "crm.csv", 300, invalid_every=30)
    assert len(invalid) == 10
    url = f"sqlite:///{tmp_path}/ledger.db"
    log = tmp_path / "runs.log"
    sandbox.faults(latency_ms=5, seed=11, **FAULTS)
    command = [
        "batch", "run", str(path), "--run-id", "crm", "--yes",
        "--ledger", url, "--concurrency", "8",
    ]  # fmt: skip

    kills = []
    kills.append(_kill_after(_start(command, sandbox, log), sandbox, 50))
    kills.append(_kill_after(_start(command, sandbox, log), sandbox, 150))
    final = subprocess.run(
        [str(SENDOSO), *command], env=_env(sandbox), capture_output=True, text=True, timeout=300
    )

    assert final.returncode == 2, final.stdout + final.stderr  # 2: the invalid rows
    assert kills[0] < kills[1] < 290
    with Ledger(url) as ledger:
        assert ledger.counts("crm") == {RowState.SUBMITTED: 290, RowState.SKIPPED: 10}
        _assert_each_valid_row_sent_once(sandbox, ledger, "crm")
    assert len(sandbox.sends()) == 290
    faults = sandbox.stats()["faults"]
    assert faults["errors"]
    assert faults["drops"]
    assert faults["rate_limited"]

    report = tmp_path / "report.csv"
    subprocess.run(
        [str(SENDOSO), "batch", "report", "crm", "--out", str(report), "--ledger", url],
        env=_env(sandbox),
        check=True,
        capture_output=True,
    )
    with report.open(newline="", encoding="utf-8") as lines:
        records = list(csv.DictReader(lines))
    assert [int(r["row"]) for r in records] == list(range(2, 302))
    assert {int(r["row"]) for r in records if r["state"] == "skipped"} == invalid
    assert all(r["send_id"] for r in records if r["state"] == "submitted")


def test_two_workers_on_postgresql_one_killed_send_each_row_once(
    sandbox: Any, tmp_path: Path, postgres_url: str
) -> None:
    path, _ = recipients_csv(tmp_path / "crm.csv", 200, invalid_every=50)
    log = tmp_path / "workers.log"
    plan = subprocess.run(
        [str(SENDOSO), "batch", "run", str(path), "--run-id", "team", "--ledger", postgres_url],
        env=_env(sandbox),
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    # No --yes and no terminal: the plan is saved, nothing is sent.
    assert plan.returncode == 2, plan.stdout + plan.stderr
    assert sandbox.sends() == []

    sandbox.faults(latency_ms=20, seed=5, **FAULTS)
    worker = [
        "batch", "resume", "team", "--ledger", postgres_url,
        "--concurrency", "2", "--lease-seconds", "5",
    ]  # fmt: skip
    doomed = _start(worker, sandbox, log)
    survivor = _start(worker, sandbox, log)
    _kill_after(doomed, sandbox, 40)
    assert survivor.wait(timeout=300) == 2, log.read_text()  # 2: the invalid rows

    with Ledger(postgres_url) as ledger:
        assert ledger.counts("team") == {RowState.SUBMITTED: 196, RowState.SKIPPED: 4}
        _assert_each_valid_row_sent_once(sandbox, ledger, "team")


def test_ctrl_c_lets_the_sends_in_flight_finish_and_the_run_resumes(
    sandbox: Any, tmp_path: Path
) -> None:
    """The first SIGINT stops claiming rows but records every send in flight: no row is
    left `submitting`, and a resume sends the rest exactly once."""
    path, _ = recipients_csv(tmp_path / "crm.csv", 120)
    url = f"sqlite:///{tmp_path}/ledger.db"
    sandbox.faults(latency_ms=40)
    command = ["batch", "run", str(path), "--run-id", "calm", "--yes", "--ledger", url]
    process = _start(command, sandbox, tmp_path / "run.log")
    deadline = time.monotonic() + 60
    while len(sandbox.sends()) < 20:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=60) == 130
    with Ledger(url) as ledger:
        counts = ledger.counts("calm")
        assert RowState.SUBMITTING not in counts
        assert counts[RowState.SUBMITTED] == len(sandbox.sends()) < 120
        note = ledger.require_run("calm").note
        assert note is not None
        assert "stopped" in note

    sandbox.faults(latency_ms=0)
    resumed = subprocess.run(
        [str(SENDOSO), "batch", "resume", "calm", "--ledger", url],
        env=_env(sandbox),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    with Ledger(url) as ledger:
        assert ledger.counts("calm") == {RowState.SUBMITTED: 120}
        _assert_each_valid_row_sent_once(sandbox, ledger, "calm")
