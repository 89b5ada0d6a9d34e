"""The results table, on the terminal (rich) and in ``benchmarks/RESULTS.md``."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from rich.console import Console
from rich.table import Table

from benchmarks._figures import Figure

COLUMNS = ("benchmark", "figure", "value", "baseline", "ratio", "target", "met")


@dataclass
class Outcome:
    """One benchmark module's run: its figures, or the error that stopped it."""

    name: str
    title: str
    method: str
    seconds: float
    figures: list[Figure] = field(default_factory=list)
    error: str | None = None


def number(value: float | None) -> str:
    if value is None:
        return ""
    size = abs(value)
    if size == 0 or size >= 100 or value == int(value):
        return f"{value:,.0f}"
    if size >= 10:
        return f"{value:,.1f}"
    if size >= 0.01:
        return f"{value:.2f}"
    return f"{value:.2g}"


def with_unit(value: float | None, unit: str) -> str:
    text = number(value)
    return f"{text} {unit}".strip() if text else ""


def met_mark(met: bool | None) -> str:
    return {True: "yes", False: "NO", None: "-"}[met]


def cells(figure: Figure) -> list[str]:
    baseline = with_unit(figure.baseline, figure.unit)
    if figure.baseline_name and baseline:
        baseline = f"{baseline} ({figure.baseline_name})"
    ratio = f"{figure.ratio:.2f}x" if figure.ratio is not None else ""
    return [
        figure.benchmark,
        figure.name,
        with_unit(figure.value, figure.unit),
        baseline,
        ratio,
        figure.target,
        met_mark(figure.met),
    ]


def rows(outcomes: Sequence[Outcome]) -> list[list[str]]:
    table: list[list[str]] = []
    for outcome in outcomes:
        if outcome.error is not None:
            table.append([outcome.title, "CRASHED", outcome.error.splitlines()[-1], "", "", "", ""])
        table.extend(cells(figure) for figure in outcome.figures)
    return table


def print_table(outcomes: Sequence[Outcome], console: Console) -> None:
    table = Table(title="sendoso benchmarks", show_lines=False)
    for column in COLUMNS:
        table.add_column(column, overflow="fold", justify="right" if column == "ratio" else "left")
    for line in rows(outcomes):
        style = "red" if line[6] == "NO" or line[1] == "CRASHED" else None
        table.add_row(*line, style=style)
    console.print(table)


def method_text(doc: str | None) -> str:
    return inspect.cleandoc(doc) if doc else ""


def _markdown_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(
    outcomes: Sequence[Outcome],
    *,
    machine: dict[str, str],
    command: str,
    started: datetime,
    seconds: float,
    quick: bool,
) -> str:
    lines = [
        "# Benchmark results",
        "",
        "Written by `make bench` (`python -m benchmarks`); every figure is measured beside its",
        "baseline in the same run, and targets are judged on ratios or counts, since absolute",
        "times drift on shared machines.",
        "",
    ]
    if quick:
        lines += [
            "**Quick smoke run (`--quick`): sizes are tiny, the figures only show that every",
            "benchmark works.**",
            "",
        ]
    lines += [
        "## Machine and run",
        "",
        *(f"- {key}: {value}" for key, value in machine.items()),
        f"- command: `{command}`",
        f"- date (UTC): {started.strftime('%Y-%m-%d %H:%M:%S')}",
        f"- wall time of the whole run: {seconds:.0f} s",
        "",
        "## Figures",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "| " + " | ".join("---" for _ in COLUMNS) + " |",
    ]
    lines += ["| " + " | ".join(_markdown_cell(c) for c in line) + " |" for line in rows(outcomes)]
    lines += ["", "## Method", ""]
    for outcome in outcomes:
        lines += [f"### {outcome.title} (`bench_{outcome.name}`, {outcome.seconds:.0f} s)", ""]
        if outcome.method:
            lines += [outcome.method, ""]
        details = [f for f in outcome.figures if f.detail]
        if details:
            lines += [f"- {f.name}: {f.detail}" for f in details]
            lines.append("")
        if outcome.error is not None:
            lines += ["It crashed:", "", "```", outcome.error.rstrip(), "```", ""]
    return "\n".join(lines).rstrip() + "\n"
