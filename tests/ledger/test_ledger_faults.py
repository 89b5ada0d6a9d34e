"""Faults around the ledger's database itself: opening it while others do, a place where it
cannot be created."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from sendoso.ledger import SCHEMA_VERSION, Ledger, LedgerError


def test_opening_waits_for_a_writer_holding_a_fresh_database(tmp_path: Path) -> None:
    # A database still in rollback-journal mode, another process in a write transaction on
    # it: switching to WAL needs the lock, and used to fail at once ("database is locked")
    # instead of waiting like every other statement.
    path = tmp_path / "ledger.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE someone_elses (a)")
    holder.execute("BEGIN IMMEDIATE")
    asked = threading.Event()

    def trace(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.set_trace_callback(
            lambda sql: asked.set() if "journal_mode" in sql else None
        )

    sa.event.listen(sa.pool.Pool, "connect", trace)
    outcome: list[object] = []

    def open_it() -> None:
        try:
            with Ledger(f"sqlite:///{path}") as ledger:
                outcome.append(ledger.schema_version)
        except Exception as exc:
            outcome.append(exc)

    try:
        opener = threading.Thread(target=open_it)
        opener.start()
        assert asked.wait(30)
        holder.execute("COMMIT")
        opener.join(60)
    finally:
        sa.event.remove(sa.pool.Pool, "connect", trace)
        holder.close()
    assert outcome == [SCHEMA_VERSION]


def _open_at_once(url: str, barrier: Any, results: Any) -> None:
    barrier.wait()
    try:
        with Ledger(url) as ledger:
            results.put(ledger.schema_version)
    except Exception as exc:
        results.put(repr(exc))


def test_twelve_processes_opening_a_fresh_ledger_together_all_succeed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/ledger.db"
    context = multiprocessing.get_context("fork")
    n = 12
    barrier = context.Barrier(n)
    results = context.Queue()
    processes = [
        context.Process(target=_open_at_once, args=(url, barrier, results)) for _ in range(n)
    ]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(30)
    assert outcomes == [SCHEMA_VERSION] * n


def test_a_ledger_under_a_file_names_its_field(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(LedgerError) as raised:
        Ledger(f"sqlite:///{tmp_path}/file/ledger.db")
    assert raised.value.field == "ledger"
