"""Running the sandbox with uvicorn: in a background thread for tests, or in the foreground."""

from __future__ import annotations

import logging
import signal
import socket
import threading
import time
from collections.abc import Callable
from types import FrameType, TracebackType

import uvicorn
from starlette.applications import Starlette

from sendoso._net import is_loopback_host, listening_socket
from sendoso.errors import Param, Text
from sendoso.sandbox._app import create_app
from sendoso.sandbox._config import SandboxConfig

__all__ = ["RemoteHostRefusedError", "SandboxServer", "serve"]

_START_TIMEOUT = 10.0
# A drop fault ends a response early on purpose; uvicorn reports each one as an error.
_DROP_NOISE = "ASGI callable returned without completing response."


class _DropNoiseFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.msg != _DROP_NOISE


_NOISE_FILTER = _DropNoiseFilter()


def _quiet_uvicorn_logs() -> None:
    logger = logging.getLogger("uvicorn.error")
    if _NOISE_FILTER not in logger.filters:
        logger.addFilter(_NOISE_FILTER)


class RemoteHostRefusedError(ValueError):
    """The sandbox was asked to listen on ``host``, which is not loopback, without
    ``allow_remote=True``. Nothing was bound."""

    def __init__(self, host: str) -> None:
        self.host = host
        super().__init__(
            Text(
                f"refusing to serve the sandbox on {host!r}: it accepts fixed sandbox"
                " credentials and has unauthenticated control endpoints, so it only binds to"
                " loopback (127.0.0.1, ::1, localhost) unless ",
                Param("allow_remote"),
                " is set",
            )
        )


def check_host(host: str, allow_remote: bool) -> None:
    if not allow_remote and not is_loopback_host(host):
        raise RemoteHostRefusedError(host)


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def _close(app: Starlette) -> None:
    app.state.sandbox.store.close()


def _uvicorn_config(app: Starlette) -> uvicorn.Config:
    _quiet_uvicorn_logs()
    return uvicorn.Config(
        app,
        log_config=None,
        log_level="warning",
        access_log=False,
        lifespan="off",
        loop="asyncio",
        timeout_graceful_shutdown=5,
    )


class SandboxServer:
    """The sandbox on a local port, served from a background thread.

    ``port=0`` picks a free port; ``url`` says which once started::

        with SandboxServer(SandboxConfig(rate_limit=None)) as sandbox:
            httpx.post(sandbox.url + "/oauth/token", json={...})
    """

    def __init__(
        self,
        config: SandboxConfig | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        allow_remote: bool = False,
    ) -> None:
        check_host(host, allow_remote)
        self.config = config or SandboxConfig()
        self.host = host
        self._requested_port = port
        #: The ASGI app being served; ``app.state.sandbox`` is its state.
        self.app = create_app(self.config)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._url: str | None = None
        self._port: int | None = None

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("the sandbox server is not started")
        return self._url

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the sandbox server is not started")
        return self._port

    def start(self) -> SandboxServer:
        """Start serving; returns once the port accepts connections."""
        if self._server is not None:
            raise RuntimeError("the sandbox server was already started")
        sock = listening_socket(self.host, self._requested_port, inheritable=True)
        server = uvicorn.Server(_uvicorn_config(self.app))
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="sendoso-sandbox", daemon=True
        )
        self._server, self._thread = server, thread
        thread.start()
        deadline = time.monotonic() + _START_TIMEOUT
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                server.should_exit = True
                thread.join(timeout=_START_TIMEOUT)
                sock.close()
                raise RuntimeError("the sandbox server failed to start")
            time.sleep(0.005)
        self._url = _url(sock)
        self._port = int(sock.getsockname()[1])
        return self

    def stop(self) -> None:
        """Stop serving and wait for in-flight requests (up to a few seconds)."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.should_exit = True
        thread.join(timeout=15)
        if thread.is_alive():
            server.force_exit = True
            thread.join(timeout=5)
        _close(self.app)

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class _NotifyingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, on_started: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_started = on_started

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            self._on_started()


class _Terminated(Exception):
    pass


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise _Terminated


def serve(
    config: SandboxConfig,
    host: str = "127.0.0.1",
    port: int = 8787,
    *,
    allow_remote: bool = False,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve the sandbox in the foreground; Ctrl+C or SIGTERM stops it and returns normally.

    ``on_ready`` is called with the base URL once connections are accepted. Hosts other than
    loopback are refused with :class:`RemoteHostRefusedError` (a :class:`ValueError`) unless
    ``allow_remote``; a port that cannot be bound raises :class:`OSError`.
    """
    check_host(host, allow_remote)
    sock = listening_socket(host, port, inheritable=True)
    url = _url(sock)
    app = create_app(config)
    server = _NotifyingServer(
        _uvicorn_config(app), lambda: on_ready(url) if on_ready is not None else None
    )
    previous_sigterm = None
    if threading.current_thread() is threading.main_thread():
        previous_sigterm = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        server.run(sockets=[sock])
    except (KeyboardInterrupt, _Terminated):
        # uvicorn shuts down gracefully on Ctrl+C or SIGTERM, then re-raises the signal; for
        # the caller that is the normal way to stop, not an error.
        pass
    finally:
        if previous_sigterm is not None:
            signal.signal(signal.SIGTERM, previous_sigterm)
        sock.close()
        _close(app)
