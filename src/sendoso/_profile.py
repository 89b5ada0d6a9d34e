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
from sendoso.errors import ConfigurationError

__all__ = ["DEFAULT_BASE_URL", "HostProfile", "profile_for"]

DEFAULT_BASE_URL = "https://app.sendoso.com"


@dataclass(frozen=True)
class HostProfile:
    token_path: str = "/oauth/token"
    gifts_path: str = "/api/v3/gifts"
    sends_path: str = "/api/v3/sends"
    #: The seed sends the client-credentials grant as JSON; RFC 6749 servers want a form.
    token_encoding: Literal["json", "form"] = "json"
    #: Requests per second to stay under, or None to send as fast as the server answers.
    #: Public descriptions of the production API put its limit at about 10/s, with IP blocks
    #: for offenders, so the client paces itself rather than waiting for 429s.
    rate_limit: float | None = 10.0
    #: Whether a repeated POST with the same Idempotency-Key is known to be deduplicated.
    #: The production API documents no idempotency, so ambiguous sends are never retried there.
    #: None: only once the server has identified itself as the sandbox.
    trusts_idempotency: bool | None = False
    #: Lifetime assumed when a token response omits ``expires_in`` (the seed: two hours).
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
