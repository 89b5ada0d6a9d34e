"""What the client costs per request beyond the request itself: connections are reused however
many requests are in flight, and no module is searched for again on every request."""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any

import anyio
import pytest

pytestmark = pytest.mark.anyio


class _Recorder(importlib.abc.MetaPathFinder):
    """Sees every import that gets as far as searching for a module."""

    def __init__(self) -> None:
        self.searched: list[str] = []

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        self.searched.append(fullname)
        return None


async def test_async_requests_do_not_search_for_modules_again_and_again(sandbox: Any) -> None:
    """httpcore imports sniffio for every lock it makes; without sniffio installed (it is a
    dependency for this reason), each such import searched sys.path anew (about 0.7 ms of CPU
    per request)."""
    async with sandbox.async_client() as client:
        await client.gifts.list()  # warm up: every module the first request needs is loaded
        recorder = _Recorder()
        sys.meta_path.insert(0, recorder)
        try:
            for _ in range(5):
                await client.gifts.list()
        finally:
            sys.meta_path.remove(recorder)

    assert recorder.searched == []


async def test_more_requests_in_flight_than_twenty_keep_their_connections(sandbox: Any) -> None:
    """With httpx's default pool, only 20 idle connections survive: a batch with 40 sends in
    flight opened a new connection (a TLS handshake, in production) for half of them."""
    # Each request is held until all 40 are in flight (latency only made that likely).
    sandbox.hold(40)
    async with sandbox.async_client() as client:
        async with anyio.create_task_group() as tasks:
            for _ in range(40):
                tasks.start_soon(client.gifts.list)
        # The pool behind the client's own httpx.AsyncClient (httpcore's, public there).
        pool = client._http._transport._pool
        kept = [c for c in pool.connections if c.is_idle()]

    assert sandbox.hold_state() == {
        "state": "released",
        "requests": 40,
        "arrived": 40,
        "endpoint": None,
    }
    assert len(kept) == 40
