"""The hold: a barrier that keeps API requests until N are in flight together, so tests get
concurrency without relying on latency."""

from __future__ import annotations

from typing import Any

import anyio
import httpx
import pytest

from sendoso.sandbox import SandboxControl, SandboxServer


@pytest.mark.anyio
async def test_held_requests_go_on_together_once_all_have_arrived(
    sandbox: SandboxServer, token: str, control: SandboxControl
) -> None:
    assert control.hold(3) == {"state": "holding", "requests": 3, "arrived": 0}
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
        assert control.hold_state() == {"state": "released", "requests": 3, "arrived": 3}
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
    assert error["type"] == "hold_timed_out"
    assert "only 1 arrived" in error["message"]
    assert control.hold_state() == {"state": "timed_out", "requests": 2, "arrived": 1}
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


def test_reset_clears_the_hold(api: httpx.Client, control: SandboxControl) -> None:
    control.hold(5)
    control.reset()
    assert control.hold_state() == {"state": "off", "requests": 0, "arrived": 0}


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
    ],
)
def test_bad_hold_settings_are_refused(client: httpx.Client, body: dict[str, Any]) -> None:
    response = client.post("/_sandbox/hold", json=body)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request"
    assert client.get("/_sandbox/hold").json()["state"] == "off"
