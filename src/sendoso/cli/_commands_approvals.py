"""``sendoso approvals``: the person's side of the MCP server's approval threshold.

A thin skin over :class:`sendoso.mcp.SendDesk`: ``approve`` performs the held send (after
re-checking the guardrails it was held under, against the ledger as it is now), ``reject``
settles it as refused; the agent sees either through ``get_send_status`` or by calling
``send_gift`` again with the same ``request_id``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from sendoso.cli._exit import ExitCode, guard
from sendoso.cli._ledger import LedgerOption, open_ledger
from sendoso.cli._output import JsonFlag, console, error_console, kv_table, print_json, text
from sendoso.cli._words import say_error

if TYPE_CHECKING:
    from sendoso.ledger import Approval
    from sendoso.mcp import SendView

__all__ = ["approvals_app"]

approvals_app = typer.Typer(
    help="Sends an agent asked for above the MCP server's approval threshold: list, approve "
    "(sends it), reject.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


def _estimate(approval: Approval) -> str:
    from sendoso.models import format_totals

    return format_totals(approval.estimate or {}) or "-"


def _approval_json(approval: Approval) -> dict[str, Any]:
    request = approval.request
    return {
        "approval_id": approval.approval_id,
        "state": approval.state.value,
        "run_id": approval.run_id,
        "recipient": approval.recipient,
        "name": approval.name,
        "gift_id": approval.gift_id,
        "variant_id": request.get("variant_id"),
        "message": request.get("message"),
        "estimate": {
            cur: {"low": str(low), "high": str(high)}
            for cur, (low, high) in (approval.estimate or {}).items()
        },
        "reason": approval.reason,
        "request_id": (request.get("metadata") or {}).get("sendoso_request_id"),
        "created_at": approval.created_at,
        "decided_at": approval.decided_at,
        "note": approval.note,
        "row": approval.row_number,
    }


@approvals_app.command("list")
def list_approvals(
    show_all: Annotated[
        bool, typer.Option("--all", help="Also approved and rejected ones.")
    ] = False,
    ledger_url: LedgerOption = None,
    json_output: JsonFlag = False,
) -> None:
    """List the sends waiting for a decision (oldest first)."""
    from rich.table import Table

    from sendoso.ledger import ApprovalState

    with guard(json_output=json_output), open_ledger(ledger_url) as ledger:
        found = ledger.approvals(state=None if show_all else ApprovalState.PENDING)
    if json_output:
        print_json([_approval_json(a) for a in found])
        return
    if not found:
        console().print("No sends are waiting for approval.")
        return
    table = Table(title="Approvals", title_justify="left")
    for column in ("id", "state", "requested", "recipient", "gift", "estimate", "why"):
        table.add_column(column, overflow="fold")
    for a in found:
        table.add_row(
            text(a.approval_id),
            a.state.value,
            a.created_at.isoformat(timespec="seconds") if a.created_at else "",
            text(f"{a.name or ''} <{a.recipient}>"),
            text(a.gift_id or ""),
            text(_estimate(a)),
            text(a.reason or a.note or ""),
        )
    console().print(table)


def _view_json(view: SendView) -> dict[str, Any]:
    return {
        "status": view.status,
        "send_id": view.send_id,
        "request_id": view.request_id,
        "recipient": view.recipient,
        "gift_id": view.gift_id,
        "detail": view.detail,
    }


@approvals_app.command("approve")
def approve(
    ctx: typer.Context,
    approval_id: Annotated[str, typer.Argument(help="The approval (see `approvals list`).")],
    ledger_url: LedgerOption = None,
    json_output: JsonFlag = False,
) -> None:
    """Approve a held send and send it now, once: the guardrails it was held under (caps,
    cool-down, allow-list) are checked again first; if one refuses, it stays pending."""
    import anyio

    from sendoso.cli._state import state_of
    from sendoso.mcp import Guardrails, Refusal, SendDesk

    cli_state = state_of(ctx)
    with guard(json_output=json_output, sending=True), open_ledger(ledger_url) as ledger:

        async def main() -> SendView:
            async with cli_state.async_client(wait_on_rate_limited_sends=False) as client:
                # The desk's own guardrails are not used: approving re-checks those
                # recorded with the approval.
                desk = SendDesk(client, ledger, Guardrails())
                return await desk.approve(approval_id)

        try:
            view = anyio.run(main)
        except Refusal as exc:
            # Who refused: the API (1), nobody knows yet (3), or this program, before
            # sending: an unknown or decided approval, a guardrail (2).
            code = {"unknown": ExitCode.AMBIGUOUS, "rejected": ExitCode.API_ERROR}.get(
                exc.outcome, ExitCode.USAGE
            )
            current = ledger.approval(approval_id)
            if json_output:
                print_json(
                    {
                        "error": {
                            "type": "Refused",
                            "message": say_error(exc),
                            "exit_code": int(code),
                        },
                        "approval": _approval_json(current) if current else None,
                    }
                )
            else:
                label = {"unknown": "Outcome unknown", "rejected": "Rejected by the API"}
                error_console().print(
                    f"[red]{label.get(exc.outcome, 'Not sent')}:[/red] {text(say_error(exc))}"
                )
            raise typer.Exit(int(code)) from None
    if json_output:
        print_json({"approval_id": approval_id, **_view_json(view)})
        return
    console().print(
        kv_table(
            {
                "Approval": approval_id,
                "Status": view.status,
                "Send id": view.send_id,
                "Recipient": view.recipient,
                "Gift": view.gift_id,
            },
            title="Approved and sent",
        )
    )


@approvals_app.command("reject")
def reject(
    approval_id: Annotated[str, typer.Argument(help="The approval (see `approvals list`).")],
    reason: Annotated[
        str | None,
        typer.Option("--reason", help="Why, for the agent (it sees this text)."),
    ] = None,
    ledger_url: LedgerOption = None,
    json_output: JsonFlag = False,
) -> None:
    """Reject a held send: it is never sent, and the agent is told not to retry it."""
    with guard(json_output=json_output), open_ledger(ledger_url) as ledger:
        decided = ledger.reject_approval(approval_id, reason.strip() if reason else None)
    if json_output:
        print_json(_approval_json(decided))
        return
    console().print(f"Rejected {text(approval_id)}: it will not be sent.")
