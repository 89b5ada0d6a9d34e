"""Helpers to run the real `sendoso mcp` as a subprocess against the session's sandbox and
drive it with the official `mcp` client (ClientSession over stdio, or streamable HTTP).

`McpAgent` wraps a client session running in a background event loop (an anyio blocking
portal) so that tests read as plain calls, and a server can live for a whole module.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import anyio.from_thread
from mcp.client import Transport
from mcp.types import CallToolResult, Tool
from tests.conftest import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET

from mcp import ClientSession, StdioServerParameters, stdio_client
from sendoso.ledger import Ledger
from sendoso.mcp import mcp_run_id, send_key_for_request
from sendoso.sandbox import SandboxControl

#: The console script of this venv (the real CLI, as an MCP client would start it).
SENDOSO = str(Path(sys.executable).with_name("sendoso"))
EGIFT = "gft_egift_amazon_us_25"
ADA = {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com"}


def server_env(sandbox_url: str, home: Path) -> dict[str, str]:
    """The environment of a `sendoso mcp` process: the sandbox's credentials, and every
    user directory (config, cache, data, the ledger) inside ``home``."""
    home.mkdir(parents=True, exist_ok=True)
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "SENDOSO_BASE_URL": sandbox_url,
        "SENDOSO_CLIENT_ID": SANDBOX_CLIENT_ID,
        "SENDOSO_CLIENT_SECRET": SANDBOX_CLIENT_SECRET,
        "SENDOSO_CONFIG": str(home / "config.toml"),
        "SENDOSO_LEDGER": f"sqlite:///{home / 'ledger.db'}",
        "XDG_CACHE_HOME": str(home / "cache"),
        "XDG_CONFIG_HOME": str(home / "config-home"),
        "XDG_DATA_HOME": str(home / "data"),
    }


class McpAgent:
    """An MCP client session with one `sendoso mcp` process, called synchronously."""

    def __init__(self, portal: Any, session: ClientSession, stderr: Path) -> None:
        self._portal = portal
        self.session = session
        self.stderr = stderr

    def tools(self) -> list[Tool]:
        return self._portal.call(self.session.list_tools).tools  # type: ignore[no-any-return]

    def call(self, name: str, **arguments: Any) -> CallToolResult:
        async def call() -> CallToolResult:
            result = await self.session.call_tool(name, arguments)
            assert isinstance(result, CallToolResult)
            return result

        return self._portal.call(call)  # type: ignore[no-any-return]

    def start(self, name: str, **arguments: Any) -> Future[Any]:
        """Call a tool without waiting for its answer."""
        return self._portal.start_task_soon(self.session.call_tool, name, arguments)  # type: ignore[no-any-return]

    def ok(self, name: str, **arguments: Any) -> dict[str, Any]:
        """The structured result of a call that must succeed."""
        result = self.call(name, **arguments)
        assert not result.is_error, error_text(result)
        assert isinstance(result.structured_content, dict)
        # The text block carries the same data, for clients that only show text.
        assert json.loads(result.content[0].text) == result.structured_content  # type: ignore[union-attr]
        return result.structured_content

    def refused(self, name: str, **arguments: Any) -> str:
        """The error text of a call that must be a tool error."""
        result = self.call(name, **arguments)
        assert result.is_error, f"expected a tool error, got {result.structured_content}"
        return error_text(result)


def error_text(result: CallToolResult) -> str:
    return " ".join(getattr(block, "text", "") for block in result.content)


@contextmanager
def session_over(transport: Callable[[], Transport], stderr: Path) -> Iterator[McpAgent]:
    """An initialised ClientSession over ``transport()`` (an async context manager yielding
    the read and write streams), run in a background event loop."""
    with anyio.from_thread.start_blocking_portal() as portal, ExitStack() as stack:
        read, write = stack.enter_context(portal.wrap_async_context_manager(transport()))
        session = stack.enter_context(portal.wrap_async_context_manager(ClientSession(read, write)))
        portal.call(session.initialize)
        yield McpAgent(portal, session, stderr)


@contextmanager
def start_agent(env: dict[str, str], *args: str, stderr: Path) -> Iterator[McpAgent]:
    """`sendoso mcp ARGS` over stdio."""
    params = StdioServerParameters(command=SENDOSO, args=["mcp", *args], env=env)
    with (
        stderr.open("a", encoding="utf-8") as errlog,
        session_over(lambda: stdio_client(params, errlog=errlog), stderr) as agent,
    ):
        yield agent


class Ledgers:
    """Read-only looks at a server's ledger and the sandbox's own record of sends."""

    def __init__(self, env: dict[str, str], sandbox_url: str) -> None:
        self.url = env["SENDOSO_LEDGER"]
        self.sandbox_url = sandbox_url
        self.run_id = mcp_run_id(sandbox_url)

    def open(self) -> Ledger:
        return Ledger(self.url)

    def sandbox_sends_for(self, request_id: str) -> list[dict[str, Any]]:
        key = send_key_for_request(request_id, self.sandbox_url)
        with SandboxControl(self.sandbox_url) as control:
            return [s for s in control.sends() if s.get("idempotency_key") == key]


def names(tools: Sequence[Tool]) -> list[str]:
    return sorted(t.name for t in tools)
