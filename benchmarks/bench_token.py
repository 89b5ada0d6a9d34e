"""Token requests, counted by the sandbox (its own process, `POST /oauth/token` hits).

1,000 concurrent sends from a client with no token yet, async (1,000 tasks on one
`AsyncSendoso`) and sync (32 threads sharing one `Sendoso`), with 20 ms of latency on every
request so that all of them are waiting while the one token request is out: it must be exactly
one each. The baseline is the lazy token a hand-written client often has (fetch one when you
have none, no lock), run the same way with plain httpx.

Then a steady run of sends (50/s) against a sandbox issuing tokens that live 1 s, for 10 token
lifetimes: it should take about one token per lifetime (the client refreshes a tenth of a
lifetime early, so one per 0.9 s at most), and no request should meet a 401.
"""

from __future__ import annotations

import math
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anyio
import httpx

from benchmarks._figures import Figure
from benchmarks._sandbox import CLIENT_ID, CLIENT_SECRET, RemoteSandbox, serve

TITLE = "5. Token requests"
NAME = "token"
FIELDS: dict[str, Any] = {
    "gift_id": "gft_egift_amazon_us_25",
    "first_name": "Ada",
    "last_name": "Lovelace",
    "email": "ada@example.com",
    "message": "Thank you!",
}
GRANT = {"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}


def _token_requests(sandbox: RemoteSandbox) -> int:
    return int(sandbox.stats()["token_requests"])


def _async_burst(sandbox: RemoteSandbox, sends: int) -> int:
    async def main() -> None:
        async with sandbox.async_client() as client, anyio.create_task_group() as tasks:
            for _ in range(sends):
                tasks.start_soon(lambda: client.sends.create(**FIELDS))

    before = _token_requests(sandbox)
    anyio.run(main)
    return _token_requests(sandbox) - before


def _sync_burst(sandbox: RemoteSandbox, sends: int) -> int:
    before = _token_requests(sandbox)
    with sandbox.client() as client, ThreadPoolExecutor(max_workers=32) as pool:
        for future in [pool.submit(lambda: client.sends.create(**FIELDS)) for _ in range(sends)]:
            future.result()
    return _token_requests(sandbox) - before


def _naive_burst(sandbox: RemoteSandbox, sends: int) -> int:
    """A lazy token with no lock: every caller that finds none fetches one."""
    body = {"send": FIELDS}

    async def main() -> None:
        token: str | None = None
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
        async with httpx.AsyncClient(base_url=sandbox.url, limits=limits, timeout=60) as http:

            async def one() -> None:
                nonlocal token
                if token is None:
                    response = await http.post("/oauth/token", json=GRANT)
                    token = response.json()["access_token"]
                headers = {"Authorization": f"Bearer {token}"}
                (await http.post("/api/v3/sends", json=body, headers=headers)).raise_for_status()

            async with anyio.create_task_group() as tasks:
                for _ in range(sends):
                    tasks.start_soon(one)

    before = _token_requests(sandbox)
    anyio.run(main)
    return _token_requests(sandbox) - before


def _steady_run(sandbox: RemoteSandbox, seconds: float) -> tuple[int, int, float]:
    """Sends at 50/s for ``seconds``; returns (token requests, 401s, seconds it took)."""

    async def main() -> float:
        async with sandbox.async_client(rate_limit=50) as client:
            started = time.monotonic()
            deadline = started + seconds

            async def worker() -> None:
                while time.monotonic() < deadline:
                    await client.sends.create(**FIELDS)

            async with anyio.create_task_group() as tasks:
                for _ in range(4):
                    tasks.start_soon(worker)
            return time.monotonic() - started

    before, refused = _token_requests(sandbox), sandbox.responses(401)
    took = anyio.run(main)
    return _token_requests(sandbox) - before, sandbox.responses(401) - refused, took


def run(quick: bool) -> list[Figure]:
    sends = 50 if quick else 1000
    lifetimes = 2 if quick else 10
    ttl = 1.0
    with serve(rate_limit=None, latency_ms=20) as sandbox:
        async_tokens = _async_burst(sandbox, sends)
        sync_tokens = _sync_burst(sandbox, sends)
        naive_tokens = _naive_burst(sandbox, sends)
    with serve(rate_limit=None, token_ttl=ttl) as sandbox:
        steady_tokens, refused, took = _steady_run(sandbox, lifetimes * ttl)
    spanned = took / ttl
    most = math.ceil(took / (0.9 * ttl))
    return [
        Figure(
            NAME,
            f"token requests, {sends:,} concurrent async sends",
            async_tokens,
            "requests",
            baseline_name="lazy token, no lock",
            baseline=naive_tokens,
            target="exactly 1",
            met=async_tokens == 1,
        ),
        Figure(
            NAME,
            f"token requests, {sends:,} sends from 32 threads",
            sync_tokens,
            "requests",
            baseline_name="lazy token, no lock",
            baseline=naive_tokens,
            target="exactly 1",
            met=sync_tokens == 1,
            detail=f"the lazy token without a lock made {naive_tokens} token requests",
        ),
        Figure(
            NAME,
            f"token requests over {lifetimes} token lifetimes",
            steady_tokens,
            "requests",
            baseline_name="lifetimes spanned",
            baseline=spanned,
            ratio=steady_tokens / spanned,
            target=f"~{lifetimes}: {math.floor(spanned)} to {most + 1}, no 401",
            met=math.floor(spanned) <= steady_tokens <= most + 1 and refused == 0,
            detail=(
                f"{took:.1f} s of sends at 50/s with 1 s tokens; {refused} responses were 401 "
                "(a token used after the sandbox expired it)"
            ),
        ),
    ]
