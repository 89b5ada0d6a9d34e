"""``sendoso``: the command line, a thin skin over the SDK.

Every rule it applies is a library call (``sendoso.validate``, ``sendoso.estimate_cost``,
``load_settings``, the client's resources); this package only parses flags and renders results,
as rich tables or, with ``--json``, as one JSON document on stdout (errors included, as
``{"error": {"type", "message", "details", "status", "request_id", ...}}``).

Exit codes:

===  ==========================================================================================
0    success
1    API error: the API refused or failed (``APIStatusError``, ``APIConnectionError``,
     ``ResponseParseError``)
2    refused by this program before or instead of sending: usage, validation or configuration
     error (bad flags, ``ValidationError``, ``ConfigurationError``, ``InputError`` such as
     an unknown run, row or approval id), or a guardrail: nothing was sent
3    ambiguous outcome (``AmbiguousSendError``): the send may have happened; the idempotency
     key is printed, to check and to retry with
130  interrupted (Ctrl+C), or the confirmation prompt was declined
===  ==========================================================================================

Errors go to stderr, once (with ``--json``: the one JSON document on stdout, stderr
empty), whatever the command; only a command that sends says "not sent".
tests/cli/test_cli_errors.py holds every command of the tree to this.

Secrets never reach the output: the client secret is not a flag, the access token is never
printed, and everything shown on error or logged with ``--verbose`` is redacted as well.

Start-up: importing this package loads neither typer nor anything heavy; ``app`` (the typer
app) is imported on first use, and ``sendoso … --help`` is answered from a copy of typer's
own output when one is current (see ``_help_cache``).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sendoso.cli._app import app
    from sendoso.cli._exit import ExitCode

__all__ = ["ExitCode", "app", "main"]


def __getattr__(name: str) -> Any:
    if name == "app":
        return _typer_app()
    if name == "ExitCode":
        from sendoso.cli._exit import ExitCode

        return ExitCode
    raise AttributeError(f"module 'sendoso.cli' has no attribute {name!r}")


def _typer_app() -> Any:
    """The typer app: imported on first use (or whatever replaced it, in tests)."""
    found = globals().get("app")
    if found is None:
        # Checked here rather than on import: the console script imports this package
        # before main() can turn the error into one line, and a --help answered from a kept
        # copy needs neither library.
        from sendoso._extras import require_extra

        require_extra("cli", "typer", "rich", feature="the command line")
        from sendoso.cli._app import app as found

        globals()["app"] = found
    return found


def main() -> None:
    """The ``sendoso`` console script: run the app, map what escapes it to an exit code."""
    from sendoso.cli import _help_cache

    key = _help_cache.help_key(sys.argv)
    if key is not None and _help_cache.replay(key):
        return
    try:
        if key is None:
            _typer_app()()
        else:
            _help_cache.run_and_keep(key, _typer_app())
    except KeyboardInterrupt:
        from sendoso.cli._exit import ExitCode

        sys.stderr.write("Interrupted.\n")
        sys.exit(int(ExitCode.INTERRUPTED))
    except ImportError as exc:
        sys.exit(int(_import_failure(exc)))
    except Exception as exc:
        sys.exit(int(_last_resort(exc)))


def _import_failure(exc: ImportError) -> ExitCode:
    """One line naming the pip extra when the command line, or the part of sendoso a command
    needs (batch, sandbox, mcp), is not installed; anything else as :func:`_last_resort`."""
    from sendoso._extras import MissingExtraError
    from sendoso.cli._exit import ExitCode

    if isinstance(exc, MissingExtraError):
        sys.stderr.write(f"sendoso: {exc}\n")
        return ExitCode.USAGE
    return _last_resort(exc)


def _last_resort(exc: Exception) -> ExitCode:
    """An exception no command handled: one short, redacted line (a traceback only with -v)."""
    from sendoso.cli._exit import ExitCode, exit_code_for
    from sendoso.cli._output import render_error
    from sendoso.cli._redact import redact
    from sendoso.errors import SendosoError

    if isinstance(exc, SendosoError):
        render_error(exc, json_output="--json" in sys.argv[1:])
        return exit_code_for(exc)
    if "-v" in sys.argv[1:] or "--verbose" in sys.argv[1:]:
        import traceback

        sys.stderr.write(redact("".join(traceback.format_exception(exc))))
    sys.stderr.write(
        redact(f"sendoso: unexpected error: {type(exc).__name__}: {exc}")
        + "\n(re-run with --verbose for details; please report this)\n"
    )
    return ExitCode.API_ERROR
