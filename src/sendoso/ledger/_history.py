"""What was sent before: the reads behind the duplicate check and the cool-down, shared by
planning, the ``submitting`` commit and the admission of one send."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from sendoso.ledger._schema import PAGE, ROWS, RUNS
from sendoso.ledger._states import RowState

__all__ = ["GIFTED", "SPENDING", "recently_gifted_in", "resent_reason", "sent_elsewhere_in"]

#: States in which a row's gift went out, or may have.
GIFTED = [RowState.SUBMITTED.value, RowState.SUBMITTING.value, RowState.UNKNOWN.value]


def recently_gifted_in(
    conn: Connection, recipients: Iterable[str], *, since: datetime, exclude_run: str | None
) -> set[str]:
    wanted = sorted(set(recipients))
    found: set[str] = set()
    for start in range(0, len(wanted), PAGE):
        query = sa.select(ROWS.c.recipient).where(
            ROWS.c.recipient.in_(wanted[start : start + PAGE]),
            ROWS.c.state.in_(GIFTED),
            ROWS.c.submitted_at >= since,
        )
        if exclude_run is not None:
            query = query.where(ROWS.c.run_id != exclude_run)
        found.update(conn.execute(query.distinct()).scalars())
    return found


def sent_elsewhere_in(
    conn: Connection, dedupe_keys: Iterable[str], *, run_id: str, base_url: str
) -> dict[str, tuple[str, int]]:
    """For each key: a row of *another* run to the same host that sent (or may have sent)
    that recipient that gift, as (run id, row number)."""
    wanted = sorted(set(dedupe_keys))
    found: dict[str, tuple[str, int]] = {}
    for start in range(0, len(wanted), PAGE):
        query = (
            sa.select(ROWS.c.dedupe_key, ROWS.c.run_id, ROWS.c.row_number)
            .join(RUNS, RUNS.c.run_id == ROWS.c.run_id)
            .where(
                ROWS.c.dedupe_key.in_(wanted[start : start + PAGE]),
                ROWS.c.state.in_(GIFTED),
                ROWS.c.run_id != run_id,
                RUNS.c.base_url == base_url,
            )
        )
        for key, other_run, number in conn.execute(query):
            found.setdefault(key, (other_run, number))
    return found


def resent_reason(recipient: str, other: tuple[str, int], number: int) -> str:
    return (
        f"{recipient} already got this gift in run {other[0]} (row {other[1]}); "
        f"--allow-resend sends it again (row {number})"
    )


#: States in which a row costs money, or may: counted against spending caps.
SPENDING = [
    RowState.PLANNED.value,
    RowState.SUBMITTING.value,
    RowState.SUBMITTED.value,
    RowState.UNKNOWN.value,
]
