"""``sendoso batch``: run a file of recipients through the ledger, resume, track, report.

A thin skin over :mod:`sendoso.batch`: every rule (planning, budget, dedupe, the state
machine, recovery) is a library call; this module parses flags and renders results.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from sendoso.cli._exit import ExitCode, guard
from sendoso.cli._ledger import LedgerOption, open_ledger
from sendoso.cli._output import (
    JsonFlag,
    confirm_or_exit,
    console,
    error_console,
    kv_table,
    parse_pairs,
    print_json,
    stdin_is_interactive,
    text,
    usage_error,
)
from sendoso.cli._state import State, state_of

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

__all__ = ["batch_app"]

batch_app = typer.Typer(
    help="Send to a file of recipients (CSV or JSON Lines) through a durable ledger: "
    "exactly once per row, resumable, within a budget.",
    no_args_is_help=True,
    rich_markup_mode=None,
    epilog="""\b
Exit codes of run/resume:
  0    every row sent, or skipped by a rule you set (duplicate, cool-down, budget)
  1    the API rejected rows, or the run stopped on an API problem (resumable)
  2    bad input: some rows are invalid (skipped, listed), or nothing could start
  3    some rows are `unknown`: they may have been sent; settle them (`batch settle`)
  130  interrupted (resumable) or the confirmation was declined""",
)

_INPUT = "Input"
_GIFT = "Gift and message"
_SAFETY = "Safety"
_SPEED = "Throughput"

ConcurrencyOption = Annotated[
    int,
    typer.Option(
        "--concurrency", min=1, max=256, help="Sends in flight at once.", rich_help_panel=_SPEED
    ),
]
SendConcurrencyOption = Annotated[
    int | None,
    typer.Option(
        "--concurrency",
        min=1,
        max=256,
        help="Sends in flight at once (default: 8, or enough for --rate at 250 ms per "
        "request, at most 64).",
        rich_help_panel=_SPEED,
    ),
]
RateOption = Annotated[
    float | None,
    typer.Option(
        "--rate",
        min=0.01,
        help="Requests per second (default: the host's known limit, 10/s for production, "
        "lowered automatically after a 429).",
        rich_help_panel=_SPEED,
    ),
]
LeaseOption = Annotated[
    float,
    typer.Option(
        "--lease-seconds",
        min=1.0,
        hidden=True,
        help="How long a claimed row stays reserved for a worker that stops answering.",
    ),
]


@batch_app.command("run")
def run(
    ctx: typer.Context,
    file: Annotated[
        Path,
        typer.Argument(help="CSV (any common dialect, Excel or Google Sheets export) or JSONL."),
    ],
    run_id: Annotated[
        str | None,
        typer.Option(
            "--run-id",
            help="Name of the run. The same command with the same run id resumes it.",
            metavar="NAME",
        ),
    ] = None,
    mapping: Annotated[
        list[str] | None,
        typer.Option(
            "--map",
            help="Map a field to a column, e.g. --map email='Work Email'. Common CRM headers "
            "are mapped automatically.",
            metavar="FIELD=COLUMN",
            rich_help_panel=_INPUT,
        ),
    ] = None,
    input_format: Annotated[
        str,
        typer.Option("--format", help="auto, csv or jsonl.", rich_help_panel=_INPUT),
    ] = "auto",
    encoding: Annotated[
        str | None,
        typer.Option(help="File encoding (default: UTF-8, or UTF-16 by its BOM).", hidden=True),
    ] = None,
    delimiter: Annotated[
        str | None,
        typer.Option(help="CSV delimiter (default: detected).", rich_help_panel=_INPUT),
    ] = None,
    gift_id: Annotated[
        str | None,
        typer.Option(
            help="Send this gift to every row (else a gift column).", rich_help_panel=_GIFT
        ),
    ] = None,
    variant_id: Annotated[
        str | None, typer.Option(help="Variant for --gift-id.", rich_help_panel=_GIFT)
    ] = None,
    message_template: Annotated[
        str | None,
        typer.Option(
            help='Message for every row, e.g. "Hi {first_name}, thanks!". Placeholders are '
            "fields or column names (lower case, _ for spaces).",
            rich_help_panel=_GIFT,
        ),
    ] = None,
    metadata: Annotated[
        list[str] | None,
        typer.Option(
            help="Added to every send, e.g. campaign_id=Q4.",
            metavar="KEY=VALUE",
            rich_help_panel=_GIFT,
        ),
    ] = None,
    max_spend: Annotated[
        list[str] | None,
        typer.Option(
            help="Budget: never exceeded (high end of each estimate). '5000' is USD; "
            "'4000 GBP' for another currency; repeat for several.",
            metavar="AMOUNT",
            rich_help_panel=_SAFETY,
        ),
    ] = None,
    cooldown: Annotated[
        float | None,
        typer.Option(
            help="Skip recipients sent anything in the last DAYS by any run in this ledger.",
            metavar="DAYS",
            rich_help_panel=_SAFETY,
        ),
    ] = None,
    allow_resend: Annotated[
        bool,
        typer.Option(
            "--allow-resend",
            help="Send even to recipients an earlier run in this ledger already sent the same "
            "gift (by default they are skipped as duplicates).",
            rich_help_panel=_SAFETY,
        ),
    ] = False,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="Plan and show the totals; send nothing.", rich_help_panel=_SAFETY
        ),
    ] = False,
    yes: Annotated[
        bool,
        typer.Option("--yes", "-y", help="Do not ask for confirmation.", rich_help_panel=_SAFETY),
    ] = False,
    concurrency: SendConcurrencyOption = None,
    rate: RateOption = None,
    lease_seconds: LeaseOption = 60.0,
    ledger_url: LedgerOption = None,
    json_output: JsonFlag = False,
) -> None:
    """Validate every row, show the plan, then send each valid row exactly once.

    Invalid rows are skipped with their reasons and never sent. If the run stops (Ctrl-C, a
    crash, an API problem), the same command or `sendoso batch resume RUN_ID` continues it.
    """
    from sendoso.batch import BatchSpec, prepare_run
    from sendoso.batch import dry_run as plan_dry

    if input_format not in ("auto", "csv", "jsonl"):
        raise usage_error("--format must be auto, csv or jsonl", json_output=json_output)
    try:
        spec = BatchSpec(
            path=str(file),
            run_id=run_id,
            mapping=parse_pairs(mapping or [], "--map", strip_values=True),
            format=_format(input_format),
            encoding=encoding,
            delimiter=delimiter,
            gift_id=gift_id,
            variant_id=variant_id,
            message_template=message_template,
            metadata=parse_pairs(metadata or [], "--metadata", strip_values=True),
            max_spend=list(max_spend or []),
            cooldown_days=cooldown,
            allow_resend=allow_resend,
        )
    except ValueError as exc:
        raise usage_error(str(exc), json_output=json_output) from None
    cli_state = state_of(ctx)
    with guard(json_output=json_output):
        with cli_state.client() as client:
            catalog = client.gifts.list()
            base_url = client.base_url
        with open_ledger(ledger_url) as ledger:
            if dry_run:
                summary, scratch, planned_id = plan_dry(
                    spec, catalog, history=ledger, base_url=base_url
                )
                with scratch:
                    _show_plan(summary, scratch, planned_id, spec, json_output, dry=True)
                raise typer.Exit(_plan_exit_code(summary))
            prepared = prepare_run(ledger, spec, catalog, base_url=base_url)
            the_run = prepared.run
            if prepared.summary is not None:
                _show_plan(prepared.summary, ledger, the_run.run_id, spec, json_output, dry=False)
                if not prepared.summary.planned:
                    _finish_empty(ledger, the_run, json_output)
            elif not json_output:
                console().print(f"Resuming run [bold]{text(the_run.run_id)}[/bold].")
            if the_run.confirmed_at is None:
                # Asked until answered: a plan saved at a declined prompt is not consent.
                if not yes:
                    _confirm(ledger, the_run.run_id, json_output=json_output)
                ledger.confirm(the_run.run_id)
            code = _execute(
                ledger,
                partial(_sending_client, cli_state, rate),
                the_run,
                _workers(concurrency, rate),
                lease_seconds,
                json_output,
            )
    raise typer.Exit(code)


def _format(value: str) -> Literal["auto", "csv", "jsonl"]:
    if value == "csv":
        return "csv"
    if value == "jsonl":
        return "jsonl"
    return "auto"


@batch_app.command("resume")
def resume(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="The run to continue (see `batch runs`).")],
    concurrency: SendConcurrencyOption = None,
    rate: RateOption = None,
    lease_seconds: LeaseOption = 60.0,
    ledger_url: LedgerOption = None,
    json_output: JsonFlag = False,
) -> None:
    """Continue a run: send its rows that are not done yet, each exactly once.

    Several `resume` processes may share one run on a PostgreSQL ledger; they split the rows.
    """
    cli_state = state_of(ctx)
    with guard(json_output=json_output), open_ledger(ledger_url) as ledger:
        from sendoso.batch import check_batch_run

        the_run = ledger.require_run(run_id)
        check_batch_run(the_run)
        ledger.confirm(run_id)  # naming the run to resume is the go-ahead
        if not json_output:
            console().print(f"Resuming run [bold]{text(the_run.run_id)}[/bold].")
        code = _execute(
            ledger,
            partial(_sending_client, cli_state, rate),
            the_run,
            _workers(concurrency, rate),
            lease_seconds,
            json_output,
        )
    raise typer.Exit(code)


def _workers(concurrency: int | None, rate: float | None) -> int:
    """Sends in flight: what the user asked for, else the engine's default for ``rate``."""
    from sendoso.batch import default_concurrency

    return concurrency if concurrency is not None else default_concurrency(rate)


