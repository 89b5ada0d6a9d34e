"""Typed data for the Sendoso API: catalog items, send requests, sends, tokens, cost estimates.

Responses are parsed leniently (unknown fields are ignored) because the production API's bodies
are not part of the published contract; requests are plain data checked by
:func:`sendoso.validate`, so that every problem can be reported at once rather than the first
one pydantic trips on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    computed_field,
    field_validator,
    model_validator,
)

__all__ = [
    "Address",
    "CostEstimate",
    "CostRange",
    "Gift",
    "GiftCategory",
    "GiftVariant",
    "Send",
    "SendRequest",
    "SendStatus",
    "ShippingEstimate",
    "format_totals",
]


class GiftCategory(StrEnum):
    PHYSICAL = "physical"
    EGIFT = "egift"
    SWAG = "swag"
    DONATION = "donation"


#: Categories delivered to a desk; everything else is delivered by email.
ADDRESSED_CATEGORIES = frozenset({GiftCategory.PHYSICAL.value, GiftCategory.SWAG.value})


class SendStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    FAILED = "failed"
    RETURNED = "returned"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset({SendStatus.DELIVERED, SendStatus.FAILED, SendStatus.RETURNED})


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class ShippingEstimate(_Lenient):
    """What shipping one item is expected to cost, from the item's origin country."""

    origin_country: str = "US"
    # Costs from the server feed budgets: a negative one would make room for more sends.
    domestic: Decimal = Field(ge=0)
    international: Decimal = Field(ge=0)


class GiftVariant(_Lenient):
    id: str
    name: str
    options: dict[str, str] = Field(default_factory=dict)
    in_stock: bool = True


class Gift(_Lenient):
    """One catalog item."""

    id: str = Field(min_length=1)
    name: str
    category: str
    price: Decimal = Field(ge=0)
    currency: str = "USD"
    requires_address: bool = False
    #: ISO 3166-1 alpha-2 codes; ``None`` means no restriction is published.
    ships_to: list[str] | None = None
    shipping_estimate: ShippingEstimate | None = None
    variants: list[GiftVariant] = Field(default_factory=list)
    description: str = ""

    @model_validator(mode="before")
    @classmethod
    def _infer_requires_address(cls, data: Any) -> Any:
        # A catalog that omits the flag still tells us by its category.
        if isinstance(data, dict) and "requires_address" not in data:
            data = {**data, "requires_address": data.get("category") in ADDRESSED_CATEGORIES}
        return data

    def available_in(self, country: str) -> bool:
        """Whether the item can be sent to a recipient in ``country`` (ISO alpha-2)."""
        return self.ships_to is None or country.upper() in self.ships_to

    def variant(self, variant_id: str) -> GiftVariant | None:
        return next((v for v in self.variants if v.id == variant_id), None)


class Address(BaseModel):
    """A postal address in a send request. Unknown keys are refused, so that a typo such as
    ``zip`` is reported as such rather than dropped."""

    model_config = ConfigDict(extra="forbid")

    line1: str | None = None
    line2: str | None = None
    city: str | None = None
    state: str | None = None
    postal_code: str | None = None
    country: str | None = None


class SendRequest(BaseModel):
    """The body of ``POST /api/v3/sends`` (inside its ``send`` wrapper).

    Every field is optional here so that a half-filled request can still be validated as a
    whole; :func:`sendoso.validate` says which required ones are missing.
    """

    model_config = ConfigDict(extra="forbid")

    gift_id: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    company: str | None = None
    title: str | None = None
    address: Address | None = None
    message: str | None = None
    variant_id: str | None = None
    team_id: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)

    @field_validator("metadata", mode="before")
    @classmethod
    def _scalars_as_strings(cls, value: Any) -> Any:
        # The seed contract (docs/architecture.md, section 5) calls metadata arbitrary
        # key-value pairs; CRM ids are often numbers.
        # Scalars become strings; nested structures are still refused.
        if isinstance(value, dict):
            return {
                key: (str(v).lower() if isinstance(v, bool) else str(v))
                if isinstance(v, int | float | bool)
                else v
                for key, v in value.items()
            }
        return value

    @property
    def country(self) -> str | None:
        """The recipient's country, when an address is given."""
        return self.address.country if self.address is not None else None

    def to_body(self) -> dict[str, Any]:
        """The JSON body the API expects, without empty optional fields."""
        send = self.model_dump(mode="json", exclude_none=True)
        if not send.get("metadata"):
            send.pop("metadata", None)
        return {"send": send}


