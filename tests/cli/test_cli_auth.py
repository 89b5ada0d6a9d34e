"""Credentials: ``auth check``, profiles, precedence, the token cache and ``--verbose``."""

from __future__ import annotations

import logging
import stat
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from sendoso.cli import ExitCode

from ._support import FAKE_SECRET, Invoke, assert_no_secrets, cached_tokens, parse_json, token_dir


def test_auth_check_shows_expiry_and_never_the_token(cli: Invoke, env: Any) -> None:
    result = cli(["auth", "check"])
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert env.url in out
    assert "sandbox-client" in out
    assert "Bearer" in out
    assert "1 h 59 min" in out or "2 h" in out
    tokens = cached_tokens()
    assert len(tokens) == 1
    assert tokens[0] not in out

    as_json = parse_json(cli(["auth", "check", "--json"]))
    expires = datetime.fromisoformat(as_json["expires_at"].replace("Z", "+00:00"))
    assert expires.tzinfo is not None
    assert timedelta(minutes=115) < expires - datetime.now(UTC) <= timedelta(hours=2)
    assert 6900 < as_json["expires_in_seconds"] <= 7200
    assert as_json["base_url"] == env.url
    assert as_json["client_id"] == "sandbox-client"
    assert "access_token" not in as_json
    assert tokens[0] not in str(as_json)


