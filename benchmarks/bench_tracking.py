"""Status tracking asks only about sends that are not final, counted by the sandbox.

A run of 10,000 rows (9,000 eGifts, 1,000 physical gifts) is planned and sent through
`BatchRunner` to an unlimited sandbox (its own process); the sandbox's clock is then moved 10
minutes on, so the eGifts are `delivered` while the physical gifts are still `pending` (they
ship after an hour), and the ledger records the 9,000 eGifts as delivered (what a first
`sendoso batch status` would have recorded; written directly to keep the setup short). The
measured `refresh_statuses` (as `sendoso batch status` runs it) must ask only about the 1,000
that are not final. The baseline is a naive refresh that asks about every submitted
send of the run with the same client and concurrency. Requests are `GET /api/v3/sends/{id}`
hits on the sandbox.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import anyio

from benchmarks._batch import EGIFT, plan, recipients_csv
from benchmarks._figures import Figure
from benchmarks._sandbox import RemoteSandbox, serve
from sendoso.batch import BatchRunner, Ledger, RowState, refresh_statuses

TITLE = "8. Status tracking"
NAME = "tracking"
ROUTE = "GET /api/v3/sends/{id}"
CONCURRENCY = 16


def _send_all(sandbox: RemoteSandbox, ledger: Ledger, run_id: str) -> int:
    async def main() -> int:
        async with sandbox.async_client() as client:
            result = await BatchRunner(ledger, client, run_id, concurrency=32).run()
        return result.counts.get(RowState.SUBMITTED, 0)

    return anyio.run(main)


def _refresh(sandbox: RemoteSandbox, ledger: Ledger, run_id: str) -> tuple[int, int, float]:
    """(requests the sandbox saw, rows changed, seconds)."""

    async def main() -> int:
        async with sandbox.async_client() as client:
            result = await refresh_statuses(ledger, client, run_id, concurrency=CONCURRENCY)
        return result.changed

    before = sandbox.requests(ROUTE)
    started = time.perf_counter()
    changed = anyio.run(main)
    return sandbox.requests(ROUTE) - before, changed, time.perf_counter() - started


def _naive_refresh(sandbox: RemoteSandbox, ledger: Ledger, run_id: str) -> tuple[int, float]:
    """Ask about every submitted send, whatever its last known status."""
    ids = [row.send_id for row in ledger.rows(run_id, states=[RowState.SUBMITTED]) if row.send_id]

    async def main() -> None:
        queue = iter(ids)
        async with sandbox.async_client() as client:

            async def worker() -> None:
                for send_id in queue:
                    await client.sends.retrieve(send_id)

            async with anyio.create_task_group() as tasks:
                for _ in range(CONCURRENCY):
                    tasks.start_soon(worker)

    before = sandbox.requests(ROUTE)
    started = time.perf_counter()
    anyio.run(main)
    return sandbox.requests(ROUTE) - before, time.perf_counter() - started


def run(quick: bool) -> list[Figure]:
    rows = 100 if quick else 10_000
    open_rows = rows // 10
    # The ledger's commits are what this setup waits for, not what it measures: in memory
    # (tmpfs) where there is one.
    scratch = Path("/dev/shm")  # noqa: S108 - a fresh TemporaryDirectory is made inside
    directory = str(scratch) if scratch.is_dir() else None
    with (
        serve(rate_limit=None) as sandbox,
        tempfile.TemporaryDirectory(prefix="sendoso-bench-", dir=directory) as tmp,
    ):
        path = recipients_csv(Path(tmp) / "rows.csv", rows, physical_every=10)
        with Ledger(f"sqlite:///{tmp}/ledger.db") as ledger:
            planned = plan(ledger, sandbox, path, "tracked")
            sent = _send_all(sandbox, ledger, "tracked")
            sandbox.control.advance(10 * 60)
            for row in ledger.rows("tracked", states=[RowState.SUBMITTED]):
                if row.gift_id == EGIFT:
                    ledger.record_status("tracked", row.number, "delivered")
            terminal = sum(
                n for status, n in ledger.status_counts("tracked").items() if status == "delivered"
            )
            asked, changed, took = _refresh(sandbox, ledger, "tracked")
            naive_asked, naive_took = _naive_refresh(sandbox, ledger, "tracked")
    ratio = asked / naive_asked if naive_asked else None
    return [
        Figure(
            NAME,
            f"requests to refresh {sent:,} sends, {terminal:,} final",
            asked,
            "requests",
            baseline_name="naive: ask about every send",
            baseline=naive_asked,
            ratio=ratio,
            target=f"== the {open_rows:,} not final",
            met=asked == open_rows and sent == planned == rows and terminal == rows - open_rows,
            detail=(
                f"the refresh asked {asked} ({changed} changed) in {took:.2f} s, the naive one "
                f"{naive_asked} in {naive_took:.2f} s"
            ),
        ),
        Figure(
            NAME,
            "refresh wall time",
            took,
            "s",
            baseline_name="naive refresh",
            baseline=naive_took,
            ratio=took / naive_took,
        ),
    ]
