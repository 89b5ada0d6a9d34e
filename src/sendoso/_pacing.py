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
    until the server's ``Retry-After`` has passed. A slot booked before a pause may fall
    inside it: whoever holds one checks :meth:`paused_for` when its wait is over.

    ``prebook(key)`` books a slot ahead of the call that will use it (the batch runner waits
    for its turn *before* it records "submitting"); the first ``reserve(key)`` then takes
    that slot instead of booking a second one.

    ``adaptive=True`` (for a host whose limit is not known for sure) adapts the rate to the
    server's 429s, so that a run settles just under the server's limit:

    * **Measure, or only pause.** On the first 429 of a burst (the first one outside a
      pause), the rate actually booked is measured over the last :attr:`WINDOW` seconds. With
      fewer than :attr:`MIN_SAMPLE` bookings there is nothing to measure: everyone pauses
      and the rate stays as it is (a 429 after two bookings says nothing about a rate).
    * **Lower.** Otherwise the rate becomes ``BACK_OFF`` (95 %) of the lower of the measured
      rate and the rate in force, but never less than the *floor*:
      ``max(MIN_RATE, FLOOR_SHARE * reference)`` (1 req/s, or 10 % of the reference if
      that is higher), capped at the reference itself. The reference is the rate in force
      before the first adaptation, or the first measured rate for a pacer that started
      unpaced.
    * **Ceiling.** Each such 429 also sets the ceiling to ``BACK_OFF`` * the rate in force
      when it came (the measured rate, if nothing was paced yet), never above the previous
      ceiling: a rate that drew a 429 is never tried again.
    * **Recover slowly.** Once :attr:`QUIET` seconds have passed after the end of the last
      pause without another 429, the next booking raises the rate by :attr:`STEP` (5 %),
      capped at the ceiling; then again after another quiet period, and so on.

    So the rate climbs back (when a 429 cut it below the ceiling, e.g. while callers were
    slower than the schedule) but only to just under the last rate that drew a 429, and
    every further measured 429 lowers the ceiling by 5 % (down to the floor): the number of
    429s a run can provoke is bounded, and it ends up just under the server's limit instead
    of oscillating around it. A pacer that is not adaptive only ever pauses.
    """

    #: Share of the measured rate kept after a 429, and of the rate that drew it (ceiling).
    BACK_OFF = 0.95
    #: How far back bookings are measured, and how many it takes to measure a rate.
    WINDOW = 10.0
    MIN_SAMPLE = 10
    #: The floor: ``max(MIN_RATE, FLOOR_SHARE * reference rate)``.
    MIN_RATE = 1.0
    FLOOR_SHARE = 0.1
    #: Seconds without a 429 after which the rate is raised by one step.
    QUIET = 30.0
    STEP = 1.05
    #: Unused prebooked tickets are dropped once their slot is this many seconds past, and
    #: the oldest ones once there are more than MAX_TICKETS.
    TICKET_TTL = 60.0
    MAX_TICKETS = 4096

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
        # Adaptive state: set by the first measured 429.
        self._floor: float | None = None
        self._ceiling: float | None = None
        self._calm_since = 0.0
        # key -> booked slot; insertion order is slot order (slots never go backwards).
        self._tickets: dict[str, float] = {}

    @property
    def rate(self) -> float | None:
        return 1.0 / self._interval if self._interval else None

    def reserve(self, key: str | None = None) -> float:
        """Book the next slot; returns the seconds to wait before using it.

        If ``key`` names a ticket from :meth:`prebook`, that slot is used (and the ticket
        consumed) instead of booking another one.
        """
        with self._lock:
            now = self._clock()
            slot = self._tickets.pop(key, None) if key is not None else None
            if slot is not None and slot < now - self._interval:
                # Its holder was held up after its turn (a busy ledger, a token refresh):
                # using the old slot now would add a send to whatever is already going out.
                slot = None
            if slot is None:
                slot = self._book(now)
            # A pause set since the ticket was booked holds it back too.
            return max(0.0, slot - now, self._paused_until - now)

    def prebook(self, key: str) -> float:
        """Book the next slot as :meth:`reserve` does, and keep it for ``reserve(key)``;
        returns the seconds to wait before using it."""
        with self._lock:
            now = self._clock()
            self._tickets.pop(key, None)
            stale = now - self.TICKET_TTL
            while self._tickets:
                oldest, slot = next(iter(self._tickets.items()))
                if slot >= stale and len(self._tickets) < self.MAX_TICKETS:
                    break
                del self._tickets[oldest]
            slot = self._book(now)
            self._tickets[key] = slot
            return slot - now

    def paused_for(self) -> float:
        """Seconds left in the current pause (0 if none): a slot booked before the pause
        must not be used inside it."""
        with self._lock:
            return max(0.0, self._paused_until - self._clock())

    def pause_for(self, seconds: float) -> None:
        """Hold every caller back for ``seconds`` (e.g. a 429's Retry-After)."""
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + seconds)

    def throttled(self, seconds: float) -> None:
        """The server said 429: pause everyone for ``seconds`` and, if adaptive, slow down
        (see the class docstring for the rule)."""
        with self._lock:
            now = self._clock()
            # Many callers see the same burst of 429s; only the first one in a pause adapts.
            first = now >= self._paused_until
            self._paused_until = max(self._paused_until, now + seconds)
            if not self.adaptive:
                return
            # Any 429 restarts the quiet period, counted from the end of the pause.
            self._calm_since = max(self._calm_since, self._paused_until)
            if not first:
                return
            recent = [t for t in self._recent if now - self.WINDOW <= t <= now]
            if len(recent) < self.MIN_SAMPLE or recent[-1] <= recent[0]:
                return
            measured = (len(recent) - 1) / (recent[-1] - recent[0])
            in_force = 1.0 / self._interval if self._interval else measured
            if self._floor is None:
                self._floor = min(in_force, max(self.MIN_RATE, self.FLOOR_SHARE * in_force))
            ceiling = max(self._floor, self.BACK_OFF * in_force)
            self._ceiling = ceiling if self._ceiling is None else min(self._ceiling, ceiling)
            lowered = max(self._floor, self.BACK_OFF * min(measured, in_force))
            self._interval = 1.0 / min(lowered, self._ceiling)
            self._recent.clear()

    def _book(self, now: float) -> float:
        """The next free slot, taken; called with the lock held."""
        if self.adaptive and self._ceiling is not None and now - self._calm_since >= self.QUIET:
            self._calm_since = now
            rate = 1.0 / self._interval
            if rate < self._ceiling:
                self._interval = 1.0 / min(self._ceiling, rate * self.STEP)
        start = max(now, self._next_slot, self._paused_until)
        self._next_slot = start + self._interval
        if self.adaptive:
            self._recent.append(start)
        return start
