"""Writing into the ledger inside one transaction: a new run's rows (:class:`PlanWriter`)
and the rules deciding whether one more send may be added (:class:`SendAdmission`)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from sendoso.errors import Param, Text
from sendoso.ledger._history import GIFTED, SPENDING, recently_gifted_in, sent_elsewhere_in
from sendoso.ledger._records import PlannedRow, Totals, add_totals, dump_totals, stored_error
from sendoso.ledger._schema import PAGE, ROWS, RUNS, utc_now
from sendoso.ledger._states import RowState
from sendoso.pricing import over_cap

__all__ = ["PlanWriter", "Repriced", "SendAdmission"]


@dataclass(frozen=True)
class Repriced:
    """A row's cost at send time, against the catalog as it is now, and the run's caps it
    must still fit under (``field``: the parameter that set them)."""

    planned: Totals | None
    now: Totals
    #: ``None``: no caps to fit under; the row is only recorded at its new price.
    caps: Mapping[str, Decimal] | None
    field: str = "max_spend"
    #: The caller's own rule instead of the run's caps: why the row no longer fits, read in
    #: the transaction that would commit it (``None``: it fits).
    check: Callable[[SendAdmission], str | None] | None = None


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
        for start in range(0, len(wanted), PAGE):
            chunk = wanted[start : start + PAGE]
            query = (
                sa.select(ROWS.c.dedupe_key, sa.func.min(ROWS.c.row_number))
                .where(ROWS.c.run_id == self._run_id, ROWS.c.dedupe_key.in_(chunk))
                .group_by(ROWS.c.dedupe_key)
            )
            for key, number in self._conn.execute(query):
                found[key] = number
        return found

    def recently_gifted(
        self, recipients: Iterable[str], *, since: datetime, exclude_run: str | None = None
    ) -> set[str]:
        """:meth:`Ledger.recently_gifted`, read inside the planning transaction (on SQLite a
        second connection would wait for this one's write lock)."""
        return recently_gifted_in(self._conn, recipients, since=since, exclude_run=exclude_run)

    def sent_elsewhere(
        self, dedupe_keys: Iterable[str], *, run_id: str, base_url: str
    ) -> dict[str, tuple[str, int]]:
        return sent_elsewhere_in(self._conn, dedupe_keys, run_id=run_id, base_url=base_url)

    def add(self, rows: Sequence[PlannedRow]) -> None:
        if not rows:
            return
        now = utc_now()
        self._conn.execute(
            ROWS.insert(),
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
                    "estimate": dump_totals(row.estimate),
                    "error": stored_error(row.error),
                    "attempts": 0,
                    "updated_at": now,
                }
                for row in rows
            ],
        )
        self.rows_written += len(rows)


class SendAdmission:
    """What a rule deciding whether one more send may be added can read, inside the very
    transaction that adds it (see :meth:`Ledger.add_row`): two sends admitted at once can
    never both fit under a cap only one of them fits under."""

    def __init__(self, conn: Connection, run_id: str) -> None:
        self._conn = conn
        self.run_id = run_id

    def spend(
        self, *, source: str, since: datetime | None = None, excluding: int | None = None
    ) -> Totals:
        """The estimated cost (low, high per currency) of the rows of every run from
        ``source`` that cost money or may: in flight, sent, unknown, and planned. With
        ``since``, only rows attempted since then, plus every planned one. A row sent after
        its price moved counts at the price it was sent at. ``excluding``: a row of this
        run left out (the one being re-priced, whose first estimate no longer holds)."""
        query = (
            sa.select(sa.func.coalesce(ROWS.c.actual_estimate, ROWS.c.estimate))
            .join(RUNS, RUNS.c.run_id == ROWS.c.run_id)
            .where(
                RUNS.c.source == source,
                ROWS.c.estimate.is_not(None),
                ROWS.c.state.in_(SPENDING),
            )
        )
        if excluding is not None:
            query = query.where(
                sa.or_(ROWS.c.run_id != self.run_id, ROWS.c.row_number != excluding)
            )
        if since is not None:
            query = query.where(
                sa.or_(
                    ROWS.c.state == RowState.PLANNED.value,
                    ROWS.c.submitted_at >= since,
                )
            )
        totals: Totals = {}
        for (text,) in self._conn.execute(query):
            add_totals(totals, text)
        return totals

    def committed(self) -> Totals:
        """What this run's sends made, in flight or unknown cost: each at its actual estimate
        (the one it was sent at), else its planned one."""
        query = sa.select(sa.func.coalesce(ROWS.c.actual_estimate, ROWS.c.estimate)).where(
            ROWS.c.run_id == self.run_id,
            ROWS.c.estimate.is_not(None),
            ROWS.c.state.in_(GIFTED),
        )
        totals: Totals = {}
        for (text,) in self._conn.execute(query):
            add_totals(totals, text)
        return totals

    def over_budget(self, price: Repriced) -> Text | None:
        """Why a row re-priced at send time no longer fits under the run's caps, on top of
        what its sends have committed (or by the caller's own rule, ``price.check``);
        ``None`` if it fits."""
        if price.check is not None:
            reason = price.check(self)
            return None if reason is None else Text(reason)
        if price.caps is None:
            return None
        used = {cur: high for cur, (_, high) in self.committed().items()}
        excess = over_cap(price.now, price.caps, used)
        if excess is None:
            return None
        cur, needed = excess.currency, excess.needed
        planned = (price.planned or {}).get(cur, (Decimal(0), Decimal(0)))[1]
        if excess.cap is None:
            return Text(f"it costs {cur} now and ", Param(price.field), f" sets no {cur} cap")
        left = max(excess.cap - excess.used, Decimal(0))
        return Text(
            f"its price moved since the plan: up to {needed:.2f} {cur} now ({planned:.2f} "
            f"planned), and {left:.2f} of the {excess.cap:.2f} {cur} ",
            Param(price.field),
            " is left after the sends made",
        )

    def recently_gifted(self, recipient: str, *, since: datetime) -> bool:
        """Whether ``recipient`` was sent anything since ``since`` by any run (in flight and
        unknown sends count), or is about to be by this run."""
        if recently_gifted_in(self._conn, [recipient], since=since, exclude_run=None):
            return True
        return self._planned_here(ROWS.c.recipient == recipient)

    def sent_before(self, dedupe_key: str, *, base_url: str) -> tuple[str, int] | None:
        """A row of any run to the same host that sent (or may have, or is about to) this
        recipient this gift, as (run id, row number)."""
        other = sent_elsewhere_in(self._conn, [dedupe_key], run_id="", base_url=base_url)
        if dedupe_key in other:
            return other[dedupe_key]
        number = self._conn.execute(
            sa.select(ROWS.c.row_number).where(
                ROWS.c.run_id == self.run_id,
                ROWS.c.dedupe_key == dedupe_key,
                ROWS.c.state == RowState.PLANNED.value,
            )
        ).scalar()
        return (self.run_id, int(number)) if number is not None else None

    def _planned_here(self, condition: sa.ColumnElement[bool]) -> bool:
        found = self._conn.execute(
            sa.select(ROWS.c.row_number).where(
                ROWS.c.run_id == self.run_id,
                ROWS.c.state == RowState.PLANNED.value,
                condition,
            )
        ).first()
        return found is not None
