"""Defence in depth: scrub secrets from anything the CLI prints or logs.

The SDK never puts a token or the client secret in a message or a log record; this module makes
sure that a future mistake there still cannot leak one through the CLI.
"""

from __future__ import annotations

import os
import re

__all__ = ["REDACTED", "forget_secrets", "redact", "remember_secret"]

REDACTED = "[REDACTED]"

#: Values shorter than this are not treated as secrets: replacing them would garble output.
_MIN_SECRET_LENGTH = 4
_secrets: set[str] = set()

_PATTERNS = (
    # "Authorization: Bearer eyJ..." or "bearer abc.def"
    re.compile(r"(?i)\b(bearer)(\s+)[A-Za-z0-9\-._~+/]+=*"),
    # access_token=..., "client_secret": "...", refresh_token: ...
    re.compile(
        r"(?i)(\"?\b(?:access_token|refresh_token|client_secret|id_token)\b\"?)"
        r"(\s*[:=]\s*\"?)[^\"\s,&}']+"
    ),
)


def remember_secret(value: str | None) -> None:
    """Treat ``value`` as a secret in everything :func:`redact` sees from now on."""
    if value and len(value) >= _MIN_SECRET_LENGTH:
        _secrets.add(value)


def forget_secrets() -> None:
    _secrets.clear()


def redact(text: str) -> str:
    """``text`` with every known secret and anything that looks like a token replaced."""
    env_secret = os.environ.get("SENDOSO_CLIENT_SECRET")
    secrets = set(_secrets)
    if env_secret and len(env_secret) >= _MIN_SECRET_LENGTH:
        secrets.add(env_secret)
    # Longest first, so a secret containing another is replaced whole.
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
    return text
