"""The sandbox in its own process (`python -m sendoso.sandbox`: the server `sendoso sandbox
serve` runs), so that serving requests does not compete for our interpreter's GIL or show up
in our CPU time."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sendoso import AsyncSendoso, Sendoso
from sendoso.sandbox import SandboxConfig, SandboxControl, SandboxProcess

CLIENT_ID = SandboxConfig().client_id
CLIENT_SECRET = SandboxConfig().client_secret


@dataclass
class RemoteSandbox:
    """A running sandbox child process and its control endpoints."""

    url: str
    control: SandboxControl
    pid: int

    def client(self, **options: Any) -> Sendoso:
        return Sendoso(
            base_url=self.url, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, **options
        )

    def async_client(self, **options: Any) -> AsyncSendoso:
        return AsyncSendoso(
            base_url=self.url, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, **options
        )

    def stats(self) -> dict[str, Any]:
        return self.control.stats()

    def requests(self, route: str) -> int:
        """Requests the sandbox counted on ``route`` (e.g. ``"POST /api/v3/sends"``)."""
        return int(self.stats()["requests"][route])

    def responses(self, status: int) -> int:
        return int(self.stats()["responses_by_status"].get(str(status), 0))

    def cpu_seconds(self) -> float | None:
        """CPU time the sandbox process has used (user + system), where /proc tells."""
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return None
        # utime and stime are the 14th and 15th fields; the split dropped the first two.
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def serve(
    *, rate_limit: float | None = None, latency_ms: float = 0, token_ttl: float = 7200
) -> Iterator[RemoteSandbox]:
    """Start the sandbox process on a free loopback port; stop it (SIGINT) afterwards."""
    config = SandboxConfig(
        rate_limit=rate_limit or None, latency_ms=latency_ms, token_ttl=token_ttl
    )
    with SandboxProcess(config, control_timeout=60) as sandbox:
        yield RemoteSandbox(url=sandbox.url, control=sandbox.control, pid=sandbox.pid)
