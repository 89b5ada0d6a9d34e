"""Stop the real CLI part-way, resume it, and count the sends on the server.

SIGKILLs under faults (one runner on SQLite, trusted and untrusted; two workers on
PostgreSQL, one killed) are the chaos harness's job: tests/chaos/test_chaos.py runs it
bounded, `make chaos` at full size. Here: the gentle stop (Ctrl-C) and its resume.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from tests.conftest import wait_until

from sendoso.batch import Ledger, RowState

from ._files import recipients_csv

SENDOSO = Path(sys.executable).with_name("sendoso")


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


def _assert_each_valid_row_sent_once(sandbox: Any, ledger: Ledger, run_id: str) -> None:
    keys = Counter(send["idempotency_key"] for send in sandbox.sends())
    duplicates = {key: n for key, n in keys.items() if n > 1}
    assert not duplicates
    planned = {row.send_key for row in ledger.rows(run_id) if row.state is not RowState.SKIPPED}
    assert set(keys) == planned


def test_ctrl_c_lets_the_sends_in_flight_finish_and_the_run_resumes(
    sandbox: Any, tmp_path: Path
) -> None:
    """The first SIGINT stops claiming rows but records every send in flight: no row is
    left `submitting`, and a resume sends the rest exactly once."""
    path, _ = recipients_csv(tmp_path / "crm.csv", 120)
    url = f"sqlite:///{tmp_path}/ledger.db"
    # Sends wait in flight at the sandbox (no count of 1000 arrives) until released.
    sandbox.hold(1000, endpoint="POST /api/v3/sends")
    command = ["batch", "run", str(path), "--run-id", "calm", "--yes", "--ledger", url]
    log = tmp_path / "run.log"
    process = _start(command, sandbox, log)
    wait_until(lambda: sandbox.hold_state()["arrived"] > 0, "a send in flight")
    process.send_signal(signal.SIGINT)
    wait_until(lambda: "Stopping" in log.read_text(), "the run to take the Ctrl-C")
    sandbox.release_hold()  # the sends in flight finish now, after the stop
    assert process.wait(timeout=60) == 130
    with Ledger(url) as ledger:
        counts = ledger.counts("calm")
        assert RowState.SUBMITTING not in counts
        assert counts[RowState.SUBMITTED] == len(sandbox.sends()) < 120
        note = ledger.require_run("calm").note
        assert note is not None
        assert "stopped" in note

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


def test_a_stop_ends_the_wait_for_a_long_rate_limit_pause(sandbox: Any, tmp_path: Path) -> None:
    """Every send answers 429 with Retry-After: 100: the run pauses. SIGTERM then ends the
    wait at once (the process exits long before the pause would), and every row is back to
    `planned`: none is left `submitting`, none was sent."""
    path, _ = recipients_csv(tmp_path / "crm.csv", 40)
    url = f"sqlite:///{tmp_path}/ledger.db"
    sandbox.faults(send_retry_after=100)
    command = ["batch", "run", str(path), "--run-id", "paused", "--yes", "--ledger", url]
    log = tmp_path / "run.log"
    process = _start(command, sandbox, log)
    try:
        wait_until(lambda: sandbox.stats()["faults"]["rate_limited"] > 0, "the run to pause")
        process.send_signal(signal.SIGTERM)
        # Well under the 100 s pause: a process still waiting it out fails here.
        code = process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert code != 0, log.read_text()
    with Ledger(url) as ledger:
        counts = ledger.counts("paused")
        assert counts == {RowState.PLANNED: 40}, log.read_text()
    assert sandbox.sends() == []
