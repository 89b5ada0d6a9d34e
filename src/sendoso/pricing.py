"""Cost estimates from the seed's pricing note, in ``Decimal``.

eGift cards and donations cost their face value. Physical items (and swag) cost the item, a
fulfillment fee of $10-15 and shipping, so their estimate is a range.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from sendoso.models import ADDRESSED_CATEGORIES, CostEstimate, Gift

__all__ = [
    "FULFILLMENT_FEE_CURRENCY",
    "FULFILLMENT_FEE_HIGH",
    "FULFILLMENT_FEE_LOW",
    "CapExcess",
    "EstimateMemo",
    "estimate_cost",
    "over_cap",
]

FULFILLMENT_FEE_LOW = Decimal("10.00")
FULFILLMENT_FEE_HIGH = Decimal("15.00")
FULFILLMENT_FEE_CURRENCY = "USD"


def estimate_cost(gift: Gift, country: str | None = None) -> CostEstimate:
    """What sending ``gift`` once is expected to cost, as a low/high range.

    With ``country`` unknown, shipping spans the domestic to the international rate. The
    fulfillment fee is in US dollars whatever the item's currency, as the seed states it.
    """
    if gift.category not in ADDRESSED_CATEGORIES and not gift.requires_address:
        return CostEstimate(gift_id=gift.id, currency=gift.currency, item=gift.price)
    shipping_low = shipping_high = Decimal("0")
    shipping_known = gift.shipping_estimate is not None
    if gift.shipping_estimate is not None:
        rates = gift.shipping_estimate
        if country is None:
            shipping_low = min(rates.domestic, rates.international)
            shipping_high = max(rates.domestic, rates.international)
        elif country.upper() == rates.origin_country.upper():
            shipping_low = shipping_high = rates.domestic
        else:
            shipping_low = shipping_high = rates.international
    return CostEstimate(
        gift_id=gift.id,
        currency=gift.currency,
        item=gift.price,
        fulfillment_low=FULFILLMENT_FEE_LOW,
        fulfillment_high=FULFILLMENT_FEE_HIGH,
        fulfillment_currency=FULFILLMENT_FEE_CURRENCY,
        shipping_low=shipping_low,
        shipping_high=shipping_high,
        shipping_known=shipping_known,
    )


class EstimateMemo:
    """:func:`estimate_cost`, remembered per (gift, country) for one pass over one catalog.

    A batch checks many rows against a handful of items and countries; this prices each
    pair once. Entries are keyed by the gift *object* (the memo holds it, so its id is not
    reused), so a fresh catalog is priced afresh; make a new memo for each pass and do not
    change a catalog's items while a memo of them is in use. Callers share the returned
    estimate and must not modify it.
    """

    def __init__(self) -> None:
        self._memo: dict[tuple[int, str | None], tuple[Gift, CostEstimate]] = {}

    def __call__(self, gift: Gift, country: str | None = None) -> CostEstimate:
        key = (id(gift), country)
        hit = self._memo.get(key)
        if hit is not None and hit[0] is gift:
            return hit[1]
        estimate = estimate_cost(gift, country)
        self._memo[key] = (gift, estimate)
        return estimate


@dataclass(frozen=True)
class CapExcess:
    """Why a cost does not fit under a cap: in ``currency`` it needs up to ``needed`` on top
    of ``used``, over ``cap`` (``None``: no cap is set in that currency)."""

    currency: str
    cap: Decimal | None
    used: Decimal
    needed: Decimal


def over_cap(
    totals: Mapping[str, tuple[Decimal, Decimal]],
    caps: Mapping[str, Decimal],
    used: Mapping[str, Decimal] | None = None,
) -> CapExcess | None:
    """The first currency in which the high end of ``totals`` does not fit under ``caps``
    on top of what is ``used`` already, or ``None`` if it fits in every one. Currencies are
    never converted: one that has no cap does not fit."""
    for currency, (_, high) in totals.items():
        cap = caps.get(currency)
        spent = (used or {}).get(currency, Decimal(0))
        if cap is None or spent + high > cap:
            return CapExcess(currency, cap, spent, high)
    return None
