"""The ledger's errors: it cannot be opened or used, or its database failed while in use."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from sendoso.errors import InputError, SendosoError

__all__ = [
    "LedgerError",
    "LedgerFailedError",
    "RunExistsError",
    "describe_failure",
    "ledger_failures",
]


class LedgerError(InputError):
    """The ledger cannot be opened or used (wrong URL, newer schema, unknown run or row)."""


class LedgerFailedError(SendosoError):
    """The ledger database failed while in use (locked too long, unreachable, full)."""


def describe_failure(exc: sa.exc.SQLAlchemyError) -> str:
    """A database failure in one line: the driver's own words, no SQL, no parameters
    (recipients' data)."""
    cause = str(getattr(exc, "orig", None) or exc).splitlines()[0]
    return f"the ledger failed ({type(exc).__name__}: {cause})"


@contextmanager
def ledger_failures() -> Iterator[None]:
    """Turn a database failure into :class:`LedgerFailedError`."""
    try:
        yield
    except sa.exc.SQLAlchemyError as exc:
        raise LedgerFailedError(
            f"{describe_failure(exc)}; nothing recorded is lost: once it works again, "
            "resume the run"
        ) from None


class RunExistsError(LedgerError):
    def __init__(self, run_id: str) -> None:
        super().__init__(f"run {run_id!r} already exists")
        self.run_id = run_id
