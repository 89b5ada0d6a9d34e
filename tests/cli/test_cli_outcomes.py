"""Sends whose outcome the network leaves in doubt: never a blind re-send, always the key."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sendoso.cli import ExitCode

from ._support import EGIFT, Invoke, parse_json


@pytest.fixture
def untrusted(sandbox: Any, write_config: Callable[..., Path]) -> Any:
    """A profile that, like the production host, does not trust the server to deduplicate."""
    write_config(
        f"""
default_profile = "untrusted"

[profiles.untrusted]
base_url = "{sandbox.url}"
client_id = "{sandbox.client_id}"
client_secret = "{sandbox.client_secret}"
trust_idempotency = false
"""
    )
    return sandbox


def test_server_error_on_send_is_ambiguous_exit_3_with_the_key(cli: Invoke, untrusted: Any) -> None:
    untrusted.faults(error_rate=1.0)
    result = cli([*EGIFT, "--yes", "--idempotency-key", "retry-me-1"])
    assert result.exit_code == ExitCode.AMBIGUOUS
    assert "Outcome unknown" in result.stderr
    assert "retry-me-1" in result.stderr
    assert "Do not re-run it as it is" in result.stderr  # the key protects nothing here
    assert untrusted.stats()["requests"]["POST /api/v3/sends"] == 1  # never re-sent blindly


def test_cut_reply_is_ambiguous_and_the_printed_key_identifies_the_send(
    cli: Invoke, untrusted: Any
) -> None:
    untrusted.faults(drop_rate=1.0)
    result = cli([*EGIFT, "--yes", "--json"])
    assert result.exit_code == ExitCode.AMBIGUOUS
    error = parse_json(result)["error"]
    assert error["type"] == "AmbiguousSendError"
    assert error["exit_code"] == 3
    sends = untrusted.sends()
    assert len(sends) == 1  # it did happen, and the key says which one
    assert sends[0]["idempotency_key"] == error["idempotency_key"]

    # Retrying with the same key (now that the network is fine) settles it without a 2nd send.
    untrusted.faults(drop_rate=0.0)
    retry = cli([*EGIFT, "--yes", "--json", "--idempotency-key", error["idempotency_key"]])
    assert retry.exit_code == 0
    assert parse_json(retry)["send"]["id"] == sends[0]["id"]
    assert len(untrusted.sends()) == 1


def test_trusted_sandbox_retries_a_cut_reply_with_the_same_key(cli: Invoke, env: Any) -> None:
    # The CLI's default trust: a loopback sandbox deduplicates, so the SDK retries safely.
    env.faults(drop_rate=1.0)  # replays of a stored outcome are not dropped
    result = cli([*EGIFT, "--yes", "--json"])
    assert result.exit_code == 0, result.stdout
    sends = env.sends()
    assert len(sends) == 1
    assert parse_json(result)["send"]["id"] == sends[0]["id"]
    assert env.stats()["requests"]["POST /api/v3/sends"] == 2
