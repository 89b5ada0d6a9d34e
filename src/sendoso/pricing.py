"""Cost estimates from the seed's pricing note, in ``Decimal``.

eGift cards and donations cost their face value. Physical items (and swag) cost the item, a
fulfillment fee of $10-15 and shipping, so their estimate is a range.
"""

from __future__ import annotations

from decimal import Decimal

from sendoso.models import ADDRESSED_CATEGORIES, CostEstimate, Gift

__all__ = [
    "FULFILLMENT_FEE_CURRENCY",
    "FULFILLMENT_FEE_HIGH",
    "FULFILLMENT_FEE_LOW",
    "estimate_cost",
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