class CostRange(_Lenient):
    """A low-high amount in one currency (a cost may list several)."""

    currency: str = "USD"
    low: Decimal = Field(ge=0)
    high: Decimal = Field(ge=0)


class Send(_Lenient):
    """A send as the API reports it."""

    id: str = Field(min_length=1)
    status: str = Field(min_length=1)
    gift_id: str | None = None
    variant_id: str | None = None
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    company: str | None = None
    title: str | None = None
    message: str | None = None
    team_id: str | None = None
    cost: list[CostRange] = Field(default_factory=list)
    status_reason: str | None = None
    tracking_number: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime | None = None
    updated_at: datetime | None = None
    #: The key this SDK sent the create request with (not part of the API's reply).
    idempotency_key: str | None = None

    @property
    def is_terminal(self) -> bool:
        return self.status in {s.value for s in TERMINAL_STATUSES}


class CostEstimate(BaseModel):
    """What one send is expected to cost, as a range (the seed contract gives the fees as a range).

    The item and its shipping are priced in the item's ``currency``; the fulfillment fee in
    ``fulfillment_currency`` (the seed contract's "$10-15"). Amounts in different currencies are
    never added together: :meth:`totals` gives one range per currency, and :attr:`low` /
    :attr:`high` exist only when there is a single one.
    """

    gift_id: str
    currency: str
    item: Decimal
    fulfillment_low: Decimal = Decimal("0")
    fulfillment_high: Decimal = Decimal("0")
    fulfillment_currency: str = "USD"
    shipping_low: Decimal = Decimal("0")
    shipping_high: Decimal = Decimal("0")
    #: False when the item needs shipping but the catalog publishes no rate for it: the
    #: range then leaves shipping out, and says so.
    shipping_known: bool = True

    def totals(self) -> dict[str, tuple[Decimal, Decimal]]:
        """``{currency: (low, high)}``, one entry per currency involved."""
        totals = {self.currency: (self.item + self.shipping_low, self.item + self.shipping_high)}
        if self.fulfillment_high:
            low, high = totals.get(self.fulfillment_currency, (Decimal("0"), Decimal("0")))
            totals[self.fulfillment_currency] = (
                low + self.fulfillment_low,
                high + self.fulfillment_high,
            )
        return totals

    @computed_field  # type: ignore[prop-decorator]
    @property
    def total(self) -> list[CostRange]:
        """:meth:`totals` as data, so that JSON output carries the sums too."""
        return [
            CostRange(currency=currency, low=low, high=high)
            for currency, (low, high) in self.totals().items()
        ]

    @property
    def single_currency(self) -> bool:
        return len(self.totals()) == 1

    def _only(self) -> tuple[Decimal, Decimal]:
        totals = self.totals()
        if len(totals) != 1:
            raise ValueError(
                f"the estimate for {self.gift_id} spans {' and '.join(totals)}; use totals()"
            )
        return next(iter(totals.values()))

    @property
    def low(self) -> Decimal:
        """The lowest total; raises ``ValueError`` if the estimate spans currencies."""
        return self._only()[0]

    @property
    def high(self) -> Decimal:
        """The highest total; raises ``ValueError`` if the estimate spans currencies."""
        return self._only()[1]

    def __str__(self) -> str:
        text = format_totals(self.totals())
        return text if self.shipping_known else f"{text} + shipping (rate not published)"


def format_totals(totals: Mapping[str, Sequence[Decimal]], *, dash: str = "\u2013") -> str:
    """``{currency: (low, high)}`` as "45.00\u201360.00 USD + 25.00 GBP"; never summed across
    currencies. ``dash="-"`` for plain-ASCII output (a CSV cell)."""
    return " + ".join(
        f"{low:.2f} {currency}" if low == high else f"{low:.2f}{dash}{high:.2f} {currency}"
        for currency, (low, high) in totals.items()
    )
