"""The sandbox the chaos runs hit: `sendoso sandbox serve` in its own process.

Its own process, so that serving hundreds of requests a second never competes with the
harness's polling for one interpreter, and so that the server is exactly what a user starts.
"""

from __future__ import annotations

import contextlib
import queue
import re
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

from sendoso.sandbox import SandboxControl

__all__ = ["CLIENT_ID", "CLIENT_SECRET", "sendoso_command", "serve_sandbox"]

CLIENT_ID = "sandbox-client"
CLIENT_SECRET = "sandbox-secret"
_READY = re.compile(r"listening on (http://\S+)")
_START_TIMEOUT = 60.0


def sendoso_command() -> str:
    """The `sendoso` console script of the interpreter running the harness."""
    import sys

    return str(Path(sys.executable).with_name("sendoso"))


def _read_lines(stream: object, lines: queue.Queue[str | None]) -> None:
    assert hasattr(stream, "readline")
    for line in iter(stream.readline, ""):
        lines.put(line)
    lines.put(None)


@contextlib.contextmanager
def serve_sandbox() -> Iterator[SandboxControl]:
    """Start a sandbox on a free loopback port with no rate limit (the harness sets faults
    through `/_sandbox/faults`); stop it with SIGINT on exit."""
    process = subprocess.Popen(  # noqa: S603 - our own CLI, fixed arguments
        [sendoso_command(), "sandbox", "serve", "--port", "0", "--rate-limit", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    lines: queue.Queue[str | None] = queue.Queue()
    reader = threading.Thread(target=_read_lines, args=(process.stdout, lines), daemon=True)
    reader.start()
    url = None
    seen: list[str] = []
    try:
        while url is None:
            try:
                line = lines.get(timeout=_START_TIMEOUT)
            except queue.Empty:
                raise RuntimeError("the sandbox did not start in time") from None
            if line is None:
                raise RuntimeError("the sandbox exited at start:\n" + "".join(seen))
            seen.append(line)
            match = _READY.search(line)
            if match:
                url = match.group(1)
        with SandboxControl(url, timeout=30) as control:
            yield control
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        reader.join(timeout=5)
