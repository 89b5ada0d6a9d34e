"""A real PostgreSQL for tests and chaos runs: the server CI names, or a private throwaway one.

`SENDOSO_TEST_POSTGRES_URL` (set by `.ci/run`) names a server and a database the test role may
connect to; the role needs CREATEDB. Without it, `PrivateCluster.start()` runs `initdb` and
`pg_ctl` from the local PostgreSQL server binaries into a temporary directory, listening on a
free 127.0.0.1 port with its socket in that directory. Both `initdb` and `pg_ctl` refuse to
run as root, so as root they run as the `postgres` system user (or `nobody`).

Every test (and every chaos run) gets its own database (`temporary_database`), created from
`template0` and dropped with its leftover connections afterwards. `server_url()` is the one
place that picks between the two sources.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import secrets
import shlex
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, create_engine, make_url, text
from sqlalchemy.pool import NullPool

ENV_URL = "SENDOSO_TEST_POSTGRES_URL"
ENV_REQUIRE = "SENDOSO_REQUIRE_POSTGRES"

_SUPERUSER = "sendoso"
_TIMEOUT = 120  # seconds for any one initdb / pg_ctl call
_UNPRIVILEGED_USERS = ("postgres", "nobody")


class PostgresUnavailable(Exception):
    """No PostgreSQL server can be used or started here; the message says why."""


@contextlib.contextmanager
def server_url() -> Iterator[str]:
    """A server URL whose role may create databases: `SENDOSO_TEST_POSTGRES_URL` if set (an
    unusable one is an error, not a reason to fall back), else a private cluster stopped on
    exit. Raises PostgresUnavailable with the reason when neither is possible."""
    configured = os.environ.get(ENV_URL, "").strip()
    if configured:
        try:
            check_server(configured)
        except PostgresUnavailable as exc:
            raise PostgresUnavailable(f"{ENV_URL} is set but unusable: {exc}") from None
        yield configured
        return
    try:
        cluster = PrivateCluster.start()
    except PostgresUnavailable as exc:
        raise PostgresUnavailable(
            f"{ENV_URL} is not set and no private cluster could start: {exc}"
        ) from None
    try:
        yield cluster.url
    finally:
        cluster.stop()


def postgres_required() -> bool:
    return os.environ.get(ENV_REQUIRE, "").strip().lower() in {"1", "true", "yes", "on"}


def admin_engine(url: str) -> Engine:
    """An engine outside transactions (CREATE/DROP DATABASE) that keeps no connection open."""
    return create_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)


def check_server(url: str) -> None:
    """Connect once and check the role may create databases; raise PostgresUnavailable if not."""
    engine = admin_engine(url)
    try:
        with engine.connect() as conn:
            can_create = conn.execute(
                text("SELECT rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = current_user")
            ).scalar_one()
    except Exception as exc:
        shown = make_url(url).render_as_string(hide_password=True)
        raise PostgresUnavailable(f"cannot connect to {shown}: {exc}") from exc
    finally:
        engine.dispose()
    if not can_create:
        raise PostgresUnavailable(f"the role in {ENV_URL} lacks CREATEDB")


@contextlib.contextmanager
def temporary_database(server_url: str) -> Iterator[str]:
    """A fresh, empty, uniquely named database on the server; its URL while the block runs."""
    name = f"sendoso_test_{uuid.uuid4().hex[:20]}"
    engine = admin_engine(server_url)
    try:
        with engine.connect() as conn:
            conn.execute(text(f"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8'"))
        try:
            url = make_url(server_url).set(database=name)
            yield url.render_as_string(hide_password=False)
        finally:
            _drop_database(engine, name)
    finally:
        engine.dispose()


def _drop_database(engine: Engine, name: str) -> None:
    with engine.connect() as conn:
        version = conn.dialect.server_version_info or (0,)
        if version >= (13,):
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            return
        conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = :name AND pid <> pg_backend_pid()"
            ),
            {"name": name},
        )
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))


def find_bindir() -> Path | None:
    """The directory holding initdb, pg_ctl and postgres: PATH first, then Debian's layout."""
    candidates: list[Path] = []
    for tool in ("initdb", "pg_ctl"):
        found = shutil.which(tool)
        if found:
            candidates.append(Path(found).resolve().parent)
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(  # noqa: S603 - pg_config found on PATH
                [pg_config, "--bindir"], capture_output=True, text=True, check=True, timeout=30
            )
            candidates.append(Path(out.stdout.strip()))
    debian = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: [int(n) for n in re.findall(r"\d+", p.parent.name)],
        reverse=True,
    )
    candidates.extend(debian)
    candidates.append(Path("/usr/local/pgsql/bin"))
    for bindir in candidates:
        if all(os.access(bindir / tool, os.X_OK) for tool in ("initdb", "pg_ctl", "postgres")):
            return bindir
    return None


