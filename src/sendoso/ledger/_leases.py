"""Leases: which worker holds which open rows, until when (by the database's clock).

Workers share a run by *claiming* rows: a claim sets a lease (owner and expiry) on rows
nobody holds, chosen with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL so that concurrent claims
never wait for or collide with each other. A killed worker's rows become claimable when its
lease runs out, or at once when its owner is a process on this host that no longer exists.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterable

import sqlalchemy as sa

from sendoso.ledger._records import LedgerRow, row_from
from sendoso.ledger._schema import ROWS, db_clock
from sendoso.ledger._states import OPEN_STATES
from sendoso.ledger._store import Store

__all__ = ["Leases", "new_owner", "owner_is_dead"]


def host_id() -> str:
    """This host, and its PID namespace: two containers sharing a hostname do not share
    process ids, so a dead-looking pid there says nothing."""
    try:
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        namespace = 0
    return f"{socket.gethostname()}#{namespace}"


def new_owner() -> str:
    """A lease owner id: host and pid (so a dead local owner is recognised) plus a nonce."""
    return f"{host_id()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def owner_is_dead(owner: str) -> bool:
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != host_id() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class Leases(Store):
    """Claiming, renewing and giving back rows."""

    def claim(
        self, run_id: str, owner: str, *, lease_seconds: float, limit: int = 1
    ) -> list[LedgerRow]:
        """Lease up to ``limit`` open rows nobody holds, in row order."""
        now = db_clock(self.dialect)
        with self._engine.begin() as conn:
            self._check_file()
            free = sa.or_(ROWS.c.lease_owner.is_(None), ROWS.c.lease_expires < now)
            query = (
                sa.select(ROWS.c.row_number)
                .where(
                    ROWS.c.run_id == run_id,
                    ROWS.c.state.in_([s.value for s in OPEN_STATES]),
                    free,
                )
                .order_by(ROWS.c.row_number)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
            numbers = list(conn.execute(query).scalars())
            if not numbers:
                return []
            conn.execute(
                ROWS.update()
                .where(ROWS.c.run_id == run_id, ROWS.c.row_number.in_(numbers))
                .values(lease_owner=owner, lease_expires=now + lease_seconds)
            )
            records = conn.execute(
                sa.select(ROWS)
                .where(ROWS.c.run_id == run_id, ROWS.c.row_number.in_(numbers))
                .order_by(ROWS.c.row_number)
            )
            return [row_from(r) for r in records]

    def renew(
        self, run_id: str, owner: str, numbers: Iterable[int], *, lease_seconds: float
    ) -> None:
        numbers = list(numbers)
        if not numbers:
            return
        with self._engine.begin() as conn:
            self._check_file()
            conn.execute(
                ROWS.update()
                .where(
                    ROWS.c.run_id == run_id,
                    ROWS.c.row_number.in_(numbers),
                    ROWS.c.lease_owner == owner,
                )
                .values(lease_expires=db_clock(self.dialect) + lease_seconds)
            )

    def release_dead_leases(self, run_id: str) -> int:
        """Free at once the rows leased by processes on this host that no longer exist."""
        with self._engine.connect() as conn:
            owners = conn.execute(
                sa.select(ROWS.c.lease_owner)
                .where(
                    ROWS.c.run_id == run_id,
                    ROWS.c.state.in_([s.value for s in OPEN_STATES]),
                    ROWS.c.lease_owner.is_not(None),
                    ROWS.c.lease_expires >= db_clock(self.dialect),
                )
                .distinct()
            ).scalars()
            dead = [owner for owner in owners if owner_is_dead(owner)]
        if not dead:
            return 0
        with self._engine.begin() as conn:
            result = conn.execute(
                ROWS.update()
                .where(ROWS.c.run_id == run_id, ROWS.c.lease_owner.in_(dead))
                .values(lease_expires=0.0)
            )
            return result.rowcount

    def release(self, run_id: str, number: int, owner: str) -> None:
        """Give a row back without changing its state (it will be claimed again)."""
        with self._engine.begin() as conn:
            conn.execute(
                ROWS.update()
                .where(
                    ROWS.c.run_id == run_id,
                    ROWS.c.row_number == number,
                    ROWS.c.lease_owner == owner,
                )
                .values(lease_owner=None, lease_expires=None)
            )

    def release_owner(self, run_id: str, owner: str) -> int:
        """Give back every row ``owner`` still holds, whatever their state."""
        with self._engine.begin() as conn:
            result = conn.execute(
                ROWS.update()
                .where(ROWS.c.run_id == run_id, ROWS.c.lease_owner == owner)
                .values(lease_owner=None, lease_expires=None)
            )
            return result.rowcount

    def claim_row(
        self, run_id: str, number: int, owner: str, *, lease_seconds: float
    ) -> LedgerRow | None:
        """Lease one open row if nobody holds it (or its holder is a dead local process);
        ``None`` if it is held, or no longer open."""
        self.release_dead_leases(run_id)
        now = db_clock(self.dialect)
        with self._engine.begin() as conn:
            result = conn.execute(
                ROWS.update()
                .where(
                    ROWS.c.run_id == run_id,
                    ROWS.c.row_number == number,
                    ROWS.c.state.in_([s.value for s in OPEN_STATES]),
                    sa.or_(
                        ROWS.c.lease_owner.is_(None),
                        ROWS.c.lease_owner == owner,
                        ROWS.c.lease_expires < now,
                    ),
                )
                .values(lease_owner=owner, lease_expires=now + lease_seconds)
            )
            if result.rowcount != 1:
                return None
            record = conn.execute(
                sa.select(ROWS).where(ROWS.c.run_id == run_id, ROWS.c.row_number == number)
            ).one()
            return row_from(record)
