"""POST /api/v3/sends and GET /api/v3/sends/{id}: the seed's error table, status by status."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest

from sendoso.models import Send

PostSend = Callable[..., httpx.Response]
MakeBody = Callable[..., dict[str, Any]]

EGIFT = {"gift_id": "gft_egift_amazon_us_25", "address": None}


def _error(response: httpx.Response, status: int, error_type: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["type"] == error_type
    assert error["message"]
    assert error["request_id"] == response.headers["x-request-id"]
    return error


def _fields(error: dict[str, Any]) -> dict[str, str]:
    return {d["field"]: d["code"] for d in error["details"]}


def test_seed_send_with_every_field(post_send: PostSend, make_body: MakeBody) -> None:
    body = make_body()
    response = post_send(body)
    assert response.status_code == 201, response.text
    assert response.headers["x-request-id"].startswith("req_")
    send = response.json()["send"]
    assert send["id"].startswith("snd_")
    assert response.headers["location"].endswith(f"/api/v3/sends/{send['id']}")
    assert send["status"] == "pending"
    assert send["status_reason"] is None
    assert send["tracking_number"] is None
    for field in ("gift_id", "first_name", "last_name", "email", "company", "title"):
        assert send[field] == body["send"][field]
    for field in ("message", "team_id", "metadata"):
        assert send[field] == body["send"][field]
    assert send["address"] == body["send"]["address"]
    created = datetime.fromisoformat(send["created_at"])
    assert created.utcoffset() is not None
    assert created.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    assert send["updated_at"] == send["created_at"]
    # $45 coffee + $10-15 fulfillment + $8.50 domestic shipping.
    assert send["cost"] == [{"currency": "USD", "low": "63.50", "high": "68.50"}]
    assert Send.model_validate(send).id == send["id"]


def test_get_send_returns_current_status(api: httpx.Client, post_send: PostSend) -> None:
    created = post_send().json()["send"]
    response = api.get(f"/api/v3/sends/{created['id']}")
    assert response.status_code == 200
    assert response.headers["x-request-id"].startswith("req_")
    assert response.json()["send"] == created


def test_get_unknown_send_is_404(api: httpx.Client) -> None:
    error = _error(api.get("/api/v3/sends/snd_nope"), 404, "not_found")
    assert "snd_nope" in error["message"]


def test_input_is_normalised(post_send: PostSend, make_body: MakeBody) -> None:
    body = make_body(first_name="  Ann ")
    body["send"]["address"]["country"] = "us"
    send = post_send(body).json()["send"]
    assert send["first_name"] == "Ann"
    assert send["address"]["country"] == "US"


def test_egift_needs_no_address_and_costs_face_value(post_send: PostSend) -> None:
    response = post_send(**EGIFT)
    assert response.status_code == 201, response.text
    send = response.json()["send"]
    assert send["address"] is None
    assert send["cost"] == [{"currency": "USD", "low": "25.00", "high": "25.00"}]


def test_swag_with_variant(post_send: PostSend) -> None:
    response = post_send(gift_id="gft_swag_zip_hoodie", variant_id="var_hoodie_m_navy")
    assert response.status_code == 201, response.text
    assert response.json()["send"]["variant_id"] == "var_hoodie_m_navy"


def test_missing_fields_are_400_with_a_detail_each(post_send: PostSend) -> None:
    response = post_send(first_name=None, email=None, message=None, address=None)
    error = _error(response, 400, "invalid_request")
    assert _fields(error) == {
        "first_name": "missing",
        "email": "missing",
        "message": "missing",
        "address": "missing",
    }
    assert all(d["message"] for d in error["details"])


def test_magic_postal_code_fails_address_verification(
    post_send: PostSend, make_body: MakeBody
) -> None:
    body = make_body()
    body["send"]["address"]["postal_code"] = "00000"
    error = _error(post_send(body), 400, "invalid_request")
    assert _fields(error) == {"address.postal_code": "invalid"}
    assert "address verification failed" in error["details"][0]["message"]


def test_malformed_postal_code_is_400(post_send: PostSend, make_body: MakeBody) -> None:
    body = make_body()
    body["send"]["address"]["postal_code"] = "ABCDE"
    error = _error(post_send(body), 400, "invalid_request")
    assert _fields(error) == {"address.postal_code": "invalid"}


def test_unknown_gift_is_404(post_send: PostSend) -> None:
    error = _error(post_send(gift_id="gft_does_not_exist"), 404, "not_found")
    assert error["details"] == [
        {"field": "gift_id", "code": "unknown_gift", "message": error["details"][0]["message"]}
    ]
    assert "gft_does_not_exist" in error["message"]


def test_missing_field_outranks_unknown_gift(post_send: PostSend) -> None:
    error = _error(post_send(gift_id="gft_does_not_exist", email=None), 400, "invalid_request")
    assert _fields(error) == {"email": "missing", "gift_id": "unknown_gift"}


def test_unknown_variant_is_404(post_send: PostSend) -> None:
    error = _error(
        post_send(gift_id="gft_swag_zip_hoodie", variant_id="var_nope"), 404, "not_found"
    )
    assert _fields(error) == {"variant_id": "unknown_variant"}


def test_out_of_stock_variant_is_422(post_send: PostSend) -> None:
    response = post_send(gift_id="gft_swag_zip_hoodie", variant_id="var_hoodie_xxl_heathergrey")
    error = _error(response, 422, "unprocessable_entity")
    assert _fields(error) == {"variant_id": "out_of_stock"}


def test_invalid_email_is_422(post_send: PostSend) -> None:
    error = _error(post_send(email="not-an-email"), 422, "unprocessable_entity")
    assert _fields(error) == {"email": "invalid_email"}


@pytest.mark.parametrize(
    "email", ["ann+undeliverable@example.com", "ANN+Undeliverable@example.com", "ann@acme.invalid"]
)
def test_magic_undeliverable_email_is_422(post_send: PostSend, email: str) -> None:
    error = _error(post_send(email=email, **EGIFT), 422, "unprocessable_entity")
    assert _fields(error) == {"email": "invalid_email"}


def test_gift_not_eligible_for_country_is_422(post_send: PostSend, make_body: MakeBody) -> None:
    body = make_body(gift_id="gft_phys_cookie_box")
    body["send"]["address"].update(
        {"city": "Toronto", "state": "ON", "postal_code": "M5V 2T6", "country": "CA"}
    )
    error = _error(post_send(body), 422, "unprocessable_entity")
    assert _fields(error) == {"address.country": "not_eligible"}


def test_egift_restricted_to_country_is_422_elsewhere(
    post_send: PostSend, make_body: MakeBody
) -> None:
    body = make_body(gift_id="gft_egift_amazon_us_25")
    body["send"]["address"] = {
        "line1": "10 Downing St",
        "city": "London",
        "postal_code": "SW1A 2AA",
        "country": "GB",
    }
    error = _error(post_send(body), 422, "unprocessable_entity")
    assert _fields(error) == {"address.country": "not_eligible"}


def test_international_shipping_is_priced(post_send: PostSend, make_body: MakeBody) -> None:
    body = make_body(gift_id="gft_phys_book_bundle")
    body["send"]["address"] = {
        "line1": "Unter den Linden 1",
        "city": "Berlin",
        "postal_code": "10117",
        "country": "DE",
    }
    response = post_send(body)
    assert response.status_code == 201, response.text
    # $55 books + $10-15 fulfillment + $22 international shipping.
    assert response.json()["send"]["cost"] == [{"currency": "USD", "low": "87.00", "high": "92.00"}]


@pytest.mark.parametrize(
    ("content", "field"),
    [
        (b"{not json", "body"),
        (b"", "body"),
        (b"[1, 2, 3]", "send"),
        (b'{"gift_id": "gft_phys_coffee_sampler"}', "send"),
        (b'{"send": "yes"}', "send"),
        (b'{"send": {}, "extra": 1}', "extra"),
        (b'{"send": {"gift_id": "x", "colour": "red"}}', "colour"),
        (b'{"send": {"first_name": 5}}', "first_name"),
        (b'{"send": {"metadata": {"campaign_id": [7]}}}', "metadata.campaign_id"),
        (b'{"send": {"address": "1 Main St"}}', "address"),
        (b'{"send": {"first_name": "\\ud800"}}', "body"),
        (b'{"send": {"first_name": NaN}}', "body"),
        (b'{"send": {"first_name": "Ann\\u0000"}}', "first_name"),
    ],
)
def test_malformed_bodies_are_400_naming_the_problem(
    api: httpx.Client, content: bytes, field: str
) -> None:
    response = api.post(
        "/api/v3/sends", content=content, headers={"Content-Type": "application/json"}
    )
    error = _error(response, 400, "invalid_request")
    assert field in _fields(error)


def test_body_over_one_megabyte_is_413(api: httpx.Client, make_body: MakeBody) -> None:
    body = make_body(message="x" * (1024 * 1024 + 1))
    response = api.post("/api/v3/sends", json=body)
    _error(response, 413, "payload_too_large")


def test_message_too_long_is_400(post_send: PostSend) -> None:
    error = _error(post_send(message="x" * 1001), 400, "invalid_request")
    assert _fields(error) == {"message": "too_long"}


def test_validation_failures_create_no_send(
    post_send: PostSend, sandbox_sends: Callable[[], list[dict[str, Any]]]
) -> None:
    post_send(email=None)
    post_send(gift_id="gft_nope")
    post_send(email="ann+undeliverable@example.com")
    assert sandbox_sends() == []


def test_sends_are_listed_in_creation_order_with_their_request(
    post_send: PostSend,
    make_body: MakeBody,
    sandbox_sends: Callable[[], list[dict[str, Any]]],
) -> None:
    first = post_send(make_body(first_name="First")).json()["send"]
    second = post_send(make_body(first_name="Second"), key="key-2").json()["send"]
    listed = sandbox_sends()
    assert [s["id"] for s in listed] == [first["id"], second["id"]]
    assert listed[0]["idempotency_key"] is None
    assert listed[1]["idempotency_key"] == "key-2"
    assert listed[1]["request_body"] == make_body(first_name="Second")
    assert Decimal(listed[0]["cost"][0]["low"]) > 0