def test_wrong_secret_is_an_api_error_that_never_shows_the_secret(
    cli: Invoke, env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SENDOSO_CLIENT_SECRET", FAKE_SECRET)
    result = cli(["auth", "check"])
    assert result.exit_code == ExitCode.API_ERROR
    assert "401" in result.stderr
    as_json = cli(["-v", "auth", "check", "--json"])
    assert parse_json(as_json)["error"]["type"] == "AuthenticationError"
    assert "POST /oauth/token -> 401" in as_json.stderr


def test_token_cache_file_is_private_and_reused(cli: Invoke, env: Any) -> None:
    assert cli(["gifts", "list", "--json"]).exit_code == 0
    files = list(token_dir().glob("*.json"))
    assert len(files) == 1
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    assert stat.S_IMODE(token_dir().stat().st_mode) & 0o077 == 0
    before = env.stats()["token_requests"]
    assert before == 1

    assert cli(["gifts", "list", "--category", "egift"]).exit_code == 0
    assert cli(["status", "snd_missing"]).exit_code == 1
    assert env.stats()["token_requests"] == before  # the cached token was reused


def test_auth_check_proves_the_credentials_even_with_a_cached_token(
    cli: Invoke, env: Any, monkeypatch: Any
) -> None:
    assert cli(["gifts", "list", "--json"]).exit_code == 0  # caches a token
    assert cli(["auth", "check"]).exit_code == 0
    assert env.stats()["token_requests"] == 2  # asked the server, not the cache
    monkeypatch.setenv("SENDOSO_CLIENT_SECRET", "rotated-away")
    result = cli(["auth", "check"])
    assert result.exit_code == 1
    assert "rotated-away" not in result.stdout + result.stderr
    # Nor does any other command use the token the old secret obtained.
    assert cli(["gifts", "list"]).exit_code == 1


def test_no_token_cache_neither_reads_nor_writes_it(cli: Invoke, env: Any) -> None:
    assert cli(["--no-token-cache", "auth", "check"]).exit_code == 0
    assert cli(["--no-token-cache", "auth", "check"]).exit_code == 0
    assert not token_dir().exists()
    assert env.stats()["token_requests"] == 2


def test_profiles_and_switching_between_them(
    cli: Invoke, sandbox: Any, write_config: Callable[..., Path]
) -> None:
    write_config(
        f"""
default_profile = "good"

[profiles.good]
base_url = "{sandbox.url}"
client_id = "sandbox-client"
client_secret = "sandbox-secret"

[profiles.other]
base_url = "{sandbox.url}"
client_id = "someone-else"
client_secret = "{FAKE_SECRET}"
"""
    )
    default = cli(["auth", "check", "--json"])
    assert default.exit_code == 0, default.stdout
    assert parse_json(default)["profile"] == "good"
    assert parse_json(default)["client_id"] == "sandbox-client"

    other = cli(["--profile", "other", "auth", "check", "--json"])
    assert other.exit_code == ExitCode.API_ERROR  # the sandbox does not know this client
    assert parse_json(other)["error"]["status"] == 401

    missing = cli(["--profile", "nope", "auth", "check"])
    assert missing.exit_code == ExitCode.USAGE
    assert "profile 'nope'" in missing.stderr
    assert "good, other" in missing.stderr


def test_flags_beat_environment_beat_profile(
    cli: Invoke, sandbox: Any, write_config: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(
        """
default_profile = "p"

[profiles.p]
base_url = "http://127.0.0.1:1"
client_id = "from-profile"
client_secret = "profile-secret"
"""
    )
    monkeypatch.setenv("SENDOSO_BASE_URL", sandbox.url)  # the environment beats the profile
    monkeypatch.setenv("SENDOSO_CLIENT_ID", "from-env")
    monkeypatch.setenv("SENDOSO_CLIENT_SECRET", "sandbox-secret")
    result = cli(["--client-id", "sandbox-client", "auth", "check", "--json"])  # flag beats env
    assert result.exit_code == 0, result.stdout
    assert parse_json(result)["client_id"] == "sandbox-client"
    assert parse_json(result)["base_url"] == sandbox.url


def test_a_host_from_one_place_and_a_secret_from_another_is_refused(
    cli: Invoke, sandbox: Any, write_config: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(
        """
default_profile = "production"

[profiles.production]
client_id = "prod-id"
client_secret = "prod-secret-value"
"""
    )
    # A leftover variable must not send the production secret to another host.
    monkeypatch.setenv("SENDOSO_BASE_URL", sandbox.url)
    result = cli(["auth", "check"])
    assert result.exit_code == ExitCode.USAGE
    assert "SENDOSO_* environment variables set base_url but no client secret" in result.stderr
    assert "prod-secret-value" not in result.stdout + result.stderr
    assert sandbox.stats()["token_requests"] == 0


def test_config_file_with_a_secret_readable_by_others_is_refused(
    cli: Invoke, sandbox: Any, write_config: Callable[..., Path]
) -> None:
    path = write_config(
        f"""
[profiles.team]
base_url = "{sandbox.url}"
client_id = "sandbox-client"
client_secret = "{FAKE_SECRET}"
""",
        0o644,
    )
    result = cli(["--profile", "team", "gifts", "list"])
    assert result.exit_code == ExitCode.USAGE
    assert f"chmod 600 {path}" in result.stderr
    assert sandbox.stats()["token_requests"] == 0

    as_json = cli(["--profile", "team", "gifts", "list", "--json"])
    assert as_json.exit_code == ExitCode.USAGE
    assert "chmod 600" in parse_json(as_json)["error"]["message"]


def test_verbose_logs_requests_without_token_or_secret(cli: Invoke, env: Any) -> None:
    handlers = list(logging.getLogger("sendoso").handlers)
    result = cli(["-v", "send", *_egift_args(), "--yes"])
    assert result.exit_code == 0, result.stderr
    log = result.stderr
    assert "POST /oauth/token -> 200" in log
    assert "GET /api/v3/gifts -> 200" in log
    assert "POST /api/v3/sends -> 201" in log
    assert "request id req_" in log
    assert "attempt 1" in log
    assert_no_secrets(result)
    assert "Bearer " not in log
    assert "Authorization" not in log
    # The handler is removed again when the command ends.
    assert logging.getLogger("sendoso").handlers == handlers

    quiet = cli(["send", *_egift_args(), "--yes"])
    assert "POST /api/v3/sends" not in quiet.stderr


def _egift_args() -> list[str]:
    from ._support import EGIFT

    return EGIFT[1:]


def test_a_refused_secret_says_what_to_check(
    cli: Invoke, env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 401 names what to look at: the client id, the secret, the host, the profile."""
    monkeypatch.setenv("SENDOSO_CLIENT_SECRET", FAKE_SECRET)
    result = cli(["gifts", "list"])
    assert result.exit_code == ExitCode.API_ERROR
    for what in ("client id", "client secret", "SENDOSO_BASE_URL", "--profile", env.url):
        assert what in result.stderr, what
