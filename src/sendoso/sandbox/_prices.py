"""Prices changed at run time (``POST /_sandbox/prices``): a catalog whose prices move between
a plan and its sends, as a real one's do. The catalog itself stays fixed; each gift the API
shows or charges for goes through :meth:`Prices.of`."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from sendoso.models import Gift

__all__ = ["Prices", "parse_price"]


class Prices:
    def __init__(self) -> None:
        self._prices: dict[str, Decimal] = {}

    def set(self, gift_id: str, price: Decimal | None) -> None:
        """``price`` from now on for ``gift_id``; ``None``: its catalog price again."""
        if price is None:
            self._prices.pop(gift_id, None)
        else:
            self._prices[gift_id] = price

    def clear(self) -> None:
        self._prices.clear()

    def of(self, gift: Gift) -> Gift:
        price = self._prices.get(gift.id)
        return gift if price is None else gift.model_copy(update={"price": price})

    def snapshot(self) -> dict[str, str]:
        return {gift_id: str(price) for gift_id, price in sorted(self._prices.items())}


def parse_price(value: Any) -> Decimal | str | None:
    """The price in a control body (a string or number of at most 2 decimals, >= 0), ``None``
    for "back to the catalog's", or the problem as a str."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return "price must be a string such as '30.00', or null"
    try:
        price = Decimal(str(value))
    except InvalidOperation:
        return "price must be a string such as '30.00', or null"
    if not price.is_finite() or price < 0 or price.as_tuple().exponent < -2:  # type: ignore[operator]
        return "price must be 0 or more, with at most 2 decimals"
    return price
