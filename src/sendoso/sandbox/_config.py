"""Settings a sandbox starts with; faults can change most of them at run time."""

from __future__ import annotations

import math
from dataclasses import dataclass

from sendoso._well_known import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET

__all__ = ["MAX_SPEED", "SandboxConfig"]

#: Fastest the virtual clock may run: an hour a second, so a gift is delivered (72 h) in just over
#: a minute. Tokens expire on the same clock, and a default two-hour token then lasts two real
#: seconds (the SDK renews it on the 401); much faster, a token could lapse between being
#: issued and being used.
MAX_SPEED = 3600.0


@dataclass(frozen=True)
class SandboxConfig:
    """How a sandbox starts.

    ``rate_limit`` is in requests per second on ``/api/v3/*`` (``None``: unlimited);
    ``token_ttl`` is in seconds of the sandbox's virtual clock; ``latency_ms`` plus a uniform
    draw from ``[0, jitter_ms]`` delays every API request; ``db`` is an SQLite file that
    keeps sends across restarts (``None``: in memory, forgotten when the sandbox stops);
    ``speed`` is how many times faster than real time the virtual clock runs (1: real time).
    """

    client_id: str = SANDBOX_CLIENT_ID
    client_secret: str = SANDBOX_CLIENT_SECRET
    token_ttl: float = 7200
    rate_limit: float | None = 10.0
    latency_ms: float = 0
    jitter_ms: float = 0
    db: str | None = None
    speed: float = 1.0

    def __post_init__(self) -> None:
        if not self.client_id or not self.client_secret:
            raise ValueError("client_id and client_secret must not be empty")
        if not (math.isfinite(self.token_ttl) and self.token_ttl > 0):
            raise ValueError(
                f"token_ttl must be a positive number of seconds, not {self.token_ttl}"
            )
        if self.rate_limit is not None and not (
            math.isfinite(self.rate_limit) and self.rate_limit > 0
        ):
            raise ValueError(
                f"rate_limit must be positive (requests/s) or None, not {self.rate_limit}"
            )
        if not (math.isfinite(self.latency_ms) and self.latency_ms >= 0):
            raise ValueError(f"latency_ms must be >= 0, not {self.latency_ms}")
        if not (math.isfinite(self.jitter_ms) and self.jitter_ms >= 0):
            raise ValueError(f"jitter_ms must be >= 0, not {self.jitter_ms}")
        if not (math.isfinite(self.speed) and 0 < self.speed <= MAX_SPEED):
            raise ValueError(
                f"speed must be more than 0 and at most {MAX_SPEED:g} (times real time), "
                f"not {self.speed}"
            )
