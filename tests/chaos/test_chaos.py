"""The bounded chaos run inside `make test`: every mode, a few hundred rows, a few SIGKILLs.

`make chaos` runs the same harness at full size (2,000 rows, 10 kills per mode). The seed is
fixed here; `python -m chaos --rows 240 --kills 2 --settle 3 --seed 20261126` replays it
(as far as timing allows) with a sandbox of its own.
"""

from __future__ import annotations

import random
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from chaos._harness import Kill, can_run_elsewhere, kill_schedule
from chaos._recipients import write_recipients

from chaos import LEDGER_MODES, MODES, ChaosConfig, ModeResult, render_table, run_chaos
from sendoso.sandbox import SandboxControl

SEED = 20261126
ROWS = 240
KILLS = 2


def _postgres_selected(request: pytest.FixtureRequest) -> bool:
    return any(
        item.path == request.path and _mode(item) == "postgres" for item in request.session.items
    )


def _mode(item: pytest.Item) -> object:
    """The ``mode`` parameter of a parametrized test (only those have a ``callspec``)."""
    callspec = getattr(item, "callspec", None)
    return None if callspec is None else callspec.params.get("mode")


@pytest.fixture(scope="module")
def results(request: pytest.FixtureRequest, sandbox_server: Any) -> dict[str, ModeResult]:
    """All modes in one go; the postgres mode only when its test is selected and a server
    is at hand (the fixture skips, or fails under SENDOSO_REQUIRE_POSTGRES=1)."""
    modes: tuple[str, ...] = ("trusted", "untrusted")
    postgres_url = None
    unavailable = "not selected"
    if _postgres_selected(request):
        try:
            postgres_url = request.getfixturevalue("postgres_server_url")
        except pytest.skip.Exception as exc:
            unavailable = str(exc)
        else:
            modes = MODES
    config = ChaosConfig(rows=ROWS, kills=KILLS, seed=SEED, modes=modes, settle=3)
    try:
        done = run_chaos(config, sandbox_url=sandbox_server.url, postgres_url=postgres_url)
    finally:
        # The harness leaves its faults on; the next test must find a quiet sandbox.
        with SandboxControl(sandbox_server.url) as control:
            control.reset()
    print(render_table(done))
    if postgres_url is None:
        done.append(ModeResult("postgres", SEED, skipped=unavailable))
    return {result.mode: result for result in done}


@pytest.mark.parametrize("mode", MODES)
def test_killed_runs_leave_no_duplicate_and_no_lost_row(
    results: dict[str, ModeResult], mode: str
) -> None:
    result = results[mode]
    if result.skipped is not None:
        pytest.skip(result.skipped)
    assert result.problems == []
    assert result.kills == KILLS
    assert result.duplicates == 0
    assert result.lost == 0
    assert result.invalid == ROWS // 40
    # The budget (95% of the high estimate) leaves the last rows out at planning; they are
    # never sent, and what was sent stays within it.
    assert result.budget_skipped > 0
    assert Decimal(result.spent_high.split()[0]) <= Decimal(result.budget.split()[0])
    valid = ROWS - result.invalid - result.budget_skipped
    if mode == "untrusted":
        # At most once: every valid row was sent once or is listed as unknown, and the
        # unknown ones that did go out are exactly the surplus of sends.
        assert result.unknown > 0
        assert result.settled == 3
        assert result.sends == valid - result.unknown + result.unknown_sent
    else:
        # Exactly once: one send per valid row, none unknown.
        assert result.unknown == 0
        assert result.sends == valid
    if mode == "postgres":
        assert result.worker_elsewhere == can_run_elsewhere()
    assert result.faults["5xx"] > 0
    assert result.faults["dropped"] > 0


def test_every_fault_kind_was_injected(results: dict[str, ModeResult]) -> None:
    ran = [r for r in results.values() if r.skipped is None]
    assert sum(r.faults["429"] for r in ran) > 0
    # Three-second tokens: every mode needed several.
    assert all(r.faults["tokens"] > 1 for r in ran)


def test_a_seed_replays_the_same_file_and_kill_points(tmp_path: Path) -> None:
    def schedule(seed: int, folder: str) -> tuple[list[Kill], frozenset[int], str]:
        rng = random.Random(f"{seed}:trusted")
        (tmp_path / folder).mkdir()
        recipients = write_recipients(tmp_path / folder / "crm.csv", 500, rng)
        kills = kill_schedule(rng, recipients.valid, 10)
        return kills, recipients.invalid, recipients.path.read_text(encoding="utf-8")

    first, again, other = schedule(7, "a"), schedule(7, "b"), schedule(8, "c")
    assert first == again
    assert first != other
    kills, invalid, _ = first
    points: list[int] = []
    for kill in kills:
        assert kill.after_posts is not None
        points.append(kill.after_posts)
    assert len(points) == len(set(points)) == 10
    assert points == sorted(points)
    assert all(p is not None and 1 <= p <= (500 - len(invalid)) * 0.9 for p in points)


@pytest.fixture(scope="module")
def ledger_results(sandbox_server: Any) -> dict[str, ModeResult]:
    """The ledger modes, small: a third of the rows sent, then the ledger fails with a full
    batch of sends in flight."""
    config = ChaosConfig(rows=120, kills=0, seed=SEED, modes=LEDGER_MODES)
    try:
        done = run_chaos(config, sandbox_url=sandbox_server.url)
    finally:
        with SandboxControl(sandbox_server.url) as control:
            control.reset()
    print(render_table(done))
    return {result.mode: result for result in done}


@pytest.mark.parametrize("mode", LEDGER_MODES)
def test_a_ledger_failing_mid_run_loses_no_send_id(
    ledger_results: dict[str, ModeResult], mode: str
) -> None:
    result = ledger_results[mode]
    if result.skipped is not None:
        pytest.skip(result.skipped)
    assert result.problems == []
    assert result.endings.get("ledger") == 1
    # The sends in flight when it failed were reported, then recorded from the journal.
    assert result.reported_unrecorded > 0
    assert result.unrecorded == 0
    assert result.duplicates == 0
    assert result.lost == 0
    assert result.unknown == 0
    assert result.sends == result.rows - result.invalid - result.budget_skipped
