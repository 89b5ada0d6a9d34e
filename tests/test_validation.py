"""The validation matrix: every rule, its field, its status in the seed's error table."""

from __future__ import annotations

from decimal import Decimal

import pytest

from sendoso import Address, Gift, SendRequest, normalize, validate
from sendoso.validation import MAX_MESSAGE_LENGTH, http_status_for

EGIFT = Gift(id="gft_card", name="Coffee card", category="egift", price=Decimal("25.00"))
MUG = Gift(
    id="gft_mug",
    name="Mug",
    category="physical",
    price=Decimal("18.00"),
    ships_to=["US", "CA"],
    shipping_estimate={"origin_country": "US", "domestic": "8.00", "international": "22.00"},
)
HOODIE = Gift(
    id="gft_hoodie",
    name="Hoodie",
    category="swag",
    price=Decimal("45.00"),
    ships_to=["US"],
    variants=[
        {"id": "var_m", "name": "M / Navy", "options": {"size": "M", "color": "Navy"}},
        {"id": "var_xl", "name": "XL / Navy", "in_stock": False},
    ],
)

US_ADDRESS = Address(
    line1="1 Main St", city="Springfield", state="IL", postal_code="62701", country="US"
)


def request(**overrides: object) -> SendRequest:
    fields: dict[str, object] = {
        "gift_id": "gft_card",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "email": "ada@example.com",
        "message": "Thank you!",
    }
    fields.update(overrides)
    return normalize(SendRequest.model_validate(fields))


def fields_of(problems: list) -> dict[str, str]:  # type: ignore[type-arg]
    return {p.field: p.code for p in problems}


def test_a_complete_egift_request_is_valid() -> None:
    assert validate(request(), EGIFT) == []


def test_every_missing_required_field_is_reported_at_once() -> None:
    problems = validate(SendRequest())
    assert fields_of(problems) == {
        "gift_id": "missing",
        "first_name": "missing",
        "last_name": "missing",
        "email": "missing",
        "message": "missing",
    }
    assert http_status_for(problems) == 400


def test_blank_fields_count_as_missing() -> None:
    problems = validate(request(first_name="   ", message="\n"))
    assert fields_of(problems) == {"first_name": "missing", "message": "missing"}


@pytest.mark.parametrize("email", ["not-an-email", "a@b", "ada@@example.com", "ada@exa mple.com"])
def test_invalid_email_is_422(email: str) -> None:
    problems = validate(request(email=email))
    assert fields_of(problems) == {"email": "invalid_email"}
    assert http_status_for(problems) == 422


def test_physical_gift_without_address_names_the_field() -> None:
    problems = validate(request(gift_id="gft_mug"), MUG)
    assert fields_of(problems) == {"address": "missing"}
    assert "address is required for physical gifts" in problems[0].message
    assert http_status_for(problems) == 400


def test_partial_address_lists_every_missing_part() -> None:
    problems = validate(request(gift_id="gft_mug", address={"line1": "1 Main St"}), MUG)
    assert fields_of(problems) == {
        "address.city": "missing",
        "address.postal_code": "missing",
        "address.country": "missing",
    }
    assert any(p.message == "address.postal_code is required for physical gifts" for p in problems)


@pytest.mark.parametrize(
    ("country", "state", "postal_code", "bad_field"),
    [
        ("US", "IL", "6270", "address.postal_code"),
        ("US", "IL", "62701-12", "address.postal_code"),
        ("US", None, "62701", "address.state"),
        ("US", "ZZ", "62701", "address.state"),
        ("CA", "ON", "12345", "address.postal_code"),
        ("GB", None, "NOT A CODE", "address.postal_code"),
        ("XX", None, "123", "address.country"),
        ("USA", None, "62701", "address.country"),
    ],
)
def test_address_rules(country: str, state: str | None, postal_code: str, bad_field: str) -> None:
    address = {
        "line1": "1 Main St",
        "city": "Town",
        "state": state,
        "postal_code": postal_code,
        "country": country,
    }
    problems = validate(request(address=address))
    assert bad_field in fields_of(problems)
    assert http_status_for(problems) == 400


