"""How the sandbox answers when something is wrong, and how it reads a request body.

Every endpoint, public or control, renders its errors here, so they share one shape:
``{"error": {"type", "message", "details", "request_id"}}`` (OAuth errors keep RFC 6749's).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from sendoso.errors import FieldProblem

__all__ = [
    "MAX_BODY_BYTES",
    "REALM",
    "SCOPE_DROPPED",
    "SCOPE_RATE_LIMIT",
    "SCOPE_REQUEST_ID",
    "Reply",
    "dumps",
    "error_body",
    "error_reply",
    "field_problem",
    "format_rate",
    "http_exception",
    "oauth_error",
    "parse_json",
    "read_body",
    "reply",
]

MAX_BODY_BYTES = 1024 * 1024
REALM = "sendoso-sandbox"

SCOPE_REQUEST_ID = "sandbox.request_id"
SCOPE_RATE_LIMIT = "sandbox.rate_limit"
SCOPE_DROPPED = "sandbox.dropped"


class Reply(Exception):
    """Ends a handler early with ``response`` (an error reply from a helper)."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def request_id(request: Request) -> str:
    return str(request.scope.get(SCOPE_REQUEST_ID, ""))


def field_problem(field: str, code: str, message: str) -> FieldProblem:
    return FieldProblem(field=field, code=code, message=message)


def error_reply(
    request: Request,
    status: int,
    error_type: str,
    message: str,
    details: Sequence[FieldProblem] = (),
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(
        {"error": error_body(request, error_type, message, details)},
        status_code=status,
        headers=headers,
    )


def error_body(
    request: Request, error_type: str, message: str, details: Sequence[FieldProblem] = ()
) -> dict[str, Any]:
    return {
        "type": error_type,
        "message": message,
        "details": [asdict(d) for d in details],
        "request_id": request_id(request),
    }


def oauth_error(
    status: int, error: str, description: str, *, basic_used: bool = False
) -> JSONResponse:
    headers = {"Cache-Control": "no-store", "Pragma": "no-cache"}
    if status == 401 and basic_used:
        # RFC 6749 §5.2: a failed Authorization-header authentication names the scheme to use.
        headers["WWW-Authenticate"] = f'Basic realm="{REALM}", charset="UTF-8"'
    return JSONResponse(
        {"error": error, "error_description": description}, status_code=status, headers=headers
    )


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_json(raw: bytes) -> tuple[Any, str | None]:
    """``(value, None)`` or ``(None, what is wrong)``; never raises on bad input."""
    if not raw.strip():
        return None, "the request body is empty; send a JSON object"
    try:
        value = json.loads(raw, parse_constant=_reject_constant)
        # Lone surrogates parse but cannot be stored or echoed as UTF-8.
        dumps(value).encode("utf-8")
    except UnicodeError:
        return None, "the request body is not valid UTF-8 JSON"
    except RecursionError:
        return None, "the request body is nested too deeply"
    except ValueError as exc:
        return None, f"the request body is not valid JSON: {exc}"
    return value, None


async def read_body(request: Request, too_large: Callable[[], Response]) -> bytes:
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_BODY_BYTES:
        raise Reply(too_large())
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY_BYTES:
                raise Reply(too_large())
    except ClientDisconnect:
        # Nobody is listening for the answer; this one merely ends the handler quietly.
        raise Reply(Response(status_code=400)) from None
    return bytes(body)


def format_rate(rate: float) -> str:
    return str(int(rate)) if rate == int(rate) else f"{rate:g}"


def http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        allowed = (exc.headers or {}).get("Allow", "")
        return error_reply(
            request,
            405,
            "method_not_allowed",
            f"{request.method} is not allowed on {request.url.path}; allowed: {allowed}",
            headers=exc.headers,
        )
    if exc.status_code == 404:
        return error_reply(
            request, 404, "not_found", f"no such endpoint: {request.method} {request.url.path}"
        )
    return error_reply(request, exc.status_code, "http_error", str(exc.detail), headers=exc.headers)


def reply(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Reply)
    return exc.response
