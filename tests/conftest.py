"""Shared fixtures: an isolated environment and one real sandbox server over real sockets."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests._postgres import (
    ENV_REQUIRE,
    ENV_URL,
    PostgresUnavailable,
    PrivateCluster,
    check_server,
    postgres_required,
    temporary_database,
)

from sendoso import AsyncSendoso, Sendoso
from sendoso.sandbox import SandboxConfig, SandboxControl, SandboxServer

SANDBOX_CLIENT_ID = "sandbox-client"
SANDBOX_CLIENT_SECRET = "sandbox-secret"


def wait_until(condition: Callable[[], bool], what: str) -> None:
    """Polls until ``condition()`` holds: a test waits for an event, never for a time. The
    bound (about 30 s) only fails a test whose event never comes, naming ``what``."""
    for _ in range(3000):
        if condition():
            return
        time.sleep(0.01)
    pytest.fail(f"gave up waiting: {what}")


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
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))


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
        return Sendoso(
            base_url=self.url,
            client_id=self.client_id,
            client_secret=self.client_secret,
            **options,
        )

    def async_client(self, **options: Any) -> AsyncSendoso:
        return AsyncSendoso(
            base_url=self.url,
            client_id=self.client_id,
            client_secret=self.client_secret,
            **options,
        )


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


# --- PostgreSQL, here so that every test package shares one throwaway cluster ---
# For the ledger (batch, MCP) and chaos tests:
#
# - `postgres_server_url` (session): a server URL whose role may create databases, from
#   `SENDOSO_TEST_POSTGRES_URL`, else a private throwaway cluster started here and stopped at the
#   end of the session. Neither possible: the tests fail if `SENDOSO_REQUIRE_POSTGRES=1`, else
#   they are skipped with the reason.
# - `postgres_url`: a fresh, empty, uniquely named database for one test, dropped afterwards.
# - `ledger_url`: each test runs twice, on `sqlite:///…/ledger.db` and on a fresh `postgres_url`;
#   the SQLite run never needs PostgreSQL (`-k "not postgres"` deselects every PostgreSQL test).
#
# All URLs are SQLAlchemy URL strings (`postgresql+psycopg://…`).


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    configured = os.environ.get(ENV_URL, "").strip()
    if configured:
        try:
            check_server(configured)
        except PostgresUnavailable as exc:
            problem = str(exc)
        else:
            yield configured
            return
        # Named explicitly, so not working is a failure rather than a reason to skip.
        pytest.fail(f"{ENV_URL} is set but unusable: {problem}", pytrace=False)
    try:
        cluster = PrivateCluster.start()
    except PostgresUnavailable as exc:
        reason = f"no PostgreSQL: {ENV_URL} is not set and no private cluster could start: {exc}"
    else:
        try:
            yield cluster.url
        finally:
            cluster.stop()
        return
    if postgres_required():
        pytest.fail(f"{ENV_REQUIRE}=1 but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def postgres_url(postgres_server_url: str) -> Iterator[str]:
    with temporary_database(postgres_server_url) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/ledger.db"
    url: str = request.getfixturevalue("postgres_url")
    return url
