"""Sends held for a person's decision (the MCP server's approval threshold): stored in the
ledger beside the rows they become once approved (:meth:`Rows.add_row`)."""

from __future__ import annotations

import json

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from sendoso.ledger._errors import LedgerError
from sendoso.ledger._records import Approval, ApprovalState, approval_from, dump_totals
from sendoso.ledger._schema import APPROVALS, utc_now
from sendoso.ledger._store import Store

__all__ = ["Approvals"]


class Approvals(Store):
    """Adding, reading and rejecting approvals."""

    def add_approval(self, approval: Approval) -> tuple[Approval, bool]:
        """Record a send waiting for a person. Returns the approval recorded for its key and
        whether it is this one (False: the key already waits, or was decided)."""
        now = utc_now()
        try:
            with self._engine.begin() as conn:
                conn.execute(
                    APPROVALS.insert().values(
                        approval_id=approval.approval_id,
                        run_id=approval.run_id,
                        send_key=approval.send_key,
                        state=ApprovalState.PENDING.value,
                        recipient=approval.recipient,
                        name=approval.name,
                        gift_id=approval.gift_id,
                        dedupe_key=approval.dedupe_key,
                        request=json.dumps(approval.request),
                        estimate=dump_totals(approval.estimate),
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
                sa.select(APPROVALS).where(APPROVALS.c.approval_id == approval_id)
            ).first()
        return approval_from(record) if record else None

    def approval_for_key(self, send_key: str) -> Approval | None:
        with self._engine.connect() as conn:
            record = conn.execute(
                sa.select(APPROVALS).where(APPROVALS.c.send_key == send_key)
            ).first()
        return approval_from(record) if record else None

    def approvals(
        self, *, state: ApprovalState | None = None, run_id: str | None = None
    ) -> list[Approval]:
        """Approvals, oldest first."""
        query = sa.select(APPROVALS).order_by(APPROVALS.c.created_at, APPROVALS.c.approval_id)
        if state is not None:
            query = query.where(APPROVALS.c.state == state.value)
        if run_id is not None:
            query = query.where(APPROVALS.c.run_id == run_id)
        with self._engine.connect() as conn:
            return [approval_from(r) for r in conn.execute(query)]

    def reject_approval(self, approval_id: str, note: str | None) -> Approval:
        """Settle a pending approval as rejected; :class:`LedgerError` if it is not pending."""
        with self._engine.begin() as conn:
            result = conn.execute(
                APPROVALS.update()
                .where(
                    APPROVALS.c.approval_id == approval_id,
                    APPROVALS.c.state == ApprovalState.PENDING.value,
                )
                .values(state=ApprovalState.REJECTED.value, decided_at=utc_now(), note=note)
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
