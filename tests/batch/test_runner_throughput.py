"""The runner keeps the pipe full: rows are claimed a batch at a time, and a slow "submitting"
commit does not make sends miss the pacer slots they waited for (a missed slot goes out empty,
and the send queues again at the back)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import Sandbox

from sendoso.batch import BatchRunner, BatchSpec, Ledger, RowState, RunEnd, prepare_run

from ._files import EGIFT, recipients_csv

pytestmark = pytest.mark.anyio


class CountingLedger(Ledger):
    """Counts claims that found rows; ``commit_delay`` slows every "submitting" commit, and the
    ledger takes several threads, as a server does, so that the slowness is not a queue."""

    commit_delay = 0.0

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.claims = 0

    def threads(self, wanted: int) -> int:
        return wanted

    def claim(self, *args: Any, **kwargs: Any) -> Any:
        rows = super().claim(*args, **kwargs)
        self.claims += bool(rows)
        return rows

    def begin_send(self, *args: Any, **kwargs: Any) -> Any:
        time.sleep(self.commit_delay)
        return super().begin_send(*args, **kwargs)


def _plan(ledger: Ledger, sandbox: Sandbox, path: Path, run_id: str) -> None:
    with sandbox.client() as client:
        catalog = client.gifts.list()
    prepare_run(ledger, BatchSpec(path=str(path), run_id=run_id), catalog, base_url=sandbox.url)


async def test_rows_are_claimed_a_batch_at_a_time(sandbox: Sandbox, tmp_path: Path) -> None:
    """One claim transaction serves up to one row per worker, not one row each."""
    path, _ = recipients_csv(tmp_path / "r.csv", 64, gift=EGIFT)
    ledger = CountingLedger(f"sqlite:///{tmp_path}/ledger.db")
    with ledger:
        _plan(ledger, sandbox, path, "batched")
        async with sandbox.async_client() as client:
            result = await BatchRunner(ledger, client, "batched", concurrency=8).run()

        assert result.end is RunEnd.FINISHED
        assert result.counts == {RowState.SUBMITTED: 64}
        assert ledger.claims <= 64 // 8 + 2
    assert len(sandbox.sends()) == 64


async def test_a_slow_submitting_commit_does_not_cost_the_sends_their_slots(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """At 20 sends/s (a slot every 50 ms), recording "submitting" takes 120 ms: rows wake up
    that much before their turn, so that (once the runner has seen how long it takes) each
    send goes out in the slot it waited for instead of being booked again at the back."""
    path, _ = recipients_csv(tmp_path / "r.csv", 40, gift=EGIFT)
    ledger = CountingLedger(f"sqlite:///{tmp_path}/ledger.db")
    with ledger:
        _plan(ledger, sandbox, path, "slow-commit")
        ledger.commit_delay = 0.12
        async with sandbox.async_client(rate_limit=20) as client:
            pacer = client.pacer
            turns: dict[str, float] = {}
            late: list[str] = []
            prebook, reserve = pacer.prebook, pacer.reserve

            def recording_prebook(key: str) -> float:
                wait = prebook(key)
                turns[key] = time.monotonic() + wait
                return wait

            def recording_reserve(key: str | None = None) -> float:
                wait = reserve(key)
                if key in turns and time.monotonic() + wait > turns[key] + 0.025:
                    late.append(key)  # its slot went by: it was booked again
                return wait

            # Wrapped in place: the runner calls the pacer it was given.
            pacer.prebook = recording_prebook  # type: ignore[method-assign]
            pacer.reserve = recording_reserve  # type: ignore[method-assign]
            result = await BatchRunner(ledger, client, "slow-commit", concurrency=8).run()

        assert result.counts == {RowState.SUBMITTED: 40}
        assert len(turns) == 40
        # Only the first claim's rows, which waited before any commit was timed, may miss.
        assert len(late) <= 8
