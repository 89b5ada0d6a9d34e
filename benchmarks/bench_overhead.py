"""CPU time our process spends per `client.sends.create(...)` (checks, idempotency key, the
HTTP policy, parsing the reply into a `Send`), against a raw `httpx.Client.post` of the same
JSON body with the same headers (bearer token, a fresh `Idempotency-Key`) followed by
`response.json()`, to the same `sendoso sandbox serve` (its own process, no rate limit, no
latency, so none of its work is counted). Sync and async (`AsyncSendoso` against
`httpx.AsyncClient`), one request at a time over one kept-alive connection. CPU time is
`time.process_time()`; the two sides alternate in blocks so that drift hits both alike, and
the ratio is taken over the sums.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import httpx

from benchmarks._figures import Figure
from benchmarks._sandbox import CLIENT_ID, CLIENT_SECRET, RemoteSandbox, serve
from sendoso.resources._sends import request_from_fields

TITLE = "2. Client overhead per send"
NAME = "overhead"
TARGET = 1.5

FIELDS: dict[str, Any] = {
    "gift_id": "gft_egift_amazon_us_25",
    "first_name": "Ada",
    "last_name": "Lovelace",
    "email": "ada@example.com",
    "message": "Thanks for a great quarter!",
    "metadata": {"campaign_id": "q4-thanks", "contact_id": "003XYZ"},
}


def _token(sandbox: RemoteSandbox) -> str:
    response = httpx.post(
        sandbox.url + "/oauth/token",
        json={
            "grant_type": "client_credentials",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        },
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


def _measure(block: Callable[[], None]) -> float:
    started = time.process_time()
    block()
    return time.process_time() - started


def _sync(sandbox: RemoteSandbox, calls: int, rounds: int) -> tuple[float, float]:
    body = request_from_fields(FIELDS).to_body()
    token = _token(sandbox)
    url = sandbox.url + "/api/v3/sends"
    sdk_cpu = raw_cpu = 0.0
    with sandbox.client() as client, httpx.Client() as http:

        def sdk() -> None:
            for _ in range(calls):
                client.sends.create(**FIELDS)

        def raw() -> None:
            for _ in range(calls):
                headers = {
                    "Authorization": f"Bearer {token}",
                    "Idempotency-Key": f"raw_{uuid.uuid4().hex}",
                    "Accept": "application/json",
                }
                response = http.post(url, json=body, headers=headers)
                response.raise_for_status()
                response.json()

        sdk()  # warm up: token, connection, imports
        raw()
        for _ in range(rounds):
            sdk_cpu += _measure(sdk)
            raw_cpu += _measure(raw)
    total = calls * rounds
    return sdk_cpu / total, raw_cpu / total


def _async(sandbox: RemoteSandbox, calls: int, rounds: int) -> tuple[float, float]:
    body = request_from_fields(FIELDS).to_body()
    token = _token(sandbox)
    url = sandbox.url + "/api/v3/sends"

    async def main() -> tuple[float, float]:
        sdk_cpu = raw_cpu = 0.0
        async with sandbox.async_client() as client, httpx.AsyncClient() as http:

            async def sdk() -> None:
                for _ in range(calls):
                    await client.sends.create(**FIELDS)

            async def raw() -> None:
                for _ in range(calls):
                    headers = {
                        "Authorization": f"Bearer {token}",
                        "Idempotency-Key": f"raw_{uuid.uuid4().hex}",
                        "Accept": "application/json",
                    }
                    response = await http.post(url, json=body, headers=headers)
                    response.raise_for_status()
                    response.json()

            async def measure(block: Callable[[], Awaitable[None]]) -> float:
                started = time.process_time()
                await block()
                return time.process_time() - started

            await sdk()
            await raw()
            for _ in range(rounds):
                sdk_cpu += await measure(sdk)
                raw_cpu += await measure(raw)
        total = calls * rounds
        return sdk_cpu / total, raw_cpu / total

    return anyio.run(main)


def _figure(mode: str, sdk: float, raw: float, calls: int) -> Figure:
    ratio = sdk / raw
    return Figure(
        NAME,
        f"CPU per sends.create ({mode})",
        sdk * 1e6,
        "us",
        baseline_name=f"raw httpx {mode} post",
        baseline=raw * 1e6,
        ratio=ratio,
        target=f"<= {TARGET}x",
        met=ratio <= TARGET,
        detail=f"{calls} calls each side, in alternating blocks",
    )


def run(quick: bool) -> list[Figure]:
    calls, rounds = (10, 2) if quick else (200, 5)
    with serve(rate_limit=None) as sandbox:
        sync_sdk, sync_raw = _sync(sandbox, calls, rounds)
        async_sdk, async_raw = _async(sandbox, calls, rounds)
    return [
        _figure("sync", sync_sdk, sync_raw, calls * rounds),
        _figure("async", async_sdk, async_raw, calls * rounds),
    ]
