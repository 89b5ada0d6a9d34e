"""The catalog filters of ``GET /api/v3/gifts`` (category, price range): parsed, checked and
matched in one place, used by the SDK and by the sandbox alike. Pure, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from sendoso.errors import FieldProblem, ValidationError
from sendoso.models import Gift

__all__ = ["GiftFilters"]

#: Longer "prices" are refused outright rather than handed to Decimal.
_MAX_PRICE_TEXT = 30

PriceInput = Decimal | float | str | None


@dataclass(frozen=True)
class GiftFilters:
    category: str | None = None
    min_price: Decimal | None = None
    max_price: Decimal | None = None

    @classmethod
    def parse(
        cls, category: str | None, min_price: PriceInput, max_price: PriceInput
    ) -> tuple[GiftFilters, list[FieldProblem]]:
        """The filters and every problem with them (the filters are only usable if none)."""
        problems: list[FieldProblem] = []
        low = _price("min_price", min_price, problems)
        high = _price("max_price", max_price, problems)
        if low is not None and high is not None and low > high:
            problems.append(FieldProblem("min_price", "invalid", "max_price is below min_price"))
        category = (category or "").strip().lower() or None
        return cls(category=category, min_price=low, max_price=high), problems

    @classmethod
    def of(cls, category: str | None, min_price: PriceInput, max_price: PriceInput) -> GiftFilters:
        """The filters, or :class:`ValidationError` listing every problem."""
        filters, problems = cls.parse(category, min_price, max_price)
        if problems:
            raise ValidationError(problems)
        return filters

    def params(self) -> dict[str, str]:
        """As query parameters."""
        params = {}
        if self.category:
            params["category"] = self.category
        if self.min_price is not None:
            params["min_price"] = str(self.min_price)
        if self.max_price is not None:
            params["max_price"] = str(self.max_price)
        return params

    def matches(self, gift: Gift) -> bool:
        if self.category and gift.category != self.category:
            return False
        if self.min_price is not None and gift.price < self.min_price:
            return False
        return not (self.max_price is not None and gift.price > self.max_price)


def _price(name: str, value: PriceInput, problems: list[FieldProblem]) -> Decimal | None:
    text = "" if value is None else str(value).strip()
    if not text:
        return None
    try:
        price = Decimal(text) if len(text) <= _MAX_PRICE_TEXT else None
    except InvalidOperation:
        price = None
    if price is None or not price.is_finite():
        problems.append(
            FieldProblem(name, "invalid", f"{name} {text[:_MAX_PRICE_TEXT]!r} is not a number")
        )
        return None
    if price < 0:
        problems.append(FieldProblem(name, "invalid", f"{name} must be zero or more"))
        return None
    return price
