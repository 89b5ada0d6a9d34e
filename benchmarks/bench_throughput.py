"""5,000 eGift sends through the real batch path (a planned run in a SQLite ledger on disk,
sent by `BatchRunner`, as `sendoso batch run --rate 200 --concurrency 48 --yes` does) against
`sendoso sandbox serve --rate-limit 200 --latency-ms 100` in its own process. The achieved rate
is sends recorded `submitted` divided by the runner's wall time (start-up included), judged
against the sandbox's 200 requests/s; 429s are counted by the sandbox. Concurrency 48 is the
20 requests that 100 ms at 200/s keeps in flight, with room for the ledger's commits.

Baseline: the loop the seed implies, a plain `httpx.Client` POSTing each row's body in turn
(token fetched once, no pacing, no ledger), run on a sample of rows and scaled to the file.
A second, shorter run leaves the rate out (`--rate` unset: on a loopback host the client
starts unpaced and adapts to the sandbox's 429s) to show how many 429s that costs.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import anyio
import httpx

from benchmarks._batch import plan, recipients_csv
from benchmarks._figures import Figure
from benchmarks._sandbox import CLIENT_ID, CLIENT_SECRET, RemoteSandbox, serve
from sendoso.batch import BatchRunner, Ledger, RowState

TITLE = "1. Batch throughput at the rate limit"
NAME = "throughput"
RATE = 200.0
LATENCY_MS = 100.0
CONCURRENCY = 48
TARGET = 0.9


def _run_batch(
    sandbox: RemoteSandbox, ledger: Ledger, run_id: str, *, rate: float | None
) -> tuple[int, float, float]:
    """Send the planned run; returns (sends recorded, wall seconds, our CPU seconds)."""

    async def main() -> tuple[int, float, float]:
        options: dict[str, object] = {"wait_on_rate_limited_sends": False}
        if rate is not None:
            options["rate_limit"] = rate
        async with sandbox.async_client(**options) as client:
            runner = BatchRunner(ledger, client, run_id, concurrency=CONCURRENCY)
            started, cpu = time.perf_counter(), time.process_time()
            result = await runner.run()
            wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        return result.counts.get(RowState.SUBMITTED, 0), wall, cpu

    return anyio.run(main)


def _naive_loop(sandbox: RemoteSandbox, ledger: Ledger, run_id: str, sample: int) -> float:
    """Rows per second of a plain sequential httpx loop over the run's first rows."""
    bodies = []
    for row in ledger.rows(run_id):
        if row.request is not None:
            bodies.append({"send": row.request})
        if len(bodies) == sample:
            break
    with httpx.Client(base_url=sandbox.url, timeout=30) as http:
        token = http.post(
            "/oauth/token",
            json={
                "grant_type": "client_credentials",
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
            },
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        started = time.perf_counter()
        for body in bodies:
            http.post("/api/v3/sends", json=body, headers=headers).raise_for_status()
        return len(bodies) / (time.perf_counter() - started)


def run(quick: bool) -> list[Figure]:
    rows = 60 if quick else 5000
    adaptive_rows = 40 if quick else 2000
    sample = 5 if quick else 40
    figures: list[Figure] = []
    with (
        serve(rate_limit=RATE, latency_ms=LATENCY_MS) as sandbox,
        tempfile.TemporaryDirectory(prefix="sendoso-bench-") as tmp,
    ):
        directory = Path(tmp)
        with Ledger(f"sqlite:///{directory}/ledger.db") as ledger:
            path = recipients_csv(directory / "paced.csv", rows)
            planned = plan(ledger, sandbox, path, "paced")
            before = sandbox.responses(429)
            sent, wall, cpu = _run_batch(sandbox, ledger, "paced", rate=RATE)
            throttled = sandbox.responses(429) - before
            achieved = sent / wall
            naive = _naive_loop(sandbox, ledger, "paced", sample)

            path = recipients_csv(directory / "adaptive.csv", adaptive_rows)
            adaptive_planned = plan(ledger, sandbox, path, "adaptive")
            before = sandbox.responses(429)
            adaptive_sent, adaptive_wall, _ = _run_batch(sandbox, ledger, "adaptive", rate=None)
            adaptive_throttled = sandbox.responses(429) - before
    ratio = achieved / RATE
    figures.append(
        Figure(
            NAME,
            "sends/s with --rate 200",
            achieved,
            "sends/s",
            baseline_name="rate limit",
            baseline=RATE,
            ratio=ratio,
            target=f">= {TARGET}x the limit",
            met=ratio >= TARGET and sent == planned,
            detail=(
                f"{sent} of {planned} rows sent in {wall:.1f} s, concurrency {CONCURRENCY}; "
                f"our process used {cpu / max(sent, 1) * 1000:.2f} ms CPU per send"
            ),
        )
    )
    figures.append(
        Figure(
            NAME,
            "429s received with --rate 200",
            throttled,
            "",
            target="0 (paced under the limit)",
            met=throttled == 0,
            detail="counted by the sandbox (responses with status 429)",
        )
    )
    projected = rows / naive
    figures.append(
        Figure(
            NAME,
            "speed-up over a sequential httpx loop",
            achieved,
            "sends/s",
            baseline_name=f"naive loop, {sample}-row sample",
            baseline=naive,
            ratio=achieved / naive,
            detail=(
                f"the naive loop would take {projected:.0f} s for {rows} rows "
                f"(measured {naive:.1f} rows/s); the batch took {wall:.1f} s"
            ),
        )
    )
    adaptive_rate = adaptive_sent / adaptive_wall
    figures.append(
        Figure(
            NAME,
            "sends/s without --rate (adaptive)",
            adaptive_rate,
            "sends/s",
            baseline_name="rate limit",
            baseline=RATE,
            ratio=adaptive_rate / RATE,
            detail=(
                f"{adaptive_sent} of {adaptive_planned} rows in {adaptive_wall:.1f} s; "
                f"{adaptive_throttled} 429s while the client learned the limit"
            ),
        )
    )
    figures.append(
        Figure(
            NAME,
            "429s received without --rate (adaptive)",
            adaptive_throttled,
            "",
            detail="each 429 puts its row back in the ledger's queue; none is lost",
        )
    )
    return figures
