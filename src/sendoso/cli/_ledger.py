"""The ``--ledger`` option and how a command opens the ledger: shared by ``batch``,
``approvals`` and ``mcp``, which all work on the same database."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from sendoso.batch import Ledger

__all__ = ["LedgerOption", "open_ledger"]

LedgerOption = Annotated[
    str | None,
    typer.Option(
        "--ledger",
        help="Ledger database URL (default: $SENDOSO_LEDGER, else a SQLite file in the user "
        "data directory), shared by `sendoso batch`, `approvals` and `mcp`. e.g. "
        "sqlite:///runs.db or postgresql+psycopg://user@host/db",
        metavar="URL",
    ),
]


@contextmanager
def open_ledger(url: str | None) -> Iterator[Ledger]:
    """The ledger at ``url``; a database failure becomes one short, redacted error."""
    from sendoso.batch import Ledger, ledger_failures

    with ledger_failures(), Ledger(url) as ledger:
        yield ledger
