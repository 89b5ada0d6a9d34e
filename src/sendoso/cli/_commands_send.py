"""``sendoso send`` and ``sendoso status``: one gift to one recipient, and where it is now."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from sendoso.cli._exit import ExitCode, guard
from sendoso.cli._output import (
    JsonFlag,
    confirm_or_exit,
    console,
    kv_table,
    parse_pairs,
    print_json,
    send_table,
    simple_error,
    stdin_is_interactive,
    text,
    usage_error,
)
from sendoso.cli._state import state_of

if TYPE_CHECKING:
    from sendoso.models import CostEstimate, Gift, SendRequest

__all__ = ["parse_metadata", "send", "status"]

_RECIPIENT = "Recipient"
_ADDRESS = "Address (physical gifts and swag)"
_GIFT = "Gift"


def _opt(help: str, panel: str, metavar: str = "TEXT") -> Any:
    return typer.Option(help=help, rich_help_panel=panel, metavar=metavar)


def parse_metadata(pairs: list[str]) -> dict[str, str]:
    """``--metadata KEY=VALUE`` flags as a dict (values kept as typed)."""
    return parse_pairs(pairs, "--metadata")


def send(
    ctx: typer.Context,
    gift_id: Annotated[
        str | None, _opt("Catalog item to send (see `gifts list`).", _GIFT, "ID")
    ] = None,
    first_name: Annotated[str | None, _opt("Recipient's first name.", _RECIPIENT)] = None,
    last_name: Annotated[str | None, _opt("Recipient's last name.", _RECIPIENT)] = None,
    email: Annotated[str | None, _opt("Recipient's email.", _RECIPIENT, "EMAIL")] = None,
    company: Annotated[str | None, _opt("Recipient's company.", _RECIPIENT)] = None,
    title: Annotated[str | None, _opt("Recipient's job title.", _RECIPIENT)] = None,
    address_line1: Annotated[str | None, _opt("Street address.", _ADDRESS)] = None,
    address_line2: Annotated[str | None, _opt("Suite, floor, etc.", _ADDRESS)] = None,
    city: Annotated[str | None, _opt("City.", _ADDRESS)] = None,
    state: Annotated[str | None, _opt("State or province code, e.g. CA.", _ADDRESS)] = None,
    postal_code: Annotated[str | None, _opt("Postal (ZIP) code.", _ADDRESS)] = None,
    country: Annotated[
        str | None, _opt("ISO 3166-1 alpha-2 country code, e.g. US.", _ADDRESS, "CC")
    ] = None,
    message: Annotated[
        str | None, _opt("Personalised note sent with the gift (required).", _GIFT)
    ] = None,
    variant_id: Annotated[
        str | None, _opt("Variant (size, colour) of a swag item.", _GIFT, "ID")
    ] = None,
    team_id: Annotated[str | None, _opt("Team to bill the send to.", _GIFT, "ID")] = None,
    metadata: Annotated[
        list[str] | None,
        _opt("Attribution data; repeat for several pairs.", _GIFT, "KEY=VALUE"),
    ] = None,
    idempotency_key: Annotated[
        str | None,
        typer.Option(
            help="Key that identifies this send across retries (generated if not given). "
            "Re-use it only to retry the same send.",
            metavar="KEY",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Validate and estimate the cost; send nothing.")
    ] = False,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Send without asking for confirmation.")
    ] = False,
    json_output: JsonFlag = False,
) -> None:
    """Send one gift to one recipient.

    The request is checked against the catalog item first (every problem is listed and nothing
    is sent if there is one), the cost is estimated, and you are asked to confirm unless --yes.
    """
    try:
        extra = parse_metadata(metadata or [])
    except ValueError as exc:
        raise usage_error(str(exc), json_output=json_output) from None
    if idempotency_key is not None and not idempotency_key.strip():
        raise usage_error("--idempotency-key must not be empty", json_output=json_output)

    from sendoso import Address, SendRequest, new_idempotency_key

    address_parts = {
        "line1": address_line1,
        "line2": address_line2,
        "city": city,
        "state": state,
        "postal_code": postal_code,
        "country": country,
    }
    has_address = any(v is not None for v in address_parts.values())
    draft = SendRequest(
        gift_id=gift_id,
        first_name=first_name,
        last_name=last_name,
        email=email,
        company=company,
        title=title,
        address=Address(**address_parts) if has_address else None,
        message=message,
        variant_id=variant_id,
        team_id=team_id,
        metadata=extra,
    )
    key = idempotency_key.strip() if idempotency_key else new_idempotency_key()
    cli_state = state_of(ctx)

    with guard(json_output=json_output, sending=True), cli_state.client() as client:
        checked = client.sends.check(draft)
        checked.raise_for_problems()
        request, gift, estimate = checked.request, checked.gift, checked.estimate
        assert gift is not None  # a check without problems found the gift and priced it
        assert estimate is not None

        if dry_run:
            if json_output:
                print_json(_plan_json(request, gift, estimate, key, dry_run=True))
            else:
                console().print(_summary(request, gift, estimate, key))
                console().print("[green]Dry run:[/green] the request is valid; nothing was sent.")
            return

        if not json_output:
            console().print(_summary(request, gift, estimate, key))
        if not yes:
            _confirm(gift, request, estimate, json_output=json_output)
        try:
            sent = client.sends.submit(request, gift=gift, idempotency_key=key)
        except KeyboardInterrupt:
            raise _interrupted_while_sending(
                key, retry_safe=client.trusts_idempotency, json_output=json_output
            ) from None

    if json_output:
        print_json(
            {
                "dry_run": False,
                "send": sent.model_dump(mode="json"),
                "cost_estimate": estimate.model_dump(mode="json"),
            }
        )
        return
    out = console()
    out.print(send_table(sent, title="Sent"))
    out.print(
        f"[green]Sent.[/green] Send ID [bold]{text(sent.id)}[/bold], status "
        f"{text(sent.status)}, idempotency key {text(key)}. "
        f"Follow it with: sendoso status {text(sent.id)}"
    )


def _summary(request: SendRequest, gift: Gift, estimate: CostEstimate, key: str) -> Any:
    variant = gift.variant(request.variant_id) if request.variant_id else None
    address = request.address
    note = request.message or ""
    rows: dict[str, object] = {
        "Gift": f"{gift.name} ({gift.id}, {gift.category})",
        "Variant": f"{variant.name} ({variant.id})" if variant else None,
        "Recipient": f"{request.first_name} {request.last_name} <{request.email}>",
        "Title": request.title,
        "Company": request.company,
        "Address": ", ".join(
            p
            for p in (
                address.line1,
                address.line2,
                address.city,
                " ".join(x for x in (address.state, address.postal_code) if x),
                address.country,
            )
            if p
        )
        if address
        else "(none: delivered by email)",
        "Message": note if len(note) <= 80 else note[:77] + "...",
        "Team": request.team_id,
        "Metadata": ", ".join(f"{k}={v}" for k, v in request.metadata.items()) or None,
        "Estimated cost": estimate,
        "Idempotency key": key,
    }
    return kv_table(rows, title="Send summary")


def _plan_json(
    request: SendRequest, gift: Gift, estimate: CostEstimate, key: str, *, dry_run: bool
) -> dict[str, Any]:
    return {
        "dry_run": dry_run,
        "request": request.to_body()["send"],
        "gift": {"id": gift.id, "name": gift.name, "category": gift.category},
        "cost_estimate": estimate.model_dump(mode="json"),
        "idempotency_key": key,
    }


def _confirm(
    gift: Gift, request: SendRequest, estimate: CostEstimate, *, json_output: bool
) -> None:
    confirm_or_exit(
        f"Send {gift.name} to {request.email} for about {estimate}?",
        interactive=stdin_is_interactive(),
        not_interactive="not sent: confirmation needed but stdin is not a terminal; "
        "pass --yes to send without asking (or --dry-run to check only)",
        cancelled="cancelled at the confirmation prompt; nothing was sent",
        json_output=json_output,
    )


def _interrupted_while_sending(key: str, *, retry_safe: bool, json_output: bool) -> typer.Exit:
    if retry_safe:
        advice = f"this server deduplicates, so retry safely with --idempotency-key {key}"
    else:
        advice = (
            "this server is not known to deduplicate: check the Sendoso dashboard before "
            "sending again, or a second gift may go out"
        )
    message = f"interrupted while sending: the gift may or may not have been created; {advice}"
    return simple_error(
        "Interrupted",
        message,
        int(ExitCode.INTERRUPTED),
        json_output=json_output,
        idempotency_key=key,
    )


def status(
    ctx: typer.Context,
    send_id: Annotated[str, typer.Argument(help="The send's id, as `send` printed it.")],
    json_output: JsonFlag = False,
) -> None:
    """Show a send's current status."""
    cli_state = state_of(ctx)
    with guard(json_output=json_output), cli_state.client() as client:
        sent = client.sends.retrieve(send_id)
    if json_output:
        print_json(sent.model_dump(mode="json"))
        return
    console().print(send_table(sent, title=f"Send {sent.id}"))
