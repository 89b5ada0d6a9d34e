"""Statuses moving on the virtual clock, and the magic inputs that make them fail or return."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from sendoso.sandbox import MAGIC

PostSend = Callable[..., httpx.Response]
Advance = Callable[[float], None]
HOUR = 3600


@pytest.fixture(autouse=True)
def _long_lived_tokens(set_faults: Callable[..., object]) -> None:
    # These tests fast-forward days; the API token must outlive that (autouse fixtures run
    # before the ``token`` fixture is issued).
    set_faults(token_ttl=10**9)


def _status(api: httpx.Client, send_id: str) -> dict[str, Any]:
    response = api.get(f"/api/v3/sends/{send_id}")
    assert response.status_code == 200, response.text
    send: dict[str, Any] = response.json()["send"]
    return send


def _create(post_send: PostSend, **fields: Any) -> str:
    response = post_send(**fields)
    assert response.status_code == 201, response.text
    send_id: str = response.json()["send"]["id"]
    return send_id


def test_physical_send_moves_through_every_status(
    api: httpx.Client, post_send: PostSend, advance: Advance
) -> None:
    send_id = _create(post_send)
    created = datetime.fromisoformat(_status(api, send_id)["created_at"])
    seen = []
    for step in (HOUR - 60, 120, 23 * HOUR, 48 * HOUR, 1000 * HOUR):
        advance(step)
        send = _status(api, send_id)
        seen.append((send["status"], send["tracking_number"] is not None))
    assert seen == [
        ("pending", False),
        ("processing", False),
        ("shipped", True),
        ("delivered", True),
        ("delivered", True),
    ]
    delivered = _status(api, send_id)
    assert delivered["status_reason"] is None
    assert delivered["tracking_number"].startswith("1Z")
    assert datetime.fromisoformat(delivered["updated_at"]) - created == timedelta(hours=72)


def test_tracking_number_is_stable(
    api: httpx.Client, post_send: PostSend, advance: Advance
) -> None:
    send_id = _create(post_send)
    advance(30 * HOUR)
    first = _status(api, send_id)["tracking_number"]
    advance(60 * HOUR)
    assert _status(api, send_id)["tracking_number"] == first


def test_egift_is_delivered_after_five_minutes(
    api: httpx.Client, post_send: PostSend, advance: Advance
) -> None:
    send_id = _create(post_send, gift_id="gft_egift_starbucks_10", address=None)
    advance(299)
    assert _status(api, send_id)["status"] == "pending"
    advance(1)
    send = _status(api, send_id)
    assert send["status"] == "delivered"
    assert send["tracking_number"] is None


def test_magic_fail_fails_when_leaving_pending(
    api: httpx.Client, post_send: PostSend, advance: Advance
) -> None:
    send_id = _create(post_send, email="ann+fail@example.com")
    assert _status(api, send_id)["status"] == "pending"
    advance(HOUR)
    send = _status(api, send_id)
    assert send["status"] == "failed"
    assert send["status_reason"] == "insufficient funds"
    advance(100 * HOUR)
    assert _status(api, send_id)["status"] == "failed"


def test_magic_fail_egift(api: httpx.Client, post_send: PostSend, advance: Advance) -> None:
    send_id = _create(post_send, email="bob+fail@example.com", **{"gift_id": "gft_don_wildlife_20"})
    advance(300)
    send = _status(api, send_id)
    assert (send["status"], send["status_reason"]) == ("failed", "insufficient funds")


def test_magic_returned_ships_then_returns(
    api: httpx.Client, post_send: PostSend, advance: Advance
) -> None:
    send_id = _create(post_send, email="ann+returned@example.com")
    advance(30 * HOUR)
    assert _status(api, send_id)["status"] == "shipped"
    advance(42 * HOUR)
    send = _status(api, send_id)
    assert send["status"] == "returned"
    assert send["status_reason"] == "address undeliverable"
    assert send["tracking_number"] is not None


def test_returned_magic_does_not_affect_egifts(
    api: httpx.Client, post_send: PostSend, advance: Advance
) -> None:
    send_id = _create(
        post_send, email="ann+returned@example.com", gift_id="gft_egift_uber_25", address=None
    )
    advance(100 * HOUR)
    assert _status(api, send_id)["status"] == "delivered"


def test_sandbox_send_list_shows_current_status(
    post_send: PostSend,
    advance: Advance,
    sandbox_sends: Callable[[], list[dict[str, Any]]],
) -> None:
    _create(post_send)
    advance(2 * HOUR)
    assert [s["status"] for s in sandbox_sends()] == ["processing"]


def test_clock_endpoint(client: httpx.Client) -> None:
    before = client.get("/_sandbox/clock").json()
    assert before["offset_seconds"] == 0
    after = client.post("/_sandbox/clock", json={"advance_seconds": 90}).json()
    assert after["offset_seconds"] == 90
    moved = datetime.fromisoformat(after["now"]) - datetime.fromisoformat(before["now"])
    assert timedelta(seconds=90) <= moved < timedelta(seconds=120)
    assert client.get("/_sandbox/clock").json()["offset_seconds"] == 90


def test_clock_only_moves_forward(client: httpx.Client) -> None:
    for body in ({"advance_seconds": -5}, {"advance_seconds": "soon"}, {}, [1]):
        assert client.post("/_sandbox/clock", json=body).status_code == 400
    assert client.get("/_sandbox/clock").json()["offset_seconds"] == 0


def test_magic_is_documented(client: httpx.Client) -> None:
    served = client.get("/_sandbox/magic").json()
    assert served["magic"] == MAGIC
    examples = " ".join(entry["example"] for entry in MAGIC)
    for magic in ("+fail", "+returned", "+undeliverable", "00000"):
        assert magic in examples
    assert served["lifecycle"]["physical_and_swag"][-1] == {
        "status": "delivered",
        "from_seconds": 72 * HOUR,
    }
