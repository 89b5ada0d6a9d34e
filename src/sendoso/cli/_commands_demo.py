"""``sendoso demo``: the whole story against an in-process sandbox, on loopback only."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from sendoso.cli._exit import guard
from sendoso.cli._output import console, gifts_table, print_problems, text

if TYPE_CHECKING:
    from rich.console import Console

    from sendoso import Sendoso
    from sendoso.models import CostEstimate, Gift, Send, SendRequest
    from sendoso.sandbox import SandboxControl

__all__ = ["demo"]

_CLIENT_ID = "sandbox-client"
_SECRET = "sandbox-secret"
_HOUR = 3600
#: Cumulative virtual time after each step: 1 h, 24 h, 72 h.
_STEPS = (
    (1 * _HOUR, "1 hour later"),
    (23 * _HOUR, "24 hours later"),
    (48 * _HOUR, "72 hours later"),
)
_ADDRESS = {
    "line1": "1 Market Street",
    "line2": "Suite 300",
    "city": "San Francisco",
    "state": "CA",
    "postal_code": "94105",
    "country": "US",
}


@dataclass
class _Tracked:
    gift: Gift
    estimate: CostEstimate
    send: Send


_TEMPLATE = "Hi {first_name}, thank you for a great year with {account_name}!"


def demo(
    recipients: Annotated[
        Path | None,
        typer.Option(
            help="A CSV of recipients to send as a batch (e.g. examples/recipients.csv).",
            metavar="FILE",
            # Checked before the tour starts, not after it has run for a while.
            exists=True,
            dir_okay=False,
            readable=True,
        ),
    ] = None,
) -> None:
    """Tour the toolkit on a throwaway local sandbox.

    Authenticates, browses the catalog, validates, sends and follows two gifts, then (with
    --recipients) runs a whole file as a batch through the demo's own ledger (kept in the
    user cache directory until the next demo), all against an in-process sandbox on
    loopback: no account, no network.
    """

    from sendoso import Sendoso
    from sendoso.sandbox import SandboxConfig, SandboxControl, SandboxServer

    out = console()
    with guard(json_output=False, sending=True):
        out.rule("[bold]Sendoso demo[/bold]: a local sandbox, no account, no network")
        with SandboxServer(SandboxConfig(rate_limit=None)) as server:
            out.print(f"Started a sandbox at [cyan]{text(server.url)}[/cyan].")
            with (
                Sendoso(base_url=server.url, client_id=_CLIENT_ID, client_secret=_SECRET) as client,
                SandboxControl(server.url) as control,
            ):
                _story(out, client, control)
                ledger_url = None
                if recipients is not None:
                    control.reset()
                    ledger_url = _batch_story(out, client, control, recipients)
    out.rule("[green]Demo complete[/green]")
    _try_it_yourself(out, ledger_url)


def _try_it_yourself(out: Console, ledger_url: str | None) -> None:
    """The commands to go on with, typed so that they work as printed from here."""
    from sendoso.cli._output import on_path, program

    me = program()
    out.print("\nTry it yourself:")
    if ledger_url is not None:
        # The sandbox is gone with the demo, but its batch stays readable in the ledger.
        out.print(f"  {me} batch show demo --ledger {ledger_url}")
        out.print(f"  {me} batch report demo --ledger {ledger_url} --out report.csv")
    out.print(f"  {me} sandbox serve      # then the three exports it prints, and:")
    out.print(f"  {me} gifts list")
    out.print(f"  {me} send --help")
    if not on_path():
        out.print(
            "(`sendoso` alone is not on your PATH: `source .venv/bin/activate` puts it there "
            "for this shell, `make install` for good.)"
        )


def _story(out: Console, client: Sendoso, control: SandboxControl) -> None:
    from datetime import UTC, datetime

    from sendoso import Address, SendRequest, ValidationError
    from sendoso.models import GiftCategory
    from sendoso.pricing import estimate_cost

    out.print("\n[bold]1. Authenticate[/bold] (OAuth 2.0 client credentials)")
    info = client.authenticate()
    expires = info.expires_at.astimezone(UTC)
    minutes = int((expires - datetime.now(UTC)).total_seconds() // 60)
    out.print(
        f"   {text(info.token_type)} token obtained; expires "
        f"{expires.isoformat(timespec='seconds').replace('+00:00', 'Z')} (in {minutes} min). "
        "The token itself is never shown."
    )

    out.print("\n[bold]2. Browse the catalog[/bold] (a few per category)")
    catalog: list[Gift] = []
    for category in GiftCategory:
        gifts = client.gifts.list(category=category.value)
        catalog.extend(gifts)
        table = gifts_table(gifts[:3], width=out.width)
        table.title = f"{category.value} ({len(gifts)} items)"
        out.print(table)

    physical = next(
        g for g in catalog if g.category == GiftCategory.PHYSICAL and g.available_in("US")
    )
    egift = next(g for g in catalog if g.category == GiftCategory.EGIFT and g.available_in("US"))

    out.print("\n[bold]3. Validate before sending[/bold]: a deliberately bad request")
    bad = SendRequest(
        gift_id=physical.id,
        first_name="Ada",
        last_name="",
        email="ada@",
        address=Address(line1="1 Market Street", country="US", postal_code="9410"),
        message="",
    )
    try:
        client.sends.submit(bad, gift=physical)
    except ValidationError as exc:
        print_problems(
            exc.problems,
            heading=f"   Refused locally, nothing sent ({len(exc.problems)} problems):",
            out=out,
        )

    out.print("\n[bold]4. Estimate and send[/bold] one physical gift and one eGift")
    tracked: list[_Tracked] = []
    variant = next((v.id for v in physical.variants if v.in_stock), None)
    requests: list[tuple[Gift, SendRequest]] = [
        (
            physical,
            SendRequest(
                gift_id=physical.id,
                variant_id=variant,
                first_name="Ada",
                last_name="Lovelace",
                email="ada@example.com",
                company="Analytical Engines Ltd",
                title="Head of Research",
                address=Address(**_ADDRESS),
                message="Thanks for a great first meeting. Enjoy!",
                metadata={"campaign_id": "demo"},
            ),
        ),
        (
            egift,
            SendRequest(
                gift_id=egift.id,
                first_name="Grace",
                last_name="Hopper",
                email="grace@example.com",
                message="Coffee is on us. Thanks for your time!",
                metadata={"campaign_id": "demo"},
            ),
        ),
    ]
    for gift, request in requests:
        estimate = estimate_cost(gift, request.country)
        sent = client.sends.submit(request, gift=gift)
        tracked.append(_Tracked(gift, estimate, sent))
        out.print(
            f"   {text(gift.name)} -> {text(request.email)}: "
            f"estimated {text(str(estimate))}; "
            f"sent as [bold]{text(sent.id)}[/bold] ({text(sent.status)})"
        )

    out.print("\n[bold]5. Follow the sends[/bold] on the sandbox's virtual clock")
    _show_statuses(out, client, tracked, "now")
    for seconds, label in _STEPS:
        control.advance(seconds)
        _show_statuses(out, client, tracked, label)

    out.print("\n[bold]6. Summary[/bold]")
    from rich.table import Table

    summary = Table(title="Sends", title_justify="left")
    for column in ("Send ID", "Gift", "Recipient", "Status", "Est. cost"):
        summary.add_column(column, no_wrap=column in {"Send ID", "Est. cost"})
    for item in tracked:
        summary.add_row(
            text(item.send.id),
            text(item.gift.name),
            text(item.send.email or ""),
            text(item.send.status),
            text(str(item.estimate)),
        )
    out.print(summary)


def _show_statuses(out: Console, client: Sendoso, tracked: list[_Tracked], label: str) -> None:
    parts = []
    for item in tracked:
        item.send = client.sends.retrieve(item.send.id).model_copy(
            update={"idempotency_key": item.send.idempotency_key}
        )
        parts.append(f"{text(item.gift.category)}: [bold]{text(item.send.status)}[/bold]")
    out.print(f"   {label:>15}  " + "   ".join(parts))


def _batch_story(out: Console, client: Sendoso, control: SandboxControl, path: Path) -> str:
    """Send ``path`` as run ``demo`` through a ledger kept in the user cache directory (each
    demo starts it afresh); returns that ledger's URL."""
    from functools import partial

    from sendoso import AsyncSendoso
    from sendoso.batch import BatchSpec, Ledger, prepare_run
    from sendoso.cli._batch_views import execute, refresh, show_plan, show_status

    kept = _demo_ledger_path()
    url = f"sqlite:///{kept}"
    out.print(f"\n[bold]7. A batch[/bold] from {text(path)}, through the demo's own ledger")
    spec = BatchSpec(path=str(path), run_id="demo", message_template=_TEMPLATE)
    make_client = partial(
        AsyncSendoso, base_url=client.base_url, client_id=_CLIENT_ID, client_secret=_SECRET
    )
    with Ledger(url) as ledger:
        prepared = prepare_run(ledger, spec, client.gifts.list(), base_url=client.base_url)
        assert prepared.summary is not None
        show_plan(prepared.summary, ledger, "demo", spec, False, dry=False)
        execute(ledger, make_client, prepared.run, 8, 60.0, False, next_steps=False)
        out.print(
            f"   (The demo keeps this ledger at {text(kept)}, apart from yours, and starts it "
            "afresh each time; on your own, `sendoso batch run FILE` keeps one in your data "
            "directory.)"
        )
        out.print("\n[bold]8. Track the batch[/bold] on the sandbox's virtual clock")
        for seconds, label in _STEPS:
            control.advance(seconds)
            out.print(f"   {label}:")
            show_status(ledger, "demo", refresh(ledger, prepared.run, make_client, 8), False)
    return url


def _demo_ledger_path() -> Path:
    """The demo's ledger, in the user cache directory (not the data directory, where the
    real ledger lives): removed first, as its run "demo" was sent to a sandbox now gone."""
    import platformdirs

    directory = Path(platformdirs.user_cache_dir("sendoso")) / "demo"
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    kept = directory / "ledger.db"
    for leftover in directory.glob("ledger.db*"):
        leftover.unlink()
    return kept
