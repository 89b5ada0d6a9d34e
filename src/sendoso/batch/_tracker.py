"""Status tracking: a 2xx on create does not mean the gift arrives (stock, funds, a bad
address show up later as statuses), so a run's sends are followed until they are final.

Only sends whose last known status is not terminal are asked about, paced by the client like
any other call, and each answer is stored as it comes.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import anyio
import anyio.to_thread
from anyio.streams.memory import MemoryObjectReceiveStream

from sendoso import AsyncSendoso
from sendoso.errors import NotFoundError, SendosoError
from sendoso.ledger import Ledger, LedgerRow, RowState
from sendoso.models import TERMINAL_STATUSES

__all__ = ["RefreshResult", "refresh_statuses"]

_TERMINAL = frozenset(status.value for status in TERMINAL_STATUSES)


#: Error lines kept for display; beyond them only :attr:`RefreshResult.failed` counts.
MAX_ERRORS_KEPT = 50


@dataclass
class RefreshResult:
    asked: int = 0
    changed: int = 0
    failed: int = 0
    #: Of the failures, sends the API does not know (e.g. a sandbox restarted without a
    #: database forgets every send it made).
    not_found: int = 0
    #: (row, message) of the lowest-numbered failures, in row order: sends are asked about
    #: concurrently, so they fail in any order, and a person reads a list by row.
    _failures: list[tuple[int, str]] = field(default_factory=list, init=False, repr=False)

    @property
    def errors(self) -> list[str]:
        """Up to :data:`MAX_ERRORS_KEPT` failures, in row order, each naming its row."""
        return [message for _, message in self._failures]

    def fail(self, row: int, message: str) -> None:
        self.failed += 1
        bisect.insort(self._failures, (row, message))
        del self._failures[MAX_ERRORS_KEPT:]


async def refresh_statuses(
    ledger: Ledger,
    client: AsyncSendoso,
    run_id: str,
    *,
    concurrency: int = 8,
    on_progress: Callable[[RefreshResult], None] | None = None,
) -> RefreshResult:
    """Ask the API for every submitted, not yet final send of the run; store the answers."""
    ledger.require_run(run_id)
    result = RefreshResult()
    limiter = anyio.CapacityLimiter(ledger.threads(concurrency))
    send_rows, receive_rows = anyio.create_memory_object_stream[LedgerRow](concurrency * 2)

    async def feed() -> None:
        # Streams the ledger a page at a time, so a run of a million rows is never in memory.
        async with send_rows:
            pages = ledger.rows(run_id, states=[RowState.SUBMITTED])
            while True:
                row = await anyio.to_thread.run_sync(partial(next, pages, None), limiter=limiter)
                if row is None:
                    return
                if row.send_id and row.status not in _TERMINAL:
                    await send_rows.send(row)

    async def ask(rows: MemoryObjectReceiveStream[LedgerRow]) -> None:
        async with rows:
            async for row in rows:
                assert row.send_id is not None
                result.asked += 1
                try:
                    send = await client.sends.retrieve(row.send_id)
                except NotFoundError:
                    result.not_found += 1
                    result.fail(row.number, f"row {row.number}: send {row.send_id} was not found")
                    continue
                except SendosoError as exc:
                    result.fail(row.number, f"row {row.number}: {' '.join(str(exc).split())}")
                    continue
                if send.status != row.status:
                    result.changed += 1
                    await anyio.to_thread.run_sync(
                        partial(
                            ledger.record_status,
                            run_id,
                            row.number,
                            send.status,
                            error=send.status_reason,
                        ),
                        limiter=limiter,
                    )
                if on_progress is not None:
                    on_progress(result)

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(feed)
        with receive_rows:
            for _ in range(concurrency):
                tasks.start_soon(ask, receive_rows.clone())
    return result
