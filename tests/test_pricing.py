from __future__ import annotations

from decimal import Decimal

import pytest

from sendoso import Gift, SendRequest, estimate_cost
from sendoso.pricing import EstimateMemo
from sendoso.resources import check_against

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


CARD = Gift(id="gft_card", name="Card", category="egift", price=Decimal("25.00"))
BOX = Gift(id="gft_box", name="Box", category="physical", price=Decimal("10"))
JOURNAL = Gift(
    id="gft_journal",
    name="Journal",
    category="physical",
    price=Decimal("50.00"),
    currency="GBP",
    shipping_estimate={"origin_country": "GB", "domestic": "5.00", "international": "12.00"},
)


@pytest.mark.parametrize("gift", [MUG, CARD, BOX, JOURNAL], ids=lambda g: g.id)
def test_a_memo_of_estimates_agrees_with_estimate_cost(gift: Gift) -> None:
    memo = EstimateMemo()
    for _ in range(2):  # the second round is answered from the memo
        for country in (None, "US", "us", "CA", "GB", "gb"):
            assert memo(gift, country) == estimate_cost(gift, country)


def test_a_memo_does_not_serve_a_changed_catalog_stale() -> None:
    memo = EstimateMemo()
    assert memo(MUG, "US").high == Decimal("41.00")
    dearer = MUG.model_copy(update={"price": Decimal("20.00")})
    assert memo(dearer, "US").high == Decimal("43.00")
    assert memo(MUG, "US").high == Decimal("41.00")


def test_check_against_with_a_memo_is_check_against_without() -> None:
    memo = EstimateMemo()
    catalog = [MUG, CARD, JOURNAL]
    for gift_id, country in [("gft_mug", "US"), ("gft_mug", "CA"), ("gft_card", "US")] * 2:
        request = SendRequest(
            gift_id=gift_id,
            first_name="Ada",
            last_name="Lovelace",
            email="ada@example.com",
            message="Thanks",
            address={
                "line1": "1 Main St",
                "city": "Springfield" if country == "US" else "Toronto",
                "state": "IL" if country == "US" else "ON",
                "postal_code": "62701" if country == "US" else "M5V 2T6",
                "country": country,
            },
        )
        assert check_against(request, catalog, estimator=memo) == check_against(request, catalog)