def _sending_client(cli_state: State, rate: float | None) -> AsyncSendoso:
    # A 429 puts the row back in the ledger's queue instead of holding it "submitting"
    # for the whole Retry-After: killed meanwhile, it was certainly never sent.
    return cli_state.async_client(rate_limit=rate, wait_on_rate_limited_sends=False)


def _execute(
    ledger: Ledger,
    make_client: Callable[[], AsyncSendoso],
    the_run: RunInfo,
    concurrency: int,
    lease_seconds: float,
    json_output: bool,
) -> int:
    """Send the run's open rows with a progress bar, show the outcome; returns the exit
    code."""
    import time

    import anyio

    from sendoso.batch import BatchRunner, RowState, check_host, run_interruptibly

    total = ledger.open_rows(the_run.run_id)
    finals = (RowState.SUBMITTED, RowState.REJECTED, RowState.UNKNOWN, RowState.SKIPPED)
    progress = _progress(json_output)
    task = progress.add_task("sending", total=total or 1, counts="", rate="")
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
    invalid = ledger.skip_counts(the_run.run_id).get("invalid", 0)
    _show_result(ledger, the_run.run_id, result, invalid, json_output)
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


def _show_plan(
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
                "skipped_rows": [report_record(r) for r in skipped_rows],
            }
        )
        return
    out = console()
    out.print(_plan_table(summary, run_id, spec, dry=dry))
    shown = 0
    table = _rows_table("Skipped rows")
    for row in skipped_rows:
        if shown == 20:
            break
        table.add_row(*_row_cells(row))
        shown += 1
    if shown:
        out.print(table)
        skipped = sum(summary.skipped.values())
        if skipped > shown:
            out.print(
                f"... and {skipped - shown} more skipped rows: "
                f"`sendoso batch show {text(run_id)} --state skipped`"
                if not dry
                else f"... and {skipped - shown} more skipped rows."
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


def _estimate_text(estimate: Mapping[str, Sequence[Decimal]]) -> str:
    from sendoso.models import format_totals

    return format_totals(estimate) or "0"


def _plan_table(summary: PlanSummary, run_id: str, spec: Any, *, dry: bool) -> Table:
    skipped = ", ".join(f"{kind} {n}" for kind, n in sorted(summary.skipped.items()))
    per_gift = ", ".join(f"{gift} \u00d7{n}" for gift, n in summary.per_gift.most_common())
    budget = ", ".join(spec.max_spend) if spec.max_spend else "none (--max-spend)"
    rows: dict[str, object] = {
        "Run": run_id,
        "Rows": summary.rows,
        "To send": summary.planned,
        "Skipped": skipped or "0",
        "Per gift": per_gift or "-",
        "Estimated cost": _estimate_text(summary.estimate),
        "Budget": budget,
    }
    return kv_table(rows, title="Dry run plan" if dry else "Plan")


def _rows_table(title: str) -> Table:
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    table.add_column("row", justify="right", no_wrap=True)
    table.add_column("recipient", overflow="fold")
    table.add_column("state", no_wrap=True)
    table.add_column("send id / status", overflow="fold")
    table.add_column("reason", overflow="fold")
    return table


def _row_cells(row: LedgerRow) -> list[str]:
    state = row.state.value + (f" ({row.skip_kind})" if row.skip_kind else "")
    sent = " ".join(p for p in (row.send_id, row.status) if p)
    return [str(row.number), text(row.recipient or ""), state, text(sent), text(row.error or "")]


def _plan_exit_code(summary: PlanSummary) -> int:
    return int(ExitCode.USAGE) if summary.skipped.get("invalid") else int(ExitCode.OK)


def _confirm(ledger: Ledger, run_id: str, *, json_output: bool) -> None:
    from sendoso.batch import RowState

    later = f"nothing was sent; the plan is saved: `sendoso batch resume {run_id}` sends it"
    planned = ledger.counts(run_id).get(RowState.PLANNED, 0)
    estimate = _estimate_text(ledger.spend(run_id).get(RowState.PLANNED, {}))
    confirm_or_exit(
        f"Send {planned} gifts for about {estimate}?",
        interactive=stdin_is_interactive(),
        not_interactive=f"confirmation needed but stdin is not a terminal; pass --yes. ({later})",
        cancelled=later,
        json_output=json_output,
    )


def _finish_empty(ledger: Ledger, the_run: RunInfo, json_output: bool) -> None:
    counts = ledger.counts(the_run.run_id)
    if json_output:
        print_json({"run_id": the_run.run_id, "end": "finished", "counts": _counts_json(counts)})
    else:
        error_console().print("[yellow]No row can be sent; nothing was sent.[/yellow]")
    invalid = ledger.skip_counts(the_run.run_id).get("invalid", 0)
    raise typer.Exit(int(ExitCode.USAGE) if invalid else int(ExitCode.OK))


def _counts_json(counts: dict[RowState, int]) -> dict[str, int]:
    return {state.value: n for state, n in sorted(counts.items())}


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
    ledger: Ledger, run_id: str, result: RunResult, invalid: int, json_output: bool
) -> None:
    from sendoso.batch import RowState, RunEnd

    counts = result.counts
    if json_output:
        print_json(
            {
                "run_id": run_id,
                "end": result.end.value,
                "message": result.message,
                "sent_now": result.sent_now,
                "counts": _counts_json(counts),
                "invalid_rows": invalid,
            }
        )
        return
    out = console()
    out.print(_counts_table(counts, title=f"Run {run_id}"))
    if result.end is RunEnd.FINISHED:
        out.print(f"[green]Finished:[/green] {result.sent_now} sent by this process.")
    else:
        out.print(f"[yellow]Paused:[/yellow] {text(result.message)}.")
        out.print(f"Continue with: sendoso batch resume {text(run_id)}")
    if counts.get(RowState.UNKNOWN):
        out.print(
            f"[red]{counts[RowState.UNKNOWN]} rows are unknown[/red]: they may have been sent. "
            f"See `sendoso batch show {text(run_id)} --state unknown`, then settle each."
        )
    if invalid:
        out.print(
            f"{invalid} invalid rows were skipped: "
            f"`sendoso batch report {text(run_id)} --out report.csv` lists them."
        )
    out.print(f"Track deliveries: sendoso batch status {text(run_id)}")


