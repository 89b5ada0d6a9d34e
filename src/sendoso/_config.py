"""Where the client's settings come from: arguments, then environment, then a profile file.

The profile file (``$SENDOSO_CONFIG``, else ``config.toml`` in the user config directory)
holds named profiles, like the AWS CLI's::

    default_profile = "sandbox"

    [profiles.sandbox]
    base_url = "http://127.0.0.1:8787"
    client_id = "sandbox-client"
    client_secret = "sandbox-secret"

    [profiles.production]
    client_id = "..."
    client_secret = "..."

A profile named explicitly (argument or ``SENDOSO_PROFILE``) outranks the ``SENDOSO_*``
credential variables, so switching accounts never needs variables edited; without one, the
variables outrank ``default_profile``.
"""

from __future__ import annotations

import os
import stat
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import platformdirs
from pydantic import BaseModel, ConfigDict, SecretStr
from pydantic import ValidationError as PydanticValidationError

from sendoso._profile import DEFAULT_BASE_URL
from sendoso.errors import ConfigurationError

__all__ = ["Settings", "config_path", "load_settings", "read_profiles"]

_KEYS = ("base_url", "client_id", "client_secret", "rate_limit", "trust_idempotency")


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True)

    base_url: str = DEFAULT_BASE_URL
    client_id: str | None = None
    client_secret: SecretStr | None = None
    rate_limit: float | None = None
    trust_idempotency: bool | None = None
    profile: str | None = None


def config_path(environ: Mapping[str, str] | None = None) -> Path:
    environ = os.environ if environ is None else environ
    if environ.get("SENDOSO_CONFIG"):
        return Path(environ["SENDOSO_CONFIG"]).expanduser()
    return Path(platformdirs.user_config_dir("sendoso")) / "config.toml"


def read_profiles(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigurationError(f"cannot read config file {path}: {exc.strerror}") from None
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"config file {path} is not valid TOML: {exc}") from None


def _check_private(path: Path) -> None:
    # Like ssh with a private key: a secret others can read is already leaked, so refuse it.
    mode = path.stat().st_mode
    if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigurationError(
            f"{path} holds a client secret but is readable by other users "
            f"(mode {stat.S_IMODE(mode):o}); run: chmod 600 {path}"
        )


def load_settings(
    *,
    profile: str | None = None,
    environ: Mapping[str, str] | None = None,
    path: Path | None = None,
    **overrides: Any,
) -> Settings:
    """Resolve settings. ``overrides`` (``base_url``, ``client_id``, ``client_secret``,
    ``rate_limit``, ``trust_idempotency``) win when not ``None``.

    The host and the credentials travel together: they come from the one source (profile or
    environment) that holds the client secret, so a secret is never sent to a host configured
    somewhere else. A base URL or client id set in a source that outranks it, without a
    secret, is an error rather than a silent mix; an override (a flag) is an explicit choice.
    """
    environ = os.environ if environ is None else environ
    unknown = set(overrides) - set(_KEYS)
    if unknown:
        raise TypeError(f"unknown setting(s): {', '.join(sorted(unknown))}")
    path = path or config_path(environ)
    document = read_profiles(path)
    profiles = document.get("profiles", {})
    if not isinstance(profiles, dict):
        raise ConfigurationError(f"'profiles' in {path} must be a table of [profiles.NAME]")
    explicit = profile or environ.get("SENDOSO_PROFILE") or None
    chosen = explicit or document.get("default_profile") or None
    from_file: dict[str, Any] = {}
    if chosen is not None:
        if chosen in profiles and isinstance(profiles[chosen], dict):
            from_file = {k: v for k, v in profiles[chosen].items() if k in _KEYS}
            if "client_secret" in from_file:
                _check_private(path)
        elif explicit:
            known = ", ".join(sorted(profiles))
            raise ConfigurationError(
                f"profile {chosen!r} is not in {path}"
                + (f" (profiles: {known})" if known else " (no profiles defined)")
            )
        else:
            chosen = None
    env_names = {
        "base_url": "SENDOSO_BASE_URL",
        "client_id": "SENDOSO_CLIENT_ID",
        "client_secret": "SENDOSO_CLIENT_SECRET",
    }
    from_env: dict[str, Any] = {k: environ[v] for k, v in env_names.items() if environ.get(v)}
    profile_source: tuple[str, dict[str, Any]] = (f"profile {chosen!r} in {path}", from_file)
    env_source: tuple[str, dict[str, Any]] = ("the SENDOSO_* environment variables", from_env)
    # Highest precedence first.
    sources = [profile_source, env_source] if explicit else [env_source, profile_source]
    identity: dict[str, Any] = {}
    for rank, (name, values) in enumerate(sources):
        if "client_secret" not in values:
            continue
        for higher_name, higher in sources[:rank]:
            stray = sorted(k for k in ("base_url", "client_id") if k in higher)
            if stray and not all(overrides.get(k) is not None for k in stray):
                # The verb agrees with the place ("the ... variables set", "profile ... sets").
                verb = "set" if higher_name.endswith("variables") else "sets"
                raise ConfigurationError(
                    f"{higher_name} {verb} {' and '.join(stray)} "
                    f"but no client secret, and the secret comes from {name}; a secret is only "
                    f"sent to the host configured beside it: set all three in one place"
                )
        identity = {k: values[k] for k in ("base_url", "client_id", "client_secret") if k in values}
        break
    else:
        # No secret anywhere: keep what was given, so the error can name what is missing.
        for _, values in reversed(sources):
            identity.update(values)
    tuning: dict[str, Any] = {
        k: from_file[k] for k in ("rate_limit", "trust_idempotency") if k in from_file
    }
    chosen_by_flags = {k: v for k, v in overrides.items() if v is not None}
    merged: dict[str, Any] = {**identity, **tuning, **chosen_by_flags}
    try:
        return Settings(profile=chosen, **merged)
    except PydanticValidationError as exc:
        # Not str(exc): pydantic quotes each bad input, and a client secret written unquoted
        # (a number in TOML) or as a list would be printed whole.
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])} is invalid ({error['msg']})"
            for error in exc.errors()
        )
        hint = " (quote it in the TOML file)" if "client_secret" in problems else ""
        raise ConfigurationError(
            f"invalid settings in profile {chosen!r}: {problems}{hint}"
        ) from None
