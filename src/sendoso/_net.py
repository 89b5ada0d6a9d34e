"""What counts as loopback: one rule for the client (plain http allowed), the sandbox and the
MCP server (binding allowed without ``allow_remote``); and the listening socket both servers
bind before they start, so that port 0 can be resolved and reported first."""

from __future__ import annotations

import ipaddress
import socket

__all__ = ["is_loopback_host", "listening_socket"]


def is_loopback_host(host: str) -> bool:
    """``localhost``, or an IPv4/IPv6 loopback address (brackets allowed)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def listening_socket(
    host: str, port: int, *, backlog: int = 128, inheritable: bool = False
) -> socket.socket:
    """A TCP socket bound to ``host:port`` (0: any free port) and listening."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host.strip("[]"), port, type=socket.SOCK_STREAM
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(backlog)
        sock.set_inheritable(inheritable)
    except BaseException:
        sock.close()
        raise
    return sock