def _counts_table(counts: dict[RowState, int], *, title: str) -> Table:
    from sendoso.batch import RowState

    return kv_table({state.value: counts.get(state, 0) for state in RowState}, title=title)


@batch_app.command("runs")
def runs(ledger_url: LedgerOption = None, json_output: JsonFlag = False) -> None:
    """List the runs in the ledger, newest first."""
    from rich.table import Table

    from sendoso.batch import RowState

    with guard(json_output=json_output), open_ledger(ledger_url) as ledger:
        listing = ledger.runs()
    if json_output:
        print_json(
            [
                {
                    "run_id": r.run_id,
                    "source": r.source,
                    "created_at": r.created_at,
                    "finished_at": r.finished_at,
                    "rows": r.rows_total,
                    "counts": _counts_json(c),
                    "note": r.note,
                }
                for r, c in listing
            ]
        )
        return
    if not listing:
        console().print("No runs yet: `sendoso batch run FILE` starts one.")
        return
    table = Table(title="Runs", title_justify="left")
    for column in (
        "run",
        "source",
        "created",
        "rows",
        "open",
        "sent",
        "unknown",
        "skipped",
        "note",
    ):
        table.add_column(column, overflow="fold")
    for r, c in listing:
        table.add_row(
            text(r.run_id),
            text(r.source),
            r.created_at.isoformat(timespec="seconds") if r.created_at else "",
            str(r.rows_total),
            str(c.get(RowState.PLANNED, 0) + c.get(RowState.SUBMITTING, 0)),
            str(c.get(RowState.SUBMITTED, 0)),
            str(c.get(RowState.UNKNOWN, 0)),
            str(c.get(RowState.SKIPPED, 0)),
            text(r.note or ("finished" if r.finished_at else "")),
        )
    console().print(table)


