"""A barrier for API requests, so a test can have N requests in flight together.

Latency cannot promise that: on a busy machine some requests finish before others start.

- ``POST /_sandbox/hold {"requests": N}``: each API request (``/api/v3/*``) is held as it
  arrives until the Nth has arrived, then all N go on together; later ones are not held.
  ``"endpoint": "POST /api/v3/sends"`` (named as in the stats) holds only that endpoint's
  requests, so that others (the catalog read before a batch's sends) pass.
- ``POST /_sandbox/hold/release``: the held requests go on at once, however many arrived (a
  test that keeps a request in flight while it does something else).
- If ``timeout_seconds`` pass first, the held requests are answered 503 and the hold says
  ``timed_out``: a test waiting for concurrency that never came fails, it does not pass by
  luck. A reset answers them 503 too: a request held in one test must not create a send in
  the next.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import anyio

__all__ = ["Hold", "HoldState"]

HoldState = Literal["off", "holding", "released", "timed_out", "cleared"]

#: Bounds a control request may set; a hold is a test aid, not a way to park a server.
MAX_REQUESTS = 10_000
MAX_TIMEOUT_SECONDS = 600.0


#: The endpoints a hold can be limited to, named as in the sandbox's stats.
ENDPOINTS = ("GET /api/v3/gifts", "POST /api/v3/sends", "GET /api/v3/sends/{id}")


@dataclass
class _Barrier:
    requests: int
    timeout: float
    endpoint: str | None
    arrived: int = 0
    state: HoldState = "holding"
    # Made when the hold is armed, inside the server's event loop (anyio needs one to make it).
    opened: anyio.Event = field(default_factory=anyio.Event)


class Hold:
    """One barrier at a time; every method runs on the server's event loop."""

    def __init__(self) -> None:
        self._barrier: _Barrier | None = None

    def arm(self, requests: int, timeout_seconds: float, endpoint: str | None = None) -> None:
        """Hold the next ``requests`` API requests (to ``endpoint``, if given) until all of
        them have arrived."""
        if not 1 <= requests <= MAX_REQUESTS:
            raise ValueError(f"requests must be from 1 to {MAX_REQUESTS}, not {requests}")
        if not (math.isfinite(timeout_seconds) and 0 < timeout_seconds <= MAX_TIMEOUT_SECONDS):
            raise ValueError(f"timeout_seconds must be in (0, {MAX_TIMEOUT_SECONDS:g}]")
        if endpoint is not None and endpoint not in ENDPOINTS:
            raise ValueError(f"endpoint must be one of {', '.join(ENDPOINTS)}, or null")
        self.clear()
        self._barrier = _Barrier(requests, timeout_seconds, endpoint)

    def clear(self) -> None:
        """Disarm; requests held now are answered 503 (see the module's docstring)."""
        barrier, self._barrier = self._barrier, None
        if barrier is not None and barrier.state == "holding":
            barrier.state = "cleared"
            barrier.opened.set()

    def release(self) -> None:
        """Let the requests held now go on, however many have arrived."""
        barrier = self._barrier
        if barrier is not None and barrier.state == "holding":
            barrier.state = "released"
            barrier.opened.set()

    async def enter(self, endpoint: str) -> str | None:
        """Wait at the barrier if one is holding requests to ``endpoint``: ``None`` to go on,
        or why to answer 503."""
        barrier = self._barrier
        if barrier is None or barrier.state != "holding":
            return None
        if barrier.endpoint is not None and barrier.endpoint != endpoint:
            return None
        barrier.arrived += 1
        if barrier.arrived >= barrier.requests:
            barrier.state = "released"
            barrier.opened.set()
            return None
        with anyio.move_on_after(barrier.timeout):
            await barrier.opened.wait()
        if barrier.state == "holding":
            barrier.state = "timed_out"
            barrier.opened.set()
        if barrier.state == "timed_out":
            return (
                f"the sandbox held this request {barrier.timeout:g} s for {barrier.requests}"
                f" requests in flight together, but only {barrier.arrived} arrived"
            )
        if barrier.state == "cleared":
            return "the sandbox was reset while it held this request"
        return None

    def snapshot(self) -> dict[str, Any]:
        barrier = self._barrier
        if barrier is None:
            return {"state": "off", "requests": 0, "arrived": 0, "endpoint": None}
        return {
            "state": barrier.state,
            "requests": barrier.requests,
            "arrived": barrier.arrived,
            "endpoint": barrier.endpoint,
        }
