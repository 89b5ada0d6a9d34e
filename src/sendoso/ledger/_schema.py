"""The ledger's tables, column types and database-side helpers (SQLAlchemy Core).

The tables as a fresh ledger gets them; :mod:`._migrations` takes an older ledger there.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import IntEnum

import sqlalchemy as sa

__all__ = [
    "APPROVALS",
    "DEDUPE_KEY_INDEX",
    "METADATA",
    "PAGE",
    "ROWS",
    "RUNS",
    "SCHEMA",
    "LockId",
    "UTCDateTime",
    "db_clock",
    "utc_now",
]

#: Rows read (or keys looked up) per query.
PAGE = 500


class LockId(IntEnum):
    """PostgreSQL advisory transaction locks the ledger takes, by what they serialise.
    (SQLite needs none: every transaction there starts with ``BEGIN IMMEDIATE``.)"""

    #: Two workers opening a fresh database at once must not both create tables.
    MIGRATE = 7270531
    #: One send admitted at a time, so that a cap or a cool-down holds across processes.
    ADMIT = 7270532


def db_clock(dialect: str) -> sa.ColumnElement[float]:
    """Seconds since the epoch by the database's clock: leases are compared across hosts,
    whose own clocks may disagree."""
    if dialect == "postgresql":
        return sa.literal_column("extract(epoch from clock_timestamp())", sa.Float)
    return sa.literal_column("((julianday('now') - 2440587.5) * 86400.0)", sa.Float)


def utc_now() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(sa.types.TypeDecorator[datetime]):
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


METADATA = sa.MetaData()

SCHEMA = sa.Table(
    "sendoso_schema",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
)

RUNS = sa.Table(
    "sendoso_runs",
    METADATA,
    sa.Column("run_id", sa.String(200), primary_key=True),
    sa.Column("source", sa.String(20), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("base_url", sa.Text, nullable=False),
    sa.Column("input_path", sa.Text),
    sa.Column("input_fingerprint", sa.String(64)),
    sa.Column("options", sa.Text, nullable=False),
    sa.Column("rows_total", sa.Integer, nullable=False, default=0),
    sa.Column("note", sa.Text),
    sa.Column("confirmed_at", UTCDateTime),
    sa.Column("finished_at", UTCDateTime),
)

ROWS = sa.Table(
    "sendoso_rows",
    METADATA,
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
    # The estimate at the `submitting` commit, when the catalog's price had moved since the plan.
    sa.Column("actual_estimate", sa.Text),
    # Both come from the API's replies, unvalidated: no length limit to trip over.
    sa.Column("send_id", sa.Text),
    sa.Column("status", sa.Text),
    sa.Column("status_at", UTCDateTime),
    sa.Column("error", sa.Text),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("lease_owner", sa.String(200)),
    sa.Column("lease_expires", sa.Float),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("submitted_at", UTCDateTime),
    sa.ForeignKeyConstraint(["run_id"], ["sendoso_runs.run_id"]),
    sa.Index("ix_sendoso_rows_state", "run_id", "state"),
    sa.Index("ix_sendoso_rows_dedupe", "run_id", "dedupe_key"),
    sa.Index("ix_sendoso_rows_recipient", "recipient", "submitted_at"),
)
# The cross-run duplicate check (before every send, and while planning) looks a key up across
# all runs, which the (run_id, dedupe_key) index cannot serve: without this one it read every
# row of the ledger.
DEDUPE_KEY_INDEX = sa.Index("ix_sendoso_rows_dedupe_key", ROWS.c.dedupe_key, ROWS.c.state)


#: Sends that wait for a person (``sendoso approvals``) before they become rows: a row is
#: sendable by any runner, an approval is not until approved.
APPROVALS = sa.Table(
    "sendoso_approvals",
    METADATA,
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
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("decided_at", UTCDateTime),
    sa.Column("note", sa.Text),
    sa.Column("row_number", sa.Integer),
    sa.ForeignKeyConstraint(["run_id"], ["sendoso_runs.run_id"]),
    sa.Index("ix_sendoso_approvals_state", "state", "created_at"),
)
