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

from sendoso.errors import Call, Param, Text
from sendoso.ledger import ApprovalState, Ledger, RowState
from sendoso.mcp import Guardrails, Refusal, SendDesk, SendView, send_key_for_request

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


async def test_a_retry_without_the_optional_metadata_is_the_same_request(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """An agent retrying a request_id often leaves out the optional metadata it sent the
    first time: that is the same request (it used to be refused as "a different send").
    Metadata that the retry does give must still match."""
    with Ledger(f"sqlite:///{tmp_path / 'ledger.db'}") as ledger:
        async with sandbox.async_client() as client:
            desk = SendDesk(client, ledger, Guardrails(allow_send=True))
            first = await desk.send(
                request_id="r1",
                gift_id=EGIFT,
                recipient=ADA,
                message="Hi",
                metadata={"contact_id": "003XYZ"},
            )
            again = await desk.send(request_id="r1", gift_id=EGIFT, recipient=ADA, message="Hi")
            assert (again.send_id, again.replayed) == (first.send_id, True)
            with pytest.raises(Refusal, match="differs in metadata"):
                await desk.send(
                    request_id="r1",
                    gift_id=EGIFT,
                    recipient=ADA,
                    message="Hi",
                    metadata={"contact_id": "other"},
                )
    assert len(sandbox.sends()) == 1


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


async def test_a_cap_s_refusal_carries_the_cap_and_the_next_step(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """Over the daily cap: the Refusal carries the OverCapError with its figures; a send the
    server will not make names what the person running it must set, as a parameter."""
    rails = Guardrails(allow_send=True, daily_cap={"USD": Decimal("40")})
    with Ledger(f"sqlite:///{tmp_path / 'ledger.db'}") as ledger:
        async with sandbox.async_client() as client:
            desk = SendDesk(client, ledger, rails)
            sent = await desk.send(request_id="one", gift_id=EGIFT, recipient=ADA, message="Hi")
            assert sent.send_id is not None
            with pytest.raises(Refusal) as refused:
                await desk.send(
                    request_id="two",
                    gift_id=EGIFT,
                    recipient={**ADA, "email": "grace@example.com"},
                    message="Hi",
                )
            over = refused.value.over_cap
            assert over is not None
            assert (over.field, over.currency, over.limit) == ("daily_cap", "USD", Decimal("40"))
            assert over.limit is not None
            assert over.spent + (over.needed or 0) > over.limit
            assert str(refused.value) == over.message

            off = SendDesk(client, ledger, Guardrails())
            with pytest.raises(Refusal) as stopped:
                await off.send(
                    request_id="three",
                    gift_id=EGIFT,
                    recipient={**ADA, "email": "kat@example.com"},
                    message="Hi",
                )
            assert "live sending is off" in str(stopped.value)
            assert Param("allow_send") in Text(stopped.value.message).parts
            with pytest.raises(Refusal) as unknown:
                await desk.status(request_id="nope")
            assert unknown.value.next_steps == (Call("list_sends"),)
    assert len(sandbox.sends()) == 1


async def test_a_failing_token_endpoint_does_not_block_the_request_id(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """The token endpoint answers 500 when a send needs a new token: nothing was transmitted,
    so the agent is told "not sent, retry" (not "may have been sent"), the request_id is not
    held as possibly sent, and once the endpoint recovers the retry sends exactly once."""
    rails = Guardrails(allow_send=True, daily_cap={"USD": Decimal("40")})
    with Ledger(f"sqlite:///{tmp_path / 'ledger.db'}") as ledger:
        async with sandbox.async_client(trust_idempotency=False, max_retries=1) as client:
            desk = SendDesk(client, ledger, rails)
            await desk.catalog()
            sandbox.faults(token_error=500)
            sandbox.advance(3 * 86400)  # the desk's token has expired on the server
            with pytest.raises(Refusal) as refused:
                await desk.send(request_id="r1", gift_id=EGIFT, recipient=ADA, message="Hi")
            assert "may have been sent" not in str(refused.value)
            assert "not sent" in str(refused.value)
            assert sandbox.sends() == []

            sandbox.faults(token_error=0)
            retried = await desk.send(request_id="r1", gift_id=EGIFT, recipient=ADA, message="Hi")
            assert retried.send_id is not None
            # The cap fits one gift, and r1 is counted once.
            other = {**ADA, "email": "grace@example.com"}
            with pytest.raises(Refusal, match="daily cap"):
                await desk.send(request_id="r2", gift_id=EGIFT, recipient=other, message="Hi")
    assert [send["id"] for send in sandbox.sends()] == [retried.send_id]


async def test_a_retried_send_is_priced_again_and_refused_if_it_no_longer_fits(
    sandbox: Sandbox, ledger_url: str
) -> None:
    """A request recorded but not sent (the token endpoint failed), retried after its gift's
    price rose above the caps: refused with the typed over-cap error, never sent, its row
    skipped (budget) and no longer counted against the caps."""
    rails = Guardrails(
        allow_send=True, max_price={"USD": Decimal("50")}, daily_cap={"USD": Decimal("40")}
    )
    with Ledger(ledger_url) as ledger:
        async with sandbox.async_client(trust_idempotency=False, max_retries=1) as client:
            desk = SendDesk(client, ledger, rails)
            await desk.catalog()
            sandbox.faults(token_error=500)
            sandbox.advance(3 * 86400)  # the desk's token has expired on the server
            with pytest.raises(Refusal, match="not sent"):
                await desk.send(request_id="r1", gift_id=EGIFT, recipient=ADA, message="Hi")
            sandbox.faults(token_error=0)

            sandbox.set_price(EGIFT, "60.00")
            with pytest.raises(Refusal) as refused:
                await desk.send(request_id="r1", gift_id=EGIFT, recipient=ADA, message="Hi")
            assert refused.value.over_cap is not None
            assert refused.value.over_cap.field == "max_price"
            assert sandbox.sends() == []
            row = ledger.row_by_key(send_key_for_request("r1", sandbox.url))
            assert row is not None
            assert row.state is RowState.SKIPPED
            assert row.skip_kind == "budget"

            # Skipped, r1 no longer counts: the daily cap still fits one gift.
            sandbox.set_price(EGIFT, None)
            await desk.catalog(fresh=True)
            other = {**ADA, "email": "grace@example.com"}
            sent = await desk.send(request_id="r2", gift_id=EGIFT, recipient=other, message="Hi")
            assert sent.send_id is not None
    assert [send["id"] for send in sandbox.sends()] == [sent.send_id]


async def test_a_retried_send_counts_every_other_send_at_its_price_but_not_its_own_plan(
    sandbox: Sandbox, ledger_url: str
) -> None:
    """Re-priced at send time, a retried request is checked against the daily and total caps
    with every other send at its price, and without its own first estimate: a price that no
    longer fits refuses it (daily cap) and it stops counting; a price that still fits sends
    it once, recorded at its new price."""
    rails = Guardrails(allow_send=True, daily_cap={"USD": Decimal("80")})
    people = {
        "r1": ADA,
        "r2": {**ADA, "email": "grace@example.com"},
        "r3": {**ADA, "email": "kat@example.com"},
    }
    with Ledger(ledger_url) as ledger:
        async with sandbox.async_client(trust_idempotency=False, max_retries=1) as client:
            desk = SendDesk(client, ledger, rails)

            async def send(request_id: str) -> SendView:
                return await desk.send(
                    request_id=request_id, gift_id=EGIFT, recipient=people[request_id], message="Hi"
                )

            await desk.catalog()
            # Three requests recorded at 25.00 each, none sent.
            sandbox.faults(token_error=500)
            sandbox.advance(3 * 86400)  # the desk's token has expired on the server
            for request_id in people:
                with pytest.raises(Refusal, match="not sent"):
                    await send(request_id)
            sandbox.faults(token_error=0)

            # Unchanged price: r1 is sent once.
            first = await send("r1")
            # r2 at 60: 25 (r1) + 25 (r3, recorded) + 60 is over the day's 80.
            sandbox.set_price(EGIFT, "60.00")
            with pytest.raises(Refusal) as refused:
                await send("r2")
            assert refused.value.over_cap is not None
            assert refused.value.over_cap.field == "daily_cap"
            # r3 at 40: 25 (r1) + 40 fits, without r2 (skipped) and r3's own first 25.
            sandbox.set_price(EGIFT, "40.00")
            third = await send("r3")
            row = ledger.row_by_key(send_key_for_request("r3", sandbox.url))
            assert row is not None
            assert row.actual_estimate == {"USD": (Decimal("40.00"), Decimal("40.00"))}
    assert {send["id"] for send in sandbox.sends()} == {first.send_id, third.send_id}
    assert len(sandbox.sends()) == 2
