"""The durable ledger: every run, every row, every state transition, on SQLite or PostgreSQL.

SQLAlchemy Core, no ORM: each transition is one conditional ``UPDATE`` (the row must be in
one of the states :data:`~sendoso.ledger.TRANSITIONS` allows, and, where it matters,
leased by the caller), committed before the runner takes its next network step.

Workers share a run by *claiming* rows (:mod:`._leases`). SQLite serialises writers: every
transaction starts with ``BEGIN IMMEDIATE``. This module opens the database (creating or
upgrading its schema, :mod:`._migrations`) and keeps runs; rows (:mod:`._rows`), leases and
approvals (:mod:`._approvals`) are the :class:`Ledger`'s other parts.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from sendoso.errors import Param, Step, Text
from sendoso.ledger._admission import PlanWriter
from sendoso.ledger._approvals import Approvals
from sendoso.ledger._errors import LedgerError, RunExistsError
from sendoso.ledger._journal import SendJournal, journal_path
from sendoso.ledger._leases import Leases
from sendoso.ledger._migrations import migrate
from sendoso.ledger._records import RunInfo, run_from
from sendoso.ledger._rows import Rows
from sendoso.ledger._schema import ROWS, RUNS, SCHEMA, utc_now
from sendoso.ledger._states import RowState

__all__ = ["Ledger", "default_ledger_url"]


def default_ledger_url() -> str:
    """A SQLite file in the user data directory (``$SENDOSO_LEDGER`` overrides)."""
    configured = os.environ.get("SENDOSO_LEDGER")
    if configured:
        return configured
    import platformdirs

    path = Path(platformdirs.user_data_dir("sendoso")) / "ledger.db"
    return f"sqlite:///{path}"


def _switch_to_wal(cursor: Any, busy_timeout: float) -> None:
    """``PRAGMA journal_mode=WAL``, waiting out a lock like any other statement would.

    While the database is still in rollback-journal mode (a fresh file, opened by several
    processes at once), the switch needs a lock it does not wait for: SQLite answers
    "database is locked" at once, without its busy handler. Tried again, with short sleeps,
    until ``busy_timeout`` has passed (the same bound as every other statement); once one
    process has switched, the mode is stored in the file and the others' switch is a no-op.
    """
    deadline = time.monotonic() + busy_timeout
    pause = 0.005
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.1)


class Ledger(Rows, Leases, Approvals):
    """One ledger database. Thread-safe: every method uses its own pooled connection."""

    def __init__(self, url: str | None = None, *, busy_timeout: float = 30.0) -> None:
        self.url = url or default_ledger_url()
        self._scratch_dir: str | None = None
        try:
            parsed = sa.make_url(self.url)
        except sa.exc.ArgumentError:
            raise LedgerError(
                Text(
                    Param("ledger"),
                    f" {self.url!r} is not a database URL; use sqlite:///PATH or "
                    "postgresql+psycopg://USER@HOST/DB",
                ),
                field="ledger",
            ) from None
        self.display_url = parsed.render_as_string(hide_password=True)
        self.dialect = parsed.get_backend_name()
        if self.dialect not in ("sqlite", "postgresql"):
            raise LedgerError(f"the ledger supports SQLite and PostgreSQL, not {self.dialect}")
        path_opened: Path | None = None
        if self.dialect == "sqlite" and parsed.database and parsed.database != ":memory:":
            path = path_opened = Path(parsed.database).expanduser()
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                if not path.exists():
                    # Recipients' names, emails and addresses live here: readable by the
                    # owner only, like the token cache.
                    # (SQLite gives its -wal and -shm files the same mode.)
                    path.touch(mode=0o600)
            except OSError as exc:
                # A read-only filesystem, a file where a directory should be, no permission:
                # the place given for the ledger is unusable, like a bad URL.
                raise LedgerError(
                    f"cannot create the ledger {self.display_url}: "
                    f"{exc.strerror or exc} ({exc.filename or path})",
                    field="ledger",
                ) from None
        self.journal = SendJournal(journal_path(parsed))
        self._engine = self._make_engine(parsed, busy_timeout)
        try:
            self._migrate()
            if path_opened is not None:
                self._remember_file(path_opened)
            self.journal.prepare()
            # Sends the API confirmed that an earlier process could not record: first.
            self.apply_journal()
        except sa.exc.OperationalError as exc:
            self._engine.dispose()
            raise LedgerError(
                f"cannot open the ledger {self.display_url}: {exc.orig or exc}", field="ledger"
            ) from None
        except BaseException:
            self._engine.dispose()
            raise

    @classmethod
    def scratch(cls) -> Ledger:
        """A throwaway ledger in a temporary file (not in memory, so that planning a huge
        file for a dry run stays small), deleted by :meth:`close`."""
        directory = tempfile.mkdtemp(prefix="sendoso-scratch-")
        ledger = cls(f"sqlite:///{directory}/scratch.db")
        ledger._scratch_dir = directory
        return ledger

    @staticmethod
    def _make_engine(url: sa.URL, busy_timeout: float) -> Engine:
        # hide_parameters: a failed statement's message must not carry recipients' names,
        # emails and addresses into a terminal or a log.
        if url.get_backend_name() != "sqlite":
            return sa.create_engine(url, pool_pre_ping=True, hide_parameters=True)
        memory = not url.database or url.database == ":memory:"
        engine = sa.create_engine(
            url,
            hide_parameters=True,
            connect_args={"timeout": busy_timeout, "check_same_thread": False},
            poolclass=sa.pool.StaticPool if memory else sa.pool.QueuePool,
        )

        @sa.event.listens_for(engine, "connect")
        def _connect(dbapi_connection: Any, _record: Any) -> None:
            # Let SQLAlchemy's "begin" event issue BEGIN itself (the pysqlite driver would
            # otherwise defer it), so that every transaction takes the write lock up front
            # and two writers can never deadlock upgrading a read lock.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            if not memory:
                _switch_to_wal(cursor, busy_timeout)
                # FULL: a row committed "submitting" before its POST must survive even a
                # power cut, or a resume could POST it again to a server that does not
                # deduplicate. One fsync per transition is nothing beside the network.
                cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        @sa.event.listens_for(engine, "begin")
        def _begin(conn: Connection) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine

    def _migrate(self) -> None:
        with self._engine.begin() as conn:
            migrate(conn, display_url=self.display_url)

    def threads(self, wanted: int) -> int:
        """How many threads may use this ledger at once: SQLite takes one writer at a time
        anyway (more would only queue on its lock); a server takes a few."""
        return 1 if self.dialect == "sqlite" else max(1, min(wanted, 4))

    @property
    def schema_version(self) -> int:
        with self._engine.connect() as conn:
            return int(conn.execute(sa.select(SCHEMA.c.version)).scalar_one())

    def close(self) -> None:
        self._engine.dispose()
        self.journal.close()
        if self._scratch_dir is not None:
            shutil.rmtree(self._scratch_dir, ignore_errors=True)
            self._scratch_dir = None

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # Runs ------------------------------------------------------------------------------

    @contextmanager
    def new_run(self, run: RunInfo) -> Iterator[PlanWriter]:
        """Create ``run`` and write its rows through the yielded writer, atomically.

        Raises :class:`RunExistsError` if the run id is taken (by a run created before, or
        concurrently by another worker).
        """
        now = utc_now()
        with self._engine.begin() as conn:
            exists = conn.execute(
                sa.select(RUNS.c.run_id).where(RUNS.c.run_id == run.run_id)
            ).first()
            if exists:
                raise RunExistsError(run.run_id)
            try:
                conn.execute(
                    RUNS.insert().values(
                        run_id=run.run_id,
                        source=run.source,
                        created_at=now,
                        updated_at=now,
                        base_url=run.base_url,
                        input_path=run.input_path,
                        input_fingerprint=run.input_fingerprint,
                        options=json.dumps(run.options, sort_keys=True, default=str),
                        rows_total=0,
                    )
                )
            except IntegrityError:
                # Created by another worker between our check and our insert (PostgreSQL
                # lets both check; the second insert waits, then collides).
                raise RunExistsError(run.run_id) from None
            writer = PlanWriter(conn, run.run_id)
            yield writer
            conn.execute(
                RUNS.update()
                .where(RUNS.c.run_id == run.run_id)
                .values(rows_total=writer.rows_written)
            )

    def run(self, run_id: str) -> RunInfo | None:
        with self._engine.connect() as conn:
            record = conn.execute(sa.select(RUNS).where(RUNS.c.run_id == run_id)).first()
        return run_from(record) if record else None

    def require_run(self, run_id: str) -> RunInfo:
        run = self.run(run_id)
        if run is None:
            raise LedgerError(
                Text(
                    f"no run {run_id!r} in the ledger {self.display_url}; ",
                    Step("runs"),
                    " lists them",
                )
            )
        return run

    def runs(self, *, source: str | None = None) -> list[tuple[RunInfo, dict[RowState, int]]]:
        """Every run, newest first, with its row counts per state."""
        with self._engine.connect() as conn:
            query = sa.select(RUNS).order_by(RUNS.c.created_at.desc(), RUNS.c.run_id)
            if source:
                query = query.where(RUNS.c.source == source)
            runs = [run_from(r) for r in conn.execute(query)]
            counts: dict[str, dict[RowState, int]] = {r.run_id: {} for r in runs}
            for run_id, state, n in conn.execute(
                sa.select(ROWS.c.run_id, ROWS.c.state, sa.func.count()).group_by(
                    ROWS.c.run_id, ROWS.c.state
                )
            ):
                if run_id in counts:
                    counts[run_id][RowState(state)] = n
        return [(run, counts[run.run_id]) for run in runs]

    def discard_unstarted(self, run_id: str) -> bool:
        """Delete a run nobody approved and nothing was attempted for (a plan saved at a
        declined prompt), so it can be planned again; False if it must be kept."""
        with self._engine.begin() as conn:
            run = conn.execute(
                sa.select(RUNS.c.confirmed_at).where(RUNS.c.run_id == run_id)
            ).first()
            if run is None or run.confirmed_at is not None:
                return False
            touched = conn.execute(
                sa.select(sa.func.count()).where(
                    ROWS.c.run_id == run_id,
                    sa.or_(
                        ROWS.c.attempts > 0,
                        ROWS.c.state.not_in([RowState.PLANNED.value, RowState.SKIPPED.value]),
                    ),
                )
            ).scalar_one()
            if touched:
                return False
            conn.execute(ROWS.delete().where(ROWS.c.run_id == run_id))
            conn.execute(RUNS.delete().where(RUNS.c.run_id == run_id))
            return True

    def confirm(self, run_id: str) -> None:
        """Record that a person approved the run's totals (or passed ``--yes``)."""
        with self._engine.begin() as conn:
            conn.execute(
                RUNS.update()
                .where(RUNS.c.run_id == run_id, RUNS.c.confirmed_at.is_(None))
                .values(confirmed_at=utc_now())
            )

    def set_note(self, run_id: str, note: str | None, *, finished: bool = False) -> None:
        now = utc_now()
        values: dict[str, Any] = {"note": note, "updated_at": now}
        values["finished_at"] = now if finished else None
        with self._engine.begin() as conn:
            conn.execute(RUNS.update().where(RUNS.c.run_id == run_id).values(**values))

    # One send at a time (the MCP server) -------------------------------------------------

    def ensure_run(self, run: RunInfo) -> RunInfo:
        """The run ``run.run_id``, created (empty, approved) if it does not exist yet. Rows
        are then added one at a time with :meth:`add_row`."""
        existing = self.run(run.run_id)
        if existing is not None:
            return existing
        try:
            with self.new_run(run):
                pass
        except RunExistsError:
            pass  # created meanwhile by another process: use theirs
        self.confirm(run.run_id)
        return self.require_run(run.run_id)
