"""Everything the CLI shows: rich tables for people, JSON for scripts, errors for both.

``--json`` means stdout carries exactly one JSON document, errors included; without it, results
go to stdout as tables and errors to stderr as a short message. Every error text is put in the
CLI's words (:mod:`sendoso.cli._words`: flags and commands for the library's parameters and
steps), then passes through :func:`sendoso.cli._redact.redact`.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Annotated, Any

import typer

from sendoso.cli._redact import redact
from sendoso.cli._words import say, say_error

if TYPE_CHECKING:
    from datetime import datetime
    from decimal import Decimal

    from rich.console import Console
    from rich.table import Table

    from sendoso.errors import FieldProblem, SendosoError
    from sendoso.models import Gift, Send

__all__ = [
    "JsonFlag",
    "console",
    "error_console",
    "gifts_table",
    "money",
    "on_path",
    "plural",
    "print_json",
    "print_problems",
    "program",
    "render_error",
    "send_table",
    "ships_to",
    "text",
]


def plural(count: int, word: str, many: str | None = None) -> str:
    """``1 send``, ``2 sends`` (``many`` for an irregular plural)."""
    return f"{count} {word if count == 1 else (many or word + 's')}"


def program() -> str:
    """How to type this command here, for the commands a hint suggests: ``sendoso`` when
    that name on PATH is this program, else the path it was started by (``make demo`` runs
    ``.venv/bin/sendoso``, which a fresh shell does not find as ``sendoso``)."""
    import os
    import shutil
    from pathlib import Path

    started = Path(sys.argv[0])
    if started.name != "sendoso" or not started.is_file():
        return "sendoso"  # not the console script (python -m, a test runner): no better guess
    found = shutil.which("sendoso")
    if found is not None and Path(found).resolve() == started.resolve():
        return "sendoso"
    relative = os.path.relpath(started.resolve(), Path.cwd())
    if relative.startswith(".."):
        return str(started.resolve())
    return relative if os.sep in relative else os.path.join(".", relative)


def on_path() -> bool:
    """Whether ``sendoso`` as a bare word runs this program."""
    return program() == "sendoso"


JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON only (errors too).")]

#: Width for tables when stdout is not a terminal and COLUMNS is unset (rich would use 80).
PIPE_WIDTH = 120


def console() -> Console:
    import os

    stdout = _stdout_console()
    out = stdout(highlight=False)
    if not out.is_terminal and not os.environ.get("COLUMNS"):
        out = stdout(highlight=False, width=PIPE_WIDTH)
    return out


def _stdout_console() -> type[Console]:
    """rich's Console, except that a reader who stops reading is no error of ours."""
    from rich.console import Console

    class StdoutConsole(Console):
        def on_broken_pipe(self) -> None:
            # rich exits 1 here; `sendoso batch show RUN | head -1` got what it wanted.
            from sendoso.cli._globals import reader_gone

            reader_gone()

    return StdoutConsole


def error_console() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def text(value: object) -> str:
    """``value`` as rich markup that shows literally (a gift named "[b]" stays "[b]"), with
    characters that would hide or reorder it escaped."""
    from rich.markup import escape

    from sendoso._display import visible

    return escape(visible(str(value)))


def print_json(data: Any) -> None:
    import json

    typer.echo(json.dumps(data, indent=2, ensure_ascii=False, default=_json_default))


def _json_default(value: object) -> str:
    from datetime import datetime
    from decimal import Decimal

    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def money(amount: Decimal, currency: str) -> str:
    return f"{amount:.2f} {currency}"


def ships_to(countries: Sequence[str] | None, *, limit: int = 4) -> str:
    if countries is None:
        return "anywhere"
    if not countries:
        return "nowhere"
    if len(countries) <= limit:
        return ", ".join(countries)
    return ", ".join(countries[: limit - 1]) + f" +{len(countries) - limit + 1}"


#: Below this many columns, the catalog table stacks name under id and ships-to under category.
WIDE_TABLE = 110


