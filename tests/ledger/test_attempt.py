"""`SendAttempt`, the one send attempt the batch runner and the MCP desk share, against the
sandbox: a lost commit acknowledgement, and a caller cancelled once `submitting` is committed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
from sqlalchemy.exc import OperationalError
from tests.conftest import Sandbox

from sendoso.ledger import (
    AttemptRules,
    Ledger,
    LedgerCalls,
    LedgerRow,
    PlannedRow,
    RowState,
    RunInfo,
    SendAttempt,
    dedupe_key,
    new_owner,
)

pytestmark = pytest.mark.anyio

EGIFT = "gft_egift_amazon_us_25"
RUN = "attempts"


class _AckLostOnce(Ledger):
    """A ledger whose first ``submitting`` commit succeeds but whose answer is lost (the
    connection drops after the commit): a fault no real database produces on demand."""

    lost = 0

    def begin_send(self, *args: Any, **kwargs: Any) -> RowState | None:
        state = super().begin_send(*args, **kwargs)
        if not self.lost:
            self.lost += 1
            raise OperationalError("COMMIT", {}, Exception("connection lost after commit"))
        return state


def _planned(ledger: Ledger, base_url: str, owner: str) -> LedgerRow:
    ledger.ensure_run(RunInfo(run_id=RUN, base_url=base_url))
    request = {
        "gift_id": EGIFT,
        "email": "ada@example.com",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "message": "Thank you!",
    }
    row = PlannedRow(
        number=0,
        state=RowState.PLANNED,
        send_key=f"sb_{RUN}_1",
        recipient="ada@example.com",
        gift_id=EGIFT,
        dedupe_key=dedupe_key("ada@example.com", EGIFT),
        request=request,
    )
    return ledger.add_row(RUN, row, owner=owner, lease_seconds=600)


async def test_a_lost_commit_acknowledgement_still_sends_the_row_once(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    owner = new_owner()
    ledger = _AckLostOnce(f"sqlite:///{tmp_path / 'ledger.db'}")
    with ledger:
        row = _planned(ledger, sandbox.url, owner)
        async with sandbox.async_client() as client:
            attempt = SendAttempt(client, LedgerCalls(ledger, wanted=1), owner=owner)
            result = await attempt(row, AttemptRules(base_url=sandbox.url), reread=True)
        assert ledger.lost == 1
        assert result.state is RowState.SUBMITTED
        assert result.row is not None
        assert result.row.state is RowState.SUBMITTED
        assert result.row.send_id == result.send_id
    assert len(sandbox.sends()) == 1


async def test_a_caller_cancelled_after_the_commit_still_posts_and_records(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    owner = new_owner()
    with Ledger(f"sqlite:///{tmp_path / 'ledger.db'}") as ledger:
        row = _planned(ledger, sandbox.url, owner)
        async with sandbox.async_client() as client:
            with anyio.CancelScope() as scope:
                attempt = SendAttempt(
                    client,
                    LedgerCalls(ledger, wanted=1),
                    owner=owner,
                    on_committed=lambda _late: scope.cancel(),
                )
                await attempt(row, AttemptRules(base_url=sandbox.url))
            assert scope.cancel_called
        recorded = ledger.row(RUN, row.number)
    assert recorded is not None
    assert recorded.state is RowState.SUBMITTED
    assert len(sandbox.sends()) == 1
