"""The Model Context Protocol face of :class:`~sendoso.mcp.SendDesk`, on the official SDK.

Each tool is a few lines: typed arguments (their JSON schema, with a description per field,
is what the agent reads), one call to the desk, and the result both as structured content
(with an output schema) and as JSON text for clients that only show text. A refusal is a
tool error (``isError``) whose text says what to do next; it never raises into the protocol.

Served over stdio, or streamable HTTP bound to loopback only (with the SDK's DNS-rebinding
protection: Host and Origin must be loopback too).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import SQLAlchemyError

from sendoso._net import is_loopback_host, listening_socket
from sendoso._version import __version__
from sendoso.errors import (
    APIError,
    AuthenticationError,
    ConfigurationError,
    PermissionDeniedError,
    SendosoError,
    ValidationError,
)
from sendoso.ledger import LedgerError, LedgerFailedError, describe_failure
from sendoso.mcp._desk import GiftOffer, Refusal, SendDesk, SendView
from sendoso.models import CostEstimate

__all__ = ["build_server", "check_http_host", "serve_http", "serve_stdio"]

# Inputs ---------------------------------------------------------------------------------


class AddressInput(BaseModel):
    """A postal address. Required (line1, city, postal_code, country, and state in US, CA,
    AU, MX, BR and IN) for physical and swag gifts; for eGifts and donations give only
    ``country`` (or nothing)."""

    model_config = ConfigDict(extra="forbid")

    line1: str | None = Field(None, description="Street address, first line.")
    line2: str | None = Field(None, description="Apartment, suite, floor (optional).")
    city: str | None = Field(None, description="City.")
    state: str | None = Field(None, description="State or province code, e.g. IL, ON.")
    postal_code: str | None = Field(None, description="ZIP or postal code, e.g. 62701.")
    country: str | None = Field(None, description="ISO 3166-1 alpha-2 country code, e.g. US.")


class RecipientInput(BaseModel):
    """Who receives the gift."""

    model_config = ConfigDict(extra="forbid")

    first_name: str = Field(description="Recipient's first name.")
    last_name: str = Field(description="Recipient's last name.")
    email: str = Field(description="Recipient's email address (eGifts are delivered to it).")
    company: str | None = Field(None, description="Recipient's company (optional).")
    title: str | None = Field(None, description="Recipient's job title (optional).")
    address: AddressInput | None = Field(
        None, description="Shipping address: required for physical and swag gifts."
    )


# Outputs --------------------------------------------------------------------------------


class Money(BaseModel):
    currency: str = Field(description="ISO 4217 currency code.")
    low: str = Field(description="Lowest expected amount, a decimal string.")
    high: str = Field(description="Highest expected amount, a decimal string.")


class VariantOut(BaseModel):
    id: str
    name: str
    in_stock: bool


class GiftOut(BaseModel):
    id: str = Field(description="Pass this as gift_id.")
    name: str
    category: Literal["physical", "egift", "swag", "donation"] | str
    price: str = Field(description="Item price, a decimal string, in `currency`.")
    currency: str
    requires_address: bool = Field(description="Whether the recipient needs an address.")
    ships_to: list[str] | None = Field(
        description="Countries it can be sent to (ISO codes); null means no restriction."
    )
    variants: list[VariantOut] = Field(description="Pick one as variant_id when non-empty.")
    description: str
    estimate: list[Money] = Field(
        description="Total cost range (item, fulfillment fee, shipping), one entry per currency."
    )
    allowed: bool = Field(description="Whether this server's guardrails let it be sent.")
    refusal: str | None = Field(description="Why it may not be sent, when not allowed.")
    needs_approval: str | None = Field(
        description="Why a send of it would wait for a person's approval, if it would."
    )


class GiftList(BaseModel):
    gifts: list[GiftOut]
    count: int


class EstimateOut(BaseModel):
    gift_id: str
    name: str
    currency: str = Field(description="Currency of the item and its shipping.")
    item: str = Field(description="Item price.")
    fulfillment: Money | None = Field(description="Fulfillment fee range (physical and swag).")
    shipping: Money | None = Field(description="Shipping range (physical and swag).")
    shipping_known: bool = Field(
        description="False when the item ships but publishes no rate: the total omits shipping."
    )
    total: list[Money] = Field(description="Total cost range, one entry per currency.")
    summary: str = Field(description="The total as a person reads it.")
    allowed: bool = Field(description="Whether this server's guardrails let it be sent.")
    refusal: str | None
    needs_approval: str | None


class Problem(BaseModel):
    field: str = Field(description="The field at fault, e.g. address.postal_code.")
    code: str = Field(
        description="missing, invalid, too_long, invalid_email, not_eligible, unknown_gift, "
        "unknown_variant or out_of_stock."
    )
    message: str


class ValidationOut(BaseModel):
    ok: bool = Field(description="True when the request can be sent as it is.")
    problems: list[Problem] = Field(description="Every problem found, all at once.")
    estimate: list[Money] = Field(description="Cost range when there are no problems.")
    guardrail_refusals: list[str] = Field(
        description="What this server's guardrails would refuse about sending it now."
    )
    needs_approval: str | None = Field(description="Why it would wait for a person, if it would.")


class SendOut(BaseModel):
    status: str = Field(
        description="pending_approval, rejected_by_operator, sending, not_sent, unknown, "
        "rejected, refused, or the send's own status once sent: pending, processing, "
        "shipped, delivered, failed, returned."
    )
    request_id: str | None
    send_id: str | None = Field(description="Sendoso's id of the send, once sent.")
    gift_id: str | None
    recipient: str | None
    estimate: list[Money]
    approval_id: str | None = Field(description="Set while a person has to approve it.")
    detail: str | None = Field(description="What happened, or what to do next.")
    tracking_number: str | None
    attempted_at: str | None = Field(description="When it was sent or requested (UTC, ISO).")
    replayed: bool = Field(
        description="True when this request_id was seen before: nothing new was sent."
    )


class SendList(BaseModel):
    sends: list[SendOut]
    count: int


# Conversion -----------------------------------------------------------------------------


def _money(totals: Mapping[str, tuple[Decimal, Decimal]]) -> list[Money]:
    return [Money(currency=c, low=f"{lo:.2f}", high=f"{hi:.2f}") for c, (lo, hi) in totals.items()]


def _gift_out(offer: GiftOffer) -> GiftOut:
    gift = offer.gift
    return GiftOut(
        id=gift.id,
        name=gift.name,
        category=gift.category,
        price=f"{gift.price:.2f}",
        currency=gift.currency,
        requires_address=gift.requires_address,
        ships_to=gift.ships_to,
        variants=[VariantOut(id=v.id, name=v.name, in_stock=v.in_stock) for v in gift.variants],
        description=gift.description,
        estimate=_money(offer.estimate.totals()),
        allowed=offer.refusal is None,
        refusal=offer.refusal,
        needs_approval=offer.approval,
    )


def _range(currency: str, low: Decimal, high: Decimal) -> Money | None:
    if not high:
        return None
    return Money(currency=currency, low=f"{low:.2f}", high=f"{high:.2f}")


def _estimate_out(offer: GiftOffer) -> EstimateOut:
    e: CostEstimate = offer.estimate
    return EstimateOut(
        gift_id=e.gift_id,
        name=offer.gift.name,
        currency=e.currency,
        item=f"{e.item:.2f}",
        fulfillment=_range(e.fulfillment_currency, e.fulfillment_low, e.fulfillment_high),
        shipping=_range(e.currency, e.shipping_low, e.shipping_high),
        shipping_known=e.shipping_known,
        total=_money(e.totals()),
        summary=str(e),
        allowed=offer.refusal is None,
        refusal=offer.refusal,
        needs_approval=offer.approval,
    )


def _send_out(view: SendView) -> SendOut:
    return SendOut(
        status=view.status,
        request_id=view.request_id,
        send_id=view.send_id,
        gift_id=view.gift_id,
        recipient=view.recipient,
        estimate=[
            Money(currency=c, low=r["low"], high=r["high"]) for c, r in view.estimate.items()
        ],
        approval_id=view.approval_id,
        detail=view.detail,
        tracking_number=view.tracking_number,
        attempted_at=view.attempted_at.isoformat() if view.attempted_at else None,
        replayed=view.replayed,
    )


def _ok(model: BaseModel) -> CallToolResult:
    data = model.model_dump(mode="json")
    return CallToolResult(
        content=[TextContent(text=json.dumps(data, ensure_ascii=False))],
        structured_content=data,
    )


def _error(text: str) -> CallToolResult:
    return CallToolResult(content=[TextContent(text=text)], is_error=True)


def _failure_text(exc: SendosoError) -> str:
    """A tool error for anything the desk raised, with what to do next."""
    if isinstance(exc, Refusal):
        return str(exc)
    if isinstance(exc, ValidationError):
        return f"invalid arguments, nothing was done: {exc}"
    if isinstance(exc, LedgerFailedError):
        return f"{exc}; try again later with the same request_id"
    if isinstance(exc, LedgerError):
        return f"{exc}; nothing was sent"
    if isinstance(exc, ConfigurationError):
        return f"this server is misconfigured ({exc}); the person running it must fix it"
    if isinstance(exc, AuthenticationError | PermissionDeniedError):
        return (
            f"Sendoso refused this server's credentials ({exc}); the person running it must "
            "fix them. Retrying will not help until then"
        )
    if isinstance(exc, APIError):
        return f"the Sendoso API failed ({exc}); try again in a little while"
    return f"failed: {exc}"


async def _guarded(call: Callable[[], Awaitable[BaseModel]]) -> CallToolResult:
    try:
        return _ok(await call())
    except SendosoError as exc:
        return _error(_failure_text(exc))
    except SQLAlchemyError as exc:
        return _error(
            f"{describe_failure(exc)}; whatever it recorded is kept. Try again later with "
            "the same request_id"
        )


def _since(value: str | None) -> datetime | None:
    if value is None or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise Refusal(
            f"since {value!r} is not an ISO 8601 date or time, e.g. 2026-11-26 or "
            "2026-11-26T09:00:00Z"
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


# The server -----------------------------------------------------------------------------

_INSTRUCTIONS = """\
Send corporate gifts (physical items, eGift cards, swag, donations) through Sendoso.
Typical flow: list_gifts -> estimate_cost -> validate_recipient -> send_gift (with a fresh
request_id per intended gift; reuse it only to retry that same gift) -> get_send_status.
A person set this server's limits; they cannot be changed through these tools:
"""

_READ = ToolAnnotations(read_only_hint=True, open_world_hint=True)
_SEND = ToolAnnotations(
    read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=True
)

RequestId = Annotated[
    str,
    Field(
        description="Your unique id for this intended send (e.g. a UUID), 1-200 characters. "
        "It is the idempotency key: calling again with the same request_id never sends a "
        "second gift, even after a restart, and reports the first call's outcome. Use a new "
        "one for every new gift.",
        min_length=1,
        max_length=200,
    ),
]
GiftId = Annotated[str, Field(description="A gift id from list_gifts.", min_length=1)]
Country = Annotated[
    str | None,
    Field(description="Recipient's ISO 3166-1 alpha-2 country code, e.g. US or GB."),
]


def build_server(desk: SendDesk) -> MCPServer[Any]:
    """The MCP server exposing ``desk`` as six tools."""
    server: MCPServer[Any] = MCPServer(
        name="sendoso",
        title="Sendoso gifts",
        version=__version__,
        instructions=_INSTRUCTIONS + "\n".join(f"- {line}" for line in desk.guardrails.describe()),
        log_level="WARNING",
    )

    @server.tool(
        title="List gifts",
        annotations=_READ,
        description="Browse the Sendoso catalog: every item matching the filters, with its "
        "price, cost estimate (item + fulfillment fee + shipping), variants, the countries it "
        "ships to, and whether this server's guardrails allow sending it (allowed, refusal, "
        "needs_approval). Sends nothing.",
    )
    async def list_gifts(
        category: Annotated[
            Literal["physical", "egift", "swag", "donation"] | None,
            Field(description="Only this kind of gift."),
        ] = None,
        min_price: Annotated[
            Decimal | None, Field(description="Lowest item price, in the item's currency.", ge=0)
        ] = None,
        max_price: Annotated[
            Decimal | None, Field(description="Highest item price, in the item's currency.", ge=0)
        ] = None,
        country: Country = None,
    ) -> Annotated[CallToolResult, GiftList]:
        async def call() -> GiftList:
            offers = await desk.list_gifts(
                category=category, min_price=min_price, max_price=max_price, country=country
            )
            return GiftList(gifts=[_gift_out(o) for o in offers], count=len(offers))

        return await _guarded(call)

    @server.tool(
        title="Estimate cost",
        annotations=_READ,
        description="What sending one gift is expected to cost, as a low-high range per "
        "currency: item price, the fulfillment fee ($10-15, physical and swag) and shipping "
        "(domestic or international, by country; without a country, the range spans both). "
        "Also says whether the guardrails allow it and whether it would need approval. "
        "Sends nothing.",
    )
    async def estimate_cost(
        gift_id: GiftId, country: Country = None
    ) -> Annotated[CallToolResult, EstimateOut]:
        async def call() -> EstimateOut:
            return _estimate_out(await desk.estimate(gift_id, country))

        return await _guarded(call)

    @server.tool(
        title="Validate recipient",
        annotations=_READ,
        description="Check a recipient for a gift exactly as send_gift would, and list every "
        "problem at once (missing or invalid fields, an address the gift needs, a country it "
        "does not ship to, a variant to pick), with the cost estimate and what the guardrails "
        "would refuse (allow-list, price, cool-down, caps). Sends nothing.",
    )
    async def validate_recipient(
        gift_id: GiftId,
        recipient: RecipientInput,
        message: Annotated[
            str | None,
            Field(description="The note to send with the gift, if you want it checked too."),
        ] = None,
        variant_id: Annotated[
            str | None, Field(description="Variant id, for gifts with variants.")
        ] = None,
    ) -> Annotated[CallToolResult, ValidationOut]:
        async def call() -> ValidationOut:
            checked = await desk.check(
                gift_id,
                recipient.model_dump(exclude_none=True),
                message=message,
                variant_id=variant_id,
            )
            problems = checked.problems
            refusals = await desk.recipient_refusals(checked)
            estimate = checked.estimate
            return ValidationOut(
                ok=not problems,
                problems=[Problem(field=p.field, code=p.code, message=p.message) for p in problems],
                estimate=_money(estimate.totals()) if estimate else [],
                guardrail_refusals=refusals,
                needs_approval=desk.guardrails.approval_reason(estimate) if estimate else None,
            )

        return await _guarded(call)

    @server.tool(
        title="Send gift",
        annotations=_SEND,
        description="Send one gift to one recipient, once per request_id. The request is "
        "checked first (every problem is reported, nothing sent) and recorded before it is "
        "sent, so retrying with the same request_id - after a timeout, an error or a server "
        "restart - never sends twice and returns the first call's outcome. The person running "
        "this server sets limits (live sending on/off, price per send, daily and total caps, "
        "allowed gifts, a per-recipient cool-down); a refusal says which and what to do. "
        "Sends above the approval threshold return status pending_approval: a person decides, "
        "and get_send_status (or the same call again) tells the outcome later.",
    )
    async def send_gift(
        gift_id: GiftId,
        recipient: RecipientInput,
        message: Annotated[
            str,
            Field(description="The personalised note sent with the gift (up to 1000 characters)."),
        ],
        request_id: RequestId,
        variant_id: Annotated[
            str | None, Field(description="Variant id, required for gifts with variants.")
        ] = None,
        metadata: Annotated[
            dict[str, str | int | float | bool] | None,
            Field(
                description="Your own key-value pairs stored with the send, e.g. a CRM "
                "contact_id or campaign_id (up to 50 keys)."
            ),
        ] = None,
    ) -> Annotated[CallToolResult, SendOut]:
        async def call() -> SendOut:
            view = await desk.send(
                request_id=request_id,
                gift_id=gift_id,
                recipient=recipient.model_dump(exclude_none=True),
                message=message,
                variant_id=variant_id,
                metadata=metadata,
            )
            return _send_out(view)

        return await _guarded(call)

    @server.tool(
        title="Get send status",
        annotations=_READ,
        description="The current status of a send made through this server, asked of "
        "Sendoso: pending, processing, shipped, delivered, failed or returned (with the "
        "reason and tracking number when known); or, before it was sent, pending_approval, "
        "rejected_by_operator, unknown or rejected. Give send_id, or the request_id you "
        "sent it with.",
    )
    async def get_send_status(
        send_id: Annotated[str | None, Field(description="Sendoso's send id (snd_...).")] = None,
        request_id: Annotated[
            str | None, Field(description="The request_id given to send_gift.")
        ] = None,
    ) -> Annotated[CallToolResult, SendOut]:
        async def call() -> SendOut:
            return _send_out(await desk.status(send_id=send_id, request_id=request_id))

        return await _guarded(call)

    @server.tool(
        title="List sends",
        annotations=_READ,
        description="What this server has sent or been asked to send, newest first, from its "
        "ledger (statuses as last recorded; get_send_status refreshes one).",
    )
    async def list_sends(
        since: Annotated[
            str | None,
            Field(
                description="Only sends made or requested since then: ISO 8601, UTC if no offset."
            ),
        ] = None,
        status: Annotated[
            str | None,
            Field(
                description="Only sends with this status (e.g. delivered, pending_approval, "
                "unknown)."
            ),
        ] = None,
        limit: Annotated[int, Field(description="At most this many.", ge=1, le=500)] = 50,
    ) -> Annotated[CallToolResult, SendList]:
        async def call() -> SendList:
            views = await desk.list_sends(since=_since(since), status=status, limit=limit)
            return SendList(sends=[_send_out(v) for v in views], count=len(views))

        return await _guarded(call)

    return server


async def serve_stdio(desk: SendDesk) -> None:
    """Serve ``desk`` on stdin/stdout until the client closes them."""
    await build_server(desk).run_stdio_async()


def check_http_host(host: str) -> None:
    """Refuse any address but loopback: the HTTP transport has no authentication."""
    if not is_loopback_host(host):
        raise ConfigurationError(
            f"refusing to serve MCP over HTTP on {host!r}: it has no authentication, so it only "
            "binds to loopback (127.0.0.1, ::1, localhost)"
        )


async def serve_http(
    desk: SendDesk,
    *,
    host: str = "127.0.0.1",
    port: int = 8788,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve ``desk`` as streamable HTTP at ``http://HOST:PORT/mcp`` until interrupted;
    ``on_ready(url)`` once listening (``port=0`` picks a free port)."""
    import uvicorn

    check_http_host(host)
    sock = listening_socket(host, port, backlog=64)
    bound_host, bound_port = sock.getsockname()[:2]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    security = TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=["127.0.0.1:*", "localhost:*", "[::1]:*"],
        allowed_origins=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"],
    )
    app = build_server(desk).streamable_http_app(transport_security=security, host=host)
    config = uvicorn.Config(app, log_config=None, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    if on_ready is not None:
        on_ready(f"http://{shown}:{bound_port}/mcp")
    try:
        await server.serve(sockets=[sock])
    finally:
        sock.close()
        sys.stderr.flush()
