"""The ``/_sandbox/*`` control endpoints: faults, clock, credentials, hold, inspection, reset.

They steer and inspect a :class:`SandboxState`; tests, the demo and fault-injection runs reach
them through :class:`~sendoso.sandbox.SandboxControl`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, TypeGuard

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sendoso.errors import FieldProblem
from sendoso.sandbox._api import SandboxState
from sendoso.sandbox._catalog import find_gift
from sendoso.sandbox._lifecycle import LIFECYCLE, MAGIC
from sendoso.sandbox._prices import parse_price
from sendoso.sandbox._replies import Reply, error_reply, field_problem, parse_json, read_body

__all__ = ["Controls"]

#: Long enough for a busy machine to get its requests to the sandbox, and shorter than the
#: SDK's 30 s read timeout: a held request is answered before its client gives up and
#: retries (a retry would arrive as one more request and could open the barrier).
DEFAULT_HOLD_TIMEOUT = 20.0


class Controls:
    def __init__(self, sandbox: SandboxState) -> None:
        self.sandbox = sandbox

    async def get_faults(self, request: Request) -> Response:
        return JSONResponse(self.sandbox.faults.snapshot())

    async def rotate_credentials(self, request: Request) -> Response:
        """Someone rotated the client secret: every token is revoked, the old secret refused."""
        body = await self._control_body(request)
        secret = body.get("client_secret")
        if not isinstance(secret, str) or not secret:
            problem = field_problem("client_secret", "invalid", "client_secret must be a string")
            return error_reply(request, 400, "invalid_request", problem.message, [problem])
        self.sandbox.client_secret = secret
        self.sandbox.store.revoke_tokens()
        return JSONResponse({"rotated": True})

    async def set_faults(self, request: Request) -> Response:
        body = await self._control_body(request)
        problems: list[FieldProblem] = []
        updates: dict[str, Any] = {}
        for name, value in body.items():
            check = _FAULT_CHECKS.get(name)
            if check is None:
                problems.append(
                    field_problem(name, "unknown_field", f"{name} is not a fault setting")
                )
                continue
            message = check(value)
            if message:
                problems.append(field_problem(name, "invalid", f"{name} {message}"))
            else:
                updates[name] = value
        if problems:
            return error_reply(request, 400, "invalid_request", problems[0].message, problems)
        faults = self.sandbox.faults
        for name, value in updates.items():
            if name == "seed":
                faults.reseed(value)
            elif name == "dedupe":
                faults.dedupe = value
            elif name == "token_error":
                faults.token_error = value
            elif name == "rate_limit":
                faults.rate_limit = None if value is None else float(value)
                self.sandbox.bucket.set_rate(faults.rate_limit)
            else:
                setattr(faults, name, float(value))
        return JSONResponse(faults.snapshot())

    async def set_price(self, request: Request) -> Response:
        """``{"gift_id": ..., "price": "30.00"}`` (``null``: the catalog's price again)."""
        body = await self._control_body(request)
        gift_id, price = body.get("gift_id"), parse_price(body.get("price"))
        problems = [
            field_problem(name, "unknown_field", f"{name} is not a price setting")
            for name in sorted(set(body) - {"gift_id", "price"})
        ]
        if not isinstance(gift_id, str) or find_gift(gift_id) is None:
            problems.append(field_problem("gift_id", "invalid", "gift_id must name a gift"))
        if isinstance(price, str):
            problems.append(field_problem("price", "invalid", price))
        if problems:
            return error_reply(request, 400, "invalid_request", problems[0].message, problems)
        assert isinstance(gift_id, str)
        assert not isinstance(price, str)
        self.sandbox.prices.set(gift_id, price)
        return JSONResponse({"prices": self.sandbox.prices.snapshot()})

    async def get_clock(self, request: Request) -> Response:
        return JSONResponse(self.sandbox.clock.snapshot())

    async def advance_clock(self, request: Request) -> Response:
        body = await self._control_body(request)
        seconds = body.get("advance_seconds")
        unknown = sorted(set(body) - {"advance_seconds"})
        if unknown or not _is_number(seconds) or not 0 <= seconds <= 10 * 365 * 86400:
            message = (
                "send {'advance_seconds': N} with 0 <= N <= 315360000; the clock only moves forward"
            )
            return error_reply(
                request,
                400,
                "invalid_request",
                message,
                [field_problem("advance_seconds", "invalid", message)],
            )
        self.sandbox.clock.advance(float(seconds))
        return JSONResponse(self.sandbox.clock.snapshot())

    async def list_sends(self, request: Request) -> Response:
        sends = []
        for send in self.sandbox.store.list_sends():
            item = self.sandbox.send_json(self.sandbox.progress(send))
            item["idempotency_key"] = send.idempotency_key
            item["request_body"] = send.request_body
            sends.append(item)
        return JSONResponse({"sends": sends})

    async def get_stats(self, request: Request) -> Response:
        return JSONResponse(self.sandbox.stats.snapshot())

    async def reset_all(self, request: Request) -> Response:
        self.sandbox.reset()
        return JSONResponse({"reset": True, "clock": self.sandbox.clock.snapshot()})

    async def magic(self, request: Request) -> Response:
        return JSONResponse({"magic": MAGIC, "lifecycle": LIFECYCLE})

    async def _control_body(self, request: Request) -> dict[str, Any]:
        raw = await read_body(
            request, lambda: error_reply(request, 413, "payload_too_large", "body too large")
        )
        if not raw.strip():
            return {}
        body, problem = parse_json(raw)
        if problem is None and not isinstance(body, dict):
            problem = "the body must be a JSON object"
        if problem is not None:
            raise Reply(
                error_reply(
                    request,
                    400,
                    "invalid_request",
                    problem,
                    [field_problem("body", "invalid", problem)],
                )
            )
        assert isinstance(body, dict)
        return body

    async def get_hold(self, request: Request) -> Response:
        return JSONResponse(self.sandbox.hold.snapshot())

    async def release_hold(self, request: Request) -> Response:
        self.sandbox.hold.release()
        return JSONResponse(self.sandbox.hold.snapshot())

    async def arm_hold(self, request: Request) -> Response:
        """Hold the next N API requests until all N are in flight (see ``_hold``)."""
        body = await self._control_body(request)
        requests = body.get("requests")
        timeout = body.get("timeout_seconds", DEFAULT_HOLD_TIMEOUT)
        endpoint = body.get("endpoint")
        unknown = sorted(set(body) - {"requests", "timeout_seconds", "endpoint"})
        problems = [
            field_problem(name, "unknown_field", f"{name} is not a hold setting")
            for name in unknown
        ]
        if not isinstance(requests, int) or isinstance(requests, bool):
            problems.append(field_problem("requests", "invalid", "requests must be an integer"))
        elif not _is_number(timeout):
            message = "timeout_seconds must be a number"
            problems.append(field_problem("timeout_seconds", "invalid", message))
        elif endpoint is not None and not isinstance(endpoint, str):
            problems.append(field_problem("endpoint", "invalid", "endpoint must be a string"))
        elif not problems:
            try:
                self.sandbox.hold.arm(requests, float(timeout), endpoint)
            except ValueError as exc:  # out of range; the message starts with the field's name
                message = str(exc)
                problems.append(field_problem(message.split(" ", 1)[0], "invalid", message))
        if problems:
            return error_reply(request, 400, "invalid_request", problems[0].message, problems)
        return JSONResponse(self.sandbox.hold.snapshot())


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _check_rate(value: Any) -> str | None:
    return None if _is_number(value) and 0 <= value <= 1 else "must be a number from 0 to 1"


def _check_latency(value: Any) -> str | None:
    ok = _is_number(value) and 0 <= value <= 120_000
    return None if ok else "must be a number of milliseconds from 0 to 120000"


def _check_rate_limit(value: Any) -> str | None:
    ok = value is None or (_is_number(value) and value > 0)
    return None if ok else "must be a positive number of requests/s, or null for unlimited"


def _check_ttl(value: Any) -> str | None:
    return None if _is_number(value) and value > 0 else "must be a positive number of seconds"


def _check_bool(value: Any) -> str | None:
    return None if isinstance(value, bool) else "must be true or false"


def _check_token_error(value: Any) -> str | None:
    ok = (
        isinstance(value, int)
        and not isinstance(value, bool)
        and (value == 0 or 500 <= value <= 599)
    )
    return None if ok else "must be an HTTP status from 500 to 599, or 0 for off"


def _check_retry_after(value: Any) -> str | None:
    ok = _is_number(value) and 0 <= value <= 86400
    return None if ok else "must be a number of seconds from 0 to 86400 (0: off)"


def _check_seed(value: Any) -> str | None:
    ok = value is None or (isinstance(value, int) and not isinstance(value, bool))
    return None if ok else "must be an integer or null"


_FAULT_CHECKS: dict[str, Callable[[Any], str | None]] = {
    "latency_ms": _check_latency,
    "jitter_ms": _check_latency,
    "error_rate": _check_rate,
    "drop_rate": _check_rate,
    "rate_limit": _check_rate_limit,
    "token_ttl": _check_ttl,
    "dedupe": _check_bool,
    "seed": _check_seed,
    "token_error": _check_token_error,
    "send_retry_after": _check_retry_after,
}
