"""Chaos modes for faults outside the runner (issue 14): the token endpoint failing mid-run,
and prices rising between the plan and its sends.

``token5xx``: a server that does not deduplicate (so any send the runner thought ambiguous
would become ``unknown``), no 5xx or cut reply on sends, tokens that live a second, and the
token endpoint answering 500 in bursts while the run goes on. No send was ever ambiguous, so
every row must end sent exactly once and none ``unknown``.

``prices``: the plan is saved (not confirmed) with ``--max-spend`` at 95% of the file's high
estimate, then every gift of the file costs 30% more, then ``batch resume`` sends. What the
server charged (its sends' high cost, at the new prices) must stay within the budget, and
the rows that no longer fit are skipped (``budget``), never sent.
"""

from __future__ import annotations

import contextlib
import random
import subprocess
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

from chaos._harness import (
    ChaosConfig,
    ModeResult,
    _budget,
    _environment,
    _finish,
    _Runs,
    _Stalled,
    _verify,
    record_processes,
)
from chaos._recipients import EGIFT, PHYSICAL, write_recipients
from sendoso.sandbox import SandboxControl
from sendoso.sandbox._catalog import find_gift

__all__ = ["run_outside_mode"]

#: The token endpoint fails for this long, then works for OUTAGE_GAP, over and over.
OUTAGE_SECONDS = 1.0
OUTAGE_GAP = 2.0
PRICE_RISE = Decimal("1.3")


def run_outside_mode(
    mode: str, config: ChaosConfig, control: SandboxControl, workdir: Path
) -> ModeResult:
    rng = random.Random(f"{config.seed}:{mode}")
    result = ModeResult(mode, config.seed)
    started = time.monotonic()
    recipients = write_recipients(workdir / "crm.csv", config.rows, rng)
    result.rows, result.invalid = recipients.rows, len(recipients.invalid)
    trusted = mode == "prices"
    control.reset()
    faults = config.faults
    control.faults(
        latency_ms=faults.latency_ms,
        jitter_ms=faults.jitter_ms,
        rate_limit=faults.rate_limit,
        token_ttl=1 if mode == "token5xx" else faults.token_ttl,
        dedupe=trusted,
        seed=rng.getrandbits(32),
    )
    runs = _Runs(workdir, _environment(workdir, control.url, trusted=trusted))
    ledger = f"sqlite:///{workdir / 'ledger.db'}"
    run_id = f"chaos-{mode}"
    try:
        budget = _budget(runs, recipients, config.budget_share)
        result.budget = f"{budget} USD"
        plan = ["--run-id", run_id, "--ledger", ledger, "--max-spend", result.budget]
        resume = [
            "batch", "resume", run_id, "--yes", "--json", "--ledger", ledger,
            "--concurrency", str(config.concurrency),
        ]  # fmt: skip
        planned = runs.cli(["batch", "run", str(recipients.path), *plan])
        if planned.returncode != 2 or control.sends():
            raise _Stalled(f"planning ended with {planned.returncode}: {planned.stderr[-500:]}")
        if mode == "prices":
            for gift_id in (EGIFT, PHYSICAL):
                gift = find_gift(gift_id)
                assert gift is not None
                control.set_price(gift_id, str((gift.price * PRICE_RISE).quantize(Decimal("0.01"))))
            _finish(runs, resume, config)
        else:
            with _token_outages(control):
                _finish(runs, resume, config)
            _finish(runs, resume, config)  # if the last outage paused it
    except (_Stalled, subprocess.TimeoutExpired) as exc:
        result.problems.append(f"the run got stuck: {exc}")
    finally:
        runs.stop_all()
        control.faults(token_error=0)
    record_processes(result, runs, control)
    _verify(result, runs, control, recipients, run_id, ledger, trusted=trusted)
    if mode == "token5xx":
        if result.unknown:
            result.problems.append(
                f"{result.unknown} rows unknown, though only the token endpoint failed"
                " (no send was ever transmitted without an answer)"
            )
        if not result.faults["5xx"]:
            result.problems.append("the token endpoint never failed: nothing was tested")
    result.wall_seconds = round(time.monotonic() - started, 1)
    return result


@contextlib.contextmanager
def _token_outages(control: SandboxControl) -> Iterator[None]:
    """Turn the token endpoint's 500s on and off in a thread until the block ends."""
    done = threading.Event()

    def toggle() -> None:
        # Its own control client: the harness's is not shared across threads.
        with SandboxControl(control.url, timeout=30) as own:
            while not done.is_set():
                own.faults(token_error=500)
                if done.wait(OUTAGE_SECONDS):
                    break
                own.faults(token_error=0)
                done.wait(OUTAGE_GAP)
            own.faults(token_error=0)

    thread = threading.Thread(target=toggle, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
