"""CLI start-up as a user meets it: the median wall time of `sendoso --help` and
`sendoso gifts list --help`, each a fresh process of the installed console script, divided by
the median of `python -c pass` on the same interpreter. The three are run in turn, round after
round, so that load on a shared machine falls on all of them alike.

`sendoso … --help` prints a copy of typer's own output when one is current: the first `--help`
of a command after an install or an edit runs typer and keeps what it printed, in the user
cache directory (see `sendoso/cli/_help_cache.py`; tests/cli/test_cli_startup.py checks the
copy against typer for every command). So two figures each: warm (a copy is kept: the usual
case, judged against the target) and cold (an empty cache every run: typer, click and the
pydantic typer builds parameters with are imported and set up), for context; `import typer`
alone is shown too, as the floor of any run that needs typer.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._figures import Figure

TITLE = "6. CLI start-up"
NAME = "startup"
TARGET = 4.0
HELP = ["--help"]
GIFTS_HELP = ["gifts", "list", "--help"]


def _script() -> list[str]:
    """The installed ``sendoso`` console script (it runs with this interpreter)."""
    beside = Path(sys.executable).with_name("sendoso")
    if beside.is_file():
        return [str(beside)]
    found = shutil.which("sendoso")
    if found is None:
        raise RuntimeError("the sendoso console script is not installed (run make setup)")
    return [found]


def _seconds(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(  # noqa: S603 - this interpreter and the installed script, fixed arguments
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        check=True,
        timeout=120,
    )
    return time.perf_counter() - started


def run(quick: bool) -> list[Figure]:
    rounds = 5 if quick else 40
    cold_rounds = 3 if quick else 15
    sendoso = _script()
    python = [sys.executable]
    commands = {
        "pass": [*python, "-c", "pass"],
        "help": [*sendoso, *HELP],
        "gifts": [*sendoso, *GIFTS_HELP],
        "typer": [*python, "-c", "import typer"],
    }
    times: dict[str, list[float]] = {name: [] for name in [*commands, "help cold", "gifts cold"]}
    with tempfile.TemporaryDirectory(prefix="sendoso-bench-") as tmp:
        warm = {**os.environ, "XDG_CACHE_HOME": str(Path(tmp) / "warm")}
        for name in ("help", "gifts"):
            _seconds(commands[name], warm)  # keeps the copy
        kept = list((Path(tmp) / "warm" / "sendoso" / "help").glob("*.txt"))
        for _ in range(rounds):
            for name, command in commands.items():
                times[name].append(_seconds(command, warm))
        for index in range(cold_rounds):
            for name in ("help", "gifts"):
                empty = {**os.environ, "XDG_CACHE_HOME": str(Path(tmp) / f"cold-{index}-{name}")}
                times[f"{name} cold"].append(_seconds(commands[name], empty))
                times["pass"].append(_seconds(commands["pass"], empty))

    median = {name: statistics.median(values) for name, values in times.items()}
    base = median["pass"]
    copies = f"{len(kept)} help cop{'y' if len(kept) == 1 else 'ies'} kept"
    figures: list[Figure] = []
    for name, label, args in (
        ("help", "sendoso --help", HELP),
        ("gifts", "sendoso gifts list --help", GIFTS_HELP),
    ):
        warm_ratio = median[name] / base
        figures.append(
            Figure(
                NAME,
                f"{label} (warm)",
                median[name] * 1000,
                "ms",
                baseline_name="python -c pass",
                baseline=base * 1000,
                ratio=warm_ratio,
                target=f"<= {TARGET:g}x",
                met=warm_ratio <= TARGET,
                detail=f"median of {rounds} runs; {copies}",
            )
        )
        cold = median[f"{name} cold"]
        figures.append(
            Figure(
                NAME,
                f"{label} (cold: first run after an install or edit)",
                cold * 1000,
                "ms",
                baseline_name="python -c pass",
                baseline=base * 1000,
                ratio=cold / base,
                detail=f"median of {cold_rounds} runs, each with an empty cache ({' '.join(args)})",
            )
        )
    figures.append(
        Figure(
            NAME,
            "python -c 'import typer' (floor of any run that needs typer)",
            median["typer"] * 1000,
            "ms",
            baseline_name="python -c pass",
            baseline=base * 1000,
            ratio=median["typer"] / base,
            detail=f"median of {rounds} runs",
        )
    )
    return figures
