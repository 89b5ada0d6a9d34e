"""The ``sendoso`` Typer app: global options and the command tree.

A command module (``_commands_<name>.py``, registered below) imports at module level only
typer, the standard library and the CLI's own helpers (``_exit``, ``_output``, ``_state``);
the SDK, httpx, pydantic, rich, SQLAlchemy, the sandbox and the mcp SDK are imported inside
the command functions. This module is imported only when a command runs or typer has to
print help (``sendoso.cli`` imports it lazily, and ``--help`` is usually answered from a kept
copy: see ``_help_cache``). tests/cli/test_cli_startup.py holds both to it.
"""

from __future__ import annotations

from typing import Annotated

import typer

from sendoso.cli._commands_approvals import approvals_app
from sendoso.cli._commands_auth import auth_app
from sendoso.cli._commands_batch import batch_app
from sendoso.cli._commands_demo import demo
from sendoso.cli._commands_gifts import gifts_app
from sendoso.cli._commands_mcp import mcp
from sendoso.cli._commands_sandbox import sandbox_app
from sendoso.cli._commands_send import send, status
from sendoso.cli._exit import EXIT_CODES_HELP
from sendoso.cli._globals import GlobalOptionsGroup
from sendoso.cli._state import State

__all__ = ["app"]

app = typer.Typer(
    name="sendoso",
    cls=GlobalOptionsGroup,
    help="Send corporate gifts through the Sendoso API: catalog, single sends, status, a local "
    "sandbox. Human tables by default; --json for scripts. Global options may come before or "
    "after the command.",
    epilog=EXIT_CODES_HELP,
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from sendoso._version import __version__

        typer.echo(f"sendoso {__version__}")
        raise typer.Exit()


@app.callback()
def _global_options(
    ctx: typer.Context,
    profile: Annotated[
        str | None,
        typer.Option(help="Profile in the config file ($SENDOSO_CONFIG).", metavar="NAME"),
    ] = None,
    base_url: Annotated[
        str | None,
        typer.Option(
            "--base-url", help="API base URL (default: https://app.sendoso.com).", metavar="URL"
        ),
    ] = None,
    client_id: Annotated[
        str | None,
        typer.Option(
            "--client-id",
            help="OAuth client id. The secret is read from SENDOSO_CLIENT_SECRET or the profile, "
            "never from a flag.",
            metavar="ID",
        ),
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log each API request to stderr (no secrets).")
    ] = False,
    no_token_cache: Annotated[
        bool,
        typer.Option("--no-token-cache", help="Do not reuse or store the access token on disk."),
    ] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """Global options apply to every command."""
    ctx.obj = State(
        profile=profile,
        base_url=base_url,
        client_id=client_id,
        verbose=verbose,
        token_cache=not no_token_cache,
    )
    if verbose:
        from sendoso.cli._logging import enable_verbose_logging

        ctx.call_on_close(enable_verbose_logging())


app.add_typer(gifts_app, name="gifts")
app.command("send")(send)
app.command("status")(status)
app.add_typer(batch_app, name="batch")
app.add_typer(auth_app, name="auth")
app.add_typer(sandbox_app, name="sandbox")
app.command("demo")(demo)
app.command("mcp")(mcp)
app.add_typer(approvals_app, name="approvals")
