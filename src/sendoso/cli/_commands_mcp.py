"""``sendoso mcp``: serve the toolkit to AI agents over the Model Context Protocol.

A thin skin over :mod:`sendoso.mcp`: flags become :class:`~sendoso.mcp.Guardrails` (with the
environment and the config file under them), the rest is the library's. The ``mcp`` SDK is
imported only here, inside the command, so that ``sendoso --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sendoso.cli._exit import ExitCode, guard
from sendoso.cli._ledger import LedgerOption, open_ledger
from sendoso.cli._output import error_console, text
from sendoso.cli._state import state_of

__all__ = ["mcp"]

_RAILS = "Guardrails (also SENDOSO_MCP_* variables or an [mcp] table in the config file)"
_SERVE = "Transport"


def mcp(
    ctx: typer.Context,
    http: Annotated[
        bool,
        typer.Option(
            "--http",
            help="Serve streamable HTTP on loopback instead of stdio.",
            rich_help_panel=_SERVE,
        ),
    ] = False,
    host: Annotated[
        str,
        typer.Option(help="Address for --http: loopback only.", rich_help_panel=_SERVE),
    ] = "127.0.0.1",
    port: Annotated[
        int,
        typer.Option(
            min=0, max=65535, help="Port for --http (0: any free one).", rich_help_panel=_SERVE
        ),
    ] = 8788,
    allow_send: Annotated[
        bool,
        typer.Option(
            "--allow-send",
            help="Let send_gift really send (otherwise it checks and refuses).",
            rich_help_panel=_RAILS,
        ),
    ] = False,
    max_price: Annotated[
        list[str] | None,
        typer.Option(
            help="Most one send may cost (high estimate: item, fee, shipping). '100' is USD, "
            "'80 GBP' another currency; repeat for several.",
            metavar="AMOUNT",
            rich_help_panel=_RAILS,
        ),
    ] = None,
    daily_cap: Annotated[
        list[str] | None,
        typer.Option(
            help="Most the agent may spend per UTC day, sends in flight and unknown counted.",
            metavar="AMOUNT",
            rich_help_panel=_RAILS,
        ),
    ] = None,
    total_cap: Annotated[
        list[str] | None,
        typer.Option(
            help="Most the agent may spend in total (every MCP send in this ledger).",
            metavar="AMOUNT",
            rich_help_panel=_RAILS,
        ),
    ] = None,
    allow_gift: Annotated[
        list[str] | None,
        typer.Option(
            help="Only these gift ids may be sent (repeat; with --allow-category, either).",
            metavar="GIFT_ID",
            rich_help_panel=_RAILS,
        ),
    ] = None,
    allow_category: Annotated[
        list[str] | None,
        typer.Option(
            help="Only gifts of these categories may be sent (physical, egift, swag, donation).",
            metavar="CATEGORY",
            rich_help_panel=_RAILS,
        ),
    ] = None,
    cooldown: Annotated[
        float | None,
        typer.Option(
            min=0,
            help="Refuse a recipient sent anything in the last DAYS (by any run in the ledger).",
            metavar="DAYS",
            rich_help_panel=_RAILS,
        ),
    ] = None,
    approval_above: Annotated[
        list[str] | None,
        typer.Option(
            help="Sends that may cost more wait for `sendoso approvals approve` ('0': all).",
            metavar="AMOUNT",
            rich_help_panel=_RAILS,
        ),
    ] = None,
    allow_resend: Annotated[
        bool,
        typer.Option(
            "--allow-resend",
            help="Allow the same gift to the same recipient twice (refused by default).",
            rich_help_panel=_RAILS,
        ),
    ] = False,
    guardrails_file: Annotated[
        Path | None,
        typer.Option(
            "--guardrails",
            help="TOML file with the guardrails (keys as in [mcp]; default: the config file).",
            metavar="FILE",
            rich_help_panel=_RAILS,
        ),
    ] = None,
    ledger_url: LedgerOption = None,
) -> None:
    """Serve the Model Context Protocol (stdio, or --http on loopback) for AI agents.

    Tools: list_gifts, estimate_cost, validate_recipient, send_gift, get_send_status,
    list_sends. Every send is recorded in the ledger (run `mcp-…`, see `sendoso batch runs`)
    before it is made, so a request_id is sent once however often the agent retries.
    """
    import anyio

    from sendoso.ledger import Ledger
    from sendoso.mcp import SendDesk, load_guardrails

    cli_state = state_of(ctx)
    with guard(json_output=False):
        rails = load_guardrails(
            {
                "allow_send": allow_send,
                "max_price": max_price,
                "daily_cap": daily_cap,
                "total_cap": total_cap,
                "allow_gifts": allow_gift,
                "allow_categories": allow_category,
                "cooldown_days": cooldown,
                "approval_above": approval_above,
                "allow_resend": allow_resend,
            },
            path=guardrails_file,
        )
        if http:
            from sendoso.mcp import check_http_host

            check_http_host(host)
        log = error_console()

        async def main(ledger: Ledger) -> None:
            from sendoso.mcp import serve_http, serve_stdio

            # A 429 hands the send back (not sent, retry the same request_id) rather than
            # holding it "submitting" through Retry-After, as batch runs do.
            async with cli_state.async_client(wait_on_rate_limited_sends=False) as client:
                desk = SendDesk(client, ledger, rails)
                log.print(
                    f"sendoso mcp: host {text(client.base_url)}, "
                    f"ledger {text(ledger.display_url)}, run {desk.run_id}"
                )
                for line in rails.describe():
                    log.print(f"  {text(line)}")
                if http:
                    await serve_http(
                        desk,
                        host=host,
                        port=port,
                        on_ready=lambda url: log.print(f"MCP endpoint: {url}"),
                    )
                else:
                    await serve_stdio(desk)

        with open_ledger(ledger_url) as ledger:
            try:
                anyio.run(main, ledger)
            except KeyboardInterrupt:
                raise typer.Exit(int(ExitCode.INTERRUPTED)) from None
