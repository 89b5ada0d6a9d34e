"""What the ledger hands out and takes in: runs, rows, approvals, as frozen dataclasses,
and the mappers between them and the tables' records."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

import sqlalchemy as sa

from sendoso.errors import Text
from sendoso.ledger._states import RowState

__all__ = [
    "Approval",
    "ApprovalState",
    "LedgerRow",
    "PlannedRow",
    "RunInfo",
    "Totals",
    "add_totals",
    "approval_from",
    "dump_totals",
    "load_totals",
    "row_from",
    "run_from",
    "stored_error",
]

#: An estimate or a sum of them: (low, high) per currency.
Totals = dict[str, tuple[Decimal, Decimal]]


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
    #: What the row was estimated at when it was sent, if the price had moved since the
    #: plan (``estimate`` is the planned one); ``None``: as planned.
    actual_estimate: Totals | None = None


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


def approval_from(record: sa.Row[Any]) -> Approval:
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
        estimate=load_totals(m["estimate"]),
        reason=m["reason"],
        context=json.loads(m["context"]),
        created_at=m["created_at"],
        decided_at=m["decided_at"],
        note=m["note"],
        row_number=m["row_number"],
    )


def dump_totals(totals: Totals | None) -> str | None:
    if totals is None:
        return None
    return json.dumps({cur: [str(low), str(high)] for cur, (low, high) in totals.items()})


def load_totals(text: str | None) -> Totals | None:
    if text is None:
        return None
    return {cur: (Decimal(low), Decimal(high)) for cur, (low, high) in json.loads(text).items()}


def stored_error(error: str | None) -> str | None:
    """A row's error as the ledger stores it: a :class:`~sendoso.errors.Text` keeps its parts
    (the parameters and next steps it names), so that whoever shows the row later words them
    its own way; :func:`row_from` reads it back as a ``Text``."""
    return error.stored() if isinstance(error, Text) else error


def row_from(record: sa.Row[Any]) -> LedgerRow:
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
        estimate=load_totals(m["estimate"]),
        send_id=m["send_id"],
        status=m["status"],
        status_at=m["status_at"],
        error=None if m["error"] is None else Text.from_stored(m["error"]),
        attempts=m["attempts"],
        updated_at=m["updated_at"],
        submitted_at=m["submitted_at"],
        lease_owner=m["lease_owner"],
        actual_estimate=load_totals(m.get("actual_estimate")),
    )


def run_from(record: sa.Row[Any]) -> RunInfo:
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


def add_totals(into: dict[str, tuple[Decimal, Decimal]], text: str | None) -> None:
    for cur, (low, high) in (load_totals(text) or {}).items():
        old_low, old_high = into.get(cur, (Decimal(0), Decimal(0)))
        into[cur] = (old_low + low, old_high + high)
