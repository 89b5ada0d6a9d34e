"""``python -m benchmarks [--only NAME]... [--quick] [--no-write]``: run every
``benchmarks/bench_*.py``, print one table, write ``benchmarks/RESULTS.md``.

Exits 1 if a benchmark crashed; a missed target is reported in the table, not in the exit code.
"""

from __future__ import annotations

import argparse
import importlib
import math
import pkgutil
import re
import shlex
import sys
import time
import traceback
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

from rich.console import Console

from benchmarks import _machine, _report
from benchmarks._figures import Figure

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "RESULTS.md"
PREFIX = "bench_"


def discover() -> list[str]:
    """The benchmark names (``bench_<name>.py``), in file-name order."""
    names = [
        info.name.removeprefix(PREFIX)
        for info in pkgutil.iter_modules([str(HERE)])
        if info.name.startswith(PREFIX)
    ]
    return sorted(names)


def load(name: str) -> ModuleType:
    return importlib.import_module(f"benchmarks.{PREFIX}{name}")


def in_issue_order(names: Sequence[str]) -> list[str]:
    """By the number their TITLE starts with (the issue's numbering), then by name; one that
    cannot even be imported goes last, to crash in its turn."""

    def key(name: str) -> tuple[float, str]:
        try:
            title = str(getattr(load(name), "TITLE", ""))
        except Exception:
            return math.inf, name
        number = re.match(r"\s*(\d+)", title)
        return (int(number.group(1)) if number else math.inf), name

    return sorted(names, key=key)


def run_one(name: str, *, quick: bool, console: Console) -> _report.Outcome:
    started = time.perf_counter()
    title = name
    method = ""
    try:
        module = load(name)
        title = str(getattr(module, "TITLE", name))
        method = _report.method_text(module.__doc__)
        console.print(f"[bold]{title}[/bold] ({PREFIX}{name}) ...")
        figures = module.run(quick)
        if not isinstance(figures, list) or not all(isinstance(f, Figure) for f in figures):
            raise TypeError(f"{PREFIX}{name}.run() must return a list of Figure")
    except Exception:
        error = traceback.format_exc()
        console.print(f"[red]{PREFIX}{name} crashed:[/red]\n{error}")
        return _report.Outcome(name, title, method, time.perf_counter() - started, error=error)
    seconds = time.perf_counter() - started
    for figure in figures:
        cells = _report.cells(figure)
        console.print(f"  {cells[1]}: {cells[2]}  baseline {cells[3] or '-'}  met {cells[6]}")
    return _report.Outcome(name, title, method, seconds, figures=figures)


def parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Run the benchmarks, print one table, write benchmarks/RESULTS.md.",
    )
    parser.add_argument(
        "--only",
        action="append",
        metavar="NAME",
        default=[],
        help="run only this benchmark (the NAME in bench_NAME.py); repeatable",
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    parser.add_argument("--no-write", action="store_true", help="do not write RESULTS.md")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    console = Console()
    if not console.is_terminal:
        console = Console(width=160)
    available = discover()
    unknown = [name for name in args.only if name not in available]
    if unknown:
        console.print(
            f"[red]no such benchmark: {', '.join(unknown)}[/red] (available: "
            f"{', '.join(available)})"
        )
        return 2
    chosen = in_issue_order([name for name in available if not args.only or name in args.only])
    machine = _machine.describe()
    started = datetime.now(UTC)
    clock = time.perf_counter()
    outcomes = [run_one(name, quick=args.quick, console=console) for name in chosen]
    seconds = time.perf_counter() - clock
    _report.print_table(outcomes, console)
    if not args.no_write:
        given = sys.argv[1:] if argv is None else list(argv)
        RESULTS.write_text(
            _report.markdown(
                outcomes,
                machine=machine,
                command=shlex.join(["python", "-m", "benchmarks", *given]),
                started=started,
                seconds=seconds,
                quick=args.quick,
            ),
            encoding="utf-8",
        )
        console.print(f"wrote {RESULTS}")
    crashed = [o.name for o in outcomes if o.error is not None]
    if crashed:
        console.print(f"[red]crashed: {', '.join(crashed)}[/red]")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
