"""The ledger modes of the chaos run: the ledger fails while sends are in flight.

No kills and no faults that cut a reply: every send the server makes is answered, so every
send id must end up recorded (the verdict's `unrecorded` column), through the send journal
when the ledger failed as it came. The server ignores idempotency keys and the runner does
not trust them, so a lost id could not be recovered by sending the key again (it would show
as a second send, or as a row left `unknown`).

- `diskfull`: a SQLite ledger on a small filesystem of its own (a tmpfs; needs root), filled
  up once a third of the rows were sent, emptied again after the run gave up.
- `pgdown`: a PostgreSQL ledger on a private throwaway cluster, stopped once a third of the
  rows were sent, started again (same port) after the run gave up.

Then the same command is run again until it finishes, and the records are compared as in
the other modes.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from chaos._harness import (
    _STALL_SECONDS,
    ChaosConfig,
    ModeResult,
    _budget,
    _environment,
    _finish,
    _Runs,
    _Stalled,
    _verify,
    _wait_for_posts,
    record_processes,
)
from chaos._postgres import PostgresUnavailable, PrivateCluster, temporary_database
from chaos._recipients import write_recipients
from sendoso.sandbox import SandboxControl

__all__ = ["ledger_failure_mode"]


@dataclass
class _Fault:
    """A ledger URL, how to make it fail, and how to bring it back."""

    url: str
    fail: Callable[[], None]
    repair: Callable[[], None]


class _Unavailable(Exception):
    pass


def ledger_failure_mode(
    mode: str, config: ChaosConfig, control: SandboxControl, workdir: Path
) -> ModeResult:
    rng = random.Random(f"{config.seed}:{mode}")
    result = ModeResult(mode, config.seed)
    started = time.monotonic()
    recipients = write_recipients(workdir / "crm.csv", config.rows, rng)
    result.rows, result.invalid = recipients.rows, len(recipients.invalid)
    faults = config.faults
    control.reset()
    control.faults(
        error_rate=0.0,
        drop_rate=0.0,
        latency_ms=faults.latency_ms,
        jitter_ms=faults.jitter_ms,
        rate_limit=faults.rate_limit,
        token_ttl=faults.token_ttl,
        dedupe=False,
        seed=rng.getrandbits(32),
    )
    runs = _Runs(workdir, _environment(workdir, control.url, trusted=False))
    run_id = f"chaos-{mode}"
    try:
        with _ledger(mode, workdir) as fault:
            try:
                budget = _budget(runs, recipients, config.budget_share)
                result.budget = f"{budget} USD"
                plan = ["--run-id", run_id, "--ledger", fault.url, "--max-spend", result.budget]
                command = [
                    "batch", "run", str(recipients.path), *plan, "--yes", "--json",
                    "--concurrency", str(config.concurrency),
                ]  # fmt: skip
                process = runs.start(command)
                if not _wait_for_posts(control, [process], max(1, recipients.valid // 3)):
                    result.problems.append("the run ended before its ledger could fail")
                # The ledger fails while sends are in flight: their replies come after it.
                control.hold(1000, endpoint="POST /api/v3/sends", timeout_seconds=60)
                _until_in_flight(control, process, config.concurrency)
                fault.fail()
                control.release_hold()
                process.wait(timeout=_STALL_SECONDS)
                if runs.ending(process) != "ledger":
                    result.problems.append(
                        f"the run whose ledger failed ended as {runs.ending(process)!r}"
                    )
                result.reported_unrecorded = _reported(runs, process)
                fault.repair()
                _finish(runs, command, config)
                _verify(
                    result, runs, control, recipients, run_id, fault.url,
                    trusted=False, replies_cut=False,
                )  # fmt: skip
            except (_Stalled, subprocess.TimeoutExpired) as exc:
                result.problems.append(f"the run got stuck: {exc}")
            finally:
                runs.stop_all()
    except _Unavailable as exc:
        result.skipped = str(exc)
        return result
    record_processes(result, runs, control)
    result.wall_seconds = round(time.monotonic() - started, 1)
    return result


def _until_in_flight(
    control: SandboxControl, process: subprocess.Popen[bytes], wanted: int
) -> None:
    """Until ``wanted`` send requests wait at the sandbox's hold (or the run is over)."""
    deadline = time.monotonic() + _STALL_SECONDS
    while control.hold_state()["arrived"] < wanted:
        if process.poll() is not None:
            return
        if time.monotonic() > deadline:
            raise _Stalled(f"{wanted} sends never were in flight together")
        time.sleep(0.02)


def _reported(runs: _Runs, process: subprocess.Popen[bytes]) -> int:
    """How many sends the run listed as not recorded in its JSON result."""
    try:
        document = json.loads(runs.outputs[process.pid].read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return 0
    listed = document.get("unrecorded") if isinstance(document, dict) else None
    return len(listed) if isinstance(listed, list) else 0


@contextmanager
def _ledger(mode: str, workdir: Path) -> Iterator[_Fault]:
    if mode == "diskfull":
        with _small_disk(workdir / "disk") as disk:
            filler = disk / "filler"
            yield _Fault(
                f"sqlite:///{disk / 'ledger.db'}",
                fail=lambda: _fill(filler),
                repair=lambda: filler.unlink(missing_ok=True),
            )
        return
    try:
        cluster = PrivateCluster.start()
    except PostgresUnavailable as exc:
        raise _Unavailable(f"no private PostgreSQL cluster to stop and start: {exc}") from None
    try:
        with temporary_database(cluster.url) as url:
            yield _Fault(url, fail=cluster.pause, repair=cluster.unpause)
    finally:
        cluster.stop()


#: Room for the plan of a few thousand rows; filled up mid-run anyway.
_DISK_SIZE = "64m"


@contextmanager
def _small_disk(target: Path) -> Iterator[Path]:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        raise _Unavailable("a filesystem of its own for the ledger needs root (mount -t tmpfs)")
    target.mkdir()
    mounted = subprocess.run(  # noqa: S603 - fixed arguments
        ["mount", "-t", "tmpfs", "-o", f"size={_DISK_SIZE}", "tmpfs", str(target)],  # noqa: S607
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        raise _Unavailable(f"cannot mount a tmpfs: {mounted.stderr.decode().strip()}")
    try:
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False)  # noqa: S603, S607


def _fill(path: Path) -> None:
    """Write until the filesystem is full."""
    with path.open("wb") as filler, contextlib.suppress(OSError):
        while True:
            filler.write(b"\0" * 65536)
            filler.flush()
