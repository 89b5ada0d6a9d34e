"""Every benchmark runs at tiny sizes (``run(quick=True)``) and returns well-formed figures whose
counts hold; the runner prints, writes and reports crashes. Nothing here judges a time."""

from __future__ import annotations

import math
import types
from datetime import UTC, datetime
from pathlib import Path

import pytest
from benchmarks._figures import Figure

from benchmarks import __main__ as runner
from benchmarks import _report

BENCHMARKS = runner.discover()


def _by_name(figures: list[Figure]) -> dict[str, Figure]:
    return {figure.name: figure for figure in figures}


def _check_invariants(name: str, figures: list[Figure]) -> None:
    """What each benchmark's counts must be whatever the machine's speed."""
    named = _by_name(figures)
    if name == "token":
        assert [f.value for f in figures if f.target == "exactly 1"] == [1, 1]
        assert all(f.met for f in figures if f.target == "exactly 1")
        naive = next(f for f in figures if f.baseline_name == "lazy token, no lock")
        assert naive.baseline is not None
        assert naive.baseline > 1
    elif name == "tracking":
        refresh = next(f for f in figures if f.name.startswith("requests to refresh"))
        assert refresh.value == 10  # the 10 physical gifts of 100 rows, not yet final
        assert refresh.baseline == 100
        assert refresh.met
    elif name == "throughput":
        assert named["429s received with --rate 200"].value == 0
        assert named["sends/s with --rate 200"].value > 0
        assert named["sends/s without --rate (adaptive)"].value > 0
    elif name == "ledger":
        assert named["SQLite transactions/s (1 thread)"].value > 0
        assert any(name.startswith("PostgreSQL transactions/s") for name in named)
    elif name == "overhead":
        assert {f.name for f in figures} == {
            "CPU per sends.create (sync)",
            "CPU per sends.create (async)",
        }
    elif name == "sandbox":
        assert named["POST /api/v3/sends served per second"].value > 0


def test_the_runner_finds_every_benchmark_of_the_issue() -> None:
    mine = {"throughput", "overhead", "ledger", "token", "sandbox", "tracking"}
    assert mine <= set(BENCHMARKS)


@pytest.mark.parametrize("name", BENCHMARKS)
def test_each_benchmark_runs_at_tiny_sizes(name: str) -> None:
    module = runner.load(name)
    assert isinstance(module.TITLE, str)
    assert module.TITLE

    figures = module.run(True)

    assert isinstance(figures, list)
    assert figures
    for figure in figures:
        assert isinstance(figure, Figure)
        assert figure.benchmark
        assert figure.name
        assert math.isfinite(figure.value)
        assert figure.value >= 0
        if figure.baseline is not None:
            assert math.isfinite(figure.baseline)
    _check_invariants(name, figures)


def test_a_crashing_benchmark_is_reported_and_fails_the_run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(quick: bool) -> list[Figure]:
        raise RuntimeError("boom")

    def fine(quick: bool) -> list[Figure]:
        return [Figure("fine", "a count", 3, "items", target="== 3", met=True)]

    modules = {
        "broken": types.SimpleNamespace(TITLE="Broken", run=broken, __doc__="Breaks."),
        "fine": types.SimpleNamespace(TITLE="Fine", run=fine, __doc__="Counts."),
    }
    monkeypatch.setattr(runner, "discover", lambda: sorted(modules))
    monkeypatch.setattr(runner, "load", modules.__getitem__)

    assert runner.main(["--no-write"]) == 1
    out = capsys.readouterr().out
    assert "CRASHED" in out
    assert "boom" in out
    assert "a count" in out

    assert runner.main(["--no-write", "--only", "fine"]) == 0
    assert runner.main(["--no-write", "--only", "missing"]) == 2


def test_a_missed_target_does_not_fail_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    def slow(quick: bool) -> list[Figure]:
        return [Figure("slow", "rate", 1, "x", baseline=2, ratio=0.5, target=">= 1", met=False)]

    module = types.SimpleNamespace(TITLE="Slow", run=slow, __doc__=None)
    monkeypatch.setattr(runner, "discover", lambda: ["slow"])
    monkeypatch.setattr(runner, "load", lambda name: module)

    assert runner.main(["--no-write"]) == 0


def test_results_markdown_names_the_machine_the_command_and_every_figure() -> None:
    figure = Figure(
        "token", "token requests", 1, "requests", baseline_name="naive", baseline=5, ratio=0.2
    )
    outcomes = [
        _report.Outcome("token", "5. Token requests", "How it is measured.", 1.0, [figure]),
        _report.Outcome("broken", "Broken", "", 0.1, error="Traceback...\nRuntimeError: boom"),
    ]
    text = _report.markdown(
        outcomes,
        machine={"cores": "2", "cpu": "Some CPU"},
        command="python -m benchmarks",
        started=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        seconds=12.0,
        quick=False,
    )

    assert "- cores: 2" in text
    assert "`python -m benchmarks`" in text
    assert "2026-01-02 03:04:05" in text
    assert "| token | token requests | 1 requests | 5 requests (naive) | 0.20x |" in text
    assert "How it is measured." in text
    assert "RuntimeError: boom" in text


def test_the_results_file_is_written_next_to_the_benchmarks(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def fine(quick: bool) -> list[Figure]:
        return [Figure("fine", "a count", 3, "items")]

    module = types.SimpleNamespace(TITLE="Fine", run=fine, __doc__="Counts.")
    monkeypatch.setattr(runner, "discover", lambda: ["fine"])
    monkeypatch.setattr(runner, "load", lambda name: module)
    monkeypatch.setattr(runner, "RESULTS", tmp_path / "RESULTS.md")

    assert runner.main(["--quick"]) == 0
    written = (tmp_path / "RESULTS.md").read_text()
    assert "Quick smoke run" in written
    assert "`python -m benchmarks --quick`" in written
    assert "| fine | a count | 3 items |" in written
