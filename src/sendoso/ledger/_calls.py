"""Ledger calls from async code: in worker threads, retried while the database is busy."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import ParamSpec, TypeVar

import anyio
import anyio.to_thread
from sqlalchemy.exc import OperationalError

from sendoso.ledger._ledger import Ledger

__all__ = ["LedgerCalls"]

_P = ParamSpec("_P")
_T = TypeVar("_T")


class LedgerCalls:
    """Run a ledger call in a worker thread, at most :meth:`Ledger.threads` of ``wanted`` at
    once, and try it again while the database is busy or briefly unreachable (another
    process planning a big file holds SQLite's write lock; a server restarts).

    ``attempts``: tries of each call before its error is raised (with SQLite's own busy wait
    per try and growing sleeps between, the default rides out minutes of a locked or
    unreachable database).
    """

    def __init__(self, ledger: Ledger, *, wanted: int, attempts: int = 8) -> None:
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        self.ledger = ledger
        self.attempts = attempts
        self._limiter = anyio.CapacityLimiter(ledger.threads(wanted))

    async def __call__(self, fn: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        call = partial(fn, *args, **kwargs)
        for attempt in range(self.attempts):
            try:
                return await anyio.to_thread.run_sync(call, limiter=self._limiter)
            except OperationalError:
                if attempt == self.attempts - 1:
                    raise
                await anyio.sleep(min(0.1 * 2**attempt, 5.0))
        raise AssertionError("unreachable")
