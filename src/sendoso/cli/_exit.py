"""Exit codes, and the one place that turns an SDK exception into one."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from enum import IntEnum

__all__ = ["EXIT_CODES_HELP", "ExitCode", "exit_code_for", "guard"]


class ExitCode(IntEnum):
    OK = 0
    #: The API refused or failed (APIStatusError, APIConnectionError, ResponseParseError).
    API_ERROR = 1
    #: Refused here, before or instead of sending: bad flags, an invalid request, input or
    #: configuration, an unknown id, a guardrail. Nothing was sent.
    USAGE = 2
    #: AmbiguousSendError, or an unreadable reply to a send that was created: settle it
    #: before sending again.
    AMBIGUOUS = 3
    #: Ctrl-C, or the confirmation prompt was declined.
    INTERRUPTED = 130


EXIT_CODES_HELP = """\b
Exit codes:
  0    success
  1    API error: the API refused or failed (HTTP error, unreachable, unreadable reply)
  2    refused here: usage, validation, configuration, an unknown id or a
       guardrail; nothing was sent
  3    ambiguous outcome: the send may have happened (or happened but its reply was
       unreadable); the idempotency key is printed. Settle it before sending again
  130  interrupted, or the confirmation was declined
\b
Credentials: SENDOSO_CLIENT_ID, SENDOSO_CLIENT_SECRET, SENDOSO_BASE_URL or a profile in
$SENDOSO_CONFIG (flags > environment > profile; --profile outranks the environment). The
host and the secret come from the same place. The secret is never taken as a flag."""


def exit_code_for(exc: BaseException) -> ExitCode:
    """The exit code for an exception the SDK raised (``API_ERROR`` for anything else)."""
    from sendoso.errors import (
        AmbiguousSendError,
        ConfigurationError,
        InputError,
        ResponseParseError,
        ValidationError,
    )

    if isinstance(exc, ValidationError | ConfigurationError | InputError):
        return ExitCode.USAGE
    if isinstance(exc, AmbiguousSendError):
        return ExitCode.AMBIGUOUS
    if isinstance(exc, ResponseParseError) and exc.idempotency_key:
        # A send was created but its reply could not be read: retrying as after a failure
        # would send a second gift.
        return ExitCode.AMBIGUOUS
    if isinstance(exc, KeyboardInterrupt):
        return ExitCode.INTERRUPTED
    return ExitCode.API_ERROR


@contextmanager
def guard(*, json_output: bool, sending: bool = False) -> Iterator[None]:
    """Render any :class:`sendoso.SendosoError` raised inside and exit with its code.
    ``sending``: the command sends, so a refused request is worded as "not sent"."""
    try:
        yield
    except Exception as exc:
        from sendoso.errors import SendosoError

        if not isinstance(exc, SendosoError):
            raise
        import typer

        from sendoso.cli._output import render_error

        render_error(exc, json_output=json_output, sending=sending)
        raise typer.Exit(int(exit_code_for(exc))) from None
