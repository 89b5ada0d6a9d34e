"""Run the real CLI (typer's CliRunner) against the real sandbox, and scan every output for
secrets."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from sendoso.cli import app
from sendoso.cli._redact import forget_secrets

from ._support import Invoke, assert_no_secrets


@pytest.fixture(autouse=True)
def _forget_remembered_secrets() -> Iterator[None]:
    yield
    forget_secrets()


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def cli(runner: CliRunner) -> Invoke:
    """Invoke ``sendoso ARGS``; asserts no secret or traceback appears in its output."""

    def invoke(
        args: Sequence[str], *, input: str | None = None, check_secrets: bool = True
    ) -> Result:
        result = runner.invoke(app, list(args), input=input)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        if check_secrets:
            assert_no_secrets(result)
        return result

    return invoke


@pytest.fixture
def env(sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Credentials for the sandbox in the environment, as a user would export them."""
    monkeypatch.setenv("SENDOSO_BASE_URL", sandbox.url)
    monkeypatch.setenv("SENDOSO_CLIENT_ID", sandbox.client_id)
    monkeypatch.setenv("SENDOSO_CLIENT_SECRET", sandbox.client_secret)
    return sandbox


@pytest.fixture
def write_config() -> Callable[[str, int], Path]:
    """Write the config file ``$SENDOSO_CONFIG`` points at, with the given mode."""

    def write(content: str, mode: int = 0o600) -> Path:
        path = Path(os.environ["SENDOSO_CONFIG"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
        path.chmod(mode)
        assert stat.S_IMODE(path.stat().st_mode) == mode
        return path

    return write
