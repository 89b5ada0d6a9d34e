"""``sendoso sandbox serve``: the local Sendoso API, in the foreground; ``sendoso sandbox
clock``: its virtual clock, shown and moved forward."""

from __future__ import annotations

import math
import os
import re
import shlex
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from sendoso._well_known import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET
from sendoso.cli._exit import ExitCode
from sendoso.cli._output import (
    JsonFlag,
    console,
    error_console,
    print_json,
    simple_error,
    text,
    usage_error,
)
from sendoso.cli._state import state_of
from sendoso.cli._words import say_error

if TYPE_CHECKING:
    from sendoso.sandbox import SandboxControl

__all__ = ["clock_app", "parse_duration", "ready_lines", "sandbox_app"]

#: Where ``serve`` listens unless told otherwise, and so where ``clock`` looks by default.
DEFAULT_PORT = 8787
DEFAULT_URL = f"http://127.0.0.1:{DEFAULT_PORT}"

sandbox_app = typer.Typer(
    help="Run a local Sendoso API (no account, no network).",
    no_args_is_help=True,
    rich_markup_mode=None,
)


def ready_lines(
    url: str, client_id: str, client_secret: str, *, db: str | None = None, speed: float = 1.0
) -> list[str]:
    """What ``serve`` prints once listening: the URL, the test credentials, where its state
    lives and how its clock runs, the exports."""
    if db is None:
        state = [
            "State:  in memory: sends are lost when the sandbox stops.",
            "        To keep them across restarts: sendoso sandbox serve --db sandbox.db",
        ]
    else:
        state = [f"State:  sends kept in {Path(db).resolve()} (they survive restarts)."]
    pace = "real time" if speed == 1 else f"{speed:g}x real time"
    clock = [
        f"Clock:  {pace}; statuses move on it (pending -> delivered takes up to 72 h of it).",
        "        Move it forward: sendoso sandbox clock advance 24h"
        + ("   (or serve with --speed 3600)" if speed == 1 else ""),
    ]
    return [
        f"Sendoso sandbox listening on {url}",
        f"  client id:     {client_id}",
        f"  client secret: {client_secret}   (a public test credential for this sandbox only)",
        *state,
        *clock,
        "Point the SDK and CLI at it with:",
        f"  export SENDOSO_BASE_URL={shlex.quote(url)}",
        f"  export SENDOSO_CLIENT_ID={shlex.quote(client_id)}",
        f"  export SENDOSO_CLIENT_SECRET={shlex.quote(client_secret)}",
        "Press Ctrl+C to stop.",
    ]


@sandbox_app.command("serve")
def serve_command(
    host: Annotated[
        str, typer.Option(help="Interface to listen on (loopback only, unless --allow-remote).")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(help="Port; 0 picks a free one.", min=0, max=65535)
    ] = DEFAULT_PORT,
    client_id: Annotated[
        str, typer.Option("--client-id", help="Client id the sandbox accepts.")
    ] = SANDBOX_CLIENT_ID,
    client_secret: Annotated[
        str,
        typer.Option(
            "--client-secret", help="Client secret the sandbox accepts (a test credential)."
        ),
    ] = SANDBOX_CLIENT_SECRET,
    token_ttl: Annotated[
        float, typer.Option("--token-ttl", help="Access token lifetime, in seconds.")
    ] = 7200,
    rate_limit: Annotated[
        float, typer.Option("--rate-limit", help="Requests per second on /api/v3; 0: unlimited.")
    ] = 10,
    latency_ms: Annotated[
        float, typer.Option("--latency-ms", help="Added latency per API request, in ms.")
    ] = 0,
    db: Annotated[
        str | None,
        typer.Option(help="SQLite file that keeps sends across restarts (default: in memory)."),
    ] = None,
    speed: Annotated[
        float,
        typer.Option(
            "--speed",
            help="Run the virtual clock N times faster than real time (3600: an hour a second).",
        ),
    ] = 1.0,
    allow_remote: Annotated[
        bool,
        typer.Option(
            "--allow-remote",
            help="Allow a non-loopback --host (anyone who can reach it can use it).",
        ),
    ] = False,
) -> None:
    """Serve the sandbox until Ctrl+C: the API as our original spec describes it, plus
    /_sandbox/ controls."""
    from sendoso.sandbox import SandboxConfig, serve

    err = error_console()
    try:
        config = SandboxConfig(
            client_id=client_id,
            client_secret=client_secret,
            token_ttl=token_ttl,
            rate_limit=None if rate_limit == 0 else rate_limit,
            latency_ms=latency_ms,
            db=db,
            speed=speed,
        )
    except ValueError as exc:
        err.print(f"[red]Error:[/red] {text(say_error(exc))}")
        raise typer.Exit(int(ExitCode.USAGE)) from None

    def on_ready(url: str) -> None:
        lines = ready_lines(
            url, config.client_id, config.client_secret, db=config.db, speed=config.speed
        )
        for line in lines:
            typer.echo(line)

    try:
        serve(config, host, port, allow_remote=allow_remote, on_ready=on_ready)
    except ValueError as exc:
        err.print(f"[red]Error:[/red] {text(say_error(exc))}")
        raise typer.Exit(int(ExitCode.USAGE)) from None
    except OSError as exc:
        err.print(
            f"[red]Error:[/red] cannot listen on {text(host)}:{port}: {text(exc.strerror or exc)}"
        )
        raise typer.Exit(int(ExitCode.USAGE)) from None
    except KeyboardInterrupt:
        pass
    typer.echo("Sandbox stopped.")


