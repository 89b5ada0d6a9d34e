"""What every part of :class:`~sendoso.ledger.Ledger` works with."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from sendoso.ledger._journal import SendJournal

__all__ = ["LedgerReplaced", "Store"]


class LedgerReplaced(sa.exc.SQLAlchemyError):
    """The ledger's SQLite file was deleted or replaced while this process had it open: its
    writes go to a file nobody will read again. A database failure like any other to the
    callers (the run stops as a ledger failure), but never retried."""


class Store:
    """The database behind a ledger: its engine, its dialect and its URL as shown (no
    password). The ledger's parts (runs, rows, leases, approvals) are mixins over it."""

    _engine: Engine
    #: ``"sqlite"`` or ``"postgresql"``.
    dialect: str
    display_url: str
    #: Send ids the API returned, kept outside the database (:mod:`._journal`).
    journal: SendJournal
    #: A SQLite file ledger's path and its (device, inode) when it was opened.
    _file: tuple[Path, tuple[int, int]] | None = None

    def _remember_file(self, path: Path) -> None:
        path = path.absolute()  # the same file whatever the working directory becomes
        st = path.stat()
        self._file = (path, (st.st_dev, st.st_ino))

    def _check_file(self) -> None:
        """Raise :class:`LedgerReplaced` if the ledger's file is no longer the one opened
        (checked at each claim, lease renewal and ``submitting`` commit: a run stops at its
        next step instead of "finishing" into a deleted file)."""
        if self._file is None:
            return
        path, opened = self._file
        try:
            st = path.stat()
        except FileNotFoundError:
            raise LedgerReplaced(
                f"the ledger file {path} was deleted while in use; what this run recorded "
                "since is lost, except the sends in its send journal"
            ) from None
        if (st.st_dev, st.st_ino) != opened:
            raise LedgerReplaced(
                f"the ledger file {path} was replaced by another file while in use; what "
                "this run recorded since is in neither, except the sends in its send journal"
            )
