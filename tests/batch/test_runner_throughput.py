"""The runner keeps the pipe full: rows are claimed a batch at a time, and each send books its
pacer slot before the "submitting" commit and redeems that slot after it, so that a slow commit
need not make it miss its turn (a missed slot goes out empty, and the send queues again at the
back). How many slots that saves under a slow ledger is a matter of time, measured by
`make bench` ("wall time the ledger adds at 200 sends/s"), not asserted here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.conftest import Sandbox

from sendoso.batch import BatchRunner, BatchSpec, Ledger, RowState, RunEnd, prepare_run

from ._files import EGIFT, recipients_csv

pytestmark = pytest.mark.anyio


class CountingLedger(Ledger):
    """Counts claims that found rows and records each "submitting" commit in ``events``; the
    ledger takes several threads, as a server does."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.claims = 0
        self.events: list[tuple[str, int | str]] = []

    def threads(self, wanted: int) -> int:
        return wanted

    def claim(self, *args: Any, **kwargs: Any) -> Any:
        rows = super().claim(*args, **kwargs)
        self.claims += bool(rows)
        return rows

    def begin_send(self, run_id: str, number: int, *args: Any, **kwargs: Any) -> Any:
        self.events.append(("commit", number))
        return super().begin_send(run_id, number, *args, **kwargs)


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


async def test_each_send_books_its_slot_before_the_submitting_commit_and_redeems_it_after(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """The order of events, not their timing: for every row, the pacer slot is booked under
    the row's key, then "submitting" is committed, then the send redeems that same slot."""
    path, _ = recipients_csv(tmp_path / "r.csv", 40, gift=EGIFT)
    ledger = CountingLedger(f"sqlite:///{tmp_path}/ledger.db")
    with ledger:
        _plan(ledger, sandbox, path, "slots")
        keys = {row.number: row.send_key for row in ledger.rows("slots")}
        async with sandbox.async_client(rate_limit=200) as client:
            pacer = client.pacer
            prebook, reserve = pacer.prebook, pacer.reserve

            def recording_prebook(key: str) -> float:
                ledger.events.append(("prebook", key))
                return prebook(key)

            def recording_reserve(key: str | None = None) -> float:
                ledger.events.append(("reserve", key or ""))
                return reserve(key)

            # Wrapped in place: the runner calls the pacer it was given.
            pacer.prebook = recording_prebook  # type: ignore[method-assign]
            pacer.reserve = recording_reserve  # type: ignore[method-assign]
            result = await BatchRunner(ledger, client, "slots", concurrency=8).run()

        assert result.counts == {RowState.SUBMITTED: 40}
        for number, key in keys.items():
            assert key is not None
            steps = [
                kind
                for kind, subject in ledger.events
                if subject == key or (kind == "commit" and subject == number)
            ]
            assert steps == ["prebook", "commit", "reserve"], (number, steps)
