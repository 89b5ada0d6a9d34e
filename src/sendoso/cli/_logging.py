"""``--verbose``: the SDK's debug log on stderr, scrubbed of anything secret.

The SDK logs method, path, status, duration, request id, attempt and waits, never headers or
tokens; the filter and formatter here redact bearer tokens and the configured client secret
anyway, in case that ever changes.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

from sendoso.cli._redact import redact

__all__ = ["RedactingFilter", "RedactingFormatter", "enable_verbose_logging"]


class RedactingFilter(logging.Filter):
    """Rewrites each record's message with :func:`redact` (it never drops a record)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: show its template rather than fail
            message = str(record.msg)
        record.msg = redact(message)
        record.args = None
        return True


class RedactingFormatter(logging.Formatter):
    """Redacts the finished line too, tracebacks included."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class _StderrHandler(logging.Handler):
    """Writes to whatever ``sys.stderr`` is when each record arrives (test runners swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
            sys.stderr.flush()
        except Exception:
            self.handleError(record)


def enable_verbose_logging() -> Callable[[], None]:
    """Attach a DEBUG handler on stderr to the ``sendoso`` logger; returns its undo."""
    logger = logging.getLogger("sendoso")
    handler = _StderrHandler()
    handler.setLevel(logging.DEBUG)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(
        RedactingFormatter("%(asctime)s %(name)s %(levelname)s %(message)s", "%H:%M:%S")
    )
    previous_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)

    def undo() -> None:
        logger.removeHandler(handler)
        logger.setLevel(previous_level)

    return undo
