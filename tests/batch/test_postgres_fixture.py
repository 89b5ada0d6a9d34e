"""The PostgreSQL fixtures give a real, empty, private database per test, with row locks."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import (
    Column,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    func,
    insert,
    inspect,
    select,
    text,
)
from sqlalchemy.exc import OperationalError
from tests._postgres import admin_engine, temporary_database

metadata = MetaData()
jobs = Table(
    "jobs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(50), nullable=False),
)


@pytest.fixture
def engine(postgres_url: str) -> Iterator[Engine]:
    engine = create_engine(postgres_url)
    try:
        yield engine
    finally:
        engine.dispose()


def _database_names(server_url: str) -> set[str]:
    admin = admin_engine(server_url)
    try:
        with admin.connect() as conn:
            return set(conn.execute(text("SELECT datname FROM pg_database")).scalars())
    finally:
        admin.dispose()


def test_a_fresh_database_is_empty_and_writable(engine: Engine) -> None:
    assert engine.dialect.name == "postgresql"
    assert engine.url.host == "127.0.0.1"
    assert inspect(engine).get_table_names() == []

    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(insert(jobs), [{"id": 1, "name": "one"}, {"id": 2, "name": "two"}])
    with engine.connect() as conn:
        assert conn.execute(select(jobs.c.name).order_by(jobs.c.id)).scalars().all() == [
            "one",
            "two",
        ]


def test_databases_are_isolated_and_dropped_afterwards(postgres_server_url: str) -> None:
    with (
        temporary_database(postgres_server_url) as first_url,
        temporary_database(postgres_server_url) as second_url,
    ):
        first, second = create_engine(first_url), create_engine(second_url)
        try:
            assert first.url.database != second.url.database
            metadata.create_all(first)
            with first.begin() as conn:
                conn.execute(insert(jobs), [{"id": 1, "name": "only in the first"}])
            assert inspect(second).get_table_names() == []
            # An open connection does not keep the database from being dropped.
            leftover = first.connect()
            assert leftover.execute(select(func.count()).select_from(jobs)).scalar_one() == 1
        finally:
            second.dispose()
        names = {first.url.database, second.url.database}
        assert names <= _database_names(postgres_server_url)
    assert not names & _database_names(postgres_server_url)
    leftover.invalidate()
    first.dispose()


def test_for_update_skip_locked_skips_rows_another_transaction_holds(engine: Engine) -> None:
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(insert(jobs), [{"id": n, "name": f"job {n}"} for n in (1, 2, 3)])
    claim_one = select(jobs.c.id).order_by(jobs.c.id).limit(1).with_for_update(skip_locked=True)
    claim_all = select(jobs.c.id).order_by(jobs.c.id).with_for_update(skip_locked=True)

    with engine.connect() as worker_a, engine.connect() as worker_b:
        worker_b.execute(text("SET lock_timeout = '5s'"))  # a bug here must not hang the suite
        worker_b.commit()
        with worker_a.begin():
            assert worker_a.execute(claim_one).scalar_one() == 1
            with worker_b.begin():
                assert worker_b.execute(claim_one).scalar_one() == 2
                assert worker_b.execute(claim_all).scalars().all() == [2, 3]
            with worker_b.begin(), pytest.raises(OperationalError, match="lock"):
                worker_b.execute(
                    select(jobs.c.id).where(jobs.c.id == 1).with_for_update(nowait=True)
                )
        # Worker A committed: its row is free again.
        with worker_b.begin():
            assert worker_b.execute(claim_all).scalars().all() == [1, 2, 3]
