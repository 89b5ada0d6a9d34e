"""Helpers shared by the CLI tests."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import platformdirs
from typer.testing import Result

#: Never a real credential; tests put it where a secret would be and check it never shows.
FAKE_SECRET = "fake-Sup3rS3cret-8c1d7e"
SANDBOX_SECRET = "sandbox-secret"

#: A complete, valid `sendoso send` for an eGift (add --yes, --json, ...).
EGIFT = [
    "send",
    "--gift-id",
    "gft_egift_amazon_us_25",
    "--first-name",
    "Ada",
    "--last-name",
    "Lovelace",
    "--email",
    "ada@example.com",
    "--message",
    "Thank you for your time!",
]


def token_dir() -> Path:
    return Path(platformdirs.user_cache_dir("sendoso")) / "tokens"


def cached_tokens() -> list[str]:
    """Every access token the CLI has cached so far (to check none is ever printed)."""
    tokens = []
    directory = token_dir()
    if directory.is_dir():
        for path in directory.glob("*.json"):
            tokens.append(json.loads(path.read_text("utf-8"))["access_token"])
    return tokens


def assert_no_secrets(result: Result, *extra: str) -> None:
    shown = result.stdout + result.stderr
    for secret in (FAKE_SECRET, SANDBOX_SECRET, *cached_tokens(), *extra):
        assert secret not in shown, f"a secret leaked into the output: {secret[:4]}..."
    assert "Traceback" not in shown


class Invoke(Protocol):
    def __call__(
        self, args: Sequence[str], *, input: str | None = None, check_secrets: bool = True
    ) -> Result: ...


def parse_json(result: Result) -> Any:
    """stdout must be exactly one JSON document."""
    return json.loads(result.stdout)
