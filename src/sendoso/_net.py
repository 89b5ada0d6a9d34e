"""What counts as loopback: one rule for the client (plain http allowed) and the sandbox
(binding allowed without --allow-remote)."""

from __future__ import annotations

import ipaddress

__all__ = ["is_loopback_host"]


def is_loopback_host(host: str) -> bool:
    """``localhost``, or an IPv4/IPv6 loopback address (brackets allowed)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
