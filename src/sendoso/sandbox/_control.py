"""A small client for the sandbox's ``/_sandbox/`` control endpoints.

Tests, the demo and fault-injection runs steer the sandbox through this one class instead of
each spelling out the control URLs.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any, Self

import httpx

__all__ = ["SandboxControl"]


class SandboxControl:
    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        self.url = url
        self._http = httpx.Client(base_url=url, timeout=timeout)

    def _json(self, response: httpx.Response) -> Any:
        response.raise_for_status()
        return response.json()

    def reset(self) -> None:
        """Forget every send, token, fault and stat; the clock returns to real time."""
        self._json(self._http.post("/_sandbox/reset"))

    def faults(self, **settings: Any) -> dict[str, Any]:
        """Change fault settings (``latency_ms``, ``error_rate``, ``drop_rate``,
        ``rate_limit``, ``token_ttl``, ``seed``, ``token_error``: the status the token
        endpoint answers, 0 off; ``send_retry_after``: every send answers 429 with this
        ``Retry-After``, 0 off); returns all of them."""
        result: dict[str, Any] = self._json(self._http.post("/_sandbox/faults", json=settings))
        return result

    def set_price(self, gift_id: str, price: str | None) -> dict[str, str]:
        """Charge ``price`` for ``gift_id`` from now on (in the catalog and for sends);
        ``None``: its catalog price again. Returns every changed price."""
        body = {"gift_id": gift_id, "price": price}
        result: dict[str, str] = self._json(self._http.post("/_sandbox/prices", json=body))[
            "prices"
        ]
        return result

    def clock(self) -> dict[str, Any]:
        """The virtual clock: ``now`` (ISO 8601 UTC), ``offset_seconds`` (how far it was
        advanced) and ``speed`` (times real time)."""
        result: dict[str, Any] = self._json(self._http.get("/_sandbox/clock"))
        return result

    def advance(self, seconds: float) -> dict[str, Any]:
        """Move the virtual clock forward; returns the new time, as :meth:`clock` does."""
        body = {"advance_seconds": seconds}
        result: dict[str, Any] = self._json(self._http.post("/_sandbox/clock", json=body))
        return result

    def hold(
        self, requests: int, *, endpoint: str | None = None, timeout_seconds: float = 20.0
    ) -> dict[str, Any]:
        """Hold the next ``requests`` API requests (to ``endpoint``, e.g.
        ``"POST /api/v3/sends"``, if given) until all of them are in flight together, then
        let them go on: concurrency a test can count on, where latency only makes it likely.
        If ``timeout_seconds`` pass first, the held requests get 503 and :meth:`hold_state`
        says ``timed_out``; :meth:`reset` answers them 503 too. Returns the hold's state."""
        body = {"requests": requests, "endpoint": endpoint, "timeout_seconds": timeout_seconds}
        result: dict[str, Any] = self._json(self._http.post("/_sandbox/hold", json=body))
        return result

    def release_hold(self) -> dict[str, Any]:
        """Let the requests held now go on, however many have arrived; returns the state."""
        result: dict[str, Any] = self._json(self._http.post("/_sandbox/hold/release"))
        return result

    def hold_state(self) -> dict[str, Any]:
        """``{"state", "requests", "arrived", "endpoint"}``; the state is ``off``,
        ``holding``, ``released``, ``timed_out`` or ``cleared`` (by a reset)."""
        result: dict[str, Any] = self._json(self._http.get("/_sandbox/hold"))
        return result

    def rotate_secret(self, client_secret: str) -> None:
        """Replace the client secret and revoke every token (until :meth:`reset`)."""
        self._json(self._http.post("/_sandbox/credentials", json={"client_secret": client_secret}))

    def sends(self) -> list[dict[str, Any]]:
        """Every send created, with its idempotency key and request body, oldest first."""
        sends: list[dict[str, Any]] = self._json(self._http.get("/_sandbox/sends"))["sends"]
        return sends

    def stats(self) -> dict[str, Any]:
        """Requests per endpoint, token requests, responses by status, faults injected."""
        stats: dict[str, Any] = self._json(self._http.get("/_sandbox/stats"))
        return stats

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
