from __future__ import annotations

from decimal import Decimal

import pytest

from sendoso import Gift, estimate_cost

MUG = Gift(
    id="gft_mug",
    name="Mug",
    category="physical",
    price=Decimal("18.00"),
    shipping_estimate={"origin_country": "US", "domestic": "8.00", "international": "22.50"},
)


def test_egift_costs_its_face_value() -> None:
    card = Gift(id="gft_card", name="Card", category="egift", price=Decimal("25.00"))
    estimate = estimate_cost(card, "US")
    assert (estimate.low, estimate.high) == (Decimal("25.00"), Decimal("25.00"))
    assert estimate.fulfillment_high == Decimal("0")


def test_physical_gift_adds_fulfillment_range_and_domestic_shipping() -> None:
    estimate = estimate_cost(MUG, "us")
    assert estimate.low == Decimal("36.00")  # 18 + 10 + 8
    assert estimate.high == Decimal("41.00")  # 18 + 15 + 8
    assert isinstance(estimate.low, Decimal)


def test_international_shipping_when_abroad() -> None:
    estimate = estimate_cost(MUG, "CA")
    assert (estimate.low, estimate.high) == (Decimal("50.50"), Decimal("55.50"))


def test_unknown_country_spans_domestic_to_international() -> None:
    estimate = estimate_cost(MUG)
    assert (estimate.low, estimate.high) == (Decimal("36.00"), Decimal("55.50"))


def test_physical_gift_without_published_shipping_still_counts_fulfillment() -> None:
    gift = Gift(id="g", name="Box", category="physical", price=Decimal("10"))
    assert gift.requires_address
    estimate = estimate_cost(gift, "US")
    assert (estimate.low, estimate.high) == (Decimal("20"), Decimal("25"))
    assert not estimate.shipping_known
    assert str(estimate) == "20.00\u201325.00 USD + shipping (rate not published)"


def test_fees_in_dollars_are_never_added_to_another_currency() -> None:
    journal = Gift(
        id="gft_journal",
        name="Journal",
        category="physical",
        price=Decimal("50.00"),
        currency="GBP",
        shipping_estimate={"origin_country": "GB", "domestic": "5.00", "international": "12.00"},
    )
    estimate = estimate_cost(journal, "GB")
    assert estimate.totals() == {
        "GBP": (Decimal("55.00"), Decimal("55.00")),
        "USD": (Decimal("10.00"), Decimal("15.00")),
    }
    assert not estimate.single_currency
    with pytest.raises(ValueError, match="spans GBP and USD"):
        _ = estimate.high
    assert str(estimate) == "55.00 GBP + 10.00\u201315.00 USD"
    assert [c.currency for c in estimate.total] == ["GBP", "USD"]
