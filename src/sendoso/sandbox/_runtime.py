"""In-memory state that a restart may forget: the virtual clock, faults, rate limit, stats."""

from __future__ import annotations

import math
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sendoso.sandbox._config import SandboxConfig

__all__ = ["Clock", "Faults", "Stats", "TokenBucket", "iso"]


def iso(epoch: float) -> str:
    return (
        datetime.fromtimestamp(epoch, tz=UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


class Clock:
    """Virtual UTC time: real time run ``speed`` times faster from the moment the clock was
    made, plus an offset that only grows, so statuses can be fast-forwarded.

    ``speed`` 1 is real time; 60 makes a real minute a virtual hour, so a demo's sends move
    from ``pending`` to ``delivered`` while someone watches. ``time_source`` is the real clock
    (``time.time``), replaceable so the arithmetic can be checked without waiting.
    """

    def __init__(self, speed: float = 1.0, *, time_source: Callable[[], float] = time.time) -> None:
        self.speed = speed
        self.offset = 0.0
        self._real = time_source
        self._origin = time_source()

    def now(self) -> float:
        elapsed = self._real() - self._origin
        return self._origin + elapsed * self.speed + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds

    def snapshot(self) -> dict[str, Any]:
        """The virtual time, how far it was advanced by hand, and how fast it runs."""
        return {"now": iso(self.now()), "offset_seconds": self.offset, "speed": self.speed}


class TokenBucket:
    """``rate`` requests per second with a burst of ``max(1, rate)``, on real monotonic time.

    Real time, not the virtual clock: advancing the clock by a day must not refill the bucket,
    or a test of 429 handling could not fast-forward statuses in between. ``clock`` is for
    tests that must not depend on how fast their requests go out (see :meth:`use_clock`).
    """

    def __init__(self, rate: float | None, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.set_rate(rate)

    def use_clock(self, clock: Callable[[], float]) -> None:
        """Time refills by ``clock`` from now on; the bucket starts full."""
        self.clock = clock
        self.set_rate(self.rate)

    def set_rate(self, rate: float | None) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate) if rate is not None else math.inf
        self.tokens = self.capacity
        self._updated = self.clock()

    def take(self) -> tuple[bool, int]:
        """Take one token: ``(allowed, seconds to wait before retrying)``."""
        if self.rate is None:
            return True, 0
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self._updated) * self.rate)
        self._updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True, 0
        return False, max(1, math.ceil((1 - self.tokens) / self.rate))

    @property
    def remaining(self) -> int:
        return 0 if self.rate is None else max(0, math.floor(self.tokens))


@dataclass
class Faults:
    """Injected misbehaviour. Seeded, the same sequence of requests meets the same faults.

    Each request's extra delay is ``latency_ms`` plus a uniform draw from ``[0, jitter_ms]``.
    ``dedupe=False`` makes the sandbox ignore ``Idempotency-Key`` (as a server without
    idempotency would), so a client's re-send of an ambiguous request shows up as a second
    send instead of being absorbed.
    """

    latency_ms: float
    token_ttl: float
    rate_limit: float | None
    error_rate: float = 0.0
    drop_rate: float = 0.0
    jitter_ms: float = 0.0
    dedupe: bool = True
    seed: int | None = None
    #: An HTTP status (500-599) that ``POST /oauth/token`` answers while set; 0: off. A token
    #: endpoint failing while the API itself works (a failure before any send is transmitted).
    token_error: int = 0
    #: Seconds every ``POST /api/v3/sends`` is told to wait in a 429's ``Retry-After``; 0: off.
    #: A long pause the bucket (``rate_limit``) cannot make for sends alone.
    send_retry_after: float = 0.0
    rng: random.Random = field(default_factory=random.Random)
    #: Its own generator: how many requests were delayed must not shift which sends fail.
    jitter_rng: random.Random = field(default_factory=random.Random)

    @classmethod
    def from_config(cls, config: SandboxConfig) -> Faults:
        return cls(
            latency_ms=config.latency_ms,
            token_ttl=config.token_ttl,
            rate_limit=config.rate_limit,
            jitter_ms=config.jitter_ms,
        )

    def reseed(self, seed: int | None) -> None:
        self.seed = seed
        self.rng.seed(seed)
        self.jitter_rng.seed(None if seed is None else f"jitter:{seed}")

    def delay_seconds(self) -> float:
        """The extra delay for one request."""
        jitter = self.jitter_rng.uniform(0, self.jitter_ms) if self.jitter_ms > 0 else 0.0
        return (self.latency_ms + jitter) / 1000

    def snapshot(self) -> dict[str, Any]:
        return {
            "latency_ms": self.latency_ms,
            "jitter_ms": self.jitter_ms,
            "error_rate": self.error_rate,
            "drop_rate": self.drop_rate,
            "rate_limit": self.rate_limit,
            "token_ttl": self.token_ttl,
            "dedupe": self.dedupe,
            "seed": self.seed,
            "token_error": self.token_error,
            "send_retry_after": self.send_retry_after,
        }


ROUTE_KEYS = (
    "POST /oauth/token",
    "GET /api/v3/gifts",
    "POST /api/v3/sends",
    "GET /api/v3/sends/{id}",
)


@dataclass
class Stats:
    requests: Counter[str] = field(default_factory=Counter)
    responses_by_status: Counter[str] = field(default_factory=Counter)
    token_requests: int = 0
    tokens_issued: int = 0
    errors: int = 0
    drops: int = 0
    rate_limited: int = 0

    def clear(self) -> None:
        # Cleared in place: the request middleware holds a reference to this object.
        self.__dict__.update(Stats().__dict__)

    def snapshot(self) -> dict[str, Any]:
        return {
            "requests": {key: self.requests[key] for key in ROUTE_KEYS},
            "token_requests": self.token_requests,
            "tokens_issued": self.tokens_issued,
            "responses_by_status": dict(sorted(self.responses_by_status.items())),
            "faults": {
                "errors": self.errors,
                "drops": self.drops,
                "rate_limited": self.rate_limited,
            },
        }
