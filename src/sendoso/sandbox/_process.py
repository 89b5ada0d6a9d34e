"""The sandbox in a child process: ``sendoso sandbox serve``, started and stopped from Python.

:class:`SandboxServer` serves from a thread of the caller's own interpreter. Benchmarks and
fault-injection runs want the server exactly as a user starts it instead: not competing with
them for one interpreter, and not showing up in their CPU time.
"""

from __future__ import annotations

import collections
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import IO

from sendoso.sandbox._config import SandboxConfig
from sendoso.sandbox._control import SandboxControl

__all__ = ["SandboxProcess", "SandboxStartError"]

# The first line `sendoso sandbox serve` prints once it accepts connections
# (`sendoso.cli._commands_sandbox.ready_lines`); tests/sandbox/test_sandbox_process.py runs the
# real command, so a change to that line fails there.
_READY = re.compile(r"Sendoso sandbox listening on (http://\S+)")
# Enough of the output to show why a start failed (a traceback's last frames, an error line).
_KEPT_LINES = 20


class SandboxStartError(RuntimeError):
    """The sandbox process exited, or did not report that it was listening, in time.

    The message ends with the last lines the process printed.
    """


def _default_command() -> list[str]:
    # This interpreter rather than a `sendoso` found on PATH, which may belong to another
    # installation.
    return [sys.executable, "-c", "from sendoso.cli import main; main()"]


def _serve_arguments(config: SandboxConfig, host: str, port: int) -> list[str]:
    if config.jitter_ms:
        raise ValueError(
            "jitter_ms has no `sendoso sandbox serve` flag; start with jitter_ms=0 and set it"
            " with control.faults(jitter_ms=...)"
        )
    arguments = [
        "sandbox",
        "serve",
        "--host",
        host,
        "--port",
        str(port),
        "--client-id",
        config.client_id,
        "--client-secret",
        config.client_secret,
        "--token-ttl",
        str(config.token_ttl),
        # The command's 0 means no limit, as None does in the config.
        "--rate-limit",
        str(config.rate_limit or 0),
        "--latency-ms",
        str(config.latency_ms),
    ]
    if config.db is not None:
        arguments += ["--db", config.db]
    return arguments


class SandboxProcess:
    """``sendoso sandbox serve`` in a child process, by default on a free loopback port::

        with SandboxProcess(SandboxConfig(rate_limit=None)) as sandbox:
            sandbox.control.faults(error_rate=0.1)
            ...  # point the SDK or the CLI at sandbox.url

    ``command`` runs the CLI (default: this interpreter, running ``sendoso.cli``); ``env`` is
    added to this process's environment for it. :meth:`start` (or entering the ``with``)
    returns once the server accepts connections, and raises :class:`SandboxStartError` if it
    exits first or does not report listening within ``start_timeout`` seconds. :meth:`stop`
    (or leaving the ``with``) sends SIGINT, which finishes in-flight requests, and kills the
    process if it has not exited ``stop_timeout`` seconds later. ``control_timeout`` is the
    HTTP timeout of :attr:`control`. ``config.jitter_ms`` must be 0: the command has no flag
    for it (set it with ``control.faults(jitter_ms=...)``).
    """

    def __init__(
        self,
        config: SandboxConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        command: Sequence[str] | None = None,
        env: Mapping[str, str] | None = None,
        start_timeout: float = 30.0,
        stop_timeout: float = 15.0,
        control_timeout: float = 30.0,
    ) -> None:
        self.config = config or SandboxConfig()
        self._argv = [
            *(command or _default_command()),
            *_serve_arguments(self.config, host, port),
        ]
        # Unbuffered, so that the ready line arrives when it is printed, not at exit.
        self._env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.control_timeout = control_timeout
        self._process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self._output: collections.deque[str] = collections.deque(maxlen=_KEPT_LINES)
        # Set when the ready line is read, or when the output ends (the process exited).
        self._settled = threading.Event()
        self._url: str | None = None
        self._control: SandboxControl | None = None

    @property
    def url(self) -> str:
        """The base URL it serves, e.g. ``http://127.0.0.1:41234``."""
        return self.control.url

    @property
    def control(self) -> SandboxControl:
        """A client for its ``/_sandbox/`` endpoints (faults, clock, sends, stats, reset)."""
        if self._control is None:
            raise RuntimeError("the sandbox process is not started")
        return self._control

    @property
    def pid(self) -> int:
        """The child's process id (the interpreter serving the sandbox)."""
        if self._process is None:
            raise RuntimeError("the sandbox process is not started")
        return self._process.pid

    def start(self) -> SandboxProcess:
        """Start the process; returns once it accepts connections."""
        if self._process is not None:
            raise RuntimeError("the sandbox process was already started")
        process = subprocess.Popen(  # noqa: S603 - our own CLI, arguments built above
            self._argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=self._env,
            text=True,
            encoding="utf-8",
            errors="replace",
        )
        self._process = process
        assert process.stdout is not None
        # Read all along, not only until ready: a full pipe would block the server's logging.
        self._reader = threading.Thread(
            target=self._read, args=(process.stdout,), name="sendoso-sandbox-output", daemon=True
        )
        self._reader.start()
        try:
            settled = self._settled.wait(self.start_timeout)
        except BaseException:
            self._shut_down()
            raise
        if self._url is None:
            self._shut_down()
            if settled:
                problem = f"the sandbox exited at start (exit code {process.returncode})"
            else:
                problem = f"the sandbox did not report listening within {self.start_timeout:g} s"
            raise SandboxStartError(self._with_output(problem))
        self._control = SandboxControl(self._url, timeout=self.control_timeout)
        return self

    def stop(self) -> None:
        """Stop the process (SIGINT, then SIGKILL after ``stop_timeout``); idempotent."""
        if self._control is not None:
            self._control.close()
        self._shut_down()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self._output.append(line)
            if self._url is None:
                found = _READY.search(line)
                if found:
                    self._url = found.group(1)
                    self._settled.set()
        self._settled.set()

    def _shut_down(self) -> None:
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            # SIGINT is Ctrl+C, which the command answers with a graceful shutdown (in-flight
            # requests finish); Windows cannot send it to a child, so there it is terminated.
            if os.name == "posix":
                process.send_signal(signal.SIGINT)
            else:
                process.terminate()
            try:
                process.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._reader is not None:
            self._reader.join(timeout=5)
        if process.stdout is not None:
            process.stdout.close()

    def _with_output(self, problem: str) -> str:
        printed = "".join(self._output).rstrip()
        return f"{problem}; it printed:\n{printed}" if printed else f"{problem}; it printed nothing"

    def __enter__(self) -> SandboxProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
