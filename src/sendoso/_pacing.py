"""Client-side pacing: spacing requests so the server never has to say 429.

Hand-written rather than taken from a rate-limiting library because the sync and async
clients must share one schedule while each waits in its own way: :meth:`Pacer.reserve` only
*books* a slot and says how long to wait, and the caller sleeps with ``time.sleep`` or
``anyio.sleep``. Libraries such as aiolimiter or pyrate-limiter do the sleeping themselves,
for one concurrency model at a time.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

__all__ = ["Pacer"]


class Pacer:
    """A schedule of request slots ``1 / rate`` seconds apart, shared by every caller.

    ``rate=None`` spaces nothing, but a pause (after a 429) still holds every caller back
    until the server's ``Retry-After`` has passed.

    ``adaptive=True`` (for a host whose limit is not known for sure) lowers the rate on each
    429 to just under the rate that was measured when it came, and never raises it again:
    a run settles below the server's limit instead of oscillating around it.
    """

    #: Share of the measured rate kept after a 429.
    BACK_OFF = 0.95
    _WINDOW = 2.0

    def __init__(
        self,
        rate: float | None,
        *,
        adaptive: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ):
        if rate is not None and rate <= 0:
            raise ValueError("rate must be positive (requests per second) or None")
        self._interval = 1.0 / rate if rate else 0.0
        self.adaptive = adaptive
        self._clock = clock
        self._lock = threading.Lock()
        self._next_slot = 0.0
        self._paused_until = 0.0
        self._recent: deque[float] = deque(maxlen=256)

    @property
    def rate(self) -> float | None:
        return 1.0 / self._interval if self._interval else None

    def reserve(self) -> float:
        """Book the next slot; returns the seconds to wait before using it."""
        with self._lock:
            now = self._clock()
            start = max(now, self._next_slot, self._paused_until)
            self._next_slot = start + self._interval
            if self.adaptive:
                self._recent.append(start)
            return start - now

    def pause_for(self, seconds: float) -> None:
        """Hold every caller back for ``seconds`` (e.g. a 429's Retry-After)."""
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + seconds)

    def throttled(self, seconds: float) -> None:
        """The server said 429: pause everyone for ``seconds`` and, if adaptive, slow down."""
        with self._lock:
            now = self._clock()
            # Many callers see the same burst of 429s; only the first one in a pause adapts.
            first = now >= self._paused_until
            self._paused_until = max(self._paused_until, now + seconds)
            if not (self.adaptive and first):
                return
            recent = [t for t in self._recent if now - self._WINDOW <= t <= now]
            if len(recent) < 2 or recent[-1] <= recent[0]:
                return
            measured = (len(recent) - 1) / (recent[-1] - recent[0])
            current = 1.0 / self._interval if self._interval else measured
            self._interval = 1.0 / (self.BACK_OFF * min(measured, current))
            self._recent.clear()
