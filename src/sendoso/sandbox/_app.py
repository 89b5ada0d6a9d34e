"""The sandbox as an ASGI app: the public endpoints of the original spec's contract (which
the code calls the ``seed`` dialect) plus the ``/_sandbox/*`` controls.

The public endpoints and the state they share live in ``_api``, the controls in
``_control_endpoints``, error rendering in ``_replies``, per-request headers in ``_middleware``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sendoso.sandbox._api import SandboxState
from sendoso.sandbox._config import SandboxConfig
from sendoso.sandbox._control_endpoints import Controls
from sendoso.sandbox._middleware import RequestContext
from sendoso.sandbox._replies import Reply, http_exception, reply

__all__ = ["create_app"]

_Endpoint = Callable[[Request], Awaitable[Response]]


def create_app(config: SandboxConfig | None = None) -> Starlette:
    """The sandbox as an ASGI app; ``app.state.sandbox`` holds its state (for tests)."""
    sandbox = SandboxState(config or SandboxConfig())
    controls = Controls(sandbox)
    routes: list[tuple[str, _Endpoint, str, str]] = [
        ("/oauth/token", sandbox.token, "POST", "token"),
        ("/api/v3/gifts", sandbox.list_gifts, "GET", "list_gifts"),
        ("/api/v3/sends", sandbox.create_send, "POST", "create_send"),
        ("/api/v3/sends/{send_id}", sandbox.get_send, "GET", "get_send"),
        ("/openapi.json", sandbox.openapi_json, "GET", "openapi"),
        ("/_sandbox/faults", controls.get_faults, "GET", "get_faults"),
        ("/_sandbox/faults", controls.set_faults, "POST", "set_faults"),
        ("/_sandbox/prices", controls.set_price, "POST", "set_price"),
        ("/_sandbox/clock", controls.get_clock, "GET", "get_clock"),
        ("/_sandbox/clock", controls.advance_clock, "POST", "advance_clock"),
        ("/_sandbox/hold", controls.get_hold, "GET", "get_hold"),
        ("/_sandbox/hold", controls.arm_hold, "POST", "arm_hold"),
        ("/_sandbox/hold/release", controls.release_hold, "POST", "release_hold"),
        ("/_sandbox/sends", controls.list_sends, "GET", "sandbox_sends"),
        ("/_sandbox/stats", controls.get_stats, "GET", "stats"),
        ("/_sandbox/credentials", controls.rotate_credentials, "POST", "rotate_credentials"),
        ("/_sandbox/reset", controls.reset_all, "POST", "reset"),
        ("/_sandbox/magic", controls.magic, "GET", "magic"),
    ]
    app = Starlette(
        routes=[Route(path, fn, methods=[method], name=name) for path, fn, method, name in routes],
        middleware=[
            Middleware(RequestContext, stats=sandbox.stats, dedupes=lambda: sandbox.faults.dedupe)
        ],
        exception_handlers={HTTPException: http_exception, Reply: reply},
    )
    app.state.sandbox = sandbox
    return app
