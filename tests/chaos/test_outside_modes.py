"""The bounded run of the chaos modes for faults outside the runner: the token endpoint
failing in bursts mid-run (`token5xx`), and prices rising between a plan and its sends
(`prices`). `python -m chaos --mode token5xx --mode prices` runs them at full size."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from chaos._harness import OUTSIDE_MODES

from chaos import ChaosConfig, ModeResult, render_table, run_chaos
from sendoso.sandbox import SandboxControl

SEED = 20261203
ROWS = 160


@pytest.fixture(scope="module")
def results(sandbox_server: Any) -> dict[str, ModeResult]:
    config = ChaosConfig(rows=ROWS, kills=0, seed=SEED, modes=OUTSIDE_MODES)
    try:
        done = run_chaos(config, sandbox_url=sandbox_server.url)
    finally:
        with SandboxControl(sandbox_server.url) as control:
            control.reset()
    print(render_table(done))
    return {result.mode: result for result in done}


@pytest.mark.parametrize("mode", OUTSIDE_MODES)
def test_faults_outside_the_runner_leave_no_duplicate_no_lost_row_no_overspend(
    results: dict[str, ModeResult], mode: str
) -> None:
    result = results[mode]
    assert result.problems == []
    assert result.duplicates == result.lost == result.unknown == 0
    assert Decimal(result.spent_high.split()[0]) <= Decimal(result.budget.split()[0])
    assert result.sends == ROWS - result.invalid - result.budget_skipped


def test_the_token_endpoint_did_fail(results: dict[str, ModeResult]) -> None:
    assert results["token5xx"].faults["5xx"] > 0


def test_risen_prices_leave_more_rows_out_than_the_plan_did(
    results: dict[str, ModeResult],
) -> None:
    # The same file and budget: the plan alone leaves out what token5xx's left out.
    assert results["prices"].budget_skipped > results["token5xx"].budget_skipped
