"""`SendDesk` as a library (what the MCP tools and `sendoso approvals` call), in-process
against the sandbox."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path

import anyio
import pytest
import sqlalchemy as sa
from tests.conftest import Sandbox
from tests.mcp._support import ADA, EGIFT

from sendoso.ledger import ApprovalState, Ledger
from sendoso.mcp import Guardrails, Refusal, SendDesk, SendView

pytestmark = pytest.mark.anyio


async def test_two_people_approving_at_once_send_once(sandbox: Sandbox, tmp_path: Path) -> None:
    rails = Guardrails(allow_send=True, approval_above={"USD": Decimal(0)})
    with Ledger(f"sqlite:///{tmp_path / 'ledger.db'}") as ledger:
        async with sandbox.async_client() as client:
            desk = SendDesk(client, ledger, rails)
            held = await desk.send(
                request_id="both", gift_id=EGIFT, recipient=ADA, message="Thank you!"
            )
            assert held.status == "pending_approval"
            assert held.approval_id is not None
            outcomes: list[SendView | Refusal] = []

            async def approve() -> None:
                try:
                    outcomes.append(await desk.approve(held.approval_id or ""))
                except Refusal as exc:
                    outcomes.append(exc)

            async with anyio.create_task_group() as tasks:
                tasks.start_soon(approve)
                tasks.start_soon(approve)
        sent = [o for o in outcomes if isinstance(o, SendView)]
        refused = [o for o in outcomes if isinstance(o, Refusal)]
        assert len(sent) == 1
        assert len(refused) == 1
        assert "already approved" in str(refused[0])
        (approval,) = ledger.approvals()
        assert approval.state is ApprovalState.APPROVED
    assert len(sandbox.sends()) == 1


async def test_a_request_id_is_checked_before_anything_else(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    with Ledger(f"sqlite:///{tmp_path / 'ledger.db'}") as ledger:
        async with sandbox.async_client() as client:
            desk = SendDesk(client, ledger, Guardrails(allow_send=True))
            for bad in ("", "x" * 201, "tab\there"):
                with pytest.raises(Refusal, match="request_id must be 1 to 200 printable"):
                    await desk.send(request_id=bad, gift_id=EGIFT, recipient=ADA, message="Hi")
    assert sandbox.sends() == []


async def test_a_ledger_busy_for_a_moment_does_not_fail_a_send(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """Another process holds SQLite's write lock when the desk first writes: the desk
    waits and tries again, as batch workers do, rather than failing the agent's call."""
    path = tmp_path / "ledger.db"
    with Ledger(f"sqlite:///{path}", busy_timeout=0.05) as ledger:
        blocker = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        busy: list[BaseException] = []

        def free_the_lock(context: sa.engine.ExceptionContext) -> None:
            # The desk has now met the lock once: let it go.
            if blocker.in_transaction:
                busy.append(context.original_exception)
                blocker.execute("ROLLBACK")

        sa.event.listen(ledger._engine, "handle_error", free_the_lock)
        try:
            blocker.execute("BEGIN IMMEDIATE")
            async with sandbox.async_client() as client:
                desk = SendDesk(client, ledger, Guardrails(allow_send=True))
                view = await desk.send(
                    request_id="busy", gift_id=EGIFT, recipient=ADA, message="Thank you!"
                )
        finally:
            blocker.close()
        assert busy
        assert view.send_id is not None
    assert len(sandbox.sends()) == 1
