"""Shared fixtures: an isolated environment and one real sandbox server over real sockets."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sendoso import AsyncSendoso, Sendoso
from sendoso.sandbox import SandboxConfig, SandboxControl, SandboxServer

SANDBOX_CLIENT_ID = "sandbox-client"
SANDBOX_CLIENT_SECRET = "sandbox-secret"


@pytest.fixture(autouse=True)
def _isolated_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads the developer's config, credentials or token cache."""
    for name in (
        "SENDOSO_CLIENT_ID",
        "SENDOSO_CLIENT_SECRET",
        "SENDOSO_BASE_URL",
        "SENDOSO_PROFILE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SENDOSO_CONFIG", str(tmp_path / "config" / "config.toml"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config-home"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[SandboxServer]:
    server = SandboxServer(SandboxConfig(rate_limit=None), port=0)
    server.start()
    try:
        yield server
    finally:
        server.stop()


class Sandbox(SandboxControl):
    """The running sandbox, with its credentials and control endpoints at hand."""

    def __init__(self, server: SandboxServer) -> None:
        super().__init__(server.url)
        self.client_id = SANDBOX_CLIENT_ID
        self.client_secret = SANDBOX_CLIENT_SECRET

    def client(self, **options: Any) -> Sendoso:
        """An SDK client for this sandbox, with its credentials."""
        return Sendoso(**self._credentials(), **options)

    def async_client(self, **options: Any) -> AsyncSendoso:
        return AsyncSendoso(**self._credentials(), **options)

    def _credentials(self) -> dict[str, str]:
        return {
            "base_url": self.url,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
        }


@pytest.fixture
def sandbox(sandbox_server: SandboxServer) -> Iterator[Sandbox]:
    """The session's sandbox, reset (no sends, no faults, clock at now) for this test."""
    handle = Sandbox(sandbox_server)
    handle.reset()
    try:
        yield handle
    finally:
        handle.reset()
        handle.close()
