"""The local sandbox's public test credentials.

One place for them: the sandbox starts with them by default, and the client refuses to send
them to any host but loopback, where the sandbox runs (a forgotten base URL would otherwise
send them to the production host).
"""

from __future__ import annotations

__all__ = ["SANDBOX_CLIENT_ID", "SANDBOX_CLIENT_SECRET"]

SANDBOX_CLIENT_ID = "sandbox-client"
SANDBOX_CLIENT_SECRET = "sandbox-secret"