@batch_app.command("show")
def show(
    run_id: Annotated[str, typer.Argument(help="The run (see `batch runs`).")],
    state: Annotated[
        str | None,
        typer.Option(help="Only rows in this state (planned, submitted, unknown, skipped...)."),
    ] = None,
    limit: Annotated[int, typer.Option(min=0, help="Rows to list (0: all).")] = 50,
    ledger_url: LedgerOption = None,
    json_output: JsonFlag = False,
) -> None:
    """Show a run: its options, counts per state and per status, and its rows."""
    from sendoso.batch import RowState, report_record

    states = None
    if state is not None:
        try:
            states = [RowState(state)]
        except ValueError:
            names = ", ".join(s.value for s in RowState)
            raise usage_error(f"--state must be one of {names}", json_output=json_output) from None
    with guard(json_output=json_output), open_ledger(ledger_url) as ledger:
        the_run = ledger.require_run(run_id)
        counts = ledger.counts(run_id)
        statuses = ledger.status_counts(run_id)
        rows: list[LedgerRow] = []
        for row in ledger.rows(run_id, states=states):
            if limit and len(rows) >= limit:
                break
            rows.append(row)
    if json_output:
        print_json(
            {
                "run_id": the_run.run_id,
                "base_url": the_run.base_url,
                "input": the_run.input_path,
                "options": the_run.options,
                "created_at": the_run.created_at,
                "finished_at": the_run.finished_at,
                "note": the_run.note,
                "counts": _counts_json(counts),
                "statuses": statuses,
                "rows": [report_record(r) for r in rows],
            }
        )
        return
    out = console()
    info = {
        "Run": the_run.run_id,
        "Host": the_run.base_url,
        "Input": the_run.input_path,
        "Created": the_run.created_at.isoformat(timespec="seconds") if the_run.created_at else "",
        "State": the_run.note or ("finished" if the_run.finished_at else "open"),
        **{state.value: counts.get(state, 0) for state in RowState},
        "Statuses": ", ".join(f"{k} {v}" for k, v in sorted(statuses.items())) or "-",
    }
    out.print(kv_table(info, title=f"Run {the_run.run_id}"))
    table = _rows_table("Rows")
    for row in rows:
        table.add_row(*_row_cells(row))
    out.print(table)


