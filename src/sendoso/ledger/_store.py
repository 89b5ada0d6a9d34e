"""What every part of :class:`~sendoso.ledger.Ledger` works with."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from sendoso.ledger._journal import SendJournal

__all__ = ["Store"]


class Store:
    """The database behind a ledger: its engine, its dialect and its URL as shown (no
    password). The ledger's parts (runs, rows, leases, approvals) are mixins over it."""

    _engine: Engine
    #: ``"sqlite"`` or ``"postgresql"``.
    dialect: str
    display_url: str
    #: Send ids the API returned, kept outside the database (:mod:`._journal`).
    journal: SendJournal
