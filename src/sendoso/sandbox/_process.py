"""The sandbox in a child process (``python -m sendoso.sandbox``), started and stopped from
Python.

:class:`SandboxServer` serves from a thread of the caller's own interpreter. Benchmarks and
fault-injection runs want the server in a process of its own instead: not competing with them
for one interpreter, and not showing up in their CPU time.

The two sides speak JSON, never the command line's human output: the parent writes the
settings (:class:`SandboxConfig`, host, port) as one JSON object to the child's stdin and
closes it; the child (:func:`serve_child`) answers ``{"listening": URL}`` as one line on
stdout once it accepts connections. Anything else it prints (a refusal, a traceback, server
logs) goes to stderr and is kept to explain a failed start.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import IO, Any

from sendoso.sandbox._config import SandboxConfig
from sendoso.sandbox._control import SandboxControl
from sendoso.sandbox._server import check_host, serve

__all__ = ["SandboxProcess", "SandboxStartError", "serve_child"]

# The key of the line the child prints on stdout once it accepts connections.
_LISTENING = "listening"
# The child's exit status when its settings are unusable or its port cannot be bound.
_START_FAILED = 2
# Enough of the output to show why a start failed (a traceback's last frames, an error line).
_KEPT_LINES = 20


class SandboxStartError(RuntimeError):
    """The sandbox process exited, or did not report that it was listening, in time.

    The message ends with the last lines the process printed.
    """


def _default_command() -> list[str]:
    # This interpreter rather than a `python` found on PATH, which may belong to another
    # installation.
    return [sys.executable, "-m", "sendoso.sandbox"]


def _settings(config: SandboxConfig, host: str, port: int, allow_remote: bool) -> str:
    return json.dumps(
        {
            "config": dataclasses.asdict(config),
            "host": host,
            "port": port,
            "allow_remote": allow_remote,
        }
    )


def serve_child(stdin: IO[str], stdout: IO[str], stderr: IO[str]) -> int:
    """The child's side: ``python -m sendoso.sandbox`` runs this with its standard streams.

    Reads the settings (a JSON object: ``config``, the :class:`SandboxConfig` fields;
    ``host``; ``port``; ``allow_remote``; each optional, no input at all means the defaults
    on port 8787), serves until SIGINT or SIGTERM, and returns the exit status: 0 once
    stopped, 2 when the settings are unusable or the port cannot be bound (the reason on
    ``stderr``).
    """
    try:
        text = "" if stdin.isatty() else stdin.read()
        settings: dict[str, Any] = json.loads(text) if text.strip() else {}
        if not isinstance(settings, dict):
            raise TypeError("the settings must be a JSON object")
        unknown = set(settings) - {"config", "host", "port", "allow_remote"}
        if unknown:
            raise TypeError(f"unknown settings: {', '.join(sorted(unknown))}")
        config = SandboxConfig(**settings.get("config", {}))
        host = str(settings.get("host", "127.0.0.1"))
        port = int(settings.get("port", 8787))
        allow_remote = settings.get("allow_remote", False) is True
    except (ValueError, TypeError) as exc:
        stderr.write(f"invalid sandbox settings: {exc}\n")
        return _START_FAILED

    def on_ready(url: str) -> None:
        stdout.write(json.dumps({_LISTENING: url}) + "\n")
        stdout.flush()

    try:
        serve(config, host, port, allow_remote=allow_remote, on_ready=on_ready)
    except ValueError as exc:
        stderr.write(f"{exc}\n")
        return _START_FAILED
    except OSError as exc:
        stderr.write(f"cannot listen on {host}:{port}: {exc.strerror or exc}\n")
        return _START_FAILED
    return 0


def _listening_url(line: str) -> str | None:
    try:
        message = json.loads(line)
    except ValueError:
        return None
    url = message.get(_LISTENING) if isinstance(message, dict) else None
    return url if isinstance(url, str) else None


class SandboxProcess:
    """The sandbox in a child process, by default on a free loopback port::

        with SandboxProcess(SandboxConfig(rate_limit=None)) as sandbox:
            sandbox.control.faults(error_rate=0.1)
            ...  # point the SDK or the CLI at sandbox.url

    ``command`` starts the child (default: this interpreter, ``-m sendoso.sandbox``; another
    command must speak the same JSON, see :func:`serve_child`); ``env`` is added to this
    process's environment for it. :meth:`start` (or entering the ``with``) returns once the
    server accepts connections, and raises :class:`SandboxStartError` if it exits first or
    does not report listening within ``start_timeout`` seconds. :meth:`stop` (or leaving the
    ``with``) sends SIGINT, which finishes in-flight requests, and kills the process if it has
    not exited ``stop_timeout`` seconds later. ``control_timeout`` is the HTTP timeout of
    :attr:`control`. A ``host`` other than loopback is refused with
    :class:`RemoteHostRefusedError` unless ``allow_remote``.
    """

    def __init__(
        self,
        config: SandboxConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        allow_remote: bool = False,
        command: Sequence[str] | None = None,
        env: Mapping[str, str] | None = None,
        start_timeout: float = 30.0,
        stop_timeout: float = 15.0,
        control_timeout: float = 30.0,
    ) -> None:
        check_host(host, allow_remote)
        self.config = config or SandboxConfig()
        self._argv = list(command or _default_command())
        self._settings = _settings(self.config, host, port, allow_remote)
        # Unbuffered, so that what it prints arrives when it is printed, not at exit.
        self._env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.control_timeout = control_timeout
        self._process: subprocess.Popen[str] | None = None
        self._readers: list[threading.Thread] = []
        self._output: collections.deque[str] = collections.deque(maxlen=_KEPT_LINES)
        # Set when the listening line is read, or when stdout ends (the process exited).
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
        process = subprocess.Popen(  # noqa: S603 - our own entry point, or the caller's command
            self._argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=self._env,
            text=True,
            encoding="utf-8",
            errors="replace",
        )
        self._process = process
        assert process.stdin is not None
        assert process.stdout is not None
        assert process.stderr is not None
        # Both read all along, not only until ready: a full pipe would block the server.
        self._readers = [
            threading.Thread(
                target=self._read_reports,
                args=(process.stdout,),
                name="sendoso-sandbox-stdout",
                daemon=True,
            ),
            threading.Thread(
                target=self._read_output,
                args=(process.stderr,),
                name="sendoso-sandbox-stderr",
                daemon=True,
            ),
        ]
        for reader in self._readers:
            reader.start()
        try:
            process.stdin.write(self._settings)
            process.stdin.close()
        except OSError:
            # It exited before reading its settings; what it printed says why.
            pass
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

    def _read_reports(self, stream: IO[str]) -> None:
        for line in stream:
            url = _listening_url(line) if self._url is None else None
            if url is not None:
                self._url = url
                self._settled.set()
            else:
                self._output.append(line)
        self._settled.set()

    def _read_output(self, stream: IO[str]) -> None:
        for line in stream:
            self._output.append(line)

    def _shut_down(self) -> None:
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            # SIGINT is Ctrl+C, which the child answers with a graceful shutdown (in-flight
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
        for reader in self._readers:
            reader.join(timeout=5)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()

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
