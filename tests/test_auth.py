"""The token cache kept between CLI invocations."""

from __future__ import annotations

import stat
import time
from pathlib import Path

from pydantic import SecretStr
from tests.conftest import Sandbox

from sendoso import FileTokenCache
from sendoso._auth import AccessToken, cache_key


def test_cache_file_is_private_and_named_without_secrets(tmp_path: Path) -> None:
    cache = FileTokenCache(tmp_path / "tokens")
    key = "https://app.sendoso.com|my-client-id"
    cache.save(key, AccessToken(value="tok-123", expires_at=time.time() + 60, lifetime=60))
    (path,) = (tmp_path / "tokens").iterdir()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "my-client-id" not in path.name
    loaded = cache.load(key)
    assert loaded is not None
    assert loaded.value == "tok-123"
    assert "tok-123" not in repr(loaded)


def test_corrupt_cache_is_ignored(tmp_path: Path) -> None:
    cache = FileTokenCache(tmp_path)
    cache.path_for("k").write_text("{not json")
    assert cache.load("k") is None


def test_a_second_client_reuses_the_cached_token(sandbox: Sandbox, tmp_path: Path) -> None:
    cache = FileTokenCache(tmp_path / "tokens")
    for _ in range(3):
        with sandbox.client(token_cache=cache) as client:
            client.gifts.list(category="donation")
    assert sandbox.stats()["token_requests"] == 1


def test_a_cached_token_the_server_refuses_is_replaced(sandbox: Sandbox, tmp_path: Path) -> None:
    cache = FileTokenCache(tmp_path / "tokens")
    key = cache_key(sandbox.url, sandbox.client_id, SecretStr(sandbox.client_secret))
    cache.save(key, AccessToken(value="revoked", expires_at=time.time() + 3600, lifetime=7200))
    with sandbox.client(token_cache=cache) as client:
        assert client.gifts.list(category="donation")
    fresh = cache.load(key)
    assert fresh is not None
    assert fresh.value != "revoked"
