"""What ``sendoso batch`` and ``sendoso demo`` both show of a run: the plan, the sending with
its progress bar, the outcome and the tracked statuses. Shared here, so that the demo shows a
batch exactly as ``sendoso batch`` does without reaching into that command's module."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sendoso.cli._exit import ExitCode
from sendoso.cli._output import console, error_console, kv_table, plural, print_json, text
from sendoso.cli._words import CLI_WORDING, say

if TYPE_CHECKING:
    from decimal import Decimal

    from rich.table import Table

    from sendoso import AsyncSendoso
    from sendoso.batch import (
        Ledger,
        LedgerRow,
        PlanSummary,
        RefreshResult,
        RowState,
        RunInfo,
        RunResult,
    )

__all__ = [
    "PROGRESS_EVERY",
    "clock",
    "counts_json",
    "counts_table",
    "estimate_text",
    "execute",
    "refresh",
    "row_cells",
    "rows_table",
    "show_plan",
    "show_status",
]


#: Seconds between progress lines when stderr is not a terminal (a log, a CI job), where the
#: progress bar shows nothing until the end.
PROGRESS_EVERY = 5.0


def clock() -> float:
    """What progress lines are timed by (a test puts a clock of its own here)."""
    import time

    return time.monotonic()


#: Refresh failures listed on the terminal; --json lists all that the tracker kept.
_ERRORS_SHOWN = 10


def _progress_lines(json_output: bool) -> Callable[[int, int, str, str], None]:
    """Writes "sending: 120/300 (submitted 118, unknown 2), 9.8/s" to stderr at most every
    :data:`PROGRESS_EVERY` seconds, unless stderr is a terminal (the bar is shown there)."""
    import sys

    if not json_output and error_console().is_terminal:
        return lambda done, total, counts, rate: None
    last = [clock()]

    def line(done: int, total: int, counts: str, rate: str) -> None:
        now = clock()
        if now - last[0] < PROGRESS_EVERY:
            return
        last[0] = now
        details = "".join((f" ({counts})" if counts else "", f", {rate}" if rate else ""))
        sys.stderr.write(f"sending: {done}/{total}{details}\n")
        sys.stderr.flush()

    return line


def execute(
    ledger: Ledger,
    make_client: Callable[[], AsyncSendoso],
    the_run: RunInfo,
    concurrency: int,
    lease_seconds: float,
    json_output: bool,
    *,
    next_steps: bool = True,
) -> int:
    """Send the run's open rows with a progress bar, show the outcome (with the commands to
    take it further, unless ``next_steps`` is false); returns the exit code."""
    import time

    import anyio

    from sendoso.batch import BatchRunner, RowState, check_host, run_interruptibly

    total = ledger.open_rows(the_run.run_id)
    finals = (RowState.SUBMITTED, RowState.REJECTED, RowState.UNKNOWN, RowState.SKIPPED)
    progress = _progress(json_output)
    task = progress.add_task("sending", total=total or 1, counts="", rate="")
    progress_line = _progress_lines(json_output)
    started = time.monotonic()

    async def main() -> RunResult:
        async with make_client() as client:
            check_host(the_run, client.base_url)

            def update() -> None:
                done = sum(runner.moves[s] for s in finals)
                counts = ", ".join(
                    f"{s.value} {runner.moves[s]}" for s in finals if runner.moves[s]
                )
                elapsed = time.monotonic() - started
                rate_now = f"{done / elapsed:.1f}/s" if elapsed > 0 else ""
                progress.update(task, completed=done, counts=counts, rate=rate_now)
                progress_line(done, total, counts, rate_now)

            runner = BatchRunner(
                ledger,
                client,
                the_run.run_id,
                concurrency=concurrency,
                lease_seconds=lease_seconds,
                on_progress=update,
            )
            return await run_interruptibly(runner, on_signal=_on_signal(progress, json_output))

    with progress:
        result = anyio.run(main)
    # From the result: the ledger may be the reason the run ended.
    invalid = result.skipped.get("invalid", 0)
    _show_result(ledger, the_run.run_id, result, invalid, json_output, next_steps=next_steps)
    return _run_exit_code(result, invalid)


def _on_signal(progress: Any, json_output: bool) -> Any:
    def notice(seen: int) -> None:
        if json_output:
            return
        if seen == 1:
            progress.console.print(
                "[yellow]Stopping: finishing the sends in flight. Ctrl-C again to stop at "
                "once (they are then checked on resume).[/yellow]"
            )
        else:
            progress.console.print("[yellow]Stopping now.[/yellow]")

    return notice


def _progress(json_output: bool) -> Any:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TextColumn("[cyan]{task.fields[rate]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[counts]}"),
        console=error_console(),
        disable=json_output,
        transient=False,
    )


def show_plan(
    summary: PlanSummary,
    ledger: Ledger,
    run_id: str,
    spec: Any,
    json_output: bool,
    *,
    dry: bool,
) -> None:
    from sendoso.batch import RowState, report_record

    skipped_rows = ledger.rows(run_id, states=[RowState.SKIPPED])
    if json_output and not dry:
        return  # the final result carries the counts; skipped rows are in the report
    if json_output:
        print_json(
            {
                "dry_run": True,
                "run_id": run_id,
                **_summary_json(summary),
                "skipped_rows": [report_record(r, CLI_WORDING) for r in skipped_rows],
            }
        )
        return
    out = console()
    out.print(_plan_table(summary, run_id, spec, dry=dry))
    shown = 0
    table = rows_table("Skipped rows")
    for row in skipped_rows:
        if shown == 20:
            break
        table.add_row(*row_cells(row))
        shown += 1
    if shown:
        out.print(table)
        skipped = sum(summary.skipped.values())
        if skipped > shown:
            out.print(
                f"... and {plural(skipped - shown, 'more skipped row')}: "
                f"`sendoso batch show {text(run_id)} --state skipped`"
                if not dry
                else f"... and {plural(skipped - shown, 'more skipped row')}."
            )
    if dry:
        out.print("[green]Dry run:[/green] nothing was sent and nothing was recorded.")


def _summary_json(summary: PlanSummary) -> dict[str, Any]:
    return {
        "rows": summary.rows,
        "to_send": summary.planned,
        "skipped": dict(summary.skipped),
        "per_gift": dict(summary.per_gift),
        "estimate": {
            cur: {"low": str(low), "high": str(high)}
            for cur, (low, high) in summary.estimate.items()
        },
    }


def estimate_text(estimate: Mapping[str, Sequence[Decimal]]) -> str:
    from sendoso.models import format_totals

    return format_totals(estimate) or "0"


def _plan_table(summary: PlanSummary, run_id: str, spec: Any, *, dry: bool) -> Table:
    skipped = ", ".join(f"{kind} {n}" for kind, n in sorted(summary.skipped.items()))
    per_gift = ", ".join(f"{gift} \u00d7{n}" for gift, n in summary.per_gift.most_common())
    budget = _budget_text(spec.max_spend)
    rows: dict[str, object] = {
        "Run": run_id,
        "Rows": summary.rows,
        "To send": summary.planned,
        "Skipped": skipped or "0",
        "Per gift": per_gift or "-",
        "Estimated cost": estimate_text(summary.estimate),
        "Budget": budget,
    }
    return kv_table(rows, title="Dry run plan" if dry else "Plan")


def _budget_text(max_spend: Sequence[str]) -> str:
    """Each currency's cap, and what happens to the others: "5000" alone is a USD cap, and
    a row priced in pounds is then skipped, which the plan must not leave unsaid."""
    from sendoso.batch import Budget

    if not max_spend:
        return "none: no cap in any currency (--max-spend)"
    caps = Budget.parse(max_spend).caps
    listed = ", ".join(f"{cap:,.2f} {currency}" for currency, cap in caps.items())
    return f"{listed}; no cap for any other currency: rows priced in one are skipped"


def rows_table(title: str) -> Table:
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    table.add_column("row", justify="right", no_wrap=True)
    table.add_column("recipient", overflow="fold")
    table.add_column("state", no_wrap=True)
    # An id is copied into `batch settle` and the dashboard: folded, it no longer matches.
    table.add_column("send id / status", no_wrap=True)
    table.add_column("reason", overflow="fold")
    return table


def row_cells(row: LedgerRow) -> list[str]:
    state = row.state.value + (f" ({row.skip_kind})" if row.skip_kind else "")
    sent = " ".join(p for p in (row.send_id, row.status) if p)
    return [
        str(row.number),
        text(row.recipient or ""),
        state,
        text(sent),
        text(say(row.error or "")),
    ]


def _run_exit_code(result: RunResult, invalid: int) -> int:
    from sendoso.batch import RowState, RunEnd

    if result.counts.get(RowState.UNKNOWN) or result.moved.get(RowState.UNKNOWN):
        return int(ExitCode.AMBIGUOUS)  # first: they need a person, whatever else happened
    if result.end is RunEnd.STOPPED:
        return int(ExitCode.INTERRUPTED)
    if result.end is not RunEnd.FINISHED or result.counts.get(RowState.REJECTED):
        return int(ExitCode.API_ERROR)
    if invalid:
        return int(ExitCode.USAGE)
    return int(ExitCode.OK)


def _show_result(
    ledger: Ledger,
    run_id: str,
    result: RunResult,
    invalid: int,
    json_output: bool,
    *,
    next_steps: bool,
) -> None:
    from sendoso.batch import RowState, RunEnd

    counts = result.counts
    if json_output:
        print_json(
            {
                "run_id": run_id,
                "end": result.end.value,
                "message": say(result.message),
                "sent_now": result.sent_now,
                "counts": counts_json(counts),
                "invalid_rows": invalid,
                "unrecorded": [
                    {"row": u.number, "send_id": u.send_id, "journalled": u.journalled}
                    for u in result.unrecorded
                ],
            }
        )
        return
    out = console()
    out.print(counts_table(counts, title=f"Run {run_id}"))
    if result.end is RunEnd.FINISHED:
        out.print(f"[green]Finished:[/green] {result.sent_now} sent by this process.")
        if not next_steps:
            return
    else:
        out.print(f"[yellow]Paused:[/yellow] {text(say(result.message))}.")
        out.print(f"Continue with: sendoso batch resume {text(run_id)}")
    for u in result.unrecorded:
        kept = "kept in the send journal" if u.journalled else "settle it with this id"
        out.print(
            f"[red]Sent but not recorded:[/red] row {u.number}: send {text(u.send_id)} ({kept})"
        )
    if counts.get(RowState.UNKNOWN):
        out.print(
            f"[red]{plural(counts[RowState.UNKNOWN], 'row is', 'rows are')} unknown[/red]: "
            "they may have been sent. "
            f"See `sendoso batch show {text(run_id)} --state unknown`, then settle each."
        )
    if invalid:
        out.print(
            f"{plural(invalid, 'invalid row was', 'invalid rows were')} skipped: "
            f"`sendoso batch report {text(run_id)} --out report.csv` lists them."
        )
    out.print(f"Track deliveries: sendoso batch status {text(run_id)}")


def counts_json(counts: dict[RowState, int]) -> dict[str, int]:
    return {state.value: n for state, n in sorted(counts.items())}


def counts_table(counts: dict[RowState, int], *, title: str) -> Table:
    from sendoso.batch import RowState

    return kv_table({state.value: counts.get(state, 0) for state in RowState}, title=title)


def refresh(
    ledger: Ledger,
    the_run: RunInfo,
    make_client: Callable[[], AsyncSendoso],
    concurrency: int,
) -> RefreshResult:
    import anyio

    from sendoso.batch import check_host, refresh_statuses

    async def main() -> RefreshResult:
        async with make_client() as client:
            check_host(the_run, client.base_url)
            return await refresh_statuses(ledger, client, the_run.run_id, concurrency=concurrency)

    return anyio.run(main)


def _spend_json(spend: Mapping[RowState, Mapping[str, tuple[Decimal, Decimal]]]) -> dict[str, Any]:
    return {
        state.value: {cur: {"low": str(low), "high": str(high)} for cur, (low, high) in t.items()}
        for state, t in spend.items()
    }


def show_status(ledger: Ledger, run_id: str, result: RefreshResult, json_output: bool) -> None:
    from sendoso.batch import RowState

    statuses = ledger.status_counts(run_id)
    spend = ledger.spend(run_id)
    planned = ledger.spend(run_id, as_planned=True)
    if json_output:
        print_json(
            {
                "run_id": run_id,
                "asked": result.asked,
                "changed": result.changed,
                "failed": result.failed,
                "errors": result.errors,
                "statuses": statuses,
                "counts": counts_json(ledger.counts(run_id)),
                "estimated_spend": _spend_json(spend),
                # Rows sent after their price moved: what the plan said they would cost.
                "estimated_spend_as_planned": _spend_json(planned),
            }
        )
        return
    rows: dict[str, object] = {
        "Asked": f"{plural(result.asked, 'send')} ({result.changed} changed)",
        **dict(sorted(statuses.items())),
        "Estimated spend (sent)": estimate_text(spend.get(RowState.SUBMITTED, {})),
    }
    if planned.get(RowState.SUBMITTED, {}) != spend.get(RowState.SUBMITTED, {}):
        rows["Estimated spend (sent, as planned)"] = estimate_text(planned[RowState.SUBMITTED])
    if spend.get(RowState.UNKNOWN):
        rows["May have been spent (unknown)"] = estimate_text(spend[RowState.UNKNOWN])
    console().print(kv_table(rows, title=f"Run {run_id}: statuses"))
    if result.failed:
        error_console().print(f"[red]{plural(result.failed, 'send')} could not be refreshed:[/red]")
    shown = result.errors[:_ERRORS_SHOWN]
    for error in shown:
        error_console().print(f"  - {text(error)}")
    if result.failed > len(shown):
        error_console().print(
            f"  … and {result.failed - len(shown)} more (--json lists up to {len(result.errors)})"
        )
    if result.not_found:
        error_console().print(
            f"{plural(result.not_found, 'send')} unknown to the API: a sandbox started without "
            "--db forgets its sends when it stops"
        )
