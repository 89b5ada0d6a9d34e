"""A run's rows: reading them, and every transition of the send state machine.

Each transition is one conditional ``UPDATE``: the row must be in one of the states
:data:`~sendoso.ledger.TRANSITIONS` allows, and, where it matters, leased by the caller.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from sendoso.errors import Text
from sendoso.ledger._admission import Repriced, SendAdmission
from sendoso.ledger._errors import LedgerError
from sendoso.ledger._history import recently_gifted_in, resent_reason, sent_elsewhere_in
from sendoso.ledger._records import (
    ApprovalState,
    LedgerRow,
    PlannedRow,
    Totals,
    dump_totals,
    load_totals,
    row_from,
    stored_error,
)
from sendoso.ledger._schema import APPROVALS, PAGE, ROWS, RUNS, LockId, db_clock, utc_now
from sendoso.ledger._states import OPEN_STATES, TRANSITIONS, RowState
from sendoso.ledger._store import Store

__all__ = ["Rows"]


class Rows(Store):
    """Reading rows, adding one, and moving them between states."""

    def counts(self, run_id: str) -> dict[RowState, int]:
        with self._engine.connect() as conn:
            result = conn.execute(
                sa.select(ROWS.c.state, sa.func.count())
                .where(ROWS.c.run_id == run_id)
                .group_by(ROWS.c.state)
            )
            return {RowState(state): n for state, n in result}

    def skip_counts(self, run_id: str) -> dict[str, int]:
        """Skipped rows per reason (invalid, duplicate, budget, cooldown, gift_gone)."""
        with self._engine.connect() as conn:
            result = conn.execute(
                sa.select(ROWS.c.skip_kind, sa.func.count())
                .where(ROWS.c.run_id == run_id, ROWS.c.state == RowState.SKIPPED.value)
                .group_by(ROWS.c.skip_kind)
            )
            return {kind or "unknown": n for kind, n in result}

    def status_counts(self, run_id: str) -> dict[str, int]:
        """Submitted rows per last known send status."""
        with self._engine.connect() as conn:
            result = conn.execute(
                sa.select(ROWS.c.status, sa.func.count())
                .where(ROWS.c.run_id == run_id, ROWS.c.state == RowState.SUBMITTED.value)
                .group_by(ROWS.c.status)
            )
            return {status or "unknown": n for status, n in result}

    def row(self, run_id: str, number: int) -> LedgerRow | None:
        with self._engine.connect() as conn:
            record = conn.execute(
                sa.select(ROWS).where(ROWS.c.run_id == run_id, ROWS.c.row_number == number)
            ).first()
        return row_from(record) if record else None

    def rows(self, run_id: str, *, states: Iterable[RowState] | None = None) -> Iterator[LedgerRow]:
        """The run's rows in row order, read a page at a time."""
        wanted = [s.value for s in states] if states is not None else None
        after = -1
        while True:
            query = (
                sa.select(ROWS)
                .where(ROWS.c.run_id == run_id, ROWS.c.row_number > after)
                .order_by(ROWS.c.row_number)
                .limit(PAGE)
            )
            if wanted is not None:
                query = query.where(ROWS.c.state.in_(wanted))
            with self._engine.connect() as conn:
                page = [row_from(r) for r in conn.execute(query)]
            yield from page
            if len(page) < PAGE:
                return
            after = page[-1].number

    def open_rows(self, run_id: str) -> int:
        with self._engine.connect() as conn:
            return int(
                conn.execute(
                    sa.select(sa.func.count()).where(
                        ROWS.c.run_id == run_id,
                        ROWS.c.state.in_([s.value for s in OPEN_STATES]),
                    )
                ).scalar_one()
            )

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
        now = utc_now()
        values: dict[str, Any] = {"state": target.value, "updated_at": now}
        if target is RowState.SUBMITTED:
            values.update(send_id=send_id, status=status, status_at=now, error=None)
            values["submitted_at"] = now
        elif target is RowState.SUBMITTING:
            values["submitted_at"] = now
        if error is not None or target in (RowState.REJECTED, RowState.UNKNOWN):
            values["error"] = stored_error(error)
        if target is RowState.PLANNED and error is None:
            values["error"] = None
        if skip_kind is not None:
            values["skip_kind"] = skip_kind
        if count_attempt:
            values["attempts"] = ROWS.c.attempts + 1
        if release or target not in OPEN_STATES:
            values.update(lease_owner=None, lease_expires=None)
        conditions = [
            ROWS.c.run_id == run_id,
            ROWS.c.row_number == number,
            ROWS.c.state.in_([s.value for s in TRANSITIONS[target]]),
        ]
        if owner is not None:
            conditions.append(ROWS.c.lease_owner == owner)
        with self._engine.begin() as conn:
            return conn.execute(ROWS.update().where(*conditions).values(**values)).rowcount == 1

    def correct_settlement(
        self, run_id: str, number: int, *, recorded_send_id: str, send_id: str | None
    ) -> bool:
        """Replace a settlement as sent (``recorded_send_id``) that a person found wrong: sent
        as ``send_id`` instead, or (``None``) not sent after all, which returns the row to
        ``planned`` so that the next resume sends it.

        Not a move of the state machine, whose ``submitted`` is final for every worker: only a
        person makes it (``settle_row(..., correct=True)``, after asking the API), and only
        while the row still holds the send id being corrected, so that two corrections (or a
        correction and a status refresh) cannot both apply. Returns whether it applied."""
        now = utc_now()
        values: dict[str, Any] = {"updated_at": now, "error": None, "status": None}
        if send_id is not None:
            values.update(send_id=send_id, status_at=now)
        else:
            values.update(
                state=RowState.PLANNED.value,
                send_id=None,
                status_at=None,
                lease_owner=None,
                lease_expires=None,
            )
        conditions = [
            ROWS.c.run_id == run_id,
            ROWS.c.row_number == number,
            ROWS.c.state == RowState.SUBMITTED.value,
            ROWS.c.send_id == recorded_send_id,
        ]
        with self._engine.begin() as conn:
            return conn.execute(ROWS.update().where(*conditions).values(**values)).rowcount == 1

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
        price: Repriced | None = None,
    ) -> RowState | None:
        """Move a planned row to ``submitting`` (the commit that precedes its POST).

        First checks, in the same transaction, that no other run to the same host has sent
        this recipient this gift (``dedupe_key``) or, with ``cooldown_since``, anything since
        then; if one has, the row is skipped instead. Returns the row's new state, or
        ``None`` if the caller no longer holds it. With ``price`` (its cost re-priced now), the
        row must also still fit under the run's caps on top of what the run's sends have
        committed (or fit by the caller's own rule, ``price.check``), or it is skipped
        (``budget``); it is recorded at that price.
        """
        held_and_planned = ROWS.update().where(
            ROWS.c.run_id == run_id,
            ROWS.c.row_number == number,
            ROWS.c.state == RowState.PLANNED.value,
            ROWS.c.lease_owner == owner,
        )
        with self._engine.begin() as conn:
            self._check_file()
            skip: tuple[str, str] | None = None
            if recipient and (cooldown_since is not None or dedupe_key):
                if self.dialect == "postgresql":
                    # Two runs sending to one recipient at once: one waits for the other's
                    # commit, then sees its send.
                    conn.execute(
                        sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(recipient)))
                    )
                if dedupe_key and base_url:
                    other = sent_elsewhere_in(
                        conn, [dedupe_key], run_id=run_id, base_url=base_url
                    ).get(dedupe_key)
                    if other:
                        skip = ("duplicate", resent_reason(recipient, other, number))
                if (
                    skip is None
                    and cooldown_since is not None
                    and recently_gifted_in(
                        conn, [recipient], since=cooldown_since, exclude_run=run_id
                    )
                ):
                    skip = (
                        "cooldown",
                        f"{recipient} was sent a gift by another run meanwhile (row {number})",
                    )
            if skip is None and price is not None:
                if self.dialect == "postgresql":
                    # Two runners of one run re-checking its budget at once: one at a time.
                    # A caller's own rule reads what every admission reads: it waits for
                    # them as they wait for each other (see add_row).
                    conn.execute(
                        sa.select(sa.func.pg_advisory_xact_lock(LockId.ADMIT.value))
                        if price.check is not None
                        else sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(run_id)))
                    )
                over = SendAdmission(conn, run_id).over_budget(price)
                if over is not None:
                    skip = ("budget", Text(over, f" (row {number})"))
            if skip is not None:
                target = RowState.SKIPPED
                values: dict[str, Any] = {
                    "skip_kind": skip[0],
                    "error": stored_error(skip[1]),
                    "lease_owner": None,
                    "lease_expires": None,
                }
            else:
                target = RowState.SUBMITTING
                values = {"attempts": ROWS.c.attempts + 1, "submitted_at": utc_now()}
                if price is not None:
                    values["actual_estimate"] = dump_totals(price.now)
            result = conn.execute(
                held_and_planned.values(state=target.value, updated_at=utc_now(), **values)
            )
            return target if result.rowcount == 1 else None

    def count_attempt(self, run_id: str, number: int, owner: str) -> bool:
        """Record another attempt at a row already ``submitting`` (same key); False if the
        caller no longer holds it."""
        with self._engine.begin() as conn:
            result = conn.execute(
                ROWS.update()
                .where(
                    ROWS.c.run_id == run_id,
                    ROWS.c.row_number == number,
                    ROWS.c.state == RowState.SUBMITTING.value,
                    ROWS.c.lease_owner == owner,
                )
                .values(attempts=ROWS.c.attempts + 1, updated_at=utc_now())
            )
            return result.rowcount == 1

    def skip_planned_for_gift(self, run_id: str, gift_id: str, reason: str) -> int:
        """Skip every not-yet-attempted row for a gift that has left the catalog."""
        with self._engine.begin() as conn:
            result = conn.execute(
                ROWS.update()
                .where(
                    ROWS.c.run_id == run_id,
                    ROWS.c.gift_id == gift_id,
                    ROWS.c.state == RowState.PLANNED.value,
                )
                .values(
                    state=RowState.SKIPPED.value,
                    skip_kind="gift_gone",
                    error=stored_error(reason),
                    lease_owner=None,
                    lease_expires=None,
                    updated_at=utc_now(),
                )
            )
            return result.rowcount

    def apply_journal(self) -> int:
        """Record as ``submitted`` every row still ``submitting`` or ``unknown`` whose key
        the send journal holds (the API returned its send id, the database never took it);
        how many rows moved. Called when the ledger opens, before anything else."""
        entries = {entry.send_key: entry for entry in self.journal.entries()}
        if not entries:
            return 0
        with self._engine.connect() as conn:
            waiting = conn.execute(
                sa.select(ROWS.c.run_id, ROWS.c.row_number, ROWS.c.send_key).where(
                    ROWS.c.state.in_([RowState.SUBMITTING.value, RowState.UNKNOWN.value]),
                    ROWS.c.send_key.is_not(None),
                )
            ).all()
        moved = 0
        for run_id, number, send_key in waiting:
            entry = entries.get(send_key)
            if entry is not None and self.move(
                run_id,
                number,
                RowState.SUBMITTED,
                send_id=entry.send_id,
                status=entry.status,
                release=True,
            ):
                moved += 1
        return moved

    def record_status(
        self, run_id: str, number: int, status: str, *, error: str | None = None
    ) -> None:
        with self._engine.begin() as conn:
            values: dict[str, Any] = {"status": status, "status_at": utc_now()}
            if error is not None:
                values["error"] = stored_error(error)
            conn.execute(
                ROWS.update()
                .where(
                    ROWS.c.run_id == run_id,
                    ROWS.c.row_number == number,
                    ROWS.c.state == RowState.SUBMITTED.value,
                )
                .values(**values)
            )

    def recently_gifted(
        self, recipients: Iterable[str], *, since: datetime, exclude_run: str | None = None
    ) -> set[str]:
        """Which of ``recipients`` (normalised emails) were sent anything since ``since``,
        counting sends whose outcome is unknown or in flight."""
        with self._engine.connect() as conn:
            return recently_gifted_in(conn, recipients, since=since, exclude_run=exclude_run)

    def sent_elsewhere(
        self, dedupe_keys: Iterable[str], *, run_id: str, base_url: str
    ) -> dict[str, tuple[str, int]]:
        """Which recipient-and-gift keys another run to the same host already sent."""
        with self._engine.connect() as conn:
            return sent_elsewhere_in(conn, dedupe_keys, run_id=run_id, base_url=base_url)

    def spend(self, run_id: str, *, as_planned: bool = False) -> dict[RowState, Totals]:
        """Estimated spend per state (low, high per currency) over rows that cost money or
        may: submitted, submitting, unknown, and still planned; a row sent after its price
        moved counts at the price it was sent at (``as_planned``: at its planned one)."""
        result: dict[RowState, Totals] = {}
        with self._engine.connect() as conn:
            cost = (
                ROWS.c.estimate
                if as_planned
                else sa.func.coalesce(ROWS.c.actual_estimate, ROWS.c.estimate)
            )
            records = conn.execute(
                sa.select(ROWS.c.state, cost).where(
                    ROWS.c.run_id == run_id,
                    ROWS.c.estimate.is_not(None),
                    ROWS.c.state.in_(
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
                for cur, (low, high) in (load_totals(text) or {}).items():
                    old_low, old_high = totals.get(cur, (Decimal(0), Decimal(0)))
                    totals[cur] = (old_low + low, old_high + high)
        return result

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
        now = utc_now()
        with self._engine.begin() as conn:
            if self.dialect == "postgresql":
                # Admissions are serialised (SQLite's BEGIN IMMEDIATE does it there).
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(LockId.ADMIT.value)))
            if admit is not None:
                admit(SendAdmission(conn, run_id))
            number = (
                conn.execute(
                    sa.select(sa.func.max(ROWS.c.row_number)).where(ROWS.c.run_id == run_id)
                ).scalar()
                or 0
            ) + 1
            conn.execute(
                ROWS.insert().values(
                    run_id=run_id,
                    row_number=number,
                    state=RowState.PLANNED.value,
                    send_key=row.send_key,
                    recipient=row.recipient,
                    name=row.name,
                    gift_id=row.gift_id,
                    dedupe_key=row.dedupe_key,
                    request=json.dumps(row.request) if row.request is not None else None,
                    estimate=dump_totals(row.estimate),
                    attempts=0,
                    updated_at=now,
                    lease_owner=owner,
                    lease_expires=db_clock(self.dialect) + lease_seconds,
                )
            )
            conn.execute(
                RUNS.update()
                .where(RUNS.c.run_id == run_id)
                .values(rows_total=RUNS.c.rows_total + 1, updated_at=now, finished_at=None)
            )
            if approval_id is not None:
                decided = conn.execute(
                    APPROVALS.update()
                    .where(
                        APPROVALS.c.approval_id == approval_id,
                        APPROVALS.c.state == ApprovalState.PENDING.value,
                    )
                    .values(state=ApprovalState.APPROVED.value, decided_at=now, row_number=number)
                )
                if decided.rowcount != 1:
                    raise LedgerError(f"approval {approval_id} is no longer pending")
            record = conn.execute(
                sa.select(ROWS).where(ROWS.c.run_id == run_id, ROWS.c.row_number == number)
            ).one()
            return row_from(record)

    def row_by_key(self, send_key: str) -> LedgerRow | None:
        """The row of any run with this idempotency key."""
        with self._engine.connect() as conn:
            record = conn.execute(sa.select(ROWS).where(ROWS.c.send_key == send_key)).first()
        return row_from(record) if record else None

    def row_by_send_id(self, run_id: str, send_id: str) -> LedgerRow | None:
        with self._engine.connect() as conn:
            record = conn.execute(
                sa.select(ROWS).where(ROWS.c.run_id == run_id, ROWS.c.send_id == send_id)
            ).first()
        return row_from(record) if record else None