clock_app = typer.Typer(
    help="Show or move the virtual clock of a running sandbox (statuses and tokens follow it).",
    no_args_is_help=True,
    rich_markup_mode=None,
)
sandbox_app.add_typer(clock_app, name="clock")

_UNITS = {"w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([wdhms])")
#: The sandbox moves its clock at most ten years at a time.
_MAX_ADVANCE = 10 * 365 * 86400


def parse_duration(value: str) -> float:
    """Seconds in ``"24h"``, ``"1d12h"``, ``"90m"``, ``"2w"`` or a plain number of seconds;
    ``ValueError`` saying what is accepted otherwise."""
    spec = value.strip().lower().replace(" ", "")
    try:
        seconds = float(spec)
    except ValueError:
        parts = _DURATION.findall(spec)
        if not parts or "".join(n + u for n, u in parts) != spec:
            raise ValueError(
                f"{value!r} is not a duration: use e.g. 24h, 90m, 1d12h, 2w or seconds"
            ) from None
        seconds = sum(float(number) * _UNITS[unit] for number, unit in parts)
    if not (math.isfinite(seconds) and 0 <= seconds <= _MAX_ADVANCE):
        raise ValueError(f"{value!r}: the clock moves forward by 0 to 10 years at a time")
    return seconds


def _span(seconds: float) -> str:
    """``90061`` -> ``"1d 1h 1m 1s"``."""
    rest = round(seconds)
    if rest == 0:
        return "0s"
    parts = []
    for unit in ("d", "h", "m", "s"):
        count, rest = divmod(rest, _UNITS[unit])
        if count:
            parts.append(f"{count}{unit}")
    return " ".join(parts)


UrlOption = Annotated[
    str | None,
    typer.Option(
        "--url",
        help=f"The sandbox's URL (default: --base-url, else SENDOSO_BASE_URL, else {DEFAULT_URL}).",
    ),
]


def _sandbox_url(ctx: typer.Context, url: str | None) -> str:
    return (
        url or state_of(ctx).base_url or os.environ.get("SENDOSO_BASE_URL") or DEFAULT_URL
    ).rstrip("/")


def _control(url: str) -> SandboxControl:
    from sendoso.sandbox import SandboxControl

    return SandboxControl(url)


