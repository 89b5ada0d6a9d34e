"""The durable ledger: every run, every row, every state transition, on SQLite or PostgreSQL.

SQLAlchemy Core, no ORM: each transition is one conditional ``UPDATE`` (the row must be in
one of the states :data:`~sendoso.batch._states.TRANSITIONS` allows, and, where it matters,
leased by the caller), committed before the runner takes its next network step.

Workers share a run by *claiming* rows: a claim sets a lease (owner and expiry) on rows
nobody holds, chosen with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL so that concurrent claims
never wait for or collide with each other. SQLite serialises writers instead: every
transaction starts with ``BEGIN IMMEDIATE``. A killed worker's rows become claimable when
its lease runs out, or at once when its owner is a process on this host that no longer exists.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from sendoso.batch._states import OPEN_STATES, TRANSITIONS, RowState
from sendoso.errors import InputError, SendosoError

__all__ = [
    "SCHEMA_VERSION",
    "Approval",
    "ApprovalState",
    "Ledger",
    "LedgerError",
    "LedgerFailedError",
    "LedgerRow",
    "PlanWriter",
    "PlannedRow",
    "RunExistsError",
    "RunInfo",
    "SendAdmission",
    "default_ledger_url",
    "ledger_failures",
    "new_owner",
]

SCHEMA_VERSION = 4
_PAGE = 500

Totals = dict[str, tuple[Decimal, Decimal]]


class LedgerError(InputError):
    """The ledger cannot be opened or used (wrong URL, newer schema, unknown run or row)."""


class LedgerFailedError(SendosoError):
    """The ledger database failed while in use (locked too long, unreachable, full)."""


def describe_failure(exc: sa.exc.SQLAlchemyError) -> str:
    """A database failure in one line: the driver's own words, no SQL, no parameters
    (recipients' data)."""
    cause = str(getattr(exc, "orig", None) or exc).splitlines()[0]
    return f"the ledger failed ({type(exc).__name__}: {cause})"


@contextmanager
def ledger_failures() -> Iterator[None]:
    """Turn a database failure into :class:`LedgerFailedError`."""
    try:
        yield
    except sa.exc.SQLAlchemyError as exc:
        raise LedgerFailedError(
            f"{describe_failure(exc)}; nothing recorded is lost: once it works again, "
            "resume the run"
        ) from None


class RunExistsError(LedgerError):
    def __init__(self, run_id: str) -> None:
        super().__init__(f"run {run_id!r} already exists")
        self.run_id = run_id


def default_ledger_url() -> str:
    """A SQLite file in the user data directory (``$SENDOSO_LEDGER`` overrides)."""
    configured = os.environ.get("SENDOSO_LEDGER")
    if configured:
        return configured
    import platformdirs

    path = Path(platformdirs.user_data_dir("sendoso")) / "ledger.db"
    return f"sqlite:///{path}"


def _host_id() -> str:
    """This host, and its PID namespace: two containers sharing a hostname do not share
    process ids, so a dead-looking pid there says nothing."""
    try:
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        namespace = 0
    return f"{socket.gethostname()}#{namespace}"


def new_owner() -> str:
    """A lease owner id: host and pid (so a dead local owner is recognised) plus a nonce."""
    return f"{_host_id()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _owner_is_dead(owner: str) -> bool:
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != _host_id() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _db_clock(dialect: str) -> sa.ColumnElement[float]:
    """Seconds since the epoch by the database's clock: leases are compared across hosts,
    whose own clocks may disagree."""
    if dialect == "postgresql":
        return sa.literal_column("extract(epoch from clock_timestamp())", sa.Float)
    return sa.literal_column("((julianday('now') - 2440587.5) * 86400.0)", sa.Float)


def _now() -> datetime:
    return datetime.now(UTC)


class _UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Timezone-aware UTC in, timezone-aware UTC out, on SQLite (naive text) too."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the ledger")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


_metadata = sa.MetaData()

_schema = sa.Table(
    "sendoso_schema",
    _metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
)

_runs = sa.Table(
    "sendoso_runs",
    _metadata,
    sa.Column("run_id", sa.String(200), primary_key=True),
    sa.Column("source", sa.String(20), nullable=False),
    sa.Column("created_at", _UTCDateTime, nullable=False),
    sa.Column("updated_at", _UTCDateTime, nullable=False),
    sa.Column("base_url", sa.Text, nullable=False),
    sa.Column("input_path", sa.Text),
    sa.Column("input_fingerprint", sa.String(64)),
    sa.Column("options", sa.Text, nullable=False),
    sa.Column("rows_total", sa.Integer, nullable=False, default=0),
    sa.Column("note", sa.Text),
    sa.Column("confirmed_at", _UTCDateTime),
    sa.Column("finished_at", _UTCDateTime),
)

_rows = sa.Table(
    "sendoso_rows",
    _metadata,
    sa.Column("run_id", sa.String(200), primary_key=True),
    sa.Column("row_number", sa.Integer, primary_key=True),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("skip_kind", sa.String(20)),
    sa.Column("send_key", sa.String(200), unique=True),
    sa.Column("recipient", sa.String(320)),
    sa.Column("name", sa.String(300)),
    sa.Column("gift_id", sa.String(200)),
    sa.Column("dedupe_key", sa.String(600)),
    sa.Column("request", sa.Text),
    sa.Column("estimate", sa.Text),
    # Both come from the API's replies, unvalidated: no length limit to trip over.
    sa.Column("send_id", sa.Text),
    sa.Column("status", sa.Text),
    sa.Column("status_at", _UTCDateTime),
    sa.Column("error", sa.Text),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("lease_owner", sa.String(200)),
    sa.Column("lease_expires", sa.Float),
    sa.Column("updated_at", _UTCDateTime, nullable=False),
    sa.Column("submitted_at", _UTCDateTime),
    sa.ForeignKeyConstraint(["run_id"], ["sendoso_runs.run_id"]),
    sa.Index("ix_sendoso_rows_state", "run_id", "state"),
    sa.Index("ix_sendoso_rows_dedupe", "run_id", "dedupe_key"),
    sa.Index("ix_sendoso_rows_recipient", "recipient", "submitted_at"),
)
# The cross-run duplicate check (before every send, and while planning) looks a key up across
# all runs, which the (run_id, dedupe_key) index cannot serve: without this one it read every
# row of the ledger.
_dedupe_key_index = sa.Index("ix_sendoso_rows_dedupe_key", _rows.c.dedupe_key, _rows.c.state)


