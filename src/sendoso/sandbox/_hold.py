"""A barrier for API requests, so a test can have N requests in flight together.

Latency cannot promise that: on a busy machine some requests finish before others start. Armed
with ``POST /_sandbox/hold {"requests": N}``, the sandbox holds each API request (``/api/v3/*``)
as it arrives until the Nth has arrived, then lets all N go on together; later requests are
not held. If ``timeout_seconds`` pass first, the held requests are answered 503 and the hold
says ``timed_out``, so a test waiting for concurrency that never came fails instead of passing
by luck.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import anyio

__all__ = ["Hold", "HoldState"]

HoldState = Literal["off", "holding", "released", "timed_out"]

#: Bounds a control request may set; a hold is a test aid, not a way to park a server.
MAX_REQUESTS = 10_000
MAX_TIMEOUT_SECONDS = 600.0


@dataclass
class _Barrier:
    requests: int
    timeout: float
    arrived: int = 0
    state: HoldState = "holding"
    # Made when the hold is armed, inside the server's event loop (anyio needs one to make it).
    opened: anyio.Event = field(default_factory=anyio.Event)


class Hold:
    """One barrier at a time; every method runs on the server's event loop."""

    def __init__(self) -> None:
        self._barrier: _Barrier | None = None

    def arm(self, requests: int, timeout_seconds: float) -> None:
        """Hold the next ``requests`` API requests until all of them have arrived."""
        if not 1 <= requests <= MAX_REQUESTS:
            raise ValueError(f"requests must be from 1 to {MAX_REQUESTS}, not {requests}")
        if not (math.isfinite(timeout_seconds) and 0 < timeout_seconds <= MAX_TIMEOUT_SECONDS):
            raise ValueError(f"timeout_seconds must be in (0, {MAX_TIMEOUT_SECONDS:g}]")
        self.clear()
        self._barrier = _Barrier(requests, timeout_seconds)

    def clear(self) -> None:
        """Disarm; requests held now go on as if released (a reset must not strand them)."""
        barrier, self._barrier = self._barrier, None
        if barrier is not None and barrier.state == "holding":
            barrier.state = "off"
            barrier.opened.set()

    async def enter(self) -> bool:
        """Wait at the barrier if one is holding; ``False`` if it timed out (answer 503)."""
        barrier = self._barrier
        if barrier is None or barrier.state != "holding":
            return True
        barrier.arrived += 1
        if barrier.arrived >= barrier.requests:
            barrier.state = "released"
            barrier.opened.set()
            return True
        with anyio.move_on_after(barrier.timeout):
            await barrier.opened.wait()
        if barrier.state == "holding":
            barrier.state = "timed_out"
            barrier.opened.set()
        return barrier.state != "timed_out"

    def describe_timeout(self) -> str:
        barrier = self._barrier
        if barrier is None:
            return "the hold was cleared"
        return (
            f"the sandbox held this request {barrier.timeout:g} s for {barrier.requests}"
            f" requests in flight together, but only {barrier.arrived} arrived"
        )

    def snapshot(self) -> dict[str, Any]:
        barrier = self._barrier
        if barrier is None:
            return {"state": "off", "requests": 0, "arrived": 0}
        return {"state": barrier.state, "requests": barrier.requests, "arrived": barrier.arrived}
