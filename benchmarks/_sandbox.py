"""The sandbox in its own process (`sendoso sandbox serve`), so that serving requests does not
compete for our interpreter's GIL or show up in our CPU time."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sendoso import AsyncSendoso, Sendoso
from sendoso.sandbox import SandboxControl

CLIENT_ID = "sandbox-client"
CLIENT_SECRET = "sandbox-secret"
_READY = re.compile(r"listening on (http://\S+)")
_START_TIMEOUT = 30.0


@dataclass
class RemoteSandbox:
    """A running `sendoso sandbox serve` child process and its control endpoints."""

    url: str
    control: SandboxControl
    process: subprocess.Popen[str]

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
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return None
        # utime and stime are the 14th and 15th fields; the split dropped the first two.
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def serve(
    *, rate_limit: float | None = None, latency_ms: float = 0, token_ttl: float = 7200
) -> Iterator[RemoteSandbox]:
    """Start `sendoso sandbox serve` on a free loopback port; stop it (SIGINT) afterwards."""
    command = [
        sys.executable,
        "-c",
        "from sendoso.cli import main; main()",
        "sandbox",
        "serve",
        "--port",
        "0",
        "--rate-limit",
        str(rate_limit or 0),
        "--latency-ms",
        str(latency_ms),
        "--token-ttl",
        str(token_ttl),
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and fixed arguments
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    assert process.stdout is not None
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, name="sandbox-output", daemon=True).start()
    control: SandboxControl | None = None
    try:
        url = _wait_ready(lines)
        control = SandboxControl(url, timeout=60)
        yield RemoteSandbox(url=url, control=control, process=process)
    finally:
        if control is not None:
            control.close()
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_ready(lines: queue.Queue[str | None]) -> str:
    seen: list[str] = []
    while True:
        try:
            line = lines.get(timeout=_START_TIMEOUT)
        except queue.Empty:
            raise RuntimeError("the sandbox did not start within 30 s") from None
        if line is None:
            raise RuntimeError("the sandbox exited at start:\n" + "".join(seen[-20:]))
        seen.append(line)
        match = _READY.search(line)
        if match:
            return match.group(1)
