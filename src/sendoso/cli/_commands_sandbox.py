"""``sendoso sandbox serve``: the local Sendoso API, in the foreground."""

from __future__ import annotations

import shlex
from typing import Annotated

import typer

from sendoso._well_known import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET
from sendoso.cli._exit import ExitCode
from sendoso.cli._output import error_console, text
from sendoso.cli._words import say_error

__all__ = ["ready_lines", "sandbox_app"]

sandbox_app = typer.Typer(
    help="Run a local Sendoso API (no account, no network).",
    no_args_is_help=True,
    rich_markup_mode=None,
)


def ready_lines(url: str, client_id: str, client_secret: str) -> list[str]:
    """What ``serve`` prints once listening: the URL, the test credentials, the exports."""
    return [
        f"Sendoso sandbox listening on {url}",
        f"  client id:     {client_id}",
        f"  client secret: {client_secret}   (a public test credential for this sandbox only)",
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
    port: Annotated[int, typer.Option(help="Port; 0 picks a free one.", min=0, max=65535)] = 8787,
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
    allow_remote: Annotated[
        bool,
        typer.Option(
            "--allow-remote",
            help="Allow a non-loopback --host (anyone who can reach it can use it).",
        ),
    ] = False,
) -> None:
    """Serve the sandbox until Ctrl+C: the seed's endpoints plus /_sandbox/ controls."""
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
        )
    except ValueError as exc:
        err.print(f"[red]Error:[/red] {text(say_error(exc))}")
        raise typer.Exit(int(ExitCode.USAGE)) from None

    def on_ready(url: str) -> None:
        for line in ready_lines(url, config.client_id, config.client_secret):
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