def _free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class PrivateCluster:
    """A throwaway cluster in a temporary directory; `stop()` removes every trace of it."""

    bindir: Path
    base: Path
    run_as: pwd.struct_passwd | None
    port: int = 0
    password: str = ""

    @property
    def data(self) -> Path:
        return self.base / "data"

    @property
    def sockets(self) -> Path:
        return self.base / "sockets"

    @property
    def log(self) -> Path:
        return self.base / "postgres.log"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://{_SUPERUSER}:{self.password}@127.0.0.1:{self.port}/postgres"

    @classmethod
    def start(cls) -> PrivateCluster:
        bindir = find_bindir()
        if bindir is None:
            raise PostgresUnavailable(
                "no PostgreSQL server binaries (initdb, pg_ctl, postgres) found on PATH or in"
                f" /usr/lib/postgresql/*/bin; install them (Debian: apt-get install postgresql)"
                f" or set {ENV_URL}"
            )
        run_as = _unprivileged_user() if os.geteuid() == 0 else None
        base = Path(tempfile.mkdtemp(prefix="sendoso-pg-"))
        cluster = cls(bindir=bindir, base=base, run_as=run_as)
        try:
            cluster._init()
            cluster._launch()
        except BaseException:
            cluster.stop()
            raise
        return cluster

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(PostgresUnavailable):
                self._run(["pg_ctl", "stop", "-D", str(self.data), "-m", "fast", "-w"])
        shutil.rmtree(self.base, ignore_errors=True)

    def _init(self) -> None:
        self.password = secrets.token_hex(16)
        self.sockets.mkdir()
        pwfile = self.base / "pwfile"
        pwfile.write_text(self.password + "\n")
        if self.run_as is not None:
            # The temporary directory is root's and 0700: hand it to the user the server runs as.
            for path in (self.base, self.sockets, pwfile):
                os.chown(path, self.run_as.pw_uid, self.run_as.pw_gid)
        self._run(
            [
                "initdb",
                "-D",
                str(self.data),
                "-U",
                _SUPERUSER,
                f"--pwfile={pwfile}",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--no-locale",
                "--no-sync",
            ]
        )
        pwfile.unlink()

    def pause(self) -> None:
        """Stop the server, keeping its data: a database that went away mid-run."""
        self._run(["pg_ctl", "stop", "-D", str(self.data), "-m", "fast", "-w"])

    def unpause(self) -> None:
        """Start the paused server again on its port (its clients' URL stays valid)."""
        self._start_on(self.port)

    def _launch(self) -> None:
        last_error: PostgresUnavailable | None = None
        for _attempt in range(3):  # the free port may be taken before the server binds it
            self.port = _free_loopback_port()
            try:
                self._start_on(self.port)
            except PostgresUnavailable as exc:
                last_error = exc
                continue
            return
        assert last_error is not None
        raise last_error

    def _start_on(self, port: int) -> None:
        settings = {
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": str(self.sockets),
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "200",
            "port": str(port),
        }
        options = " ".join(f"-c {key}={shlex.quote(value)}" for key, value in settings.items())
        start = ["pg_ctl", "start", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60"]
        self._run([*start, "-o", options])

    def _run(self, argv: Sequence[str]) -> None:
        command = [str(self.bindir / argv[0]), *argv[1:]]
        if self.run_as is not None:
            runuser = shutil.which("runuser")
            if runuser is None:
                raise PostgresUnavailable("running as root and runuser is missing")
            command = [runuser, "-u", self.run_as.pw_name, "--", *command]
        try:
            done = subprocess.run(  # noqa: S603 - the server binaries, fixed arguments
                command,
                cwd=self.base,
                capture_output=True,
                text=True,
                timeout=_TIMEOUT,
                check=False,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise PostgresUnavailable(f"{argv[0]} could not run: {exc}") from exc
        if done.returncode != 0:
            output = (done.stdout + done.stderr).strip()
            if self.log.exists():
                output += "\n--- server log ---\n" + self.log.read_text(errors="replace")[-4000:]
            raise PostgresUnavailable(f"{argv[0]} failed ({done.returncode}):\n{output}")


def _unprivileged_user() -> pwd.struct_passwd:
    for name in _UNPRIVILEGED_USERS:
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise PostgresUnavailable(
        "running as root, and initdb refuses root; no 'postgres' or 'nobody' user to run it as"
    )
