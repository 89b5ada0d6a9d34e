"""``sendoso mcp``: the toolkit as Model Context Protocol tools for AI agents, within limits
a person sets (:class:`Guardrails`), every send recorded once in the batch ledger.

:class:`SendDesk` is the library (no protocol code); :func:`build_server`, :func:`serve_stdio`
and :func:`serve_http` put it on the official ``mcp`` SDK, which is imported only when one of
them is first used, so that ``sendoso approvals`` and ``sendoso --help`` do not pay for it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from sendoso._extras import require_extra

require_extra("mcp", "mcp", "sqlalchemy")

from sendoso.mcp._desk import (
    MCP_SOURCE,
    Refusal,
    SendDesk,
    SendView,
    mcp_run_id,
    send_key_for_request,
)
from sendoso.mcp._guardrails import ENV_NAMES, Guardrails, load_guardrails

if TYPE_CHECKING:
    from sendoso.mcp._server import build_server, check_http_host, serve_http, serve_stdio

__all__ = [
    "ENV_NAMES",
    "MCP_SOURCE",
    "Guardrails",
    "Refusal",
    "SendDesk",
    "SendView",
    "build_server",
    "check_http_host",
    "load_guardrails",
    "mcp_run_id",
    "send_key_for_request",
    "serve_http",
    "serve_stdio",
]

_LAZY = {"build_server", "check_http_host", "serve_http", "serve_stdio"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module("sendoso.mcp._server"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
