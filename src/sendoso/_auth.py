"""The OAuth 2.0 client-credentials token: obtained lazily, refreshed before it expires.

Hand-written rather than delegated to an OAuth library because the seed contract's token
endpoint (docs/architecture.md, section 5) takes a JSON body (standard clients send a form), and
because one token request must serve every concurrent caller of both the sync and the async
client. This module holds the state and the rules; the clients hold the lock and do the I/O.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import httpx
from pydantic import SecretStr

from sendoso._http import BearerToken, Call, response_json
from sendoso._profile import HostProfile
from sendoso.errors import ResponseParseError

__all__ = ["AccessToken", "FileTokenCache", "TokenCache", "TokenInfo", "TokenManager"]

_TOKEN_CHARS = re.compile(r"[\x21-\x7e]+")
_MAX_TOKEN_LENGTH = 8192
_MAX_TOKEN_TTL = 366 * 86400.0


@dataclass(frozen=True)
class AccessToken:
    value: str = field(repr=False)
    #: Wall-clock epoch seconds, so that a cached token means the same in another process.
    expires_at: float
    token_type: str = "Bearer"
    lifetime: float = 7200.0

    def usable_at(self, now: float) -> bool:
        # Refresh five minutes before a two-hour token expires, or a tenth of the lifetime
        # before for short ones (the sandbox can issue tokens that live seconds).
        margin = min(300.0, self.lifetime / 10)
        return self.expires_at - now > margin

    def info(self) -> TokenInfo:
        return TokenInfo(
            token_type=self.token_type,
            expires_at=datetime.fromtimestamp(self.expires_at, tz=UTC),
        )


@dataclass(frozen=True)
class TokenInfo:
    """What may be shown about a token: never its value."""

    token_type: str
    expires_at: datetime


class TokenCache(Protocol):
    """Keeps a token between processes (the CLI's invocations)."""

    def load(self, key: str) -> AccessToken | None: ...

    def save(self, key: str, token: AccessToken) -> None: ...


class FileTokenCache:
    """One file per (host, client id) in ``directory``, mode 0600, written atomically.

    The file name is a hash, so neither the client id nor anything secret appears in it.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path_for(self, key: str) -> Path:
        return self.directory / (hashlib.sha256(key.encode()).hexdigest()[:32] + ".json")

    def load(self, key: str) -> AccessToken | None:
        path = self.path_for(key)
        try:
            data = json.loads(path.read_text("utf-8"))
            token = AccessToken(
                value=str(data["access_token"]),
                expires_at=float(data["expires_at"]),
                token_type=str(data.get("token_type", "Bearer")),
                lifetime=float(data.get("lifetime", 7200.0)),
            )
        except (OSError, ValueError, KeyError, TypeError, OverflowError, RecursionError):
            return None
        # A damaged or doctored file is a cache miss, never a crash.
        usable = _TOKEN_CHARS.fullmatch(token.value) and all(
            math.isfinite(n) and 0 < n < 1e11 for n in (token.expires_at, token.lifetime)
        )
        return token if usable else None

    def save(self, key: str, token: AccessToken) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        payload = {
            "access_token": token.value,
            "expires_at": token.expires_at,
            "token_type": token.token_type,
            "lifetime": token.lifetime,
        }
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".token-", suffix=".tmp")
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(payload, handle)
            os.replace(tmp, self.path_for(key))
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def cache_key(base_url: str, client_id: str, client_secret: SecretStr) -> str:
    """Where a token is cached. The secret's hash is part of it: a rotated or wrong secret
    must not go on using a token the old one obtained."""
    secret_hash = hashlib.sha256(client_secret.get_secret_value().encode()).hexdigest()
    return f"{base_url}|{client_id}|{secret_hash}"


class TokenManager:
    """The current token and the rules for replacing it; no locking, no I/O of its own."""

    def __init__(
        self,
        *,
        base_url: str,
        client_id: str,
        client_secret: SecretStr,
        profile: HostProfile,
        cache: TokenCache | None = None,
    ) -> None:
        self._client_id = client_id
        self._client_secret = client_secret
        self._profile = profile
        self._cache = cache
        self._cache_key = cache_key(base_url, client_id, client_secret)
        self._current: AccessToken | None = None
        self._cache_checked = False
        self._attempts = 0
        self._last_failure: BaseException | None = None

    @property
    def attempts(self) -> int:
        """How many token requests have been made (succeeded or failed)."""
        return self._attempts

    def failed(self, error: BaseException) -> None:
        self._attempts += 1
        self._last_failure = error

    def raise_if_failed_since(self, attempts_seen: int) -> None:
        """Callers that queued behind a token request share its failure instead of each
        repeating it (with all its retries)."""
        if self._attempts != attempts_seen and self._last_failure is not None:
            raise self._last_failure

    @property
    def current(self) -> AccessToken | None:
        return self._current

    def forget(self) -> None:
        """Drop the current token, so that the next call fetches a new one."""
        self._current = None
        self._cache_checked = True

    def usable(self, stale: BearerToken | None = None) -> AccessToken | None:
        """The token to use now, or None if one must be fetched.

        ``stale`` is a token the server just refused: it is not returned again, but a newer
        one obtained meanwhile by another caller is.
        """
        if self._current is None and not self._cache_checked and self._cache is not None:
            self._cache_checked = True
            self._current = self._cache.load(self._cache_key)
        token = self._current
        if token is None or token == stale or not token.usable_at(time.time()):
            return None
        return token

    def request(self) -> Call:
        grant = {
            "grant_type": "client_credentials",
            "client_id": self._client_id,
            "client_secret": self._client_secret.get_secret_value(),
        }
        if self._profile.token_encoding == "json":
            return Call("POST", self._profile.token_path, kind="token", json=grant)
        return Call("POST", self._profile.token_path, kind="token", form=grant)

    def accept(self, response: httpx.Response) -> AccessToken:
        """Store the token from a successful token response."""
        data = _json_object(response)
        value = data.get("access_token")
        if not isinstance(value, str) or not value:
            raise ResponseParseError(
                "token response has no access_token", status_code=response.status_code
            )
        if len(value) > _MAX_TOKEN_LENGTH or not _TOKEN_CHARS.fullmatch(value):
            # It goes into an Authorization header: a newline or a non-ASCII character would
            # fail there, later and more confusingly (and the value is never shown).
            raise ResponseParseError(
                "token response's access_token is not a usable bearer token "
                "(printable ASCII, no spaces, at most 8 KB)",
                status_code=response.status_code,
            )
        try:
            ttl = float(data.get("expires_in", self._profile.default_token_ttl))
        except (TypeError, ValueError, OverflowError):
            ttl = self._profile.default_token_ttl
        if not math.isfinite(ttl) or ttl <= 0:
            ttl = self._profile.default_token_ttl
        # An expiry past any datetime (1e308 s) would break TokenInfo; nobody issues a year.
        ttl = min(ttl, _MAX_TOKEN_TTL)
        token = AccessToken(
            value=value,
            expires_at=time.time() + ttl,
            token_type=str(data.get("token_type") or "Bearer"),
            lifetime=ttl,
        )
        self._attempts += 1
        self._last_failure = None
        self._current = token
        if self._cache is not None:
            self._cache.save(self._cache_key, token)
        return token


def _json_object(response: httpx.Response) -> dict[str, Any]:
    why = "it is not a JSON object"
    try:
        data = response_json(response)
    except ValueError as exc:
        data = None
        if str(exc).startswith("the body"):
            why = str(exc)
    if not isinstance(data, dict):
        raise ResponseParseError(
            f"could not read the token response: {why}", status_code=response.status_code
        )
    return data
