"""ASGI pieces around the routes: per-request context headers, and a response cut short."""

from __future__ import annotations

import secrets
from collections.abc import Callable

from starlette.datastructures import MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sendoso.sandbox._replies import SCOPE_DROPPED, SCOPE_RATE_LIMIT, SCOPE_REQUEST_ID
from sendoso.sandbox._runtime import Stats

__all__ = ["CutResponse", "RequestContext"]


class RequestContext:
    """Gives every request an id (``X-Request-Id``), rate-limit headers, and status counts."""

    def __init__(self, app: ASGIApp, stats: Stats, dedupes: Callable[[], bool]) -> None:
        self.app = app
        self.stats = stats
        self.dedupes = dedupes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = "req_" + secrets.token_hex(12)
        scope[SCOPE_REQUEST_ID] = request_id
        path: str = scope.get("path", "")
        counted = not (path.startswith("/_sandbox/") or path == "/openapi.json")

        async def send_with_context(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["X-Request-Id"] = request_id
                # Tells the SDK it talks to a server that deduplicates on Idempotency-Key
                # (not said while the dedupe fault is off: that server would be lying).
                if self.dedupes():
                    headers["Sendoso-Sandbox"] = "1"
                limit = scope.get(SCOPE_RATE_LIMIT)
                if limit is not None:
                    headers["X-RateLimit-Limit"], headers["X-RateLimit-Remaining"] = limit
                if counted and not scope.get(SCOPE_DROPPED):
                    self.stats.responses_by_status[str(message["status"])] += 1
            await send(message)

        await self.app(scope, receive, send_with_context)


class CutResponse(Response):
    """Starts ``inner`` and hangs up half way through its body, as a flaky network would."""

    def __init__(self, inner: Response) -> None:
        super().__init__(content=inner.body, status_code=inner.status_code)
        self.raw_headers = list(inner.raw_headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope[SCOPE_DROPPED] = True
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        await send(
            {
                "type": "http.response.body",
                "body": bytes(self.body[: len(self.body) // 2]),
                "more_body": True,
            }
        )
        # Returning now, with Content-Length unmet, makes the server close the connection.
