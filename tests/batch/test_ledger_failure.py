"""The ledger fails mid-run, right after the API confirmed sends: no send id is lost. Each is
in the run's result (``RunResult.unrecorded``) and in the send journal beside the ledger,
which the next open of the ledger applies before anything else."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from tests.conftest import wait_until

from sendoso.batch import BatchRunner, BatchSpec, Ledger, RowState, RunEnd, prepare_run

from ._files import EGIFT, recipients_csv

pytestmark = pytest.mark.anyio


class _GoneOnRecord(Ledger):
    """A ledger whose database becomes unreachable (every call fails) the moment the first
    ``submitted`` is to be recorded, until :meth:`heal`."""

    dead_url: str
    _healthy: sa.Engine | None = None

    def move(self, run_id: str, number: int, target: RowState, **values: Any) -> bool:
        if target is RowState.SUBMITTED and self._healthy is None:
            self._healthy = self._engine
            self._engine = sa.create_engine(self.dead_url)
        return super().move(run_id, number, target, **values)

    def heal(self) -> None:
        assert self._healthy is not None
        self._engine.dispose()
        self._engine = self._healthy


async def test_sends_confirmed_while_the_ledger_fails_are_reported_and_recorded_on_reopen(
    sandbox: Any, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path}/ledger.db"
    path, _ = recipients_csv(tmp_path / "r.csv", 12, gift=EGIFT)
    ledger = _GoneOnRecord(url)
    ledger.dead_url = f"sqlite:///{tmp_path}/missing/dir/ledger.db"
    with sandbox.client() as client:
        catalog = client.gifts.list()
    prepare_run(ledger, BatchSpec(path=str(path), run_id="full"), catalog, base_url=sandbox.url)
    # Four POSTs in flight together: all four are confirmed after the ledger is gone.
    sandbox.hold(4, endpoint="POST /api/v3/sends")
    async with sandbox.async_client() as client:
        result = await BatchRunner(
            ledger, client, "full", concurrency=4, ledger_attempts=1, lease_seconds=1
        ).run()
    ledger.heal()
    ledger.close()

    on_server = {send["idempotency_key"]: send["id"] for send in sandbox.sends()}
    assert result.end is RunEnd.LEDGER
    assert len(on_server) == 4
    assert {u.send_id for u in result.unrecorded} == set(on_server.values())
    assert all(u.journalled for u in result.unrecorded)
    for u in result.unrecorded:
        assert f"row {u.number}: send {u.send_id}" in result.message

    # Opened again: the journal is applied first, every confirmed send is recorded.
    with Ledger(url) as reopened:
        recorded = {
            row.send_key: row.send_id for row in reopened.rows("full", states=[RowState.SUBMITTED])
        }
        assert recorded == on_server
        assert RowState.SUBMITTING not in reopened.counts("full")
        async with sandbox.async_client() as client:
            done = await BatchRunner(reopened, client, "full", lease_seconds=1).run()
    assert done.end is RunEnd.FINISHED
    assert done.counts == {RowState.SUBMITTED: 12}
    assert set(Counter(send["idempotency_key"] for send in sandbox.sends()).values()) == {1}


async def test_an_untrusted_host_gets_the_journalled_sends_not_unknown(
    sandbox: Any, tmp_path: Path
) -> None:
    """On a host that does not deduplicate, a row left ``submitting`` would become
    ``unknown`` on resume, with nothing to settle it by; the journal settles it."""
    url = f"sqlite:///{tmp_path}/ledger.db"
    path, _ = recipients_csv(tmp_path / "r.csv", 6, gift=EGIFT)
    ledger = _GoneOnRecord(url)
    ledger.dead_url = f"sqlite:///{tmp_path}/missing/dir/ledger.db"
    with sandbox.client() as client:
        catalog = client.gifts.list()
    prepare_run(ledger, BatchSpec(path=str(path), run_id="u"), catalog, base_url=sandbox.url)
    sandbox.hold(2, endpoint="POST /api/v3/sends")
    async with sandbox.async_client() as client:
        result = await BatchRunner(
            ledger, client, "u", concurrency=2, ledger_attempts=1, lease_seconds=1
        ).run()
    ledger.heal()
    ledger.close()
    assert len(result.unrecorded) == 2

    with Ledger(url) as reopened:
        async with sandbox.async_client(trust_idempotency=False) as client:
            done = await BatchRunner(reopened, client, "u", lease_seconds=1).run()
    assert done.counts == {RowState.SUBMITTED: 6}
    assert len(sandbox.sends()) == 6


@pytest.mark.parametrize("how", ["deleted", "replaced"])
async def test_a_ledger_file_lost_mid_run_stops_it_and_no_row_is_sent_twice(
    sandbox: Any, tmp_path: Path, how: str
) -> None:
    """The ledger file is deleted (or replaced by another) while four sends are in flight:
    the run stops as a ledger failure saying so, instead of "finishing" into a file nobody
    reads. The same run planned again into a fresh ledger then sends only the rows never
    sent: the four confirmed ones are taken from the send journal, not posted again."""
    db = tmp_path / "ledger.db"
    url = f"sqlite:///{db}"
    path, _ = recipients_csv(tmp_path / "r.csv", 12, gift=EGIFT)
    with sandbox.client() as client:
        catalog = client.gifts.list()
    spec = BatchSpec(path=str(path), run_id="lost")
    sandbox.hold(1000, endpoint="POST /api/v3/sends")

    def lose_the_file() -> None:
        wait_until(lambda: sandbox.hold_state()["arrived"] >= 4, "four sends in flight")
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        if how == "replaced":
            Ledger(url).close()
        sandbox.release_hold()

    with Ledger(url) as ledger:
        prepare_run(ledger, spec, catalog, base_url=sandbox.url)
        loser = threading.Thread(target=lose_the_file)
        loser.start()
        async with sandbox.async_client() as client:
            result = await BatchRunner(ledger, client, "lost", concurrency=4).run()
        loser.join()
    assert result.end is RunEnd.LEDGER
    assert f"ledger file {db} was {how}" in result.message
    assert len(sandbox.sends()) == 4

    with Ledger(url) as fresh:
        prepare_run(fresh, spec, catalog, base_url=sandbox.url)
        async with sandbox.async_client() as client:
            again = await BatchRunner(fresh, client, "lost").run()
        assert again.counts == {RowState.SUBMITTED: 12}
    assert sandbox.stats()["requests"]["POST /api/v3/sends"] == 12
