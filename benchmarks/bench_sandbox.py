"""How many requests per second `sendoso sandbox serve` answers on loopback with no rate limit
and no latency: `POST /api/v3/sends` (validation, pricing, an SQLite insert, the idempotency
record), the request benchmark 1 makes 5,000 of, from 8 concurrent connections of one
`httpx.AsyncClient` in this process for a few seconds. The load generator shares the machine
with the sandbox, so the figure is a lower bound; the sandbox's own CPU time (from /proc) gives
what one core of it serves, which a loaded machine does not distort. The baseline is the 200
requests/s that benchmark 1 asks of it: the sandbox must have room to spare, so that benchmark 1
measures the client and not the sandbox.
"""

from __future__ import annotations

import time
import uuid

import anyio
import httpx

from benchmarks._figures import Figure
from benchmarks._sandbox import CLIENT_ID, CLIENT_SECRET, RemoteSandbox, serve

TITLE = "7. Sandbox capacity"
NAME = "sandbox"
DEMAND = 200.0
HEADROOM = 2.0
CONNECTIONS = 8
BODY = {
    "send": {
        "gift_id": "gft_egift_amazon_us_25",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "email": "ada@example.com",
        "message": "Thank you!",
    }
}


def _load(sandbox: RemoteSandbox, seconds: float) -> tuple[int, float]:
    async def main() -> tuple[int, float]:
        limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)
        async with httpx.AsyncClient(base_url=sandbox.url, limits=limits, timeout=60) as http:
            grant = {
                "grant_type": "client_credentials",
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
            }
            token = (await http.post("/oauth/token", json=grant)).json()["access_token"]
            served = 0
            started = time.perf_counter()
            deadline = started + seconds

            async def worker() -> None:
                nonlocal served
                while time.perf_counter() < deadline:
                    headers = {
                        "Authorization": f"Bearer {token}",
                        "Idempotency-Key": uuid.uuid4().hex,
                    }
                    response = await http.post("/api/v3/sends", json=BODY, headers=headers)
                    response.raise_for_status()
                    served += 1

            async with anyio.create_task_group() as tasks:
                for _ in range(CONNECTIONS):
                    tasks.start_soon(worker)
            return served, time.perf_counter() - started

    return anyio.run(main)


def run(quick: bool) -> list[Figure]:
    seconds = 1.0 if quick else 6.0
    with serve(rate_limit=None) as sandbox:
        _load(sandbox, 0.5 if quick else 1.0)  # warm up: connections, caches
        cpu_before = sandbox.cpu_seconds()
        served, took = _load(sandbox, seconds)
        cpu_after = sandbox.cpu_seconds()
        counted = sandbox.requests("POST /api/v3/sends")
    rate = served / took
    figures = [
        Figure(
            NAME,
            "POST /api/v3/sends served per second",
            rate,
            "req/s",
            baseline_name="benchmark 1's rate limit",
            baseline=DEMAND,
            ratio=rate / DEMAND,
            target=f">= {HEADROOM:g}x (never the bottleneck)",
            met=rate >= HEADROOM * DEMAND,
            detail=(
                f"{served} sends in {took:.1f} s over {CONNECTIONS} connections; the sandbox "
                f"counted {counted} including the warm-up. A lower bound: the load generator "
                "competes with the sandbox for the same cores"
            ),
        )
    ]
    if cpu_before is not None and cpu_after is not None and cpu_after > cpu_before:
        per_core = served / (cpu_after - cpu_before)
        figures.append(
            Figure(
                NAME,
                "sends served per CPU-second of the sandbox",
                per_core,
                "req/s",
                baseline_name="benchmark 1's rate limit",
                baseline=DEMAND,
                ratio=per_core / DEMAND,
                target=f">= {HEADROOM:g}x",
                met=per_core >= HEADROOM * DEMAND,
                detail=(
                    "what one core would serve, whatever else the machine runs: "
                    f"{(cpu_after - cpu_before) / served * 1000:.2f} ms of sandbox CPU per send"
                ),
            )
        )
    return figures
