"""Fixtures for the sandbox tests: one real server on a free port, reset before every test."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from sendoso.sandbox import SandboxControl, SandboxServer

CLIENT_ID = "sandbox-client"
CLIENT_SECRET = "sandbox-secret"

#: The seed's send body, every field filled in.
SEED_SEND: dict[str, Any] = {
    "send": {
        "gift_id": "gft_phys_coffee_sampler",
        "first_name": "Ann",
        "last_name": "Lee",
        "email": "ann.lee@example.com",
        "company": "Acme Corp",
        "title": "VP Marketing",
        "address": {
            "line1": "500 Congress Ave",
            "line2": "Suite 300",
            "city": "Austin",
            "state": "TX",
            "postal_code": "78701",
            "country": "US",
        },
        "message": "Thanks for the great call, Ann!",
        "variant_id": None,
        "team_id": "team_growth",
        "metadata": {"campaign_id": "cmp_q3", "contact_id": "003XYZ"},
    }
}

PostSend = Callable[..., httpx.Response]


@pytest.fixture
def control(sandbox_server: SandboxServer) -> Iterator[SandboxControl]:
    """The control endpoints, on a sandbox reset for this test (so anything a fixture sets
    through them comes after the reset)."""
    with SandboxControl(sandbox_server.url) as handle:
        handle.reset()
        yield handle


@pytest.fixture
def sandbox(sandbox_server: SandboxServer, control: SandboxControl) -> SandboxServer:
    return sandbox_server


class FrozenClock:
    """A clock that moves only when the test moves it (``clock.now += seconds``)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def rate_clock(sandbox: SandboxServer) -> Iterator[FrozenClock]:
    """The rate limit's refills, timed by a frozen clock: whether a request is limited then
    depends on how many went before it, not on how fast the machine sent them."""
    clock = FrozenClock()
    bucket = sandbox.app.state.sandbox.bucket
    bucket.use_clock(clock)
    try:
        yield clock
    finally:
        bucket.use_clock(time.monotonic)


@pytest.fixture
def delays(sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The delays the latency fault asks for (in seconds), recorded instead of waited."""
    asked: list[float] = []

    async def record(seconds: float) -> None:
        asked.append(seconds)

    monkeypatch.setattr(sandbox.app.state.sandbox, "sleep", record)
    return asked


@pytest.fixture
def client(sandbox: SandboxServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox.url, timeout=10) as c:
        yield c


def fetch_token(client: httpx.Client) -> str:
    response = client.post(
        "/oauth/token",
        json={
            "grant_type": "client_credentials",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        },
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


@pytest.fixture
def token(client: httpx.Client) -> str:
    return fetch_token(client)


@pytest.fixture
def api(sandbox: SandboxServer, token: str) -> Iterator[httpx.Client]:
    """A client that sends the bearer token."""
    with httpx.Client(
        base_url=sandbox.url, timeout=10, headers={"Authorization": f"Bearer {token}"}
    ) as c:
        yield c


def seed_body(**fields: Any) -> dict[str, Any]:
    """The seed's body with ``fields`` replaced (``None`` removes a field)."""
    body = copy.deepcopy(SEED_SEND)
    for name, value in fields.items():
        if value is None:
            body["send"].pop(name, None)
        else:
            body["send"][name] = value
    body["send"] = {k: v for k, v in body["send"].items() if v is not None}
    return body


@pytest.fixture
def post_send(api: httpx.Client) -> PostSend:
    """``post_send(body=None, key=None, **fields)``: POST /api/v3/sends."""

    def post(
        body: dict[str, Any] | None = None, key: str | None = None, **fields: Any
    ) -> httpx.Response:
        headers = {"Idempotency-Key": key} if key is not None else {}
        return api.post("/api/v3/sends", json=body or seed_body(**fields), headers=headers)

    return post


@pytest.fixture
def sandbox_sends(control: SandboxControl) -> Callable[[], list[dict[str, Any]]]:
    return control.sends


@pytest.fixture
def advance(control: SandboxControl) -> Callable[[float], object]:
    return control.advance


@pytest.fixture
def set_faults(control: SandboxControl) -> Callable[..., dict[str, Any]]:
    return control.faults


@pytest.fixture
def make_body() -> Callable[..., dict[str, Any]]:
    """``make_body(**fields)``: the seed body with fields replaced (``None`` removes one)."""
    return seed_body


@pytest.fixture
def new_token(client: httpx.Client) -> Callable[[], str]:
    return lambda: fetch_token(client)