#: Sends that wait for a person (``sendoso approvals``) before they become rows: a row is
#: sendable by any runner, an approval is not until approved.
_approvals = sa.Table(
    "sendoso_approvals",
    _metadata,
    sa.Column("approval_id", sa.String(40), primary_key=True),
    sa.Column("run_id", sa.String(200), nullable=False),
    sa.Column("send_key", sa.String(200), nullable=False, unique=True),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("recipient", sa.String(320)),
    sa.Column("name", sa.String(300)),
    sa.Column("gift_id", sa.String(200)),
    sa.Column("dedupe_key", sa.String(600)),
    sa.Column("request", sa.Text, nullable=False),
    sa.Column("estimate", sa.Text),
    sa.Column("reason", sa.Text),
    # JSON: what the requester knew (its guardrails), so that approving re-checks them.
    sa.Column("context", sa.Text, nullable=False),
    sa.Column("created_at", _UTCDateTime, nullable=False),
    sa.Column("decided_at", _UTCDateTime),
    sa.Column("note", sa.Text),
    sa.Column("row_number", sa.Integer),
    sa.ForeignKeyConstraint(["run_id"], ["sendoso_runs.run_id"]),
    sa.Index("ix_sendoso_approvals_state", "state", "created_at"),
)


def _migrate_to_1(conn: Connection) -> None:
    _metadata.create_all(conn, tables=[_runs, _rows])


def _migrate_to_2(conn: Connection) -> None:
    # Runs remember whether a person approved them (a saved plan is not consent).
    columns = {c["name"] for c in sa.inspect(conn).get_columns("sendoso_runs")}
    if "confirmed_at" not in columns:
        kind = _runs.c.confirmed_at.type.compile(dialect=conn.dialect)
        conn.execute(sa.text(f"ALTER TABLE sendoso_runs ADD COLUMN confirmed_at {kind}"))


def _migrate_to_3(conn: Connection) -> None:
    # Sends waiting for a person's approval (the MCP server's threshold).
    _metadata.create_all(conn, tables=[_approvals])


def _migrate_to_4(conn: Connection) -> None:
    # Ledgers created before the index existed (a new one gets it with its tables).
    _dedupe_key_index.create(conn, checkfirst=True)


# Hand-written rather than Alembic: the ledger lives in the user's own SQLite file or
# database and must upgrade itself on open, with no migration scripts directory or ini file
# to ship. Each entry takes the schema from version N-1 to N, inside one transaction.
_MIGRATIONS: list[Callable[[Connection], None]] = [
    _migrate_to_1,
    _migrate_to_2,
    _migrate_to_3,
    _migrate_to_4,
]


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    base_url: str
    options: dict[str, Any] = field(default_factory=dict)
    source: str = "batch"
    input_path: str | None = None
    input_fingerprint: str | None = None
    created_at: datetime | None = None
    rows_total: int = 0
    note: str | None = None
    finished_at: datetime | None = None
    confirmed_at: datetime | None = None


@dataclass(frozen=True)
class PlannedRow:
    """A row as the planner leaves it: ``planned`` (with its request) or ``skipped``."""

    number: int
    state: RowState
    send_key: str | None = None
    recipient: str | None = None
    name: str | None = None
    gift_id: str | None = None
    dedupe_key: str | None = None
    request: Mapping[str, Any] | None = None
    estimate: Totals | None = None
    skip_kind: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class LedgerRow:
    run_id: str
    number: int
    state: RowState
    skip_kind: str | None
    send_key: str | None
    recipient: str | None
    name: str | None
    gift_id: str | None
    dedupe_key: str | None
    request: dict[str, Any] | None
    estimate: Totals | None
    send_id: str | None
    status: str | None
    status_at: datetime | None
    error: str | None
    attempts: int
    updated_at: datetime
    submitted_at: datetime | None
    lease_owner: str | None


