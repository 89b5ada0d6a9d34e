"""Idempotency-Key: replays, mismatches, in-flight conflicts, and what faults leave behind."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import anyio
import httpx
import pytest

from sendoso.sandbox import SandboxControl, SandboxServer

PostSend = Callable[..., httpx.Response]
MakeBody = Callable[..., dict[str, Any]]
Sends = Callable[[], list[dict[str, Any]]]


def test_same_key_same_body_replays(post_send: PostSend, sandbox_sends: Sends) -> None:
    first = post_send(key="order-1")
    again = post_send(key="order-1")
    assert first.status_code == again.status_code == 201
    assert "idempotent-replayed" not in first.headers
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert again.headers["location"] == first.headers["location"]
    sends = sandbox_sends()
    assert [s["id"] for s in sends] == [first.json()["send"]["id"]]
    assert sends[0]["idempotency_key"] == "order-1"


def test_key_order_in_the_json_does_not_matter(
    api: httpx.Client, make_body: MakeBody, sandbox_sends: Sends
) -> None:
    body = make_body()
    reordered = {"send": dict(reversed(list(body["send"].items())))}
    headers = {"Idempotency-Key": "k", "Content-Type": "application/json"}
    first = api.post("/api/v3/sends", content=json.dumps(body), headers=headers)
    second = api.post("/api/v3/sends", content=json.dumps(reordered, indent=2), headers=headers)
    assert second.headers["idempotent-replayed"] == "true"
    assert second.json() == first.json()
    assert len(sandbox_sends()) == 1


def test_same_key_different_body_is_422(post_send: PostSend, sandbox_sends: Sends) -> None:
    assert post_send(key="order-2").status_code == 201
    response = post_send(key="order-2", first_name="Someone Else")
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["type"] == "idempotency_key_reused"
    assert "different" in error["message"]
    assert len(sandbox_sends()) == 1


def test_validation_outcomes_are_replayed(post_send: PostSend, sandbox_sends: Sends) -> None:
    first = post_send(key="bad-1", email=None)
    again = post_send(key="bad-1", email=None)
    assert first.status_code == again.status_code == 400
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    unknown = post_send(key="bad-2", gift_id="gft_nope")
    assert unknown.status_code == 404
    assert post_send(key="bad-2", gift_id="gft_nope").headers["idempotent-replayed"] == "true"
    assert sandbox_sends() == []


def test_different_keys_make_different_sends(post_send: PostSend, sandbox_sends: Sends) -> None:
    a = post_send(key="a").json()["send"]["id"]
    b = post_send(key="b").json()["send"]["id"]
    assert a != b
    assert len(sandbox_sends()) == 2


def test_no_key_means_no_dedupe(post_send: PostSend, sandbox_sends: Sends) -> None:
    post_send()
    post_send()
    assert len(sandbox_sends()) == 2


@pytest.mark.parametrize("key", ["k" * 256, "", "caf\u00e9"])
def test_bad_keys_are_400(api: httpx.Client, make_body: MakeBody, key: str) -> None:
    response = api.post(
        "/api/v3/sends",
        content=json.dumps(make_body()).encode(),
        headers=[
            (b"Idempotency-Key", key.encode("latin-1")),
            (b"Content-Type", b"application/json"),
        ],
    )
    assert response.status_code == 400
    assert response.json()["error"]["details"][0]["field"] == "Idempotency-Key"


def test_longest_key_is_accepted(post_send: PostSend) -> None:
    assert post_send(key="k" * 255).status_code == 201


def test_injected_error_does_not_consume_the_key(
    post_send: PostSend, set_faults: Callable[..., object], sandbox_sends: Sends
) -> None:
    set_faults(error_rate=1)
    failed = post_send(key="retry-me")
    assert failed.status_code in {500, 502, 503}
    assert sandbox_sends() == []
    set_faults(error_rate=0)
    retried = post_send(key="retry-me")
    assert retried.status_code == 201
    assert "idempotent-replayed" not in retried.headers
    assert len(sandbox_sends()) == 1


def test_retry_after_a_dropped_connection_replays_the_send(
    post_send: PostSend, set_faults: Callable[..., object], sandbox_sends: Sends
) -> None:
    set_faults(drop_rate=1)
    with pytest.raises(httpx.RemoteProtocolError):
        post_send(key="dropped")
    set_faults(drop_rate=0)
    retried = post_send(key="dropped")
    assert retried.status_code == 201
    assert retried.headers["idempotent-replayed"] == "true"
    sends = sandbox_sends()
    assert [s["id"] for s in sends] == [retried.json()["send"]["id"]]


@pytest.mark.anyio
async def test_concurrent_requests_with_one_key_conflict(
    sandbox: SandboxServer,
    token: str,
    make_body: MakeBody,
    control: SandboxControl,
    sandbox_sends: Sends,
) -> None:
    control.hold(2)  # both requests in flight together, whatever the machine's load
    responses: list[httpx.Response] = []
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "twice"}
    async with httpx.AsyncClient(base_url=sandbox.url, timeout=10, headers=headers) as client:

        async def post() -> None:
            responses.append(await client.post("/api/v3/sends", json=make_body()))

        async with anyio.create_task_group() as group:
            group.start_soon(post)
            group.start_soon(post)

    assert control.hold_state()["state"] == "released"
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201, 409]
    conflict = next(r for r in responses if r.status_code == 409)
    assert conflict.headers["retry-after"] == "1"
    assert conflict.json()["error"]["type"] == "idempotency_in_progress"
    assert len(sandbox_sends()) == 1
