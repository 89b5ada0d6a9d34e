"""The HTTP policy's pure parts: Retry-After parsing, error mapping, pacing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from sendoso import (
    AuthenticationError,
    BadRequestError,
    InternalServerError,
    NotFoundError,
    RateLimitError,
    UnprocessableEntityError,
)
from sendoso._http import error_from_response, retry_after_seconds
from sendoso._pacing import Pacer

NOW = 1_800_000_000.0


def test_retry_after_in_seconds() -> None:
    assert retry_after_seconds(httpx.Headers({"Retry-After": "3"}), now=NOW) == 3.0


def test_retry_after_as_http_date() -> None:
    when = datetime.fromtimestamp(NOW, tz=UTC) + timedelta(seconds=42)
    headers = httpx.Headers({"Retry-After": format_datetime(when, usegmt=True)})
    assert retry_after_seconds(headers, now=NOW) == pytest.approx(42, abs=1)


def test_retry_after_in_the_past_means_now() -> None:
    headers = httpx.Headers({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})
    assert retry_after_seconds(headers, now=NOW) == 0.0


def test_x_rate_limit_reset_as_epoch_or_delta() -> None:
    assert retry_after_seconds(httpx.Headers({"X-Rate-Limit-Reset": str(NOW + 7)}), now=NOW) == 7
    assert retry_after_seconds(httpx.Headers({"X-Rate-Limit-Reset": "5"}), now=NOW) == 5


def test_garbage_retry_after_is_ignored() -> None:
    assert retry_after_seconds(httpx.Headers({"Retry-After": "soon"}), now=NOW) is None
    assert retry_after_seconds(httpx.Headers({}), now=NOW) is None


def response(status: int, body: object = None, text: str | None = None, **headers: str):  # type: ignore[no-untyped-def]
    request = httpx.Request("POST", "https://api.test/api/v3/sends")
    if text is not None:
        return httpx.Response(status, text=text, headers=headers, request=request)
    return httpx.Response(status, json=body, headers=headers, request=request)


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (404, NotFoundError),
        (422, UnprocessableEntityError),
        (429, RateLimitError),
        (503, InternalServerError),
    ],
)
def test_the_seed_error_table_maps_to_typed_errors(status: int, cls: type) -> None:  # type: ignore[type-arg]
    body = {
        "error": {
            "type": "invalid_request",
            "message": "address is invalid",
            "details": [{"field": "address.postal_code", "code": "invalid", "message": "bad zip"}],
        }
    }
    error = error_from_response(response(status, body, **{"X-Request-Id": "req_1"}))
    assert isinstance(error, cls)
    assert error.status_code == status
    assert error.error_type == "invalid_request"
    assert error.request_id == "req_1"
    assert error.details[0].field == "address.postal_code"
    assert "address.postal_code" in str(error)


def test_oauth_style_error_body() -> None:
    error = error_from_response(
        response(401, {"error": "invalid_client", "error_description": "bad secret"})
    )
    assert isinstance(error, AuthenticationError)
    assert (error.error_type, error.message) == ("invalid_client", "bad secret")


@pytest.mark.parametrize(
    "text", ["<html><body>502 Bad Gateway</body></html>", '{"error": {"type": ', "", "\x00\xff"]
)
def test_unreadable_error_bodies_still_give_a_typed_error(text: str) -> None:
    error = error_from_response(response(502, text=text))
    assert isinstance(error, InternalServerError)
    assert error.message.startswith("HTTP 502")
    assert "<html>" not in error.message


def test_pacer_spaces_slots_and_pauses_everyone() -> None:
    now = [100.0]
    pacer = Pacer(10, clock=lambda: now[0])
    assert [round(pacer.reserve(), 3) for _ in range(3)] == [0.0, 0.1, 0.2]
    now[0] = 200.0
    pacer.pause_for(2.0)
    assert pacer.reserve() == pytest.approx(2.0)
    assert pacer.reserve() == pytest.approx(2.1)


def test_unpaced_pacer_only_honours_pauses() -> None:
    now = [0.0]
    pacer = Pacer(None, clock=lambda: now[0])
    assert pacer.reserve() == 0.0
    assert pacer.reserve() == 0.0
    pacer.pause_for(1.5)
    assert pacer.reserve() == 1.5


def test_pacer_rejects_nonsense_rates() -> None:
    with pytest.raises(ValueError, match="positive"):
        Pacer(0)
