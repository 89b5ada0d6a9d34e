"""``sendoso batch``: run a file of recipients through the ledger, resume, track, report.

A thin skin over :mod:`sendoso.batch`: every rule (planning, budget, dedupe, the state
machine, recovery) is a library call; this module parses flags and renders results.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from sendoso.cli._batch_views import (
    counts_json,
    estimate_text,
    execute,
    refresh,
    row_cells,
    rows_table,
    show_plan,
    show_status,
)
from sendoso.cli._exit import ExitCode, guard
from sendoso.cli._ledger import LedgerOption, open_ledger
from sendoso.cli._output import (
    JsonFlag,
    confirm_or_exit,
    console,
    error_console,
    kv_table,
    parse_pairs,
    plural,
    print_json,
    stdin_is_interactive,
    text,
    usage_error,
)
from sendoso.cli._state import State, state_of
from sendoso.cli._words import CLI_WORDING, say_error

if TYPE_CHECKING:
    from sendoso import AsyncSendoso
    from sendoso.batch import (
        Ledger,
        LedgerRow,
        PlanSummary,
        RunInfo,
        Settlement,
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
    with guard(json_output=json_output, sending=True):
        with cli_state.client() as client:
            catalog = client.gifts.list()
            base_url = client.base_url
        with open_ledger(ledger_url) as ledger:
            if dry_run:
                summary, scratch, planned_id = plan_dry(
                    spec, catalog, history=ledger, base_url=base_url
                )
                with scratch:
                    show_plan(summary, scratch, planned_id, spec, json_output, dry=True)
                raise typer.Exit(_plan_exit_code(summary))
            prepared = prepare_run(ledger, spec, catalog, base_url=base_url)
            the_run = prepared.run
            if prepared.summary is not None:
                show_plan(prepared.summary, ledger, the_run.run_id, spec, json_output, dry=False)
                if not prepared.summary.planned:
                    _finish_empty(ledger, the_run, json_output)
            elif not json_output:
                console().print(f"Resuming run [bold]{text(the_run.run_id)}[/bold].")
            if the_run.confirmed_at is None:
                # Asked until answered: a plan saved at a declined prompt is not consent.
                if not yes:
                    _confirm(ledger, the_run.run_id, json_output=json_output)
                ledger.confirm(the_run.run_id)
            code = execute(
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
    yes: Annotated[
        bool,
        typer.Option(
            "--yes",
            "-y",
            help="Do not ask for confirmation (asked only for a plan never confirmed).",
            rich_help_panel=_SAFETY,
        ),
    ] = False,
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
    with guard(json_output=json_output, sending=True), open_ledger(ledger_url) as ledger:
        from sendoso.batch import check_batch_run

        the_run = ledger.require_run(run_id)
        check_batch_run(the_run)
        if not json_output:
            console().print(f"Resuming run [bold]{text(the_run.run_id)}[/bold].")
        if the_run.confirmed_at is None:
            # A plan saved at a declined (or unanswerable) prompt: naming it is no consent.
            if not yes:
                _confirm(ledger, run_id, json_output=json_output)
            ledger.confirm(run_id)
        code = execute(
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


def _plan_exit_code(summary: PlanSummary) -> int:
    return int(ExitCode.USAGE) if summary.skipped.get("invalid") else int(ExitCode.OK)


def _confirm(ledger: Ledger, run_id: str, *, json_output: bool) -> None:
    from sendoso.batch import RowState

    later = f"nothing was sent; the plan is saved: `sendoso batch resume {run_id}` sends it"
    planned = ledger.counts(run_id).get(RowState.PLANNED, 0)
    estimate = estimate_text(ledger.spend(run_id).get(RowState.PLANNED, {}))
    confirm_or_exit(
        f"Send {plural(planned, 'gift')} for about {estimate}?",
        interactive=stdin_is_interactive(),
        not_interactive=f"confirmation needed but stdin is not a terminal; pass --yes. ({later})",
        cancelled=later,
        json_output=json_output,
    )


def _finish_empty(ledger: Ledger, the_run: RunInfo, json_output: bool) -> None:
    counts = ledger.counts(the_run.run_id)
    if json_output:
        print_json({"run_id": the_run.run_id, "end": "finished", "counts": counts_json(counts)})
    else:
        error_console().print("[yellow]No row can be sent; nothing was sent.[/yellow]")
    invalid = ledger.skip_counts(the_run.run_id).get("invalid", 0)
    raise typer.Exit(int(ExitCode.USAGE) if invalid else int(ExitCode.OK))


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
                    "counts": counts_json(c),
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
                "counts": counts_json(counts),
                "statuses": statuses,
                "rows": [report_record(r, CLI_WORDING) for r in rows],
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
    table = rows_table("Rows")
    for row in rows:
        table.add_row(*row_cells(row))
    out.print(table)


@batch_app.command("settle")
def settle(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="The run.")],
    row: Annotated[int, typer.Argument(help="The row number, as `batch show` lists it.")],
    sent: Annotated[
        str | None,
        typer.Option(
            "--sent",
            help="It was sent: the send id found in Sendoso (checked with the API first).",
            metavar="SEND_ID",
        ),
    ] = None,
    not_sent: Annotated[
        bool,
        typer.Option("--not-sent", help="It was not sent: the next resume sends it."),
    ] = False,
    correct: Annotated[
        bool,
        typer.Option(
            "--correct",
            help="Replace a wrong settlement: the row is recorded as sent, but by another "
            "send (--sent) or by none (--not-sent, only if the API has no such send).",
        ),
    ] = False,
    unchecked: Annotated[
        bool,
        typer.Option(
            "--unchecked",
            help="Record it without asking the API (when it cannot be reached from here).",
        ),
    ] = False,
    yes: Annotated[
        bool,
        typer.Option(
            "--yes", "-y", help="Do not ask (a correction, or a send that does not match)."
        ),
    ] = False,
    ledger_url: LedgerOption = None,
    json_output: JsonFlag = False,
) -> None:
    """Settle a row left `unknown`: record what Sendoso shows for it.

    `--sent SEND_ID` is looked up with the API first: an id it does not know is refused, and
    a send to another recipient or of another gift is shown and asked about. `--correct`
    replaces a settlement that was wrong.
    """
    from sendoso.batch import RowState, plan_settlement, settle_row

    if (sent is None) == (not not_sent):
        raise usage_error(
            "give exactly one of --sent SEND_ID or --not-sent", json_output=json_output
        )
    if sent is not None and not sent.strip():
        raise usage_error("--sent needs the send id", json_output=json_output)
    send_id = sent.strip() if sent else None
    found: dict[str, object] | None = None
    with guard(json_output=json_output), open_ledger(ledger_url) as ledger:
        plan = plan_settlement(ledger, run_id, row, send_id=send_id, correct=correct)
        found = _check_settlement(
            state_of(ctx), ledger, plan, unchecked=unchecked, yes=yes, json_output=json_output
        )
        target = settle_row(ledger, run_id, row, send_id=send_id, correct=correct)
    if json_output:
        record: dict[str, object] = {
            "run_id": run_id,
            "row": row,
            "state": target.value,
            "send_id": send_id,
        }
        if found is not None:
            record["found"] = found
        if correct:
            record["replaced_send_id"] = plan.row.send_id
        print_json(record)
        return
    if target is RowState.SUBMITTED:
        console().print(f"Row {row} recorded as sent ({text(send_id)}).")
    else:
        console().print(
            f"Row {row} recorded as not sent; `sendoso batch resume {text(run_id)}` will send it."
        )


def _check_settlement(
    cli_state: State,
    ledger: Ledger,
    plan: Settlement,
    *,
    unchecked: bool,
    yes: bool,
    json_output: bool,
) -> dict[str, object] | None:
    """Ask the API about the send a settlement names (or, correcting to "not sent", about
    the send recorded): refuse what it contradicts, show what it found, ask about a send that
    does not match the row. Returns what was found, for --json. ``unchecked``: the person
    asked not to ask the API (it cannot be reached from here)."""
    from sendoso.errors import APIConnectionError, ConfigurationError

    if plan.send_id is None and not plan.correcting:
        return None  # "not sent" of an unknown row: nothing the API could confirm by id
    if unchecked:
        if plan.correcting:
            _confirm_correction(plan, plan.send_id or "not sent", yes, json_output)
        return None
    try:
        return _ask_the_api(cli_state, ledger, plan, yes=yes, json_output=json_output)
    except (ConfigurationError, APIConnectionError) as exc:
        what = plan.send_id or plan.row.send_id
        raise usage_error(
            f"cannot check {what} with the API ({say_error(exc)}); nothing was recorded. "
            "Pass --unchecked to record it without asking",
            json_output=json_output,
        ) from None


def _ask_the_api(
    cli_state: State, ledger: Ledger, plan: Settlement, *, yes: bool, json_output: bool
) -> dict[str, object] | None:
    from sendoso.batch import check_host, send_mismatches
    from sendoso.errors import NotFoundError

    the_run = ledger.require_run(plan.row.run_id)
    number = plan.row.number
    with cli_state.client() as client:
        check_host(the_run, client.base_url)
        if plan.send_id is None:
            if plan.correcting and plan.row.send_id:
                try:
                    recorded = client.sends.retrieve(plan.row.send_id)
                except NotFoundError:
                    recorded = None
                if recorded is not None:
                    raise usage_error(
                        f"{plan.row.send_id} exists at {client.base_url} "
                        f"(status {recorded.status}): row {number} was sent; nothing changed",
                        json_output=json_output,
                    )
                _confirm_correction(plan, "not sent (the next resume sends it)", yes, json_output)
            return None
        try:
            send = client.sends.retrieve(plan.send_id)
        except NotFoundError:
            raise usage_error(
                f"no send {plan.send_id} at {client.base_url}; row {number} was not settled "
                "(copy the send id from Sendoso, or settle it --not-sent)",
                json_output=json_output,
            ) from None
    who = " ".join(p for p in (send.first_name, send.last_name) if p)
    found: dict[str, object] = {
        "id": send.id,
        "status": send.status,
        "email": send.email,
        "gift_id": send.gift_id,
        "created_at": send.created_at,
    }
    problems = send_mismatches(plan.row, send)
    if not json_output:
        created = send.created_at.isoformat(timespec="seconds") if send.created_at else "?"
        console().print(
            f"Found {text(send.id)}: {text(who)} <{text(send.email or '?')}>, "
            f"gift {text(send.gift_id or '?')}, status {text(send.status)}, created {created}."
        )
    if problems:
        found["mismatches"] = problems
        listed = "; ".join(problems)
        if not yes:
            confirm_or_exit(
                f"{send.id} does not match row {number} ({listed}). Record it anyway?",
                interactive=stdin_is_interactive(),
                not_interactive=f"{send.id} does not match row {number}: {listed}; "
                "nothing recorded (pass --yes to record it anyway)",
                cancelled=f"nothing recorded for row {number}",
                json_output=json_output,
            )
    if plan.correcting:
        _confirm_correction(plan, f"sent by {send.id}", yes, json_output)
    return found


def _confirm_correction(plan: Settlement, becomes: str, yes: bool, json_output: bool) -> None:
    if yes:
        return
    number = plan.row.number
    confirm_or_exit(
        f"Row {number} is recorded as sent by {plan.row.send_id}; record it as {becomes}?",
        interactive=stdin_is_interactive(),
        not_interactive=f"correcting row {number} needs confirmation but stdin is not a "
        "terminal; pass --yes. (nothing changed)",
        cancelled=f"row {number} is unchanged",
        json_output=json_output,
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
                result = refresh(ledger, the_run, make_client, concurrency)
                show_status(ledger, run_id, result, json_output)
                if not watch or result.asked == 0:
                    break
                time.sleep(interval)
        except KeyboardInterrupt:
            raise typer.Exit(int(ExitCode.INTERRUPTED)) from None
    if result.failed:
        raise typer.Exit(int(ExitCode.API_ERROR))


@batch_app.command("report")
def report(
    run_id: Annotated[str, typer.Argument(help="The run.")],
    out: Annotated[
        str,
        typer.Option(
            "--out",
            help="Report file: .csv or .json; '-' for stdout (CSV, or JSON with --json).",
            metavar="FILE",
        ),
    ],
    ledger_url: LedgerOption = None,
    json_output: JsonFlag = False,
) -> None:
    """Write one line per input row: row, recipient, state, send id, status, error, estimate."""
    import sys

    from sendoso.batch import write_report, write_report_to

    if out == "-":
        # The report is the output: no summary line after it (--json: the report itself).
        with guard(json_output=json_output), open_ledger(ledger_url) as ledger:
            write_report_to(
                ledger,
                run_id,
                sys.stdout,
                format="json" if json_output else "csv",
                wording=CLI_WORDING,
            )
        return
    with guard(json_output=json_output), open_ledger(ledger_url) as ledger:
        count = write_report(ledger, run_id, out, wording=CLI_WORDING)
    if json_output:
        print_json({"run_id": run_id, "out": str(out), "rows": count})
    else:
        console().print(f"Wrote {plural(count, 'row')} to {text(out)}.")
