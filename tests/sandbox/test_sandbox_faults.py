"""Fault injection, rate limiting, stats and reset."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from sendoso.sandbox import SandboxConfig, SandboxServer
from sendoso.sandbox._runtime import Faults

from .conftest import FrozenClock, fetch_token

PostSend = Callable[..., httpx.Response]
Sends = Callable[[], list[dict[str, Any]]]
SetFaults = Callable[..., dict[str, Any]]


def test_default_faults(client: httpx.Client) -> None:
    assert client.get("/_sandbox/faults").json() == {
        "latency_ms": 0,
        "jitter_ms": 0,
        "error_rate": 0,
        "drop_rate": 0,
        "rate_limit": None,
        "token_ttl": 7200,
        "dedupe": True,
        "seed": None,
        "token_error": 0,
        "send_retry_after": 0,
    }


def test_faults_update_partially(set_faults: SetFaults, client: httpx.Client) -> None:
    set_faults(error_rate=0.25)
    current = set_faults(latency_ms=5)
    assert current["error_rate"] == 0.25
    assert current["latency_ms"] == 5
    assert client.get("/_sandbox/faults").json() == current


@pytest.mark.parametrize(
    "body",
    [
        {"error_rate": 1.5},
        {"drop_rate": -0.1},
        {"latency_ms": "slow"},
        {"jitter_ms": -1},
        {"dedupe": "no"},
        {"dedupe": 0},
        {"rate_limit": 0},
        {"token_ttl": 0},
        {"seed": 1.5},
        {"error_rate": True},
        {"chaos": 1},
        {"token_error": 404},
        {"token_error": True},
        {"send_retry_after": -1},
    ],
)
def test_bad_fault_settings_are_400(client: httpx.Client, body: dict[str, Any]) -> None:
    response = client.post("/_sandbox/faults", json=body)
    assert response.status_code == 400
    assert response.json()["error"]["details"][0]["field"] == next(iter(body))
    assert client.get("/_sandbox/faults").json()["error_rate"] == 0


def test_error_rate_answers_5xx_and_sends_nothing(
    post_send: PostSend, set_faults: SetFaults, sandbox_sends: Sends, client: httpx.Client
) -> None:
    set_faults(error_rate=1)
    statuses = {post_send().status_code for _ in range(5)}
    assert statuses <= {500, 502, 503}
    response = post_send()
    assert response.json()["error"]["type"] == "api_error"
    assert sandbox_sends() == []
    assert client.get("/_sandbox/stats").json()["faults"]["errors"] == 6


def test_drop_rate_cuts_the_connection_after_committing(
    post_send: PostSend, set_faults: SetFaults, sandbox_sends: Sends, client: httpx.Client
) -> None:
    set_faults(drop_rate=1)
    with pytest.raises(httpx.RemoteProtocolError):
        post_send(first_name="Dropped")
    sends = sandbox_sends()
    assert [s["first_name"] for s in sends] == ["Dropped"]
    stats = client.get("/_sandbox/stats").json()
    assert stats["faults"]["drops"] == 1
    assert "201" not in stats["responses_by_status"]


def test_seeded_faults_replay(
    post_send: PostSend, set_faults: SetFaults, client: httpx.Client
) -> None:
    def run() -> list[int]:
        set_faults(seed=1234, error_rate=0.5)
        return [post_send().status_code for _ in range(12)]

    first = run()
    second = run()
    assert first == second
    assert 201 in first
    assert set(first) - {201}


def test_seeded_jitter_replays_the_same_delays() -> None:
    """Jitter draws from its own generator, so how many requests were delayed never shifts
    which sends meet an error: a seed replays both."""

    def delays_and_errors(extra_delays: int) -> tuple[list[float], list[bool]]:
        faults = Faults.from_config(SandboxConfig(latency_ms=10, jitter_ms=40))
        faults.error_rate = 0.5
        faults.reseed(99)
        delays = [faults.delay_seconds() for _ in range(5 + extra_delays)][:5]
        errors = [faults.rng.random() < faults.error_rate for _ in range(20)]
        return delays, errors

    delays, errors = delays_and_errors(0)
    assert delays_and_errors(0) == (delays, errors)  # the same seed, the same schedule
    assert delays_and_errors(7)[1] == errors  # more delayed requests, the same errors
    assert all(0.010 <= d <= 0.050 for d in delays)
    assert len(set(delays)) > 1
    assert True in errors
    assert False in errors


def test_jitter_is_set_at_run_time_and_delays_at_least_the_latency(
    api: httpx.Client, set_faults: SetFaults, delays: list[float]
) -> None:
    assert set_faults(latency_ms=100, jitter_ms=50, seed=3)["jitter_ms"] == 50
    assert api.get("/api/v3/gifts").status_code == 200
    assert len(delays) == 1
    assert 0.1 <= delays[0] <= 0.15


def test_without_dedupe_a_repeated_key_creates_a_second_send(
    post_send: PostSend, set_faults: SetFaults, sandbox_sends: Sends
) -> None:
    assert post_send(key="k1").status_code == 201
    assert post_send(key="k1").headers.get("idempotent-replayed") == "true"
    assert len(sandbox_sends()) == 1
    set_faults(dedupe=False)
    first, second = post_send(key="k2"), post_send(key="k2")
    assert first.status_code == second.status_code == 201
    assert "idempotent-replayed" not in second.headers
    assert first.json()["send"]["id"] != second.json()["send"]["id"]
    assert [s["idempotency_key"] for s in sandbox_sends()] == ["k1", "k2", "k2"]


def test_without_dedupe_the_sandbox_does_not_claim_to_deduplicate(
    api: httpx.Client, set_faults: SetFaults
) -> None:
    """The SDK retries an ambiguous send only to a server that says it deduplicates."""
    assert api.get("/api/v3/gifts").headers["sendoso-sandbox"] == "1"
    set_faults(dedupe=False)
    assert "sendoso-sandbox" not in api.get("/api/v3/gifts").headers


def test_latency_delays_api_responses(
    api: httpx.Client, set_faults: SetFaults, delays: list[float]
) -> None:
    set_faults(latency_ms=250)
    assert api.get("/api/v3/gifts").status_code == 200
    assert delays == [0.25]


def test_rate_limit_answers_429_with_retry_after(
    api: httpx.Client, set_faults: SetFaults, client: httpx.Client, rate_clock: FrozenClock
) -> None:
    set_faults(rate_limit=2)
    responses = [api.get("/api/v3/gifts", params={"per_page": 1}) for _ in range(3)]
    assert [r.status_code for r in responses] == [200, 200, 429]
    assert responses[0].headers["x-ratelimit-limit"] == "2"
    limited = responses[2]
    assert int(limited.headers["retry-after"]) >= 1
    assert limited.headers["x-ratelimit-limit"] == "2"
    assert limited.headers["x-ratelimit-remaining"] == "0"
    assert limited.json()["error"]["type"] == "rate_limit_exceeded"
    # Control endpoints are never limited.
    for _ in range(5):
        assert client.get("/_sandbox/stats").status_code == 200
    assert client.get("/_sandbox/stats").json()["faults"]["rate_limited"] == 1


def test_rate_limited_send_does_no_work(
    post_send: PostSend, set_faults: SetFaults, sandbox_sends: Sends, rate_clock: FrozenClock
) -> None:
    set_faults(rate_limit=1)
    assert post_send(key="a").status_code == 201
    limited = post_send(key="b")
    assert limited.status_code == 429
    assert sandbox_sends()[-1]["idempotency_key"] == "a"
    assert len(sandbox_sends()) == 1


def test_configured_rate_limit_refills_over_time() -> None:
    clock = FrozenClock()  # 25 requests in a row meet the limit however slowly they go out
    with (
        SandboxServer(SandboxConfig(rate_limit=20)) as server,
        httpx.Client(base_url=server.url) as client,
    ):
        server.app.state.sandbox.bucket.use_clock(clock)
        token = client.post(
            "/oauth/token",
            json={
                "grant_type": "client_credentials",
                "client_id": "sandbox-client",
                "client_secret": "sandbox-secret",
            },
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        statuses = [client.get("/api/v3/gifts", headers=headers).status_code for _ in range(25)]
        assert statuses[:20] == [200] * 20
        assert 429 in statuses[20:]
        clock.now += 0.2
        assert client.get("/api/v3/gifts", headers=headers).status_code == 200


def test_stats_count_requests(api: httpx.Client, post_send: PostSend, client: httpx.Client) -> None:
    api.get("/api/v3/gifts")
    api.get("/api/v3/gifts", params={"page": 0})
    send_id = post_send().json()["send"]["id"]
    api.get(f"/api/v3/sends/{send_id}")
    api.get("/api/v3/sends/snd_missing")
    client.get("/api/v3/gifts")
    stats = client.get("/_sandbox/stats").json()
    assert stats["requests"] == {
        "POST /oauth/token": 1,
        "GET /api/v3/gifts": 3,
        "POST /api/v3/sends": 1,
        "GET /api/v3/sends/{id}": 2,
    }
    assert stats["token_requests"] == 1
    assert stats["tokens_issued"] == 1
    assert stats["responses_by_status"] == {"200": 3, "201": 1, "400": 1, "401": 1, "404": 1}
    assert stats["faults"] == {"errors": 0, "drops": 0, "rate_limited": 0}


def test_reset_forgets_everything(
    api: httpx.Client,
    post_send: PostSend,
    set_faults: SetFaults,
    client: httpx.Client,
    sandbox_sends: Sends,
) -> None:
    post_send()
    set_faults(error_rate=0.5, latency_ms=1)
    client.post("/_sandbox/clock", json={"advance_seconds": 600})
    assert client.post("/_sandbox/reset").status_code == 200
    assert sandbox_sends() == []
    assert client.get("/_sandbox/clock").json()["offset_seconds"] == 0
    assert client.get("/_sandbox/faults").json()["error_rate"] == 0
    stats = client.get("/_sandbox/stats").json()
    assert stats["token_requests"] == 0
    assert stats["responses_by_status"] == {}
    assert api.get("/api/v3/gifts").status_code == 401


def test_token_error_fails_the_token_endpoint_only(
    post_send: PostSend, set_faults: SetFaults, sandbox_sends: Sends, client: httpx.Client
) -> None:
    set_faults(token_error=503)
    response = client.post("/oauth/token", json={"grant_type": "client_credentials"})
    assert response.status_code == 503
    assert response.json()["error"] == "server_error"
    assert post_send().status_code == 201  # a token issued before still works
    set_faults(token_error=0)
    assert fetch_token(client)


def test_send_retry_after_answers_every_send_429_with_that_wait(
    post_send: PostSend, set_faults: SetFaults, sandbox_sends: Sends
) -> None:
    set_faults(send_retry_after=100)
    response = post_send()
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "100"
    assert sandbox_sends() == []
