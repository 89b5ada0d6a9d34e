"""Everything that differs between API hosts, in one place.

Paths, the token grant's encoding, the request rate the host tolerates and whether it is
trusted to deduplicate on ``Idempotency-Key`` are configuration, not code: a different host is
a different :class:`HostProfile`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal
from urllib.parse import urlsplit

from sendoso._net import is_loopback_host
from sendoso._well_known import SANDBOX_CLIENT_SECRET
from sendoso.errors import ConfigurationError, Param, Text

__all__ = ["DEFAULT_BASE_URL", "HostProfile", "check_secret_for_host", "profile_for"]

DEFAULT_BASE_URL = "https://app.sendoso.com"


@dataclass(frozen=True)
class HostProfile:
    token_path: str = "/oauth/token"
    gifts_path: str = "/api/v3/gifts"
    sends_path: str = "/api/v3/sends"
    #: The seed contract (docs/architecture.md, section 5) sends the client-credentials grant
    #: as JSON; RFC 6749 servers want a form.
    token_encoding: Literal["json", "form"] = "json"
    #: Requests per second to stay under, or None to send as fast as the server answers.
    #: Public descriptions of the production API put its limit at about 10/s, with IP blocks
    #: for offenders, so the client paces itself rather than waiting for 429s.
    rate_limit: float | None = 10.0
    #: Whether a repeated POST with the same Idempotency-Key is known to be deduplicated.
    #: The production API documents no idempotency, so ambiguous sends are never retried there.
    #: None: only once the server has identified itself as the sandbox.
    trusts_idempotency: bool | None = False
    #: Lifetime assumed when a token response omits ``expires_in`` (the seed contract: two hours).
    default_token_ttl: float = 7200.0


PRODUCTION = HostProfile()
#: A loopback host: probably the local sandbox, whose rate limit is whatever it was started
#: with, so the client relies on its 429s instead of guessing. It is trusted to deduplicate
#: only once it has said it is the sandbox: a loopback port-forward to production is not.
LOOPBACK = replace(PRODUCTION, rate_limit=None, trusts_idempotency=None)


def profile_for(base_url: str) -> HostProfile:
    """The profile for ``base_url``; refuses plain HTTP to anything but loopback."""
    parts = urlsplit(base_url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ConfigurationError(
            f"base URL {base_url!r} is not an http(s) URL (e.g. {DEFAULT_BASE_URL})"
        )
    loopback = is_loopback_host(parts.hostname)
    if parts.scheme == "http" and not loopback:
        raise ConfigurationError(
            f"refusing plain http:// to {parts.hostname}: credentials and recipients' addresses "
            "would cross the network unencrypted; use https://"
        )
    return LOOPBACK if loopback else PRODUCTION


def check_secret_for_host(base_url: str, client_secret: str) -> None:
    """Refuses the sandbox's public test secret for any host but loopback.

    Holding the sandbox's credentials and forgetting its base URL would otherwise send them to
    the default host, production: a leak of nothing secret, but a request to the real API that
    nobody meant, and a sign that later sends would not go where the user thinks.
    """
    host = urlsplit(base_url).hostname or ""
    if client_secret == SANDBOX_CLIENT_SECRET and not is_loopback_host(host):
        raise ConfigurationError(
            Text(
                f"the client secret is the local sandbox's public test secret, but the host is "
                f"{host}, not a sandbox on loopback; nothing was sent. Set ",
                Param("base_url"),
                " (or SENDOSO_BASE_URL) to the sandbox's URL, e.g. http://127.0.0.1:8787",
            )
        )
