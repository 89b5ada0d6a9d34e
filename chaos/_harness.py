"""Kill-and-resume runs of the real CLI against a faulty sandbox, checked from the server's
own record.

One run of a mode: write a CRM file with a known set of invalid rows, turn the sandbox's
faults on (seeded), start `sendoso batch run`, SIGKILL it at K seeded moments and start it
again each time, let the last one finish, then compare three records that must agree:

- the sandbox's sends (`GET /_sandbox/sends`): who was sent what, under which key;
- the run's report (`sendoso batch report --out report.json`): one line per input row;
- the rows the CLI lists as `unknown` (`sendoso batch show RUN --state unknown`).

`tally` says what must hold between them (no second send to anyone, every valid row sent
once or listed unknown, invalid rows never sent, `--max-spend` never exceeded); `_Runs.leaks`
that no secret reached anything the CLI wrote.

The kill moments are counted in send requests the sandbox has received (cheap to poll, and
the same for a given seed however fast the machine is), plus a seeded sub-second delay so a
kill lands at any point of a request, not only between two.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from decimal import ROUND_FLOOR, Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import make_url
from sqlalchemy.exc import ArgumentError

from chaos._postgres import (
    ENV_URL,
    PostgresUnavailable,
    postgres_required,
    server_url,
    temporary_database,
)
from chaos._recipients import Recipients, write_recipients
from chaos._sandbox import CLIENT_ID, CLIENT_SECRET, sendoso_command, serve_sandbox
from sendoso.sandbox import SandboxControl

__all__ = [
    "ALL_MODES",
    "LEDGER_MODES",
    "MODES",
    "OUTSIDE_MODES",
    "ChaosConfig",
    "FaultPlan",
    "Kill",
    "ModeResult",
    "kill_schedule",
    "record_processes",
    "run_chaos",
    "tally",
]

MODES = ("trusted", "untrusted", "postgres")
#: Faults outside the runner (chaos/_outside.py): the token endpoint failing, prices rising.
OUTSIDE_MODES = ("token5xx", "prices")
#: The ledger fails mid-run (no kills): its disk fills up (SQLite on a small filesystem of
#: its own), or its PostgreSQL server stops and comes back (chaos/_ledger_faults.py).
LEDGER_MODES = ("diskfull", "pgdown")
#: Every mode `python -m chaos` knows, and runs by default.
ALL_MODES = MODES + OUTSIDE_MODES + LEDGER_MODES
#: A run that sends nothing for this long is stuck: the harness gives up on it.
_STALL_SECONDS = 180.0
_POLL_SECONDS = 0.02
#: Runs needed after the planned kills before a run may still be open, at most.
_MAX_FINAL_RUNS = 5


@dataclass(frozen=True)
class FaultPlan:
    """What the sandbox does wrong during a chaos run (see `POST /_sandbox/faults`)."""

    error_rate: float = 0.10  # 5xx before the send is processed
    drop_rate: float = 0.05  # connection cut after the send was committed
    latency_ms: float = 2.0
    jitter_ms: float = 40.0  # plus up to this much, per request
    rate_limit: float = 40.0  # requests/s: far under what 8 workers ask for, so 429s come
    token_ttl: float = 3.0  # seconds: tokens expire many times per run


@dataclass(frozen=True)
class ChaosConfig:
    rows: int = 2000
    kills: int = 10
    seed: int = 0
    modes: tuple[str, ...] = MODES
    faults: FaultPlan = field(default_factory=FaultPlan)
    concurrency: int = 8
    #: Lease of a claimed row on PostgreSQL: how soon a silent worker's rows are taken over.
    lease_seconds: float = 5.0
    #: --max-spend as a share of the file's high estimate: the last rows in file order are
    #: left out, and the sends must stay within it through every kill.
    budget_share: Decimal = Decimal("0.95")
    #: Unknown rows settled per untrusted run (one CLI call each), then resumed.
    settle: int = 12


@dataclass
class ModeResult:
    mode: str
    seed: int
    rows: int = 0
    invalid: int = 0
    kills: int = 0
    #: Processes started (first run, restarts after kills, final runs).
    starts: int = 0
    faults: dict[str, int] = field(default_factory=dict)
    sends: int = 0
    duplicates: int = 0
    lost: int = 0
    unknown: int = 0
    #: Unknown rows that the server did create (a cut reply): the reason they are unknown.
    unknown_sent: int = 0
    #: --max-spend (USD, 95% of the file's high estimate), the rows it left out at planning,
    #: and the high estimate of what the server actually created: never above the budget.
    budget: str = ""
    budget_skipped: int = 0
    spent_high: str = ""
    #: Untrusted: unknown rows settled from the server's record (`batch settle`) before a
    #: last resume, which must send the not-sent ones once and leave the sent ones alone.
    settled: int = 0
    #: PostgreSQL: whether the second worker ran as if on another host (own PID namespace).
    worker_elsewhere: bool = False
    #: Send ids the server gave out that the ledger has not recorded once everything was
    #: resumed (the send journal applied): always 0. A row left `unknown` by a cut reply
    #: never had its id received, so it is not counted (ledger modes cut no reply).
    unrecorded: int = 0
    #: Ledger modes: the send ids the run whose ledger failed printed as not recorded.
    reported_unrecorded: int = 0
    #: How the runs that were not killed ended, by `end` (`finished`, `failing`, ...).
    endings: dict[str, int] = field(default_factory=dict)
    wall_seconds: float = 0.0
    problems: list[str] = field(default_factory=list)
    skipped: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems and not self.duplicates and not self.lost and not self.unrecorded

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def run_chaos(
    config: ChaosConfig, *, sandbox_url: str | None = None, postgres_url: str | None = None
) -> list[ModeResult]:
    """Run each mode of ``config``; a sandbox and a PostgreSQL server are started if not
    given. The sandbox is reset before every mode (and its faults left on afterwards)."""
    with contextlib.ExitStack() as stack:
        if sandbox_url is None:
            control = stack.enter_context(serve_sandbox()).control
        else:
            control = stack.enter_context(SandboxControl(sandbox_url, timeout=30))
        results = []
        for mode in config.modes:
            workdir = Path(tempfile.mkdtemp(prefix=f"sendoso-chaos-{mode}-"))
            if mode == "postgres":
                result = _postgres_mode(config, control, workdir, postgres_url, stack)
            elif mode in OUTSIDE_MODES:
                from chaos._outside import run_outside_mode  # it builds on this module

                result = run_outside_mode(mode, config, control, workdir)
            elif mode in LEDGER_MODES:
                from chaos._ledger_faults import ledger_failure_mode

                result = ledger_failure_mode(mode, config, control, workdir)
            else:
                result = _run_mode(mode, config, control, workdir, ledger=None)
            if result.ok or result.skipped is not None:
                shutil.rmtree(workdir, ignore_errors=True)
            else:
                result.problems.append(f"logs and ledger kept in {workdir}")
            results.append(result)
        return results


def _postgres_mode(
    config: ChaosConfig,
    control: SandboxControl,
    workdir: Path,
    given: str | None,
    stack: contextlib.ExitStack,
) -> ModeResult:
    try:
        server = given or stack.enter_context(server_url())
    except PostgresUnavailable as exc:
        result = ModeResult("postgres", config.seed, skipped=str(exc))
        # A server named explicitly that does not work is a failure, as in the test fixtures.
        if postgres_required() or os.environ.get(ENV_URL, "").strip():
            result.problems.append(f"PostgreSQL required but unavailable: {exc}")
        return result
    with temporary_database(server) as ledger:
        return _run_mode("postgres", config, control, workdir, ledger=ledger)


class _Runs:
    """The CLI processes of one mode: started with the mode's environment, logged, killed."""

    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.workdir = workdir
        self.env = env
        self.starts = 0
        self.kills = 0
        self.outputs: dict[int, Path] = {}
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, args: Sequence[str], *, elsewhere: bool = False) -> subprocess.Popen[bytes]:
        """Start the CLI; ``elsewhere``: in its own PID namespace, which the ledger takes for
        another host (a dead owner there is not seen; its leases must run out)."""
        self.starts += 1
        prefix = _ELSEWHERE if elsewhere else []
        out = self.workdir / f"run{self.starts:02d}.json"
        with out.open("wb") as stdout, (self.workdir / "stderr.log").open("ab") as stderr:
            stderr.write(f"--- start {self.starts}: {' '.join(map(_shown, args))}\n".encode())
            stderr.flush()
            process = subprocess.Popen(  # noqa: S603 - our own CLI, fixed arguments
                [*prefix, sendoso_command(), *args],
                env=self.env,
                stdout=stdout,
                stderr=stderr,
                stdin=subprocess.DEVNULL,
            )
        self.outputs[process.pid] = out
        self.processes.append(process)
        return process

    def stop_all(self) -> None:
        """SIGKILL whatever a stuck mode left running (only the processes started here)."""
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait()

    def kill(self, process: subprocess.Popen[bytes]) -> None:
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            self.kills += 1
        process.wait()

    def cli(self, args: Sequence[str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(  # noqa: S603 - our own CLI, fixed arguments
            [sendoso_command(), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        with (self.workdir / "cli.log").open("a", encoding="utf-8") as log:
            log.write(f"--- {' '.join(map(_shown, args))}\n{done.stdout}{done.stderr}")
        return done

    def leaks(self, secrets: Sequence[str]) -> list[str]:
        """Which of ``secrets`` (or any access token) appear in what the CLI wrote: its
        stdout and stderr, the reports, a SQLite ledger, the token cache's file names."""
        found: set[str] = set()
        written = [p for p in self.workdir.iterdir() if p.suffix in _WRITTEN]
        for path in written:
            content = path.read_bytes().decode("utf-8", errors="replace")
            found.update(f"{name} in {path.name}" for name in secrets if name in content)
            if _ACCESS_TOKEN.search(content):
                found.add(f"an access token in {path.name}")
        for path in self.workdir.rglob("*"):
            if _ACCESS_TOKEN.search(path.name) or any(name in path.name for name in secrets):
                found.add(f"a secret in the file name {path.name}")
        return sorted(found)

    def crashes(self) -> list[str]:
        """The CLI's "unexpected error" lines: a traceback is a bug even if a resume recovers."""
        log = self.workdir / "stderr.log"
        if not log.exists():
            return []
        lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
        return [line for line in lines if "unexpected error" in line]

    def endings(self) -> list[str]:
        """How each process that was not killed said its run ended."""
        found = []
        for process in self.processes:
            if process.returncode is not None and process.returncode >= 0:
                found.append(self.ending(process) or f"exit {process.returncode}")
        return found

    def ending(self, process: subprocess.Popen[bytes]) -> str | None:
        """How a finished process said its run ended (``finished``, ``failing``, ...)."""
        try:
            document = json.loads(self.outputs[process.pid].read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        end = document.get("end") if isinstance(document, dict) else None
        return end if isinstance(end, str) else None


#: What the CLI wrote that must hold no secret (the token cache's contents are the one place
#: a token belongs; only its file name is checked).
_WRITTEN = frozenset({".json", ".log", ".db", ".db-wal", ".db-journal"})
#: The sandbox's access tokens ("sbx_" and 43 URL-safe characters).
_ACCESS_TOKEN = re.compile(r"sbx_[A-Za-z0-9_-]{20,}")

#: SIGKILL to `unshare` reaches the worker too (--kill-child).
_ELSEWHERE = ["unshare", "--pid", "--fork", "--kill-child"]


def can_run_elsewhere() -> bool:
    """Whether this machine lets us start a process in its own PID namespace (root, or
    unprivileged user namespaces with util-linux's unshare)."""
    if shutil.which("unshare") is None:
        return False
    try:
        done = subprocess.run(  # noqa: S603 - fixed arguments
            [*_ELSEWHERE, "true"], capture_output=True, timeout=30, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


def _shown(arg: str) -> str:
    """An argument as logged: a database URL without its password."""
    if "://" not in arg:
        return arg
    try:
        return make_url(arg).render_as_string(hide_password=True)
    except ArgumentError:
        return arg


def _environment(workdir: Path, url: str, *, trusted: bool) -> dict[str, str]:
    """The CLI's environment: isolated from the user's config, cache and ledger. Untrusted
    mode names a profile with ``trust_idempotency = false``, as a user would."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENDOSO_")}
    for name in ("XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME"):
        env[name] = str(workdir / name.lower())
    config = workdir / "config.toml"
    env["SENDOSO_CONFIG"] = str(config)
    if trusted:
        env["SENDOSO_BASE_URL"] = url
        env["SENDOSO_CLIENT_ID"] = CLIENT_ID
        env["SENDOSO_CLIENT_SECRET"] = CLIENT_SECRET
    else:
        config.write_text(
            "[profiles.chaos]\n"
            f'base_url = "{url}"\n'
            f'client_id = "{CLIENT_ID}"\n'
            f'client_secret = "{CLIENT_SECRET}"\n'
            "trust_idempotency = false\n",
            encoding="utf-8",
        )
        config.chmod(0o600)
        env["SENDOSO_PROFILE"] = "chaos"
    return env


@dataclass(frozen=True)
class Kill:
    """Kill once the sandbox has received ``after_posts`` send requests in this mode (None:
    ``delay`` seconds after the process starts), ``delay`` seconds later."""

    after_posts: int | None
    delay: float


def kill_schedule(
    rng: random.Random, valid_rows: int, kills: int, *, lost_per_kill: int = 0
) -> list[Kill]:
    """``kills`` seeded kill points, spread over the first 90% of the send requests the run
    is sure to make, so every kill comes before the run ends. ``lost_per_kill``: rows a
    kill may take out of the run without another request (untrusted: they become
    unknown)."""
    sure = valid_rows - kills * lost_per_kill
    span = max(kills, int(sure * 0.9))
    points = sorted(rng.sample(range(1, span + 1), kills))
    return [Kill(point, rng.uniform(0, 0.05)) for point in points]


def _posts(control: SandboxControl) -> int:
    return int(control.stats()["requests"]["POST /api/v3/sends"])


def _wait_for_posts(
    control: SandboxControl, processes: Sequence[subprocess.Popen[bytes]], target: int
) -> bool:
    """Until the sandbox has seen ``target`` send requests (True) or no process is left
    (False); raises if nothing moves for a long time."""
    last, moved_at = -1, time.monotonic()
    while True:
        seen = _posts(control)
        if seen >= target:
            return True
        if all(p.poll() is not None for p in processes):
            return False
        now = time.monotonic()
        if seen != last:
            last, moved_at = seen, now
        elif now - moved_at > _STALL_SECONDS:
            raise _Stalled(f"no send request for {_STALL_SECONDS:.0f} s at {seen} requests")
        time.sleep(_POLL_SECONDS)


class _Stalled(Exception):
    pass


def _run_mode(
    mode: str,
    config: ChaosConfig,
    control: SandboxControl,
    workdir: Path,
    *,
    ledger: str | None,
) -> ModeResult:
    # One generator per mode, derived from the seed: `--mode untrusted --seed S` replays the
    # untrusted part of a full run with seed S.
    rng = random.Random(f"{config.seed}:{mode}")
    result = ModeResult(mode, config.seed)
    started = time.monotonic()
    recipients = write_recipients(workdir / "crm.csv", config.rows, rng)
    result.rows, result.invalid = recipients.rows, len(recipients.invalid)
    faults = config.faults
    control.reset()
    control.faults(
        error_rate=faults.error_rate,
        drop_rate=faults.drop_rate,
        latency_ms=faults.latency_ms,
        jitter_ms=faults.jitter_ms,
        rate_limit=faults.rate_limit,
        token_ttl=faults.token_ttl,
        # Untrusted: a server that ignores Idempotency-Key, so a re-sent ambiguous row
        # would show up as a second send instead of being absorbed.
        dedupe=mode != "untrusted",
        seed=rng.getrandbits(32),
    )
    lost_per_kill = config.concurrency if mode == "untrusted" else 0
    kills = kill_schedule(rng, recipients.valid, config.kills, lost_per_kill=lost_per_kill)
    if mode != "postgres" and len(kills) >= 2:
        # The first kill is timed from the start instead: it lands while the process starts,
        # reads the catalog or writes the plan.
        kills[0] = Kill(None, rng.uniform(0.2, 1.2))
    runs = _Runs(workdir, _environment(workdir, control.url, trusted=mode != "untrusted"))
    ledger = ledger or f"sqlite:///{workdir / 'ledger.db'}"
    run_id = f"chaos-{mode}"
    try:
        budget = _budget(runs, recipients, config.budget_share)
        result.budget = f"{budget} USD"
        plan = ["--run-id", run_id, "--ledger", ledger, "--max-spend", result.budget]
        if mode == "postgres":
            result.worker_elsewhere = _two_workers(
                runs, control, recipients, plan, config, kills, rng
            )
        else:
            command = _one_runner(runs, control, recipients, plan, config, kills)
            if mode == "untrusted":
                result.settled = _settle_some(runs, control, recipients, plan, rng, config.settle)
                _finish(runs, command, config)
    except (_Stalled, subprocess.TimeoutExpired) as exc:
        result.problems.append(f"the run got stuck: {exc}")
    finally:
        runs.stop_all()
    record_processes(result, runs, control)
    if result.kills < config.kills:
        result.problems.append(f"only {result.kills} of {config.kills} kills happened")
    if result.budget:
        _verify(result, runs, control, recipients, run_id, ledger, trusted=mode != "untrusted")
    result.wall_seconds = round(time.monotonic() - started, 1)
    return result


def record_processes(result: ModeResult, runs: _Runs, control: SandboxControl) -> None:
    """What a mode's CLI processes did (starts, kills, endings, crashes) and the faults the
    sandbox injected meanwhile, into ``result``."""
    result.kills, result.starts = runs.kills, runs.starts
    result.endings = dict(Counter(runs.endings()))
    crashes = runs.crashes()
    if crashes:
        result.problems.append(f"the CLI crashed {len(crashes)} times: {crashes[0][:300]}")
    stats = control.stats()
    result.faults = {
        "5xx": stats["faults"]["errors"],
        "dropped": stats["faults"]["drops"],
        "429": stats["faults"]["rate_limited"],
        "401": int(stats["responses_by_status"].get("401", 0)),
        "tokens": stats["tokens_issued"],
    }


def _budget(runs: _Runs, recipients: Recipients, share: Decimal) -> Decimal:
    """``share`` of the file's high estimate in USD, from a dry run (which records nothing)."""
    dry = runs.cli(["batch", "run", str(recipients.path), "--dry-run", "--json"])
    try:
        high = Decimal(json.loads(dry.stdout)["estimate"]["USD"]["high"])
    except (ValueError, KeyError, TypeError):
        raise _Stalled(f"the dry run gave no USD estimate: {dry.stderr[-300:]}") from None
    return (high * share).quantize(Decimal(1), rounding=ROUND_FLOOR)


def _one_runner(
    runs: _Runs,
    control: SandboxControl,
    recipients: Recipients,
    plan: list[str],
    config: ChaosConfig,
    kills: list[Kill],
) -> list[str]:
    """`batch run` killed at each kill point and started again (the same command resumes);
    returns the command."""
    command = [
        "batch", "run", str(recipients.path), *plan, "--yes", "--json",
        "--concurrency", str(config.concurrency),
    ]  # fmt: skip
    pending = list(kills)
    while pending and runs.starts < 3 * config.kills + _MAX_FINAL_RUNS:
        kill = pending[0]
        process = runs.start(command)
        if kill.after_posts is None or _wait_for_posts(control, [process], kill.after_posts):
            time.sleep(kill.delay)
            runs.kill(process)
            pending.pop(0)
        elif runs.ending(process) == "finished":
            break  # nothing left to kill: the shortfall is reported
    _finish(runs, command, config)
    return command


def _settle_some(
    runs: _Runs,
    control: SandboxControl,
    recipients: Recipients,
    plan: list[str],
    rng: random.Random,
    limit: int,
) -> int:
    """What a person does with the `unknown` list: look each row up in Sendoso (here the
    sandbox's record) and settle it as sent, with its id, or as not sent."""
    run_id, ledger = plan[plan.index("--run-id") + 1], plan[plan.index("--ledger") + 1]
    show = ["batch", "show", run_id, "--state", "unknown", "--limit", "0", "--json"]
    listed = runs.cli([*show, "--ledger", ledger])
    unknown = sorted(int(r["row"]) for r in json.loads(listed.stdout)["rows"])
    chosen = sorted(rng.sample(unknown, min(limit, len(unknown))))
    sent = {_email(s): s["id"] for s in control.sends()}
    for number in chosen:
        send_id = sent.get(recipients.emails[number].lower())
        verdict = ["--sent", send_id] if send_id else ["--not-sent"]
        # The harness looked the send up in the sandbox's own record, as a person would in
        # Sendoso: asking the API again under injected faults would only test the faults.
        done = runs.cli(
            ["batch", "settle", run_id, str(number), *verdict, "--unchecked", "--ledger", ledger]
        )
        if done.returncode != 0:
            raise _Stalled(f"settling row {number} failed: {done.stderr[-300:]}")
    return len(chosen)


def _two_workers(
    runs: _Runs,
    control: SandboxControl,
    recipients: Recipients,
    plan: list[str],
    config: ChaosConfig,
    kills: list[Kill],
    rng: random.Random,
) -> bool:
    """Two `batch resume` workers share the run on PostgreSQL. The first kill leaves its
    victim down until the next one, so the survivor must take over its rows alone; after
    each later kill every dead worker starts again. When it can, the second worker runs as
    if on another host (its own PID namespace), so that a dead worker's rows come back by
    their lease running out on the database's clock, not only by a local pid check. Returns
    whether it could."""
    planned = runs.cli(["batch", "run", str(recipients.path), *plan])
    # Not confirmed (no --yes, no terminal): the plan is saved and nothing is sent.
    if planned.returncode != 2 or _posts(control):
        raise _Stalled(f"planning ended with {planned.returncode}: {planned.stderr[-500:]}")
    run_id, ledger = plan[plan.index("--run-id") + 1], plan[plan.index("--ledger") + 1]
    per_worker = max(1, config.concurrency // 2)
    command = [
        "batch", "resume", run_id, "--yes", "--json", "--ledger", ledger,
        "--concurrency", str(per_worker), "--lease-seconds", str(config.lease_seconds),
    ]  # fmt: skip
    elsewhere = (False, can_run_elsewhere())
    workers = [runs.start(command, elsewhere=e) for e in elsewhere]
    for number, kill in enumerate(kills):
        alive = [w for w in workers if w.poll() is None]
        if not alive or not _wait_for_posts(control, alive, kill.after_posts or 0):
            break
        time.sleep(kill.delay)
        victim = rng.choice([w for w in workers if w.poll() is None] or alive)
        runs.kill(victim)
        if number > 0:
            workers = [
                w if w.poll() is None else runs.start(command, elsewhere=e)
                for w, e in zip(workers, elsewhere, strict=True)
            ]
    for worker in workers:
        worker.wait(timeout=_STALL_SECONDS * 3)
    if not any(runs.ending(w) == "finished" for w in workers):
        _finish(runs, command, config)
    return elsewhere[1]


def _finish(runs: _Runs, command: list[str], config: ChaosConfig) -> None:
    """Run to the end: again while the run pauses (the failure brake, a stuck ledger)."""
    for _ in range(_MAX_FINAL_RUNS):
        process = runs.start(command)
        process.wait(timeout=_STALL_SECONDS * 3)
        if runs.ending(process) == "finished":
            return


def _high_usd(send: dict[str, Any]) -> Decimal:
    return sum(
        (Decimal(c["high"]) for c in send.get("cost") or [] if c.get("currency") == "USD"),
        Decimal(0),
    )


def _email(send: dict[str, Any]) -> str:
    body = send.get("request_body") or {}
    return str((body.get("send") or {}).get("email", "")).lower()


def _verify(
    result: ModeResult,
    runs: _Runs,
    control: SandboxControl,
    recipients: Recipients,
    run_id: str,
    ledger: str,
    *,
    trusted: bool,
    replies_cut: bool = True,
) -> None:
    """Gather the three records (server, report, unknown list) and tally them."""
    sends = control.sends()
    report_path = runs.workdir / "report.json"
    report = runs.cli(["batch", "report", run_id, "--out", str(report_path), "--ledger", ledger])
    show = ["batch", "show", run_id, "--state", "unknown", "--limit", "0", "--json"]
    listed = runs.cli([*show, "--ledger", ledger])
    if report.returncode != 0 or listed.returncode != 0:
        result.problems.append(f"report/show failed: {report.stderr[-300:]} {listed.stderr[-300:]}")
        result.lost = recipients.valid
        return
    rows = json.loads(report_path.read_text(encoding="utf-8"))
    unknown_listed = {int(r["row"]) for r in json.loads(listed.stdout)["rows"]}
    tally(result, recipients, sends, rows, unknown_listed, trusted=trusted, replies_cut=replies_cut)
    secrets = [CLIENT_SECRET]
    password = make_url(ledger).password if "://" in ledger else None
    if password:
        secrets.append(str(password))
    leaks = runs.leaks(secrets)
    if leaks:
        result.problems.append(f"secrets in the CLI's output: {leaks}")


def tally(
    result: ModeResult,
    recipients: Recipients,
    sends: Sequence[dict[str, Any]],
    report: Sequence[dict[str, Any]],
    unknown_listed: set[int],
    *,
    trusted: bool,
    replies_cut: bool = True,
) -> None:
    """Fill ``result``'s counts and problems from the server's ``sends``, the run's
    ``report`` (one record per row) and the rows ``batch show`` lists as unknown.
    ``replies_cut``: whether a reply may have been lost on its way (a dropped connection, a
    kill), so that an unknown row's send may never have reached the runner."""
    problems = result.problems
    result.sends = len(sends)
    by_email = Counter(_email(s) for s in sends)
    by_key = Counter(s["idempotency_key"] for s in sends)
    send_ids = {s["id"]: _email(s) for s in sends}
    result.duplicates = sum(1 for n in by_email.values() if n > 1)
    reused = sorted(k for k, n in by_key.items() if n > 1)
    if reused:
        problems.append(f"{len(reused)} idempotency keys sent twice, e.g. {reused[:3]}")
    known = {email.lower() for email in recipients.emails.values()}
    strays = sorted(set(by_email) - known)
    if strays:
        problems.append(f"sends to addresses not in the file: {strays[:3]}")
    spent = sum((_high_usd(s) for s in sends), Decimal(0))
    result.spent_high = f"{spent} USD"
    if result.budget and spent > Decimal(result.budget.split()[0]):
        problems.append(f"the sends' high estimate {spent} USD exceeds --max-spend {result.budget}")

    rows = {int(r["row"]): r for r in report}
    expected = set(recipients.emails)
    if set(rows) != expected or len(rows) != len(report):
        missing, extra = sorted(expected - set(rows)), sorted(set(rows) - expected)
        problems.append(
            f"the ledger does not account for every row once: missing {missing[:5]},"
            f" extra {extra[:5]}, {len(report)} records for {len(expected)} rows"
        )

    lost: list[int] = []
    unknown: list[int] = []
    result.budget_skipped = result.unknown_sent = 0
    for number, email in sorted(recipients.emails.items()):
        row = rows.get(number, {})
        state = row.get("state")
        count = by_email[email.lower()]
        if number in recipients.invalid:
            if state != "skipped" or row.get("reason") != "invalid":
                problems.append(f"invalid row {number} is {state}/{row.get('reason')}")
            if count:
                problems.append(f"invalid row {number} was sent")
            continue
        if state == "skipped" and row.get("reason") == "budget":
            result.budget_skipped += 1
            if count:
                problems.append(f"row {number}, left out by the budget, was sent")
        elif state == "submitted" and count >= 1:
            if send_ids.get(row.get("send_id") or "") != email.lower():
                problems.append(f"row {number}: the ledger's send id is not on the server")
        elif state == "unknown":
            unknown.append(number)
            result.unknown_sent += count > 0
        else:
            lost.append(number)
    result.lost = len(lost)
    result.unknown = len(unknown)
    if lost:
        states = Counter(str(rows.get(n, {}).get("state")) for n in lost)
        problems.append(f"lost rows {lost[:5]}...: states {dict(states)}")
    if set(unknown) != unknown_listed:
        problems.append("`batch show --state unknown` does not list exactly the unknown rows")
    # Every send id the runner received must end up in the ledger (through the send journal
    # when the ledger failed as it came).
    recorded = {str(r.get("send_id")) for r in report if r.get("state") == "submitted"}
    never_received = {recipients.emails[n].lower() for n in unknown} if replies_cut else set[str]()
    missing_ids = sorted(
        s["id"] for s in sends if s["id"] not in recorded and _email(s) not in never_received
    )
    result.unrecorded = len(missing_ids)
    if missing_ids:
        problems.append(
            f"{len(missing_ids)} send ids the server gave out are not in the ledger:"
            f" {missing_ids[:3]}"
        )
    if trusted and unknown:
        problems.append(
            f"{len(unknown)} rows unknown with a deduplicating server (exactly-once broken):"
            f" {unknown[:5]}"
        )


def iter_failures(results: Sequence[ModeResult]) -> Iterator[str]:
    for result in results:
        for problem in result.problems:
            yield f"{result.mode}: {problem}"
