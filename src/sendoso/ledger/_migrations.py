"""The ledger's schema migrations: named steps, applied in order, each once.

Hand-written rather than Alembic: the ledger lives in the user's own SQLite file or
database and must upgrade itself on open, with no migration scripts directory or ini file
to ship. A ledger records how many steps it has had (``sendoso_schema.version``): step N
takes it from version N-1 to N, inside the transaction that opens it. A new step is a new
function decorated with ``@migration`` at the end of this file; steps are never reordered,
renamed away or removed, since a ledger's version counts them.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from sendoso.ledger._errors import LedgerError
from sendoso.ledger._schema import (
    APPROVALS,
    DEDUPE_KEY_INDEX,
    METADATA,
    ROWS,
    RUNS,
    SCHEMA,
    LockId,
)

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "migrate"]

Migration = Callable[[Connection], None]

#: Every step, oldest first.
MIGRATIONS: list[Migration] = []


def migration(step: Migration) -> Migration:
    MIGRATIONS.append(step)
    return step


@migration
def m001_runs_and_rows(conn: Connection) -> None:
    METADATA.create_all(conn, tables=[RUNS, ROWS])


@migration
def m002_run_confirmed_at(conn: Connection) -> None:
    # Runs remember whether a person approved them (a saved plan is not consent).
    columns = {c["name"] for c in sa.inspect(conn).get_columns("sendoso_runs")}
    if "confirmed_at" not in columns:
        kind = RUNS.c.confirmed_at.type.compile(dialect=conn.dialect)
        conn.execute(sa.text(f"ALTER TABLE sendoso_runs ADD COLUMN confirmed_at {kind}"))


@migration
def m003_approvals(conn: Connection) -> None:
    # Sends waiting for a person's approval (the MCP server's threshold).
    METADATA.create_all(conn, tables=[APPROVALS])


@migration
def m004_dedupe_key_index(conn: Connection) -> None:
    # Ledgers created before the index existed (a new one gets it with its tables).
    DEDUPE_KEY_INDEX.create(conn, checkfirst=True)


@migration
def m005_row_actual_estimate(conn: Connection) -> None:
    # A row's cost re-priced when it was sent (prices may move between a plan and its sends).
    columns = {c["name"] for c in sa.inspect(conn).get_columns("sendoso_rows")}
    if "actual_estimate" not in columns:
        conn.execute(sa.text("ALTER TABLE sendoso_rows ADD COLUMN actual_estimate TEXT"))


#: The version a ledger has once every step ran.
SCHEMA_VERSION = len(MIGRATIONS)


def migrate(conn: Connection, *, display_url: str) -> None:
    """Bring the ledger behind ``conn`` to :data:`SCHEMA_VERSION`, in its transaction."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(LockId.MIGRATE.value)))
    METADATA.create_all(conn, tables=[SCHEMA])
    version = conn.execute(sa.select(SCHEMA.c.version)).scalar()
    if version is None:
        version = 0
        conn.execute(SCHEMA.insert().values(id=1, version=0))
    if version > SCHEMA_VERSION:
        raise LedgerError(
            f"the ledger {display_url} has schema {version}, newer than this "
            f"sendoso knows ({SCHEMA_VERSION}); upgrade sendoso"
        )
    for target in range(version + 1, SCHEMA_VERSION + 1):
        MIGRATIONS[target - 1](conn)
        conn.execute(SCHEMA.update().values(version=target))
