"""The global options, and the client built from them on first use."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from sendoso import AsyncSendoso, Sendoso
    from sendoso._config import Settings

__all__ = ["State", "credentials_in_use", "state_of", "token_cache_dir"]

#: The settings this process resolved last, to say which to check when they are refused.
_in_use: list[Settings] = []


def credentials_in_use() -> Settings | None:
    return _in_use[-1] if _in_use else None


def token_cache_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_cache_dir("sendoso")) / "tokens"


@dataclass
class State:
    profile: str | None = None
    base_url: str | None = None
    client_id: str | None = None
    verbose: bool = False
    token_cache: bool = True
    _settings: Settings | None = field(default=None, repr=False)

    def settings(self) -> Settings:
        """The resolved settings (flags > environment > profile), as the client sees them."""
        if self._settings is None:
            from sendoso._config import load_settings
            from sendoso.cli._redact import remember_secret

            self._settings = load_settings(
                profile=self.profile, base_url=self.base_url, client_id=self.client_id
            )
            if self._settings.client_secret is not None:
                remember_secret(self._settings.client_secret.get_secret_value())
            _in_use[:] = [self._settings]
        return self._settings

    def client(self) -> Sendoso:
        """A client for these options; raises ``ConfigurationError`` when they do not add up."""
        import sendoso

        return sendoso.Sendoso(**self._client_options())

    def async_client(
        self, *, rate_limit: float | None = None, wait_on_rate_limited_sends: bool = True
    ) -> AsyncSendoso:
        """The async twin of :meth:`client`; ``rate_limit`` (req/s) overrides the host's."""
        import sendoso

        return sendoso.AsyncSendoso(
            **self._client_options(),
            rate_limit=rate_limit if rate_limit else "auto",
            wait_on_rate_limited_sends=wait_on_rate_limited_sends,
        )

    def _client_options(self) -> dict[str, Any]:
        import sendoso

        self.settings()  # learn the secret first, so that nothing after can print it
        cache = sendoso.FileTokenCache(token_cache_dir()) if self.token_cache else None
        return {
            "profile": self.profile,
            "base_url": self.base_url,
            "client_id": self.client_id,
            "token_cache": cache,
        }


def state_of(ctx: typer.Context) -> State:
    root = ctx.find_root()
    if not isinstance(root.obj, State):
        root.obj = State()
    return root.obj
