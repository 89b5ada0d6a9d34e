"""The sandbox's durable state in SQLite: tokens, sends and idempotency keys.

One connection, used only from the event loop's thread (the handlers are async but do their
database work synchronously, which is fast enough for a local server and makes each handler's
read-check-write free of interleaving).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

__all__ = ["IdempotencyRecord", "SendRecord", "Store"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tokens (
    token_hash TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    issued_at REAL NOT NULL,
    expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS sends (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    category TEXT NOT NULL,
    created_at REAL NOT NULL,
    status TEXT NOT NULL,
    status_since REAL NOT NULL,
    status_reason TEXT,
    data TEXT NOT NULL,
    idempotency_key TEXT,
    request_hash TEXT NOT NULL,
    request_body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS idempotency_keys (
    key TEXT PRIMARY KEY,
    request_hash TEXT NOT NULL,
    status_code INTEGER NOT NULL,
    response_body TEXT NOT NULL,
    location TEXT,
    send_id TEXT,
    created_at REAL NOT NULL
);
"""


@dataclass
class SendRecord:
    id: str
    category: str
    created_at: float
    status: str
    #: Seconds after ``created_at`` at which ``status`` was reached.
    status_since: float
    status_reason: str | None
    #: The send's fields as the API reports them, minus the status and timestamps.
    data: dict[str, Any]
    idempotency_key: str | None
    request_hash: str
    request_body: Any


@dataclass(frozen=True)
class IdempotencyRecord:
    key: str
    request_hash: str
    status_code: int
    response_body: Any
    location: str | None
    send_id: str | None


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class Store:
    def __init__(self, path: str | None = None) -> None:
        # check_same_thread is off because the app may be built in one thread and served from
        # another (SandboxServer); every use still happens on the serving loop's thread.
        self._db = sqlite3.connect(
            path or ":memory:", check_same_thread=False, isolation_level=None
        )
        self._db.row_factory = sqlite3.Row
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def reset(self) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM tokens")
            db.execute("DELETE FROM sends")
            db.execute("DELETE FROM idempotency_keys")

    # Tokens.

    def add_token(self, token_hash: str, client_id: str, issued_at: float, ttl: float) -> None:
        self._db.execute(
            "INSERT INTO tokens (token_hash, client_id, issued_at, expires_at) VALUES (?,?,?,?)",
            (token_hash, client_id, issued_at, issued_at + ttl),
        )

    def revoke_tokens(self) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM tokens")

    def token_expiry(self, token_hash: str) -> float | None:
        row = self._db.execute(
            "SELECT expires_at FROM tokens WHERE token_hash = ?", (token_hash,)
        ).fetchone()
        return None if row is None else float(row["expires_at"])

    # Sends.

    def create_send(self, send: SendRecord, outcome: IdempotencyRecord | None) -> None:
        """Record a send and, atomically with it, the reply its idempotency key replays."""
        with self._transaction() as db:
            db.execute(
                "INSERT INTO sends (id, category, created_at, status, status_since, status_reason,"
                " data, idempotency_key, request_hash, request_body)"
                " VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    send.id,
                    send.category,
                    send.created_at,
                    send.status,
                    send.status_since,
                    send.status_reason,
                    _dumps(send.data),
                    send.idempotency_key,
                    send.request_hash,
                    _dumps(send.request_body),
                ),
            )
            if outcome is not None:
                self._put_outcome(db, outcome, send.created_at)

    def get_send(self, send_id: str) -> SendRecord | None:
        row = self._db.execute("SELECT * FROM sends WHERE id = ?", (send_id,)).fetchone()
        return None if row is None else _send_from_row(row)

    def list_sends(self) -> list[SendRecord]:
        rows = self._db.execute("SELECT * FROM sends ORDER BY seq").fetchall()
        return [_send_from_row(row) for row in rows]

    def update_status(
        self, send_id: str, status: str, status_since: float, reason: str | None
    ) -> None:
        self._db.execute(
            "UPDATE sends SET status = ?, status_since = ?, status_reason = ? WHERE id = ?",
            (status, status_since, reason, send_id),
        )

    # Idempotency keys.

    def get_outcome(self, key: str) -> IdempotencyRecord | None:
        row = self._db.execute("SELECT * FROM idempotency_keys WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        return IdempotencyRecord(
            key=row["key"],
            request_hash=row["request_hash"],
            status_code=int(row["status_code"]),
            response_body=json.loads(row["response_body"]),
            location=row["location"],
            send_id=row["send_id"],
        )

    def put_outcome(self, outcome: IdempotencyRecord, now: float) -> None:
        with self._transaction() as db:
            self._put_outcome(db, outcome, now)

    @staticmethod
    def _put_outcome(db: sqlite3.Connection, outcome: IdempotencyRecord, now: float) -> None:
        db.execute(
            "INSERT INTO idempotency_keys"
            " (key, request_hash, status_code, response_body, location, send_id, created_at)"
            " VALUES (?,?,?,?,?,?,?)",
            (
                outcome.key,
                outcome.request_hash,
                outcome.status_code,
                _dumps(outcome.response_body),
                outcome.location,
                outcome.send_id,
                now,
            ),
        )


def _send_from_row(row: sqlite3.Row) -> SendRecord:
    return SendRecord(
        id=row["id"],
        category=row["category"],
        created_at=float(row["created_at"]),
        status=row["status"],
        status_since=float(row["status_since"]),
        status_reason=row["status_reason"],
        data=json.loads(row["data"]),
        idempotency_key=row["idempotency_key"],
        request_hash=row["request_hash"],
        request_body=json.loads(row["request_body"]),
    )