@pytest.mark.parametrize(
    ("country", "state", "postal_code"),
    [
        ("US", "IL", "62701"),
        ("US", "ny", "10001-1234"),
        ("CA", "ON", "K1A 0B1"),
        ("GB", None, "SW1A 1AA"),
        ("GB", None, "ec1a1bb"),
        ("DE", None, "10115"),
        ("AU", "NSW", "2000"),
    ],
)
def test_valid_addresses(country: str, state: str | None, postal_code: str) -> None:
    address = {
        "line1": "1 Main St",
        "city": "Town",
        "state": state,
        "postal_code": postal_code,
        "country": country.lower(),
    }
    assert validate(request(address=address)) == []


def test_gift_not_shipping_to_the_country_is_422() -> None:
    address = {"line1": "1 Rue", "city": "Paris", "postal_code": "75001", "country": "FR"}
    problems = validate(request(gift_id="gft_mug", address=address), MUG)
    assert fields_of(problems) == {"address.country": "not_eligible"}
    assert http_status_for(problems) == 422


def test_variants_required_known_and_in_stock() -> None:
    base = {"gift_id": "gft_hoodie", "address": US_ADDRESS}
    missing = validate(request(**base), HOODIE)
    assert fields_of(missing) == {"variant_id": "missing"}
    assert "var_m" in missing[0].message
    unknown = validate(request(**base, variant_id="var_nope"), HOODIE)
    assert fields_of(unknown) == {"variant_id": "unknown_variant"}
    assert http_status_for(unknown) == 404
    sold_out = validate(request(**base, variant_id="var_xl"), HOODIE)
    assert fields_of(sold_out) == {"variant_id": "out_of_stock"}
    assert validate(request(**base, variant_id="var_m"), HOODIE) == []


def test_message_limit_is_enforced_without_choking_on_huge_input() -> None:
    assert validate(request(message="x" * MAX_MESSAGE_LENGTH)) == []
    problems = validate(request(message="x" * 10_000_000))
    assert fields_of(problems) == {"message": "too_long"}
    assert str(MAX_MESSAGE_LENGTH) in problems[0].message


def test_control_and_direction_override_characters_are_refused() -> None:
    problems = validate(request(first_name="Ada\x00", last_name="\u202eecalevol"))
    assert fields_of(problems) == {"first_name": "invalid", "last_name": "invalid"}
    assert validate(request(message="Line one\nLine two")) == []


def test_metadata_limits() -> None:
    assert validate(request(metadata={"campaign_id": "c1", "contact_id": "003"})) == []
    problems = validate(request(metadata={f"k{i}": "v" for i in range(51)}))
    assert fields_of(problems) == {"metadata": "too_long"}
    problems = validate(request(metadata={"campaign_id": "x" * 501}))
    assert fields_of(problems) == {"metadata.campaign_id": "too_long"}


def test_status_precedence_shape_then_lookup_then_deliverability() -> None:
    problems = validate(request(email="bad", variant_id="var_nope", first_name=""), HOODIE)
    assert http_status_for(problems) == 400


def test_normalize_trims_and_uppercases_codes() -> None:
    normalized = request(
        first_name="  Ada ",
        address={
            "line1": " 1 Main St ",
            "city": "x",
            "state": "il",
            "postal_code": "62701",
            "country": "us",
        },
    )
    assert normalized.first_name == "Ada"
    assert normalized.address is not None
    assert (normalized.address.state, normalized.address.country) == ("IL", "US")
    assert normalized.address.line1 == "1 Main St"


def test_an_all_empty_address_is_no_address() -> None:
    assert request(address={"line1": " ", "city": ""}).address is None