@batch_app.command("settle")
def settle(
    run_id: Annotated[str, typer.Argument(help="The run.")],
    row: Annotated[int, typer.Argument(help="The row number, as `batch show` lists it.")],
    sent: Annotated[
        str | None,
        typer.Option(
            "--sent", help="It was sent: the send id found in Sendoso.", metavar="SEND_ID"
        ),
    ] = None,
    not_sent: Annotated[
        bool,
        typer.Option("--not-sent", help="It was not sent: the next resume sends it."),
    ] = False,
    ledger_url: LedgerOption = None,
    json_output: JsonFlag = False,
) -> None:
    """Settle a row left `unknown`: record what Sendoso shows for it."""
    from sendoso.batch import RowState, settle_row

    if (sent is None) == (not not_sent):
        raise usage_error(
            "give exactly one of --sent SEND_ID or --not-sent", json_output=json_output
        )
    if sent is not None and not sent.strip():
        raise usage_error("--sent needs the send id", json_output=json_output)
    with guard(json_output=json_output), open_ledger(ledger_url) as ledger:
        target = settle_row(ledger, run_id, row, send_id=sent.strip() if sent else None)
    if json_output:
        print_json({"run_id": run_id, "row": row, "state": target.value, "send_id": sent})
        return
    if target is RowState.SUBMITTED:
        console().print(f"Row {row} recorded as sent ({text(sent)}).")
    else:
        console().print(
            f"Row {row} recorded as not sent; `sendoso batch resume {text(run_id)}` will send it."
        )