def gifts_table(gifts: Iterable[Gift], *, width: int = PIPE_WIDTH) -> Table:
    """The catalog as a table that fits ``width`` columns without breaking an id."""
    from rich import box
    from rich.table import Table

    from sendoso.pricing import estimate_cost

    gifts = list(gifts)
    wide = width >= WIDE_TABLE
    id_width = max((len(g.id) for g in gifts), default=2)
    table = Table(
        title="Gift catalog",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    table.add_column(
        "ID" if wide else "ID / name",
        no_wrap=wide,
        min_width=id_width,
        overflow="fold",
        style="cyan" if wide else None,
    )
    if wide:
        table.add_column("Name", ratio=1, min_width=10)
    table.add_column("Category", no_wrap=wide, max_width=None if wide else 10)
    table.add_column("Price", justify="right", no_wrap=True)
    if wide:
        table.add_column("Ships to", overflow="fold")
    table.add_column("Var.", justify="right", no_wrap=True)
    table.add_column("Est. cost", justify="right", no_wrap=True)
    for gift in gifts:
        price = text(money(gift.price, gift.currency))
        variants = str(len(gift.variants)) if gift.variants else "-"
        cost = text(str(estimate_cost(gift)))
        countries = text(ships_to(gift.ships_to, limit=3))
        if wide:
            table.add_row(
                text(gift.id),
                text(gift.name),
                text(gift.category),
                price,
                countries,
                variants,
                cost,
            )
        else:
            table.add_row(
                f"[cyan]{text(gift.id)}[/cyan]\n{text(gift.name)}",
                f"{text(gift.category)}\n[dim]{countries}[/dim]",
                price,
                variants,
                cost,
            )
    return table


def send_table(send: Send, *, title: str = "Send") -> Table:
    from rich.table import Table

    table = Table(title=title, title_justify="left", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    rows: list[tuple[str, object]] = [
        ("Send ID", send.id),
        ("Status", send.status),
        ("Reason", send.status_reason),
        ("Gift", send.gift_id),
        ("Variant", send.variant_id),
        ("Recipient", " ".join(p for p in (send.first_name, send.last_name) if p) or None),
        ("Email", send.email),
        ("Tracking", send.tracking_number),
        ("Created", _when(send.created_at)),
        ("Updated", _when(send.updated_at)),
        ("Idempotency key", send.idempotency_key),
    ]
    for name, value in rows:
        if value is not None and value != "":
            table.add_row(name, text(value))
    if send.metadata:
        table.add_row("Metadata", text(", ".join(f"{k}={v}" for k, v in send.metadata.items())))
    return table


def _when(moment: datetime | None) -> str | None:
    from datetime import UTC

    if moment is None:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def print_problems(
    problems: Sequence[FieldProblem], *, heading: str, out: Console | None = None
) -> None:
    """Every problem, one per line, under ``heading`` (on stderr unless ``out`` is given)."""
    out = out or error_console()
    out.print(f"[red]{text(redact(heading))}[/red]")
    for problem in problems:
        out.print(f"  - {text(redact(say(problem.message)))}")


def _problem_json(problem: FieldProblem) -> dict[str, str]:
    return {
        "field": problem.field,
        "code": problem.code,
        "message": redact(say(problem.message)),
    }


def error_json(exc: SendosoError) -> dict[str, Any]:
    """The ``{"error": {...}}`` document for ``exc``; never a secret."""
    from sendoso.cli._exit import exit_code_for
    from sendoso.errors import (
        AmbiguousSendError,
        APIError,
        APIStatusError,
        ResponseParseError,
        ValidationError,
    )

    details: list[FieldProblem] = []
    status: int | None = None
    request_id: str | None = None
    api_type: str | None = None
    message = say_error(exc)
    if isinstance(exc, ValidationError):
        details = exc.problems
        message = _problem_summary(len(details))
    if isinstance(exc, APIError):
        message = exc.message
        request_id = exc.request_id
    if isinstance(exc, APIStatusError):
        details, status, api_type = exc.details, exc.status_code, exc.error_type
    if isinstance(exc, ResponseParseError):
        status = exc.status_code
    error: dict[str, Any] = {
        "type": type(exc).__name__,
        "message": redact(message),
        "details": [_problem_json(p) for p in details],
        "status": status,
        "request_id": request_id,
        "exit_code": int(exit_code_for(exc)),
    }
    if api_type:
        error["api_type"] = api_type
    key = getattr(exc, "idempotency_key", None)
    if isinstance(exc, AmbiguousSendError | ResponseParseError) and key:
        error["idempotency_key"] = key
    if isinstance(exc, AmbiguousSendError):
        error["retry_safe"] = exc.retry_safe
    return {"error": error}


def _problem_summary(count: int) -> str:
    noun = "problem" if count == 1 else "problems"
    return f"the request has {count} {noun}; nothing was sent"


def render_error(exc: SendosoError, *, json_output: bool, sending: bool = True) -> None:
    """Show ``exc``: as JSON on stdout with ``--json``, else a short message on stderr.
    ``sending``: the command sends (a command that only reads never says "not sent")."""
    if json_output:
        print_json(error_json(exc))
        return
    from sendoso.errors import (
        AmbiguousSendError,
        APIStatusError,
        AuthenticationError,
        ConfigurationError,
        ResponseParseError,
        ValidationError,
    )

    out = error_console()
    if isinstance(exc, ValidationError):
        count = len(exc.problems)
        noun = "problem" if count == 1 else "problems"
        heading = (
            f"Not sent: the request has {count} {noun}:"
            if sending
            else f"Invalid input ({count} {noun}):"
        )
        print_problems(exc.problems, heading=heading)
        return
    if isinstance(exc, ConfigurationError):
        out.print(f"[red]Configuration error:[/red] {text(redact(say_error(exc)))}")
        return
    if isinstance(exc, AmbiguousSendError):
        out.print(f"[red bold]Outcome unknown:[/red bold] {text(redact(exc.message))}")
        out.print(f"Idempotency key: [bold]{text(exc.idempotency_key)}[/bold]")
        if exc.retry_safe:
            out.print(
                "This server deduplicates: re-run the same command with "
                f"--idempotency-key {text(exc.idempotency_key)} to retry safely."
            )
        else:
            out.print(
                "Do not re-run it as it is: this server is not known to deduplicate, so a "
                "second run may send a second gift. Check the Sendoso dashboard first."
            )
        return
    if isinstance(exc, APIStatusError):
        out.print(f"[red]API error {exc.status_code}:[/red] {text(redact(exc.message))}")
        for detail in exc.details:
            if detail.message == exc.message:
                continue  # the API's summary is its only detail: said once is enough
            out.print(f"  - {text(detail.field)}: {text(redact(detail.message))}")
        if exc.request_id:
            out.print(f"  (request id {text(exc.request_id)})")
        if isinstance(exc, AuthenticationError):
            out.print(_what_to_check())
        return
    if isinstance(exc, ResponseParseError) and exc.idempotency_key:
        out.print(f"[red]Unreadable response:[/red] {text(redact(exc.message))}")
        out.print(f"Idempotency key: [bold]{text(exc.idempotency_key)}[/bold]")
        out.print("Do not send it again: the API accepted it. Find it in the Sendoso dashboard.")
        return
    out.print(f"[red]Error:[/red] {text(redact(say_error(exc)))}")


def _what_to_check() -> str:
    """After a 401: the credentials that were refused, and where each comes from."""
    from sendoso.cli._state import credentials_in_use

    used = credentials_in_use()
    client_id = f" ({text(used.client_id)})" if used and used.client_id else ""
    host = f" ({text(used.base_url)})" if used else ""
    profile = f" (now {text(used.profile)})" if used and used.profile else ""
    return (
        f"Check the client id{client_id}, the client secret (SENDOSO_CLIENT_SECRET or the "
        f"profile's client_secret) and the host they belong to{host}: SENDOSO_BASE_URL or "
        f"--base-url; and the profile{profile}: --profile, in $SENDOSO_CONFIG. All three "
        "come from one place, flags > environment > profile."
    )


def kv_table(rows: Mapping[str, object], *, title: str | None = None) -> Table:
    from rich.table import Table

    table = Table(title=title, title_justify="left", show_header=False)
    table.add_column("field", style="bold", no_wrap=True)
    table.add_column("value", overflow="fold")
    for name, value in rows.items():
        if value is not None and value != "":
            table.add_row(text(name), text(value))
    return table


def simple_error(
    kind: str, message: str, code: int, *, json_output: bool, **extra: Any
) -> typer.Exit:
    """Show an error that is not an SDK exception; returns the ``Exit`` to raise."""
    if json_output:
        error: dict[str, Any] = {
            "type": kind,
            "message": redact(message),
            "details": [],
            "status": None,
            "request_id": None,
            "exit_code": code,
            **extra,
        }
        print_json({"error": error})
    else:
        error_console().print(f"[red]{text(kind)}:[/red] {text(redact(message))}")
    return typer.Exit(code)


def usage_error(message: str, *, json_output: bool) -> typer.Exit:
    """Show a usage problem (a bad flag value); returns the ``Exit`` to raise."""
    from sendoso.cli._exit import ExitCode

    return simple_error("UsageError", message, int(ExitCode.USAGE), json_output=json_output)


def parse_pairs(pairs: list[str], flag: str, *, strip_values: bool = False) -> dict[str, str]:
    """``KEY=VALUE`` flags as a dict; raises ``ValueError`` naming the malformed one."""
    result: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            shown = pair if len(pair) <= 60 else pair[:57] + "..."
            raise ValueError(f"{flag} {shown!r} is not KEY=VALUE")
        if key.strip() in result:
            raise ValueError(f"{flag} key {key.strip()!r} is given more than once")
        result[key.strip()] = value.strip() if strip_values else value
    return result


def confirm_or_exit(
    question: str, *, interactive: bool, not_interactive: str, cancelled: str, json_output: bool
) -> None:
    """Ask ``question`` (default no); without a terminal, or on "no", exit having sent
    nothing: 2 (pass --yes) or 130 (declined)."""
    from sendoso.cli._exit import ExitCode

    if not interactive:
        raise usage_error(not_interactive, json_output=json_output)
    try:
        confirmed = typer.confirm(question, default=False, err=json_output)
    except typer.Abort:
        confirmed = False
    if not confirmed:
        raise simple_error(
            "Cancelled", cancelled, int(ExitCode.INTERRUPTED), json_output=json_output
        )


def stdin_is_interactive() -> bool:
    try:
        return sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False
