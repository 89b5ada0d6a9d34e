"""Fixtures: `sendoso mcp` processes against the session's sandbox, sharing one home."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
from tests.mcp._support import Ledgers, McpAgent, server_env, start_agent

from sendoso.sandbox import SandboxServer


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def agent_factory(
    sandbox_server: SandboxServer, home: Path
) -> Callable[..., AbstractContextManager[McpAgent]]:
    """Start `sendoso mcp ARGS` processes sharing one home (so one ledger)."""

    def start(
        *args: str, extra_env: dict[str, str] | None = None
    ) -> AbstractContextManager[McpAgent]:
        env = server_env(sandbox_server.url, home) | (extra_env or {})
        return start_agent(env, *args, stderr=home / "stderr.log")

    return start


@pytest.fixture
def ledgers(sandbox_server: SandboxServer, home: Path) -> Ledgers:
    return Ledgers(server_env(sandbox_server.url, home), sandbox_server.url)