@batch_app.command("status")
def status(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="The run.")],
    watch: Annotated[
        bool, typer.Option("--watch", help="Keep refreshing until every send is final.")
    ] = False,
    interval: Annotated[
        float, typer.Option(min=1.0, help="Seconds between refreshes with --watch.")
    ] = 60.0,
    concurrency: ConcurrencyOption = 8,
    rate: RateOption = None,
    ledger_url: LedgerOption = None,
    json_output: JsonFlag = False,
) -> None:
    """Refresh the status of the run's sends that are not final yet, and show the totals."""
    import time

    cli_state = state_of(ctx)
    with guard(json_output=json_output), open_ledger(ledger_url) as ledger:
        the_run = ledger.require_run(run_id)
        make_client = partial(cli_state.async_client, rate_limit=rate)
        try:
            while True:
                result = _refresh(ledger, the_run, make_client, concurrency)
                _show_status(ledger, run_id, result, json_output)
                if not watch or result.asked == 0:
                    break
                time.sleep(interval)
        except KeyboardInterrupt:
            raise typer.Exit(int(ExitCode.INTERRUPTED)) from None
    if result.failed:
        raise typer.Exit(int(ExitCode.API_ERROR))


def _refresh(
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


def _show_status(ledger: Ledger, run_id: str, result: RefreshResult, json_output: bool) -> None:
    from sendoso.batch import RowState

    statuses = ledger.status_counts(run_id)
    spend = ledger.spend(run_id)
    if json_output:
        print_json(
            {
                "run_id": run_id,
                "asked": result.asked,
                "changed": result.changed,
                "failed": result.failed,
                "errors": result.errors,
                "statuses": statuses,
                "counts": _counts_json(ledger.counts(run_id)),
                "estimated_spend": {
                    state.value: {
                        cur: {"low": str(low), "high": str(high)}
                        for cur, (low, high) in totals.items()
                    }
                    for state, totals in spend.items()
                },
            }
        )
        return
    rows: dict[str, object] = {
        "Asked": f"{result.asked} sends ({result.changed} changed)",
        **dict(sorted(statuses.items())),
        "Estimated spend (sent)": _estimate_text(spend.get(RowState.SUBMITTED, {})),
    }
    if spend.get(RowState.UNKNOWN):
        rows["May have been spent (unknown)"] = _estimate_text(spend[RowState.UNKNOWN])
    console().print(kv_table(rows, title=f"Run {run_id}: statuses"))
    if result.failed:
        error_console().print(f"[red]{result.failed} sends could not be refreshed:[/red]")
    for error in result.errors[:10]:
        error_console().print(f"  - {text(error)}")


@batch_app.command("report")
def report(
    run_id: Annotated[str, typer.Argument(help="The run.")],
    out: Annotated[Path, typer.Option("--out", help="Report file: .csv or .json.")],
    ledger_url: LedgerOption = None,
    json_output: JsonFlag = False,
) -> None:
    """Write one line per input row: row, recipient, state, send id, status, error, estimate."""
    from sendoso.batch import write_report

    with guard(json_output=json_output), open_ledger(ledger_url) as ledger:
        count = write_report(ledger, run_id, out)
    if json_output:
        print_json({"run_id": run_id, "out": str(out), "rows": count})
    else:
        console().print(f"Wrote {count} rows to {text(out)}.")
