"""The hold: a barrier that keeps API requests until N are in flight together, so tests get
concurrency without relying on latency."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anyio
import httpx
import pytest
from tests.conftest import wait_until

from sendoso.sandbox import SandboxControl, SandboxServer

from .conftest import PostSend, seed_body


@pytest.mark.anyio
async def test_held_requests_go_on_together_once_all_have_arrived(
    sandbox: SandboxServer, token: str, control: SandboxControl
) -> None:
    assert control.hold(3) == {"state": "holding", "requests": 3, "arrived": 0, "endpoint": None}
    finished: list[int] = []
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=sandbox.url, timeout=30, headers=headers) as client:

        async def get() -> None:
            response = await client.get("/api/v3/gifts", params={"per_page": 1})
            # Nobody finishes before everybody has arrived.
            finished.append(control.hold_state()["arrived"])
            assert response.status_code == 200

        async with anyio.create_task_group() as group:
            for _ in range(3):
                group.start_soon(get)

        assert finished == [3, 3, 3]
        assert control.hold_state() == {
            "state": "released",
            "requests": 3,
            "arrived": 3,
            "endpoint": None,
        }
        # Spent: the next request is not held.
        assert (await client.get("/api/v3/gifts")).status_code == 200
    assert control.hold_state()["arrived"] == 3


def test_a_hold_that_times_out_answers_503_and_says_so(
    api: httpx.Client, control: SandboxControl
) -> None:
    control.hold(2, timeout_seconds=0.1)
    response = api.get("/api/v3/gifts")
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["type"] == "hold_failed"
    assert "only 1 arrived" in error["message"]
    assert control.hold_state() == {
        "state": "timed_out",
        "requests": 2,
        "arrived": 1,
        "endpoint": None,
    }
    assert api.get("/api/v3/gifts").status_code == 200


def test_control_requests_and_the_token_endpoint_are_never_held(
    client: httpx.Client, control: SandboxControl
) -> None:
    control.hold(2)
    assert client.get("/_sandbox/stats").status_code == 200
    token = client.post(
        "/oauth/token",
        json={
            "grant_type": "client_credentials",
            "client_id": "sandbox-client",
            "client_secret": "sandbox-secret",
        },
    )
    assert token.status_code == 200
    assert control.hold_state()["arrived"] == 0


def test_release_lets_the_held_requests_go_before_all_arrive(
    sandbox: SandboxServer, token: str, control: SandboxControl
) -> None:
    control.hold(5)
    headers = {"Authorization": f"Bearer {token}"}
    with ThreadPoolExecutor(1) as pool, httpx.Client(base_url=sandbox.url, headers=headers) as api:
        pending = pool.submit(api.get, "/api/v3/gifts")
        wait_until(lambda: control.hold_state()["arrived"] == 1, "a request at the hold")
        assert not pending.done()
        assert control.release_hold() == {
            "state": "released",
            "requests": 5,
            "arrived": 1,
            "endpoint": None,
        }
        assert pending.result(timeout=30).status_code == 200


def test_a_reset_answers_the_held_requests_503_so_they_do_no_work(
    sandbox: SandboxServer, token: str, control: SandboxControl
) -> None:
    """A request held when a test ends must not create a send in the next test."""
    control.hold(2)
    headers = {"Authorization": f"Bearer {token}"}
    with ThreadPoolExecutor(1) as pool, httpx.Client(base_url=sandbox.url, headers=headers) as api:
        pending = pool.submit(
            api.post, "/api/v3/sends", json=seed_body(), headers={"Idempotency-Key": "held"}
        )
        wait_until(lambda: control.hold_state()["arrived"] == 1, "a request at the hold")
        control.reset()
        answer = pending.result(timeout=30)
    assert answer.status_code == 503
    assert answer.json()["error"]["type"] == "hold_failed"
    assert control.sends() == []


def test_a_hold_for_one_endpoint_lets_the_others_pass(
    api: httpx.Client, post_send: PostSend, control: SandboxControl
) -> None:
    control.hold(1, endpoint="POST /api/v3/sends")
    assert api.get("/api/v3/gifts").status_code == 200
    assert control.hold_state()["arrived"] == 0
    assert post_send().status_code == 201
    assert control.hold_state()["state"] == "released"


def test_reset_clears_the_hold(api: httpx.Client, control: SandboxControl) -> None:
    control.hold(5)
    control.reset()
    assert control.hold_state() == {"state": "off", "requests": 0, "arrived": 0, "endpoint": None}


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"requests": 0},
        {"requests": True},
        {"requests": 2.5},
        {"requests": 2, "timeout_seconds": 0},
        {"requests": 2, "timeout_seconds": "soon"},
        {"requests": 2, "timeout_seconds": 601},
        {"requests": 2, "until": "later"},
        {"requests": 2, "endpoint": "POST /oauth/token"},
        {"requests": 2, "endpoint": 7},
    ],
)
def test_bad_hold_settings_are_refused(client: httpx.Client, body: dict[str, Any]) -> None:
    response = client.post("/_sandbox/hold", json=body)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request"
    assert client.get("/_sandbox/hold").json()["state"] == "off"
