"""The sandbox the chaos runs hit, in its own process (`python -m sendoso.sandbox`: the server
`sendoso sandbox serve` runs).

Its own process, so that serving hundreds of requests a second never competes with the
harness's polling for one interpreter.
"""

from __future__ import annotations

import sys
from pathlib import Path

from sendoso.sandbox import SandboxConfig, SandboxProcess

__all__ = ["CLIENT_ID", "CLIENT_SECRET", "sendoso_command", "serve_sandbox"]

CLIENT_ID = SandboxConfig().client_id
CLIENT_SECRET = SandboxConfig().client_secret


def sendoso_command() -> str:
    """The `sendoso` console script of the interpreter running the harness."""
    return str(Path(sys.executable).with_name("sendoso"))


def serve_sandbox() -> SandboxProcess:
    """A sandbox on a free loopback port with no rate limit (the harness sets faults through
    `/_sandbox/faults`), to start and stop with ``with``."""
    return SandboxProcess(
        SandboxConfig(rate_limit=None),
        start_timeout=60,
        stop_timeout=20,
    )