def _run(
    url: str, json_output: bool, action: Callable[[SandboxControl], dict[str, Any]]
) -> dict[str, Any]:
    """``action(control)`` against the sandbox at ``url``; its failures said plainly."""
    import httpx

    try:
        with _control(url) as control:
            return action(control)
    except httpx.HTTPStatusError as exc:
        status = exc.response.status_code
        if status == 404:
            message = f"{url} has no sandbox clock (404): it is not a Sendoso sandbox"
        else:
            message = f"the sandbox at {url} answered {status}: {_server_message(exc.response)}"
        code = ExitCode.USAGE if status == 400 else ExitCode.API_ERROR
        raise _fail("SandboxError", message, code, json_output) from None
    except httpx.TransportError as exc:
        message = (
            f"no sandbox answered at {url} ({type(exc).__name__}): start one with "
            f"`sendoso sandbox serve`, or give its URL with --url"
        )
        raise _fail("SandboxUnreachable", message, ExitCode.API_ERROR, json_output) from None


def _server_message(response: Any) -> str:
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return str(response.reason_phrase)


def _fail(kind: str, message: str, code: ExitCode, json_output: bool) -> typer.Exit:
    return simple_error(kind, message, int(code), json_output=json_output)


def _show(url: str, clock: dict[str, Any], json_output: bool, *, moved: float | None) -> None:
    if json_output:
        print_json({"url": url, **clock})
        return
    speed = float(clock.get("speed", 1))
    pace = "real time" if speed == 1 else f"{speed:g}x real time"
    advanced = float(clock.get("offset_seconds", 0))
    lead = f"advanced {_span(advanced)} in all" if advanced else "not advanced"
    if moved is not None:
        console().print(f"Sandbox clock moved forward {_span(moved)}.")
    console().print(f"Sandbox clock at {text(url)}: {clock['now']} ({lead}; runs at {pace}).")


@clock_app.command("show")
def clock_show(ctx: typer.Context, url: UrlOption = None, json_output: JsonFlag = False) -> None:
    """Print the sandbox's virtual time, how far it was advanced and how fast it runs."""
    where = _sandbox_url(ctx, url)
    _show(where, _run(where, json_output, lambda c: c.clock()), json_output, moved=None)


@clock_app.command("advance")
def clock_advance(
    ctx: typer.Context,
    duration: Annotated[str, typer.Argument(help="How far: 24h, 90m, 1d12h, 2w, or seconds.")],
    url: UrlOption = None,
    json_output: JsonFlag = False,
) -> None:
    """Move the sandbox's virtual clock forward (it never moves back), e.g. `advance 24h`:
    sends move on through their statuses, tokens expire."""
    try:
        seconds = parse_duration(duration)
    except ValueError as exc:
        raise usage_error(str(exc), json_output=json_output) from None
    where = _sandbox_url(ctx, url)
    _show(where, _run(where, json_output, lambda c: c.advance(seconds)), json_output, moved=seconds)


@clock_app.command("set")
def clock_set(
    ctx: typer.Context,
    moment: Annotated[
        str, typer.Argument(help="ISO 8601 time, e.g. 2027-01-01T09:00Z (UTC if no offset).")
    ],
    url: UrlOption = None,
    json_output: JsonFlag = False,
) -> None:
    """Move the sandbox's virtual clock forward to a given time (never back)."""
    from datetime import UTC

    try:
        target = datetime.fromisoformat(moment.strip())
    except ValueError:
        raise usage_error(
            f"{moment!r} is not an ISO 8601 time (e.g. 2027-01-01T09:00Z)", json_output=json_output
        ) from None
    if target.tzinfo is None:
        target = target.replace(tzinfo=UTC)
    where = _sandbox_url(ctx, url)

    def move(control: SandboxControl) -> dict[str, Any]:
        now = datetime.fromisoformat(control.clock()["now"])
        seconds = (target - now).total_seconds()
        if seconds < 0:
            raise _fail(
                "UsageError",
                f"the sandbox clock is already at {now.isoformat()}, after {target.isoformat()};"
                " it only moves forward (`sendoso sandbox serve` starts it at real time again)",
                ExitCode.USAGE,
                json_output,
            )
        result: dict[str, Any] = control.advance(seconds)
        result["moved_seconds"] = seconds
        return result

    clock = _run(where, json_output, move)
    moved = float(clock.pop("moved_seconds"))
    _show(where, clock, json_output, moved=moved)