class ApprovalState(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


@dataclass(frozen=True)
class Approval:
    """A send held for a person's decision. ``row_number`` is the row it became once
    approved (in ``run_id``)."""

    approval_id: str
    run_id: str
    send_key: str
    request: dict[str, Any]
    state: ApprovalState = ApprovalState.PENDING
    recipient: str | None = None
    name: str | None = None
    gift_id: str | None = None
    dedupe_key: str | None = None
    estimate: Totals | None = None
    reason: str | None = None
    context: dict[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None
    decided_at: datetime | None = None
    note: str | None = None
    row_number: int | None = None


def _approval_from(record: sa.Row[Any]) -> Approval:
    m = record._mapping
    return Approval(
        approval_id=m["approval_id"],
        run_id=m["run_id"],
        send_key=m["send_key"],
        request=json.loads(m["request"]),
        state=ApprovalState(m["state"]),
        recipient=m["recipient"],
        name=m["name"],
        gift_id=m["gift_id"],
        dedupe_key=m["dedupe_key"],
        estimate=_load_totals(m["estimate"]),
        reason=m["reason"],
        context=json.loads(m["context"]),
        created_at=m["created_at"],
        decided_at=m["decided_at"],
        note=m["note"],
        row_number=m["row_number"],
    )


def _dump_totals(totals: Totals | None) -> str | None:
    if totals is None:
        return None
    return json.dumps({cur: [str(low), str(high)] for cur, (low, high) in totals.items()})


def _load_totals(text: str | None) -> Totals | None:
    if text is None:
        return None
    return {cur: (Decimal(low), Decimal(high)) for cur, (low, high) in json.loads(text).items()}


def _row_from(record: sa.Row[Any]) -> LedgerRow:
    m = record._mapping
    return LedgerRow(
        run_id=m["run_id"],
        number=m["row_number"],
        state=RowState(m["state"]),
        skip_kind=m["skip_kind"],
        send_key=m["send_key"],
        recipient=m["recipient"],
        name=m["name"],
        gift_id=m["gift_id"],
        dedupe_key=m["dedupe_key"],
        request=json.loads(m["request"]) if m["request"] else None,
        estimate=_load_totals(m["estimate"]),
        send_id=m["send_id"],
        status=m["status"],
        status_at=m["status_at"],
        error=m["error"],
        attempts=m["attempts"],
        updated_at=m["updated_at"],
        submitted_at=m["submitted_at"],
        lease_owner=m["lease_owner"],
    )


def _run_from(record: sa.Row[Any]) -> RunInfo:
    m = record._mapping
    return RunInfo(
        run_id=m["run_id"],
        base_url=m["base_url"],
        options=json.loads(m["options"]),
        source=m["source"],
        input_path=m["input_path"],
        input_fingerprint=m["input_fingerprint"],
        created_at=m["created_at"],
        rows_total=m["rows_total"],
        note=m["note"],
        finished_at=m["finished_at"],
        confirmed_at=m["confirmed_at"],
    )


#: States in which a row's gift went out, or may have.
_GIFTED = [RowState.SUBMITTED.value, RowState.SUBMITTING.value, RowState.UNKNOWN.value]


def _recently_gifted(
    conn: Connection, recipients: Iterable[str], *, since: datetime, exclude_run: str | None
) -> set[str]:
    wanted = sorted(set(recipients))
    found: set[str] = set()
    for start in range(0, len(wanted), _PAGE):
        query = sa.select(_rows.c.recipient).where(
            _rows.c.recipient.in_(wanted[start : start + _PAGE]),
            _rows.c.state.in_(_GIFTED),
            _rows.c.submitted_at >= since,
        )
        if exclude_run is not None:
            query = query.where(_rows.c.run_id != exclude_run)
        found.update(conn.execute(query.distinct()).scalars())
    return found


def _sent_elsewhere(
    conn: Connection, dedupe_keys: Iterable[str], *, run_id: str, base_url: str
) -> dict[str, tuple[str, int]]:
    """For each key: a row of *another* run to the same host that sent (or may have sent)
    that recipient that gift, as (run id, row number)."""
    wanted = sorted(set(dedupe_keys))
    found: dict[str, tuple[str, int]] = {}
    for start in range(0, len(wanted), _PAGE):
        query = (
            sa.select(_rows.c.dedupe_key, _rows.c.run_id, _rows.c.row_number)
            .join(_runs, _runs.c.run_id == _rows.c.run_id)
            .where(
                _rows.c.dedupe_key.in_(wanted[start : start + _PAGE]),
                _rows.c.state.in_(_GIFTED),
                _rows.c.run_id != run_id,
                _runs.c.base_url == base_url,
            )
        )
        for key, other_run, number in conn.execute(query):
            found.setdefault(key, (other_run, number))
    return found


def _resent_reason(recipient: str, other: tuple[str, int], number: int) -> str:
    return (
        f"{recipient} already got this gift in run {other[0]} (row {other[1]}); "
        f"--allow-resend sends it again (row {number})"
    )


class PlanWriter:
    """Writes a new run's rows inside the one transaction that created the run, so a run is
    either fully planned or absent; a crash while planning leaves nothing behind."""

    def __init__(self, conn: Connection, run_id: str) -> None:
        self._conn = conn
        self._run_id = run_id
        self.rows_written = 0

    def first_rows(self, dedupe_keys: Iterable[str]) -> dict[str, int]:
        """For keys already planned in this run: the row that has each one."""
        wanted = sorted(set(dedupe_keys))
        found: dict[str, int] = {}
        for start in range(0, len(wanted), _PAGE):
            chunk = wanted[start : start + _PAGE]
            query = (
                sa.select(_rows.c.dedupe_key, sa.func.min(_rows.c.row_number))
                .where(_rows.c.run_id == self._run_id, _rows.c.dedupe_key.in_(chunk))
                .group_by(_rows.c.dedupe_key)
            )
            for key, number in self._conn.execute(query):
                found[key] = number
        return found

    def recently_gifted(
        self, recipients: Iterable[str], *, since: datetime, exclude_run: str | None = None
    ) -> set[str]:
        """:meth:`Ledger.recently_gifted`, read inside the planning transaction (on SQLite a
        second connection would wait for this one's write lock)."""
        return _recently_gifted(self._conn, recipients, since=since, exclude_run=exclude_run)

    def sent_elsewhere(
        self, dedupe_keys: Iterable[str], *, run_id: str, base_url: str
    ) -> dict[str, tuple[str, int]]:
        return _sent_elsewhere(self._conn, dedupe_keys, run_id=run_id, base_url=base_url)

    def add(self, rows: Sequence[PlannedRow]) -> None:
        if not rows:
            return
        now = _now()
        self._conn.execute(
            _rows.insert(),
            [
                {
                    "run_id": self._run_id,
                    "row_number": row.number,
                    "state": row.state.value,
                    "skip_kind": row.skip_kind,
                    "send_key": row.send_key,
                    "recipient": row.recipient,
                    "name": row.name,
                    "gift_id": row.gift_id,
                    "dedupe_key": row.dedupe_key,
                    "request": json.dumps(row.request) if row.request is not None else None,
                    "estimate": _dump_totals(row.estimate),
                    "error": row.error,
                    "attempts": 0,
                    "updated_at": now,
                }
                for row in rows
            ],
        )
        self.rows_written += len(rows)


#: States in which a row costs money, or may: counted against spending caps.
_SPENDING = [
    RowState.PLANNED.value,
    RowState.SUBMITTING.value,
    RowState.SUBMITTED.value,
    RowState.UNKNOWN.value,
]


def _add_totals(into: dict[str, tuple[Decimal, Decimal]], text: str | None) -> None:
    for cur, (low, high) in (_load_totals(text) or {}).items():
        old_low, old_high = into.get(cur, (Decimal(0), Decimal(0)))
        into[cur] = (old_low + low, old_high + high)


class SendAdmission:
    """What a rule deciding whether one more send may be added can read, inside the very
    transaction that adds it (see :meth:`Ledger.add_row`): two sends admitted at once can
    never both fit under a cap only one of them fits under."""

    def __init__(self, conn: Connection, run_id: str) -> None:
        self._conn = conn
        self.run_id = run_id

    def spend(self, *, source: str, since: datetime | None = None) -> Totals:
        """The estimated cost (low, high per currency) of the rows of every run from
        ``source`` that cost money or may: in flight, sent, unknown, and planned. With
        ``since``, only rows attempted since then, plus every planned one."""
        query = (
            sa.select(_rows.c.estimate)
            .join(_runs, _runs.c.run_id == _rows.c.run_id)
            .where(
                _runs.c.source == source,
                _rows.c.estimate.is_not(None),
                _rows.c.state.in_(_SPENDING),
            )
        )
        if since is not None:
            query = query.where(
                sa.or_(
                    _rows.c.state == RowState.PLANNED.value,
                    _rows.c.submitted_at >= since,
                )
            )
        totals: Totals = {}
        for (text,) in self._conn.execute(query):
            _add_totals(totals, text)
        return totals

    def recently_gifted(self, recipient: str, *, since: datetime) -> bool:
        """Whether ``recipient`` was sent anything since ``since`` by any run (in flight and
        unknown sends count), or is about to be by this run."""
        if _recently_gifted(self._conn, [recipient], since=since, exclude_run=None):
            return True
        return self._planned_here(_rows.c.recipient == recipient)

    def sent_before(self, dedupe_key: str, *, base_url: str) -> tuple[str, int] | None:
        """A row of any run to the same host that sent (or may have, or is about to) this
        recipient this gift, as (run id, row number)."""
        other = _sent_elsewhere(self._conn, [dedupe_key], run_id="", base_url=base_url)
        if dedupe_key in other:
            return other[dedupe_key]
        number = self._conn.execute(
            sa.select(_rows.c.row_number).where(
                _rows.c.run_id == self.run_id,
                _rows.c.dedupe_key == dedupe_key,
                _rows.c.state == RowState.PLANNED.value,
            )
        ).scalar()
        return (self.run_id, int(number)) if number is not None else None

    def _planned_here(self, condition: sa.ColumnElement[bool]) -> bool:
        found = self._conn.execute(
            sa.select(_rows.c.row_number).where(
                _rows.c.run_id == self.run_id,
                _rows.c.state == RowState.PLANNED.value,
                condition,
            )
        ).first()
        return found is not None


class Ledger:
    """One ledger database. Thread-safe: every method uses its own pooled connection."""

    def __init__(self, url: str | None = None, *, busy_timeout: float = 30.0) -> None:
        self.url = url or default_ledger_url()
        self._scratch_dir: str | None = None
        try:
            parsed = sa.make_url(self.url)
        except sa.exc.ArgumentError:
            raise LedgerError(
                f"--ledger {self.url!r} is not a database URL; use sqlite:///PATH or "
                "postgresql+psycopg://USER@HOST/DB"
            ) from None
        self.display_url = parsed.render_as_string(hide_password=True)
        self.dialect = parsed.get_backend_name()
        if self.dialect not in ("sqlite", "postgresql"):
            raise LedgerError(f"the ledger supports SQLite and PostgreSQL, not {self.dialect}")
        if self.dialect == "sqlite" and parsed.database and parsed.database != ":memory:":
            path = Path(parsed.database).expanduser()
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists():
                # Recipients' names, emails and addresses live here: readable by the owner
                # only, like the token cache.
                # (SQLite gives its -wal and -shm files the same mode.)
                path.touch(mode=0o600)
        self._engine = self._make_engine(parsed, busy_timeout)
        try:
            self._migrate()
        except sa.exc.OperationalError as exc:
            self._engine.dispose()
            raise LedgerError(
                f"cannot open the ledger {self.display_url}: {exc.orig or exc}"
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
                cursor.execute("PRAGMA journal_mode=WAL")
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
            if self.dialect == "postgresql":
                # Two workers opening a fresh database at once must not both create tables.
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(7270531)"))
            _metadata.create_all(conn, tables=[_schema])
            version = conn.execute(sa.select(_schema.c.version)).scalar()
            if version is None:
                version = 0
                conn.execute(_schema.insert().values(id=1, version=0))
            if version > SCHEMA_VERSION:
                raise LedgerError(
                    f"the ledger {self.display_url} has schema {version}, newer than this "
                    f"sendoso knows ({SCHEMA_VERSION}); upgrade sendoso"
                )
            for target in range(version + 1, SCHEMA_VERSION + 1):
                _MIGRATIONS[target - 1](conn)
                conn.execute(_schema.update().values(version=target))

    def threads(self, wanted: int) -> int:
        """How many threads may use this ledger at once: SQLite takes one writer at a time
        anyway (more would only queue on its lock); a server takes a few."""
        return 1 if self.dialect == "sqlite" else max(1, min(wanted, 4))

    @property
    def schema_version(self) -> int:
        with self._engine.connect() as conn:
            return int(conn.execute(sa.select(_schema.c.version)).scalar_one())

    def close(self) -> None:
        self._engine.dispose()
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
        now = _now()
        with self._engine.begin() as conn:
            exists = conn.execute(
                sa.select(_runs.c.run_id).where(_runs.c.run_id == run.run_id)
            ).first()
            if exists:
                raise RunExistsError(run.run_id)
            try:
                conn.execute(
                    _runs.insert().values(
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
                _runs.update()
                .where(_runs.c.run_id == run.run_id)
                .values(rows_total=writer.rows_written)
            )

    def run(self, run_id: str) -> RunInfo | None:
        with self._engine.connect() as conn:
            record = conn.execute(sa.select(_runs).where(_runs.c.run_id == run_id)).first()
        return _run_from(record) if record else None

    def require_run(self, run_id: str) -> RunInfo:
        run = self.run(run_id)
        if run is None:
            raise LedgerError(
                f"no run {run_id!r} in the ledger {self.display_url}; "
                "`sendoso batch runs` lists them"
            )
        return run

    def runs(self, *, source: str | None = None) -> list[tuple[RunInfo, dict[RowState, int]]]:
        """Every run, newest first, with its row counts per state."""
        with self._engine.connect() as conn:
            query = sa.select(_runs).order_by(_runs.c.created_at.desc(), _runs.c.run_id)
            if source:
                query = query.where(_runs.c.source == source)
            runs = [_run_from(r) for r in conn.execute(query)]
            counts: dict[str, dict[RowState, int]] = {r.run_id: {} for r in runs}
            for run_id, state, n in conn.execute(
                sa.select(_rows.c.run_id, _rows.c.state, sa.func.count()).group_by(
                    _rows.c.run_id, _rows.c.state
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
                sa.select(_runs.c.confirmed_at).where(_runs.c.run_id == run_id)
            ).first()
            if run is None or run.confirmed_at is not None:
                return False
            touched = conn.execute(
                sa.select(sa.func.count()).where(
                    _rows.c.run_id == run_id,
                    sa.or_(
                        _rows.c.attempts > 0,
                        _rows.c.state.not_in([RowState.PLANNED.value, RowState.SKIPPED.value]),
                    ),
                )
            ).scalar_one()
            if touched:
                return False
            conn.execute(_rows.delete().where(_rows.c.run_id == run_id))
            conn.execute(_runs.delete().where(_runs.c.run_id == run_id))
            return True

    def confirm(self, run_id: str) -> None:
        """Record that a person approved the run's totals (or passed ``--yes``)."""
        with self._engine.begin() as conn:
            conn.execute(
                _runs.update()
                .where(_runs.c.run_id == run_id, _runs.c.confirmed_at.is_(None))
                .values(confirmed_at=_now())
            )

    def set_note(self, run_id: str, note: str | None, *, finished: bool = False) -> None:
        now = _now()
        values: dict[str, Any] = {"note": note, "updated_at": now}
        values["finished_at"] = now if finished else None
        with self._engine.begin() as conn:
            conn.execute(_runs.update().where(_runs.c.run_id == run_id).values(**values))

    # Rows ------------------------------------------------------------------------------

    def counts(self, run_id: str) -> dict[RowState, int]:
        with self._engine.connect() as conn:
            result = conn.execute(
                sa.select(_rows.c.state, sa.func.count())
                .where(_rows.c.run_id == run_id)
                .group_by(_rows.c.state)
            )
            return {RowState(state): n for state, n in result}

    def skip_counts(self, run_id: str) -> dict[str, int]:
        """Skipped rows per reason (invalid, duplicate, budget, cooldown, gift_gone)."""
        with self._engine.connect() as conn:
            result = conn.execute(
                sa.select(_rows.c.skip_kind, sa.func.count())
                .where(_rows.c.run_id == run_id, _rows.c.state == RowState.SKIPPED.value)
                .group_by(_rows.c.skip_kind)
            )
            return {kind or "unknown": n for kind, n in result}

    def status_counts(self, run_id: str) -> dict[str, int]:
        """Submitted rows per last known send status."""
        with self._engine.connect() as conn:
            result = conn.execute(
                sa.select(_rows.c.status, sa.func.count())
                .where(_rows.c.run_id == run_id, _rows.c.state == RowState.SUBMITTED.value)
                .group_by(_rows.c.status)
            )
            return {status or "unknown": n for status, n in result}

    def row(self, run_id: str, number: int) -> LedgerRow | None:
        with self._engine.connect() as conn:
            record = conn.execute(
                sa.select(_rows).where(_rows.c.run_id == run_id, _rows.c.row_number == number)
            ).first()
        return _row_from(record) if record else None

    def rows(self, run_id: str, *, states: Iterable[RowState] | None = None) -> Iterator[LedgerRow]:
        """The run's rows in row order, read a page at a time."""
        wanted = [s.value for s in states] if states is not None else None
        after = -1
        while True:
            query = (
                sa.select(_rows)
                .where(_rows.c.run_id == run_id, _rows.c.row_number > after)
                .order_by(_rows.c.row_number)
                .limit(_PAGE)
            )
            if wanted is not None:
                query = query.where(_rows.c.state.in_(wanted))
            with self._engine.connect() as conn:
                page = [_row_from(r) for r in conn.execute(query)]
            yield from page
            if len(page) < _PAGE:
                return
            after = page[-1].number

    def open_rows(self, run_id: str) -> int:
        with self._engine.connect() as conn:
            return int(
                conn.execute(
                    sa.select(sa.func.count()).where(
                        _rows.c.run_id == run_id,
                        _rows.c.state.in_([s.value for s in OPEN_STATES]),
                    )
                ).scalar_one()
            )

    def claim(
        self, run_id: str, owner: str, *, lease_seconds: float, limit: int = 1
    ) -> list[LedgerRow]:
        """Lease up to ``limit`` open rows nobody holds, in row order."""
        now = _db_clock(self.dialect)
        with self._engine.begin() as conn:
            free = sa.or_(_rows.c.lease_owner.is_(None), _rows.c.lease_expires < now)
            query = (
                sa.select(_rows.c.row_number)
                .where(
                    _rows.c.run_id == run_id,
                    _rows.c.state.in_([s.value for s in OPEN_STATES]),
                    free,
                )
                .order_by(_rows.c.row_number)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
            numbers = list(conn.execute(query).scalars())
            if not numbers:
                return []
            conn.execute(
                _rows.update()
                .where(_rows.c.run_id == run_id, _rows.c.row_number.in_(numbers))
                .values(lease_owner=owner, lease_expires=now + lease_seconds)
            )
            records = conn.execute(
                sa.select(_rows)
                .where(_rows.c.run_id == run_id, _rows.c.row_number.in_(numbers))
                .order_by(_rows.c.row_number)
            )
            return [_row_from(r) for r in records]

    def renew(
        self, run_id: str, owner: str, numbers: Iterable[int], *, lease_seconds: float
    ) -> None:
        numbers = list(numbers)
        if not numbers:
            return
        with self._engine.begin() as conn:
            conn.execute(
                _rows.update()
                .where(
                    _rows.c.run_id == run_id,
                    _rows.c.row_number.in_(numbers),
                    _rows.c.lease_owner == owner,
                )
                .values(lease_expires=_db_clock(self.dialect) + lease_seconds)
            )

    def release_dead_leases(self, run_id: str) -> int:
        """Free at once the rows leased by processes on this host that no longer exist."""
        with self._engine.connect() as conn:
            owners = conn.execute(
                sa.select(_rows.c.lease_owner)
                .where(
                    _rows.c.run_id == run_id,
                    _rows.c.state.in_([s.value for s in OPEN_STATES]),
                    _rows.c.lease_owner.is_not(None),
                    _rows.c.lease_expires >= _db_clock(self.dialect),
                )
                .distinct()
            ).scalars()
            dead = [owner for owner in owners if _owner_is_dead(owner)]
        if not dead:
            return 0
        with self._engine.begin() as conn:
            result = conn.execute(
                _rows.update()
                .where(_rows.c.run_id == run_id, _rows.c.lease_owner.in_(dead))
                .values(lease_expires=0.0)
            )
            return result.rowcount

    def move(
        self,
        run_id: str,
        number: int,
        target: RowState,
        *,
        owner: str | None = None,
        send_id: str | None = None,
        status: str | None = None,
        error: str | None = None,
        skip_kind: str | None = None,
        count_attempt: bool = False,
        release: bool = False,
    ) -> bool:
        """Apply one transition if the row is in a state it may move from (and, with
        ``owner``, still leased by it). Returns whether it moved."""
        now = _now()
        values: dict[str, Any] = {"state": target.value, "updated_at": now}
        if target is RowState.SUBMITTED:
            values.update(send_id=send_id, status=status, status_at=now, error=None)
            values["submitted_at"] = now
        elif target is RowState.SUBMITTING:
            values["submitted_at"] = now
        if error is not None or target in (RowState.REJECTED, RowState.UNKNOWN):
            values["error"] = error
        if target is RowState.PLANNED and error is None:
            values["error"] = None
        if skip_kind is not None:
            values["skip_kind"] = skip_kind
        if count_attempt:
            values["attempts"] = _rows.c.attempts + 1
        if release or target not in OPEN_STATES:
            values.update(lease_owner=None, lease_expires=None)
        conditions = [
            _rows.c.run_id == run_id,
            _rows.c.row_number == number,
            _rows.c.state.in_([s.value for s in TRANSITIONS[target]]),
        ]
        if owner is not None:
            conditions.append(_rows.c.lease_owner == owner)
        with self._engine.begin() as conn:
            return conn.execute(_rows.update().where(*conditions).values(**values)).rowcount == 1

    def begin_send(
        self,
        run_id: str,
        number: int,
        owner: str,
        *,
        recipient: str | None = None,
        cooldown_since: datetime | None = None,
        dedupe_key: str | None = None,
        base_url: str | None = None,
    ) -> RowState | None:
        """Move a planned row to ``submitting`` (the commit that precedes its POST).

        First checks, in the same transaction, that no other run to the same host has sent
        this recipient this gift (``dedupe_key``) or, with ``cooldown_since``, anything since
        then; if one has, the row is skipped instead. Returns the row's new state, or
        ``None`` if the caller no longer holds it.
        """
        held_and_planned = _rows.update().where(
            _rows.c.run_id == run_id,
            _rows.c.row_number == number,
            _rows.c.state == RowState.PLANNED.value,
            _rows.c.lease_owner == owner,
        )
        with self._engine.begin() as conn:
            skip: tuple[str, str] | None = None
            if recipient and (cooldown_since is not None or dedupe_key):
                if self.dialect == "postgresql":
                    # Two runs sending to one recipient at once: one waits for the other's
                    # commit, then sees its send.
                    conn.execute(
                        sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(recipient)))
                    )
                if dedupe_key and base_url:
                    other = _sent_elsewhere(
                        conn, [dedupe_key], run_id=run_id, base_url=base_url
                    ).get(dedupe_key)
                    if other:
                        skip = ("duplicate", _resent_reason(recipient, other, number))
                if (
                    skip is None
                    and cooldown_since is not None
                    and _recently_gifted(
                        conn, [recipient], since=cooldown_since, exclude_run=run_id
                    )
                ):
                    skip = (
                        "cooldown",
                        f"{recipient} was sent a gift by another run meanwhile (row {number})",
                    )
            if skip is not None:
                target = RowState.SKIPPED
                values: dict[str, Any] = {
                    "skip_kind": skip[0],
                    "error": skip[1],
                    "lease_owner": None,
                    "lease_expires": None,
                }
            else:
                target = RowState.SUBMITTING
                values = {"attempts": _rows.c.attempts + 1, "submitted_at": _now()}
            result = conn.execute(
                held_and_planned.values(state=target.value, updated_at=_now(), **values)
            )
            return target if result.rowcount == 1 else None

    def count_attempt(self, run_id: str, number: int, owner: str) -> bool:
        """Record another attempt at a row already ``submitting`` (same key); False if the
        caller no longer holds it."""
        with self._engine.begin() as conn:
            result = conn.execute(
                _rows.update()
                .where(
                    _rows.c.run_id == run_id,
                    _rows.c.row_number == number,
                    _rows.c.state == RowState.SUBMITTING.value,
                    _rows.c.lease_owner == owner,
                )
                .values(attempts=_rows.c.attempts + 1, updated_at=_now())
            )
            return result.rowcount == 1

    def release(self, run_id: str, number: int, owner: str) -> None:
        """Give a row back without changing its state (it will be claimed again)."""
        with self._engine.begin() as conn:
            conn.execute(
                _rows.update()
                .where(
                    _rows.c.run_id == run_id,
                    _rows.c.row_number == number,
                    _rows.c.lease_owner == owner,
                )
                .values(lease_owner=None, lease_expires=None)
            )

    def release_owner(self, run_id: str, owner: str) -> int:
        """Give back every row ``owner`` still holds, whatever their state."""
        with self._engine.begin() as conn:
            result = conn.execute(
                _rows.update()
                .where(_rows.c.run_id == run_id, _rows.c.lease_owner == owner)
                .values(lease_owner=None, lease_expires=None)
            )
            return result.rowcount

    def skip_planned_for_gift(self, run_id: str, gift_id: str, reason: str) -> int:
        """Skip every not-yet-attempted row for a gift that has left the catalog."""
        with self._engine.begin() as conn:
            result = conn.execute(
                _rows.update()
                .where(
                    _rows.c.run_id == run_id,
                    _rows.c.gift_id == gift_id,
                    _rows.c.state == RowState.PLANNED.value,
                )
                .values(
                    state=RowState.SKIPPED.value,
                    skip_kind="gift_gone",
                    error=reason,
                    lease_owner=None,
                    lease_expires=None,
                    updated_at=_now(),
                )
            )
            return result.rowcount

    def record_status(
        self, run_id: str, number: int, status: str, *, error: str | None = None
    ) -> None:
        with self._engine.begin() as conn:
            values: dict[str, Any] = {"status": status, "status_at": _now()}
            if error is not None:
                values["error"] = error
            conn.execute(
                _rows.update()
                .where(
                    _rows.c.run_id == run_id,
                    _rows.c.row_number == number,
                    _rows.c.state == RowState.SUBMITTED.value,
                )
                .values(**values)
            )

    def recently_gifted(
        self, recipients: Iterable[str], *, since: datetime, exclude_run: str | None = None
    ) -> set[str]:
        """Which of ``recipients`` (normalised emails) were sent anything since ``since``,
        counting sends whose outcome is unknown or in flight."""
        with self._engine.connect() as conn:
            return _recently_gifted(conn, recipients, since=since, exclude_run=exclude_run)

    def sent_elsewhere(
        self, dedupe_keys: Iterable[str], *, run_id: str, base_url: str
    ) -> dict[str, tuple[str, int]]:
        """Which recipient-and-gift keys another run to the same host already sent."""
        with self._engine.connect() as conn:
            return _sent_elsewhere(conn, dedupe_keys, run_id=run_id, base_url=base_url)

    def spend(self, run_id: str) -> dict[RowState, Totals]:
        """Estimated spend per state (low, high per currency) over rows that cost money or
        may: submitted, submitting, unknown, and still planned."""
        result: dict[RowState, Totals] = {}
        with self._engine.connect() as conn:
            records = conn.execute(
                sa.select(_rows.c.state, _rows.c.estimate).where(
                    _rows.c.run_id == run_id,
                    _rows.c.estimate.is_not(None),
                    _rows.c.state.in_(
                        [
                            RowState.PLANNED.value,
                            RowState.SUBMITTING.value,
                            RowState.SUBMITTED.value,
                            RowState.UNKNOWN.value,
                        ]
                    ),
                )
            )
            for state, text in records:
                totals = result.setdefault(RowState(state), {})
                for cur, (low, high) in (_load_totals(text) or {}).items():
                    old_low, old_high = totals.get(cur, (Decimal(0), Decimal(0)))
                    totals[cur] = (old_low + low, old_high + high)
        return result

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

    def preview_admission(self, run_id: str, admit: Callable[[SendAdmission], None]) -> None:
        """Run ``admit`` against the ledger as it is now, adding nothing (an early answer;
        :meth:`add_row` asks again atomically)."""
        with self._engine.connect() as conn:
            admit(SendAdmission(conn, run_id))

    def add_row(
        self,
        run_id: str,
        row: PlannedRow,
        *,
        owner: str,
        lease_seconds: float,
        admit: Callable[[SendAdmission], None] | None = None,
        approval_id: str | None = None,
    ) -> LedgerRow:
        """Append ``row`` (planned, leased by ``owner``) to the run, as its next row number.

        ``admit`` is called first, in the same transaction, and refuses by raising: every
        rule it checks (a spending cap, a cool-down) holds however many processes add rows
        at once. With ``approval_id``, that pending approval becomes approved by this row in
        the same transaction, or :class:`LedgerError` if it is no longer pending.
        """
        now = _now()
        with self._engine.begin() as conn:
            if self.dialect == "postgresql":
                # Admissions are serialised (SQLite's BEGIN IMMEDIATE does it there).
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(7270532)))
            if admit is not None:
                admit(SendAdmission(conn, run_id))
            number = (
                conn.execute(
                    sa.select(sa.func.max(_rows.c.row_number)).where(_rows.c.run_id == run_id)
                ).scalar()
                or 0
            ) + 1
            conn.execute(
                _rows.insert().values(
                    run_id=run_id,
                    row_number=number,
                    state=RowState.PLANNED.value,
                    send_key=row.send_key,
                    recipient=row.recipient,
                    name=row.name,
                    gift_id=row.gift_id,
                    dedupe_key=row.dedupe_key,
                    request=json.dumps(row.request) if row.request is not None else None,
                    estimate=_dump_totals(row.estimate),
                    attempts=0,
                    updated_at=now,
                    lease_owner=owner,
                    lease_expires=_db_clock(self.dialect) + lease_seconds,
                )
            )
            conn.execute(
                _runs.update()
                .where(_runs.c.run_id == run_id)
                .values(rows_total=_runs.c.rows_total + 1, updated_at=now, finished_at=None)
            )
            if approval_id is not None:
                decided = conn.execute(
                    _approvals.update()
                    .where(
                        _approvals.c.approval_id == approval_id,
                        _approvals.c.state == ApprovalState.PENDING.value,
                    )
                    .values(state=ApprovalState.APPROVED.value, decided_at=now, row_number=number)
                )
                if decided.rowcount != 1:
                    raise LedgerError(f"approval {approval_id} is no longer pending")
            record = conn.execute(
                sa.select(_rows).where(_rows.c.run_id == run_id, _rows.c.row_number == number)
            ).one()
            return _row_from(record)

    def claim_row(
        self, run_id: str, number: int, owner: str, *, lease_seconds: float
    ) -> LedgerRow | None:
        """Lease one open row if nobody holds it (or its holder is a dead local process);
        ``None`` if it is held, or no longer open."""
        self.release_dead_leases(run_id)
        now = _db_clock(self.dialect)
        with self._engine.begin() as conn:
            result = conn.execute(
                _rows.update()
                .where(
                    _rows.c.run_id == run_id,
                    _rows.c.row_number == number,
                    _rows.c.state.in_([s.value for s in OPEN_STATES]),
                    sa.or_(
                        _rows.c.lease_owner.is_(None),
                        _rows.c.lease_owner == owner,
                        _rows.c.lease_expires < now,
                    ),
                )
                .values(lease_owner=owner, lease_expires=now + lease_seconds)
            )
            if result.rowcount != 1:
                return None
            record = conn.execute(
                sa.select(_rows).where(_rows.c.run_id == run_id, _rows.c.row_number == number)
            ).one()
            return _row_from(record)

    def row_by_key(self, send_key: str) -> LedgerRow | None:
        """The row of any run with this idempotency key."""
        with self._engine.connect() as conn:
            record = conn.execute(sa.select(_rows).where(_rows.c.send_key == send_key)).first()
        return _row_from(record) if record else None

    def row_by_send_id(self, run_id: str, send_id: str) -> LedgerRow | None:
        with self._engine.connect() as conn:
            record = conn.execute(
                sa.select(_rows).where(_rows.c.run_id == run_id, _rows.c.send_id == send_id)
            ).first()
        return _row_from(record) if record else None

    # Approvals ---------------------------------------------------------------------------

    def add_approval(self, approval: Approval) -> tuple[Approval, bool]:
        """Record a send waiting for a person. Returns the approval recorded for its key and
        whether it is this one (False: the key already waits, or was decided)."""
        now = _now()
        try:
            with self._engine.begin() as conn:
                conn.execute(
                    _approvals.insert().values(
                        approval_id=approval.approval_id,
                        run_id=approval.run_id,
                        send_key=approval.send_key,
                        state=ApprovalState.PENDING.value,
                        recipient=approval.recipient,
                        name=approval.name,
                        gift_id=approval.gift_id,
                        dedupe_key=approval.dedupe_key,
                        request=json.dumps(approval.request),
                        estimate=_dump_totals(approval.estimate),
                        reason=approval.reason,
                        context=json.dumps(approval.context, sort_keys=True, default=str),
                        created_at=now,
                    )
                )
        except IntegrityError:
            existing = self.approval_for_key(approval.send_key)
            if existing is None:
                raise
            return existing, False
        recorded = self.approval(approval.approval_id)
        assert recorded is not None
        return recorded, True

    def approval(self, approval_id: str) -> Approval | None:
        with self._engine.connect() as conn:
            record = conn.execute(
                sa.select(_approvals).where(_approvals.c.approval_id == approval_id)
            ).first()
        return _approval_from(record) if record else None

    def approval_for_key(self, send_key: str) -> Approval | None:
        with self._engine.connect() as conn:
            record = conn.execute(
                sa.select(_approvals).where(_approvals.c.send_key == send_key)
            ).first()
        return _approval_from(record) if record else None

    def approvals(
        self, *, state: ApprovalState | None = None, run_id: str | None = None
    ) -> list[Approval]:
        """Approvals, oldest first."""
        query = sa.select(_approvals).order_by(_approvals.c.created_at, _approvals.c.approval_id)
        if state is not None:
            query = query.where(_approvals.c.state == state.value)
        if run_id is not None:
            query = query.where(_approvals.c.run_id == run_id)
        with self._engine.connect() as conn:
            return [_approval_from(r) for r in conn.execute(query)]

    def reject_approval(self, approval_id: str, note: str | None) -> Approval:
        """Settle a pending approval as rejected; :class:`LedgerError` if it is not pending."""
        with self._engine.begin() as conn:
            result = conn.execute(
                _approvals.update()
                .where(
                    _approvals.c.approval_id == approval_id,
                    _approvals.c.state == ApprovalState.PENDING.value,
                )
                .values(state=ApprovalState.REJECTED.value, decided_at=_now(), note=note)
            )
        current = self.approval(approval_id)
        if current is None:
            raise LedgerError(
                f"no approval {approval_id!r} in the ledger {self.display_url}; "
                "`sendoso approvals list` lists them"
            )
        if result.rowcount != 1:
            raise LedgerError(f"approval {approval_id} is already {current.state.value}")
        return current
