"""The durable ledger, on SQLite and PostgreSQL: runs, rows, leases and transitions."""

from __future__ import annotations

import itertools
import random
import re
import socket
import subprocess
import sys
import textwrap
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from sendoso.errors import InputError
from sendoso.ledger import (
    SCHEMA_VERSION,
    TRANSITIONS,
    Approval,
    ApprovalState,
    Ledger,
    LedgerError,
    PlannedRow,
    RowState,
    RunExistsError,
    RunInfo,
    SendAdmission,
    Totals,
    new_owner,
)

S = RowState
BASE_URL = "http://127.0.0.1:8000"
LONG_LEASE = 600.0


@pytest.fixture
def ledger(ledger_url: str) -> Iterator[Ledger]:
    with Ledger(ledger_url) as opened:
        yield opened


def planned(
    number: int,
    *,
    run_id: str = "run-1",
    recipient: str | None = None,
    gift_id: str = "gft_a",
    estimate: Totals | None = None,
) -> PlannedRow:
    recipient = recipient or f"person{number}@example.com"
    return PlannedRow(
        number=number,
        state=S.PLANNED,
        send_key=f"sb_{run_id}_{number}",
        recipient=recipient,
        name=f"Person {number}",
        gift_id=gift_id,
        dedupe_key=f"{recipient}|{gift_id}",
        request={"gift_id": gift_id, "email": recipient, "metadata": {"n": str(number)}},
        estimate=estimate,
    )


def skipped(number: int, kind: str = "invalid", *, gift_id: str | None = None) -> PlannedRow:
    return PlannedRow(
        number=number,
        state=S.SKIPPED,
        skip_kind=kind,
        gift_id=gift_id,
        error=f"bad row (row {number})",
    )


def make_run(
    ledger: Ledger, rows: Sequence[PlannedRow], run_id: str = "run-1", **info: object
) -> RunInfo:
    with ledger.new_run(RunInfo(run_id=run_id, base_url=BASE_URL, **info)) as writer:  # type: ignore[arg-type]
        writer.add(rows)
    return ledger.require_run(run_id)


def planned_run(ledger: Ledger, count: int, run_id: str = "run-1") -> list[int]:
    """A run of ``count`` planned rows numbered 2.. (as a CSV file would number them)."""
    numbers = list(range(2, count + 2))
    make_run(ledger, [planned(n, run_id=run_id) for n in numbers], run_id)
    return numbers


def put_in(ledger: Ledger, run_id: str, number: int, state: RowState) -> None:
    """Walk a planned row along the designed path to ``state``."""
    path = {
        S.PLANNED: [],
        S.SUBMITTING: [S.SUBMITTING],
        S.SUBMITTED: [S.SUBMITTING, S.SUBMITTED],
        S.REJECTED: [S.SUBMITTING, S.REJECTED],
        S.UNKNOWN: [S.SUBMITTING, S.UNKNOWN],
        S.SKIPPED: [S.SKIPPED],
    }[state]
    for step in path:
        assert ledger.move(run_id, number, step, send_id=f"snd_{number}", error="why")
    assert ledger.row(run_id, number).state is state  # type: ignore[union-attr]


def claim_all(ledger: Ledger, run_id: str, owner: str, *, limit: int = 1) -> list[int]:
    claimed: list[int] = []
    while rows := ledger.claim(run_id, owner, lease_seconds=LONG_LEASE, limit=limit):
        claimed.extend(r.number for r in rows)
    return claimed


def dead_pid() -> int:
    """The pid of a process that has finished (and been reaped)."""
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(done.stdout)


def assert_utc(moment: datetime | None) -> None:
    assert moment is not None
    assert moment.tzinfo is not None
    assert moment.utcoffset() == timedelta(0)


# --- opening ----------------------------------------------------------------------------


def test_schema_version_is_set_on_open_and_kept_on_reopen(ledger_url: str) -> None:
    """A fresh ledger is migrated to the current schema; opening it again changes nothing."""
    with Ledger(ledger_url) as first:
        assert first.schema_version == SCHEMA_VERSION
        make_run(first, [planned(2)])
    with Ledger(ledger_url) as again:
        assert again.schema_version == SCHEMA_VERSION
        assert [r.number for r in again.rows("run-1")] == [2]


def test_a_newer_schema_is_refused(ledger_url: str) -> None:
    """A ledger written by a newer sendoso is not opened (nor downgraded)."""
    Ledger(ledger_url).close()
    engine = sa.create_engine(ledger_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text("UPDATE sendoso_schema SET version = :v"), {"v": SCHEMA_VERSION + 1}
            )
    finally:
        engine.dispose()
    with pytest.raises(LedgerError, match=rf"schema {SCHEMA_VERSION + 1}.*upgrade sendoso"):
        Ledger(ledger_url)
    engine = sa.create_engine(ledger_url)
    try:
        with engine.connect() as conn:
            version = conn.execute(sa.text("SELECT version FROM sendoso_schema")).scalar_one()
    finally:
        engine.dispose()
    assert version == SCHEMA_VERSION + 1


@pytest.mark.parametrize("url", ["not a url", "::::"])
def test_a_url_that_is_not_a_url_is_refused(url: str) -> None:
    """A malformed --ledger is a LedgerError naming the value and the accepted forms."""
    with pytest.raises(LedgerError, match="is not a database URL") as raised:
        Ledger(url)
    assert repr(url) in str(raised.value)
    assert "sqlite:///" in str(raised.value)
    assert isinstance(raised.value, InputError)


def test_an_unsupported_database_is_refused() -> None:
    """Only SQLite and PostgreSQL are supported, and the error names the one given."""
    with pytest.raises(LedgerError, match="SQLite and PostgreSQL, not mysql"):
        Ledger("mysql://user@localhost/db")


def test_an_unreachable_database_is_a_ledger_error_without_the_password() -> None:
    """A server that cannot be reached is a LedgerError that does not reveal the password."""
    with pytest.raises(LedgerError, match="cannot open the ledger") as raised:
        Ledger("postgresql+psycopg://user:hunter2secret@127.0.0.1:1/ledger")
    assert "hunter2secret" not in str(raised.value)


def test_display_url_hides_the_password(postgres_url: str) -> None:
    """The URL shown to people has the password masked."""
    password = sa.make_url(postgres_url).password
    if not password:
        pytest.skip("this PostgreSQL URL has no password to hide")
    with Ledger(postgres_url) as ledger:
        assert password not in ledger.display_url
        assert sa.make_url(ledger.display_url).database == sa.make_url(postgres_url).database
        with pytest.raises(LedgerError) as raised:
            ledger.require_run("nope")
        assert password not in str(raised.value)


def test_a_sqlite_ledger_creates_its_directory(tmp_path: Path) -> None:
    """A SQLite ledger in a directory that does not exist yet is created with it."""
    path = f"{tmp_path}/deeper/still/ledger.db"
    with Ledger(f"sqlite:///{path}") as ledger:
        make_run(ledger, [planned(2)])
        assert ledger.open_rows("run-1") == 1


# --- runs ---------------------------------------------------------------------------------


def test_new_run_records_the_run(ledger: Ledger) -> None:
    """A planned run keeps its host, input, options and its number of rows."""
    before = datetime.now(UTC)
    run = make_run(
        ledger,
        [planned(2), skipped(3), planned(4)],
        input_path="/data/in.csv",
        input_fingerprint="ab" * 32,
        options={"gift_id": "gft_a", "max_spend": {"USD": "100"}},
    )
    assert run.base_url == BASE_URL
    assert run.input_path == "/data/in.csv"
    assert run.input_fingerprint == "ab" * 32
    assert run.options == {"gift_id": "gft_a", "max_spend": {"USD": "100"}}
    assert run.rows_total == 3
    assert run.finished_at is None
    assert_utc(run.created_at)
    assert before <= run.created_at <= datetime.now(UTC)  # type: ignore[operator]


def test_new_run_is_atomic(ledger: Ledger) -> None:
    """A failure while planning leaves neither the run nor any of its rows behind."""

    class Crash(Exception):
        pass

    def plan_then_crash() -> None:
        with ledger.new_run(RunInfo("run-1", BASE_URL)) as writer:
            writer.add([planned(n) for n in range(2, 700)])
            raise Crash

    with pytest.raises(Crash):
        plan_then_crash()
    assert ledger.run("run-1") is None
    assert list(ledger.rows("run-1")) == []
    assert ledger.counts("run-1") == {}
    assert ledger.runs() == []
    # The id is free again, and its send keys too.
    make_run(ledger, [planned(2)])
    assert ledger.counts("run-1") == {S.PLANNED: 1}


def test_a_second_run_with_the_same_id_is_refused(ledger: Ledger) -> None:
    """new_run raises RunExistsError for a taken id and leaves the existing run untouched."""
    make_run(ledger, [planned(2), planned(3)])
    with pytest.raises(RunExistsError) as raised, ledger.new_run(RunInfo("run-1", BASE_URL)) as w:
        w.add([planned(9, run_id="other")])
    assert raised.value.run_id == "run-1"
    assert "run-1" in str(raised.value)
    assert isinstance(raised.value, LedgerError)
    assert [r.number for r in ledger.rows("run-1")] == [2, 3]
    assert ledger.require_run("run-1").rows_total == 2


def test_a_row_conflict_while_planning_is_not_reported_as_a_taken_run_id(ledger: Ledger) -> None:
    """Two rows with one number are a planning error, not "run already exists"."""

    def plan_one_number_twice() -> None:
        with ledger.new_run(RunInfo("run-1", BASE_URL)) as writer:
            writer.add([planned(2)])
            writer.add([planned(2, recipient="other@example.com")])

    with pytest.raises(Exception) as raised:  # noqa: PT011
        plan_one_number_twice()
    assert ledger.run("run-1") is None
    assert not isinstance(raised.value, RunExistsError), str(raised.value)


def test_an_unknown_run_is_a_ledger_error(ledger: Ledger) -> None:
    """require_run names the missing run and how to list the ones there are."""
    assert ledger.run("missing") is None
    with pytest.raises(LedgerError, match=r"no run 'missing'.*Ledger\.runs\(\)"):
        ledger.require_run("missing")


def test_runs_lists_every_run_with_its_counts(ledger: Ledger) -> None:
    """runs() gives each run with its rows per state, and can filter by source."""
    make_run(ledger, [planned(2), planned(3), skipped(4)], "run-a")
    make_run(ledger, [planned(2, run_id="run-b")], "run-b", source="mcp")
    put_in(ledger, "run-a", 2, S.SUBMITTED)
    listed = {run.run_id: counts for run, counts in ledger.runs()}
    assert listed == {
        "run-a": {S.SUBMITTED: 1, S.PLANNED: 1, S.SKIPPED: 1},
        "run-b": {S.PLANNED: 1},
    }
    assert [run.run_id for run, _ in ledger.runs(source="mcp")] == ["run-b"]


def test_set_note_and_finish(ledger: Ledger) -> None:
    """A run's note is stored; finishing stamps an aware UTC time, un-finishing clears it."""
    make_run(ledger, [planned(2)])
    ledger.set_note("run-1", "stopped: API failing", finished=True)
    run = ledger.require_run("run-1")
    assert run.note == "stopped: API failing"
    assert_utc(run.finished_at)
    ledger.set_note("run-1", None)
    run = ledger.require_run("run-1")
    assert run.note is None
    assert run.finished_at is None


# --- rows -----------------------------------------------------------------------------------


def test_rows_keep_what_the_planner_wrote(ledger: Ledger) -> None:
    """A planned row comes back with its request, estimate, key and identity intact."""
    estimate = {"USD": (Decimal("63.50"), Decimal("68.50")), "GBP": (Decimal("0.10"), Decimal("1"))}
    make_run(ledger, [planned(2, estimate=estimate), skipped(3, "duplicate")])
    row = ledger.row("run-1", 2)
    assert row is not None
    assert row.state is S.PLANNED
    assert row.send_key == "sb_run-1_2"
    assert row.recipient == "person2@example.com"
    assert row.name == "Person 2"
    assert row.gift_id == "gft_a"
    assert row.request == {
        "gift_id": "gft_a",
        "email": "person2@example.com",
        "metadata": {"n": "2"},
    }
    assert row.estimate == estimate
    assert all(isinstance(v, Decimal) for pair in row.estimate.values() for v in pair)
    assert row.attempts == 0
    assert row.lease_owner is None
    assert row.submitted_at is None
    other = ledger.row("run-1", 3)
    assert other is not None
    assert other.state is S.SKIPPED
    assert other.skip_kind == "duplicate"
    assert other.error == "bad row (row 3)"
    assert ledger.row("run-1", 99) is None


def test_rows_stream_in_row_order_across_pages(ledger: Ledger) -> None:
    """rows() yields every row once, in row order, over many pages, whatever the insert order."""
    numbers = list(range(2, 2 * 1203 + 2, 2))  # gaps, as blank lines leave
    shuffled = numbers[:]
    random.Random(7).shuffle(shuffled)
    rows = [skipped(n) if n % 3 == 0 else planned(n) for n in shuffled]
    with ledger.new_run(RunInfo("run-1", BASE_URL)) as writer:
        for start in range(0, len(rows), 400):
            writer.add(rows[start : start + 400])
    assert [r.number for r in ledger.rows("run-1")] == numbers
    assert [r.number for r in ledger.rows("run-1", states=[S.SKIPPED])] == [
        n for n in numbers if n % 3 == 0
    ]
    assert [r.number for r in ledger.rows("run-1", states=[S.PLANNED, S.SKIPPED])] == numbers
    assert list(ledger.rows("run-1", states=[S.SUBMITTED])) == []
    assert list(ledger.rows("run-1", states=[])) == []


def test_rows_filtered_by_state_cross_pages(ledger: Ledger) -> None:
    """A state filter that matches rows spread over several pages still finds them all."""
    planned_run(ledger, 1100)
    wanted = list(range(2, 1102, 4))
    for n in wanted:
        assert ledger.move("run-1", n, S.SUBMITTING)
    assert [r.number for r in ledger.rows("run-1", states=[S.SUBMITTING])] == wanted


def test_rows_of_one_run_do_not_mix_with_another(ledger: Ledger) -> None:
    """Each run sees only its own rows."""
    make_run(ledger, [planned(2, run_id="a"), planned(3, run_id="a")], "a")
    make_run(ledger, [planned(2, run_id="b")], "b")
    assert [(r.run_id, r.number) for r in ledger.rows("a")] == [("a", 2), ("a", 3)]
    assert [(r.run_id, r.number) for r in ledger.rows("b")] == [("b", 2)]


def test_counts_and_open_rows(ledger: Ledger) -> None:
    """counts() gives rows per state; open_rows() counts those a runner still has to do."""
    make_run(ledger, [planned(n) for n in range(2, 8)] + [skipped(8), skipped(9)])
    put_in(ledger, "run-1", 2, S.SUBMITTED)
    put_in(ledger, "run-1", 3, S.SUBMITTING)
    put_in(ledger, "run-1", 4, S.UNKNOWN)
    put_in(ledger, "run-1", 5, S.REJECTED)
    assert ledger.counts("run-1") == {
        S.SUBMITTED: 1,
        S.SUBMITTING: 1,
        S.UNKNOWN: 1,
        S.REJECTED: 1,
        S.PLANNED: 2,
        S.SKIPPED: 2,
    }
    assert ledger.open_rows("run-1") == 3


def test_skip_counts_per_reason(ledger: Ledger) -> None:
    """skip_counts() counts skipped rows by kind, and only skipped rows."""
    rows = [
        skipped(2, "invalid"),
        skipped(3, "invalid"),
        skipped(4, "duplicate"),
        skipped(5, "budget"),
        skipped(6, "cooldown"),
        PlannedRow(number=7, state=S.SKIPPED),
        planned(8),
    ]
    make_run(ledger, rows)
    assert ledger.skip_counts("run-1") == {
        "invalid": 2,
        "duplicate": 1,
        "budget": 1,
        "cooldown": 1,
        "unknown": 1,
    }


def test_status_is_recorded_only_for_submitted_rows(ledger: Ledger) -> None:
    """record_status updates a submitted row's status; status_counts counts submitted rows."""
    planned_run(ledger, 5)
    for n in (2, 3, 4):
        assert ledger.move("run-1", n, S.SUBMITTING)
        assert ledger.move("run-1", n, S.SUBMITTED, send_id=f"snd_{n}", status="pending")
    ledger.record_status("run-1", 2, "delivered")
    ledger.record_status("run-1", 3, "failed", error="address undeliverable")
    ledger.record_status("run-1", 5, "delivered")  # still planned: ignored
    assert ledger.status_counts("run-1") == {"delivered": 1, "failed": 1, "pending": 1}
    failed = ledger.row("run-1", 3)
    assert failed is not None
    assert failed.status == "failed"
    assert failed.error == "address undeliverable"
    assert_utc(failed.status_at)
    untouched = ledger.row("run-1", 5)
    assert untouched is not None
    assert untouched.status is None
    assert untouched.status_at is None


def test_timestamps_come_back_as_aware_utc(ledger: Ledger) -> None:
    """Every time the ledger returns is timezone-aware UTC and the moment it was written."""
    before = datetime.now(UTC)
    run = make_run(ledger, [planned(2)])
    assert ledger.move("run-1", 2, S.SUBMITTING)
    assert ledger.move("run-1", 2, S.SUBMITTED, send_id="snd_1", status="pending")
    after = datetime.now(UTC)
    row = ledger.row("run-1", 2)
    assert row is not None
    for moment in (run.created_at, row.updated_at, row.submitted_at, row.status_at):
        assert_utc(moment)
        assert before <= moment <= after  # type: ignore[operator]


def test_naive_times_are_refused(ledger: Ledger) -> None:
    """Asking with a naive datetime is an error, not a silent guess at its zone."""
    with pytest.raises(sa.exc.StatementError, match="naive datetime"):
        ledger.recently_gifted(["a@example.com"], since=datetime.now())


# --- transitions ----------------------------------------------------------------------------


def test_move_applies_exactly_the_allowed_transitions(ledger: Ledger) -> None:
    """From every state to every state, move() succeeds exactly when the table allows it."""
    pairs = list(itertools.product(RowState, RowState))
    rows = [planned(n) for n in range(2, len(pairs) + 2)]
    make_run(ledger, rows)
    for (current, _), row in zip(pairs, rows, strict=True):
        put_in(ledger, "run-1", row.number, current)
    for (current, target), row in zip(pairs, rows, strict=True):
        moved = ledger.move("run-1", row.number, target, send_id="snd_x", error="e")
        assert moved is (current in TRANSITIONS[target]), (current, target)
        after = ledger.row("run-1", row.number)
        assert after is not None
        assert after.state is (target if moved else current), (current, target)


def test_a_refused_move_changes_nothing(ledger: Ledger) -> None:
    """A move from a wrong state leaves the whole row as it was."""
    make_run(ledger, [planned(2)])
    put_in(ledger, "run-1", 2, S.SUBMITTED)
    before = ledger.row("run-1", 2)
    assert not ledger.move("run-1", 2, S.REJECTED, error="late 422", count_attempt=True)
    assert not ledger.move("run-1", 2, S.SUBMITTING)
    assert ledger.row("run-1", 2) == before


def test_a_move_of_a_missing_row_is_refused(ledger: Ledger) -> None:
    """Moving a row that does not exist (or another run's) returns False."""
    make_run(ledger, [planned(2)])
    assert not ledger.move("run-1", 3, S.SUBMITTING)
    assert not ledger.move("run-2", 2, S.SUBMITTING)


def test_move_with_owner_only_for_the_lease_holder(ledger: Ledger) -> None:
    """With owner=, only the worker holding the row's lease can move it."""
    planned_run(ledger, 1)
    holder, other = new_owner(), new_owner()
    assert [r.number for r in ledger.claim("run-1", holder, lease_seconds=LONG_LEASE)] == [2]
    assert not ledger.move("run-1", 2, S.SUBMITTING, owner=other)
    assert ledger.row("run-1", 2).state is S.PLANNED  # type: ignore[union-attr]
    assert ledger.move("run-1", 2, S.SUBMITTING, owner=holder)
    row = ledger.row("run-1", 2)
    assert row is not None
    assert row.state is S.SUBMITTING
    assert row.lease_owner == holder  # still in flight: still held
    assert not ledger.move("run-1", 2, S.SUBMITTED, owner=other, send_id="snd_1")
    assert ledger.move("run-1", 2, S.SUBMITTED, owner=holder, send_id="snd_1")
    row = ledger.row("run-1", 2)
    assert row is not None
    assert row.state is S.SUBMITTED
    assert row.lease_owner is None  # finished rows hold no lease


def test_move_with_owner_is_refused_on_an_unleased_row(ledger: Ledger) -> None:
    """A worker cannot move a row it never claimed, even from the right state."""
    planned_run(ledger, 1)
    assert not ledger.move("run-1", 2, S.SUBMITTING, owner=new_owner())
    assert ledger.move("run-1", 2, S.SUBMITTING)  # settle-style, no owner


def test_move_records_the_outcome(ledger: Ledger) -> None:
    """Each target keeps what matters: send id and status, the error, attempts, the lease."""
    planned_run(ledger, 4)
    owner = new_owner()
    claim_all(ledger, "run-1", owner)

    assert ledger.move("run-1", 2, S.SUBMITTING, owner=owner, count_attempt=True)
    assert ledger.move("run-1", 2, S.PLANNED, owner=owner, error="HTTP 429", release=True)
    row = ledger.row("run-1", 2)
    assert row is not None
    assert (row.state, row.error, row.attempts, row.lease_owner) == (S.PLANNED, "HTTP 429", 1, None)

    assert ledger.move("run-1", 3, S.SUBMITTING, owner=owner, count_attempt=True)
    assert ledger.count_attempt("run-1", 3, owner)
    assert not ledger.count_attempt("run-1", 3, new_owner())
    assert ledger.move("run-1", 3, S.UNKNOWN, owner=owner, error="no readable reply")
    row = ledger.row("run-1", 3)
    assert row is not None
    assert (row.state, row.error, row.attempts, row.lease_owner) == (
        S.UNKNOWN,
        "no readable reply",
        2,
        None,
    )
    assert not ledger.count_attempt("run-1", 3, owner)  # no longer submitting
    # Settled as sent: the error goes, the send id is recorded.
    assert ledger.move("run-1", 3, S.SUBMITTED, send_id="snd_3", status="pending")
    row = ledger.row("run-1", 3)
    assert row is not None
    assert (row.state, row.send_id, row.status, row.error) == (
        S.SUBMITTED,
        "snd_3",
        "pending",
        None,
    )

    assert ledger.move("run-1", 4, S.SUBMITTING, owner=owner)
    assert ledger.move("run-1", 4, S.REJECTED, owner=owner, error="HTTP 422: bad email")
    row = ledger.row("run-1", 4)
    assert row is not None
    assert (row.state, row.error, row.send_id) == (S.REJECTED, "HTTP 422: bad email", None)


def test_back_to_planned_without_an_error_clears_the_old_one(ledger: Ledger) -> None:
    """An unknown row settled as not sent is planned again with no stale error."""
    planned_run(ledger, 1)
    put_in(ledger, "run-1", 2, S.UNKNOWN)
    assert ledger.row("run-1", 2).error == "why"  # type: ignore[union-attr]
    assert ledger.move("run-1", 2, S.PLANNED)
    row = ledger.row("run-1", 2)
    assert row is not None
    assert (row.state, row.error) == (S.PLANNED, None)


def test_a_wrong_settlement_is_corrected_only_while_it_holds_the_corrected_id(
    ledger: Ledger,
) -> None:
    """Settled as sent by the wrong id: corrected to the right one, then to "not sent after
    all" (planned again, for the next resume). A correction naming an id the row no longer
    holds (a second person, a stale screen) changes nothing."""
    planned_run(ledger, 1)
    put_in(ledger, "run-1", 2, S.UNKNOWN)
    assert ledger.move("run-1", 2, S.SUBMITTED, send_id="snd_bob", status="pending")

    assert ledger.correct_settlement("run-1", 2, recorded_send_id="snd_bob", send_id="snd_ann")
    assert not ledger.correct_settlement(
        "run-1", 2, recorded_send_id="snd_bob", send_id="snd_other"
    )
    row = ledger.row("run-1", 2)
    assert row is not None
    assert (row.state, row.send_id, row.status) == (S.SUBMITTED, "snd_ann", None)

    assert ledger.correct_settlement("run-1", 2, recorded_send_id="snd_ann", send_id=None)
    row = ledger.row("run-1", 2)
    assert row is not None
    assert (row.state, row.send_id, row.lease_owner) == (S.PLANNED, None, None)
    # A planned row is no settlement to correct.
    assert not ledger.correct_settlement("run-1", 2, recorded_send_id="snd_ann", send_id="x")


def test_skip_planned_for_gift_skips_only_planned_rows_of_that_gift(ledger: Ledger) -> None:
    """A gift that left the catalog skips its untried rows, and nothing that may be sent."""
    rows = [
        planned(2, gift_id="gft_gone"),
        planned(3, gift_id="gft_gone"),
        planned(4, gift_id="gft_gone"),
        planned(5, gift_id="gft_gone"),
        planned(6, gift_id="gft_kept"),
        skipped(7, "invalid", gift_id="gft_gone"),
    ]
    make_run(ledger, rows)
    make_run(ledger, [planned(2, run_id="other", gift_id="gft_gone")], "other")
    put_in(ledger, "run-1", 3, S.SUBMITTING)
    put_in(ledger, "run-1", 4, S.SUBMITTED)
    owner = new_owner()
    assert [r.number for r in ledger.claim("run-1", owner, lease_seconds=LONG_LEASE)] == [2]

    assert ledger.skip_planned_for_gift("run-1", "gft_gone", "gft_gone left the catalog") == 2

    states = {r.number: (r.state, r.skip_kind) for r in ledger.rows("run-1")}
    assert states == {
        2: (S.SKIPPED, "gift_gone"),
        3: (S.SUBMITTING, None),
        4: (S.SUBMITTED, None),
        5: (S.SKIPPED, "gift_gone"),
        6: (S.PLANNED, None),
        7: (S.SKIPPED, "invalid"),
    }
    gone = ledger.row("run-1", 2)
    assert gone is not None
    assert gone.error == "gft_gone left the catalog"
    assert gone.lease_owner is None
    assert ledger.row("other", 2).state is S.PLANNED  # type: ignore[union-attr]
    assert ledger.skip_planned_for_gift("run-1", "gft_gone", "again") == 0


# --- claims and leases ----------------------------------------------------------------------


def test_claim_leases_open_rows_in_row_order(ledger: Ledger) -> None:
    """claim() gives up to ``limit`` open rows, lowest numbers first, leased to the owner."""
    make_run(ledger, [planned(2), skipped(3), planned(4), planned(5), planned(6), planned(7)])
    put_in(ledger, "run-1", 5, S.SUBMITTED)
    put_in(ledger, "run-1", 6, S.SUBMITTING)
    owner = new_owner()
    first = ledger.claim("run-1", owner, lease_seconds=LONG_LEASE, limit=2)
    assert [r.number for r in first] == [2, 4]
    assert all(r.lease_owner == owner for r in first)
    rest = ledger.claim("run-1", owner, lease_seconds=LONG_LEASE, limit=10)
    assert [(r.number, r.state) for r in rest] == [(6, S.SUBMITTING), (7, S.PLANNED)]
    assert ledger.claim("run-1", owner, lease_seconds=LONG_LEASE, limit=10) == []


def test_claim_gives_each_row_to_one_owner(ledger: Ledger) -> None:
    """Two owners claiming in turn until nothing is left get every open row, none twice."""
    make_run(ledger, [skipped(n) if n % 7 == 0 else planned(n) for n in range(2, 120)])
    put_in(ledger, "run-1", 10, S.SUBMITTED)
    open_numbers = {r.number for r in ledger.rows("run-1", states=[S.PLANNED, S.SUBMITTING])}
    a, b = new_owner(), new_owner()
    got: dict[str, list[int]] = {a: [], b: []}
    empty_turns = 0
    for owner in itertools.cycle([a, b]):
        rows = ledger.claim("run-1", owner, lease_seconds=LONG_LEASE, limit=3)
        got[owner].extend(r.number for r in rows)
        empty_turns = 0 if rows else empty_turns + 1
        if empty_turns == 2:
            break
    assert set(got[a]).isdisjoint(got[b])
    assert sorted(got[a] + got[b]) == sorted(open_numbers)
    assert got[a]
    assert got[b]


def test_a_leased_row_is_not_claimable_until_the_lease_expires(ledger: Ledger) -> None:
    """Another worker gets a leased row only once its lease has run out."""
    planned_run(ledger, 1)
    first, second = new_owner(), new_owner()
    assert [r.number for r in ledger.claim("run-1", first, lease_seconds=LONG_LEASE)] == [2]
    assert ledger.claim("run-1", second, lease_seconds=LONG_LEASE) == []
    # The lease runs out: renewed to a moment already past on the database's clock, which
    # is what waiting would do, without a test that depends on how long a sleep takes.
    ledger.renew("run-1", first, [2], lease_seconds=-1)
    taken = ledger.claim("run-1", second, lease_seconds=LONG_LEASE)
    assert [(r.number, r.lease_owner) for r in taken] == [(2, second)]
    assert not ledger.move("run-1", 2, S.SUBMITTING, owner=first)
    assert ledger.move("run-1", 2, S.SUBMITTING, owner=second)


def test_renew_keeps_the_lease_for_its_owner_only(ledger: Ledger) -> None:
    """Renewing extends the holder's lease; another owner's renewal does nothing."""
    planned_run(ledger, 2)
    holder, other = new_owner(), new_owner()
    # Leases that have already run out (a negative lease: no waiting for them to lapse).
    assert len(ledger.claim("run-1", holder, lease_seconds=-1, limit=2)) == 2
    ledger.renew("run-1", holder, [2], lease_seconds=LONG_LEASE)
    ledger.renew("run-1", other, [3], lease_seconds=LONG_LEASE)
    ledger.renew("run-1", holder, [], lease_seconds=LONG_LEASE)
    assert [r.number for r in ledger.claim("run-1", other, lease_seconds=LONG_LEASE, limit=5)] == [
        3
    ]


def test_release_gives_a_row_back(ledger: Ledger) -> None:
    """A released row keeps its state and can be claimed again at once; only by its holder."""
    planned_run(ledger, 1)
    holder, other = new_owner(), new_owner()
    ledger.claim("run-1", holder, lease_seconds=LONG_LEASE)
    ledger.release("run-1", 2, other)
    assert ledger.claim("run-1", other, lease_seconds=LONG_LEASE) == []
    ledger.release("run-1", 2, holder)
    assert [r.number for r in ledger.claim("run-1", other, lease_seconds=LONG_LEASE)] == [2]
    assert ledger.row("run-1", 2).state is S.PLANNED  # type: ignore[union-attr]


def test_release_dead_leases_frees_only_a_dead_local_owners_rows(ledger: Ledger) -> None:
    """Rows leased by a process on this host that has exited are freed at once; others wait."""
    planned_run(ledger, 8)
    dead = f"{new_owner().partition(':')[0]}:{dead_pid()}:x"
    live = new_owner()
    elsewhere = "some-other-host.example:1:x"
    for owner, count in ((dead, 3), (live, 3), (elsewhere, 2)):
        assert len(ledger.claim("run-1", owner, lease_seconds=LONG_LEASE, limit=count)) == count
    newcomer = new_owner()
    assert ledger.claim("run-1", newcomer, lease_seconds=LONG_LEASE, limit=10) == []

    assert ledger.release_dead_leases("run-1") == 3

    freed = ledger.claim("run-1", newcomer, lease_seconds=LONG_LEASE, limit=10)
    assert [r.number for r in freed] == [2, 3, 4]
    assert ledger.release_dead_leases("run-1") == 0
    assert ledger.claim("run-1", new_owner(), lease_seconds=LONG_LEASE, limit=10) == []


def test_release_dead_leases_ignores_finished_rows_and_expired_leases(ledger: Ledger) -> None:
    """Nothing to free when the dead owner's rows are done or already claimable."""
    planned_run(ledger, 2)
    dead = f"{new_owner().partition(':')[0]}:{dead_pid()}:x"
    ledger.claim("run-1", dead, lease_seconds=LONG_LEASE)
    assert ledger.move("run-1", 2, S.SUBMITTING, owner=dead)
    assert ledger.move("run-1", 2, S.SUBMITTED, owner=dead, send_id="snd")
    ledger.claim("run-1", dead, lease_seconds=-1)  # already lapsed
    assert ledger.release_dead_leases("run-1") == 0
    assert [r.number for r in ledger.claim("run-1", new_owner(), lease_seconds=1)] == [3]


def test_concurrent_threads_claim_every_row_exactly_once(ledger_url: str) -> None:
    """Four workers, each with its own Ledger, claiming one row at a time: no row twice."""
    with Ledger(ledger_url) as setup:
        numbers = planned_run(setup, 400)
    claimed: list[list[int]] = [[] for _ in range(4)]
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def work(index: int) -> None:
        try:
            with Ledger(ledger_url) as mine:
                owner = new_owner()
                start.wait()
                claimed[index] = claim_all(mine, "run-1", owner)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    everything = [n for mine in claimed for n in mine]
    assert Counter(everything) == Counter(numbers)


CLAIMER = textwrap.dedent(
    """
    import sys
    from sendoso.ledger import Ledger, new_owner

    ledger = Ledger(sys.argv[1])
    owner = new_owner()
    print("ready", flush=True)
    sys.stdin.readline()
    while rows := ledger.claim(sys.argv[2], owner, lease_seconds=600, limit=1):
        print(rows[0].number, flush=True)
    ledger.close()
    """
)


def test_concurrent_processes_claim_every_row_exactly_once(ledger_url: str) -> None:
    """Two separate processes claiming from one run never get the same row."""
    with Ledger(ledger_url) as setup:
        numbers = planned_run(setup, 400)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CLAIMER, ledger_url, "run-1"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready"
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        outputs = [proc.communicate(timeout=120) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
    per_process = [[int(line) for line in out.split()] for out, _ in outputs]
    assert Counter(n for mine in per_process for n in mine) == Counter(numbers)


# --- history and money ----------------------------------------------------------------------


def test_recently_gifted_counts_sends_that_may_exist(ledger: Ledger) -> None:
    """Submitted, in-flight and unknown sends count for the cool-down; others do not."""
    people = {
        S.SUBMITTED: "sent@example.com",
        S.SUBMITTING: "inflight@example.com",
        S.UNKNOWN: "maybe@example.com",
        S.REJECTED: "rejected@example.com",
        S.PLANNED: "planned@example.com",
    }
    rows = [planned(n, recipient=r) for n, r in enumerate(people.values(), start=2)]
    make_run(ledger, [*rows, PlannedRow(number=9, state=S.SKIPPED, recipient="skip@example.com")])
    for row, state in zip(rows, people, strict=True):
        put_in(ledger, "run-1", row.number, state)
    # A row that was tried and certainly not taken does not count either.
    make_run(ledger, [planned(2, run_id="run-2", recipient="retried@example.com")], "run-2")
    put_in(ledger, "run-2", 2, S.SUBMITTING)
    assert ledger.move("run-2", 2, S.PLANNED)

    asked = [*people.values(), "skip@example.com", "retried@example.com", "new@example.com"]
    day_ago = datetime.now(UTC) - timedelta(days=1)
    assert ledger.recently_gifted(asked, since=day_ago) == {
        "sent@example.com",
        "inflight@example.com",
        "maybe@example.com",
    }
    assert ledger.recently_gifted([], since=day_ago) == set()


def test_recently_gifted_respects_since_and_exclude_run(ledger: Ledger) -> None:
    """Only sends at or after ``since`` count, and the excluded run's sends never do."""
    make_run(ledger, [planned(2, recipient="a@example.com")], "earlier")
    make_run(
        ledger,
        [planned(2, run_id="now", recipient="a@example.com"), planned(3, run_id="now")],
        "now",
    )
    put_in(ledger, "earlier", 2, S.SUBMITTED)
    put_in(ledger, "now", 2, S.SUBMITTED)
    put_in(ledger, "now", 3, S.SUBMITTED)
    week_ago = datetime.now(UTC) - timedelta(days=7)
    later = datetime.now(UTC) + timedelta(minutes=5)
    both = ["a@example.com", "person3@example.com"]
    assert ledger.recently_gifted(both, since=week_ago) == set(both)
    assert ledger.recently_gifted(both, since=later) == set()
    assert ledger.recently_gifted(both, since=week_ago, exclude_run="now") == {"a@example.com"}
    assert ledger.recently_gifted(both, since=week_ago, exclude_run="earlier") == set(both)


def test_recently_gifted_handles_many_recipients(ledger: Ledger) -> None:
    """Asking about more recipients than fit in one query still finds each one."""
    make_run(ledger, [planned(n) for n in range(2, 1202)])
    gifted = list(range(2, 1202, 3))
    for n in gifted:
        put_in(ledger, "run-1", n, S.SUBMITTED)
    asked = [f"person{n}@example.com" for n in range(2, 1202)]
    found = ledger.recently_gifted(asked, since=datetime.now(UTC) - timedelta(hours=1))
    assert found == {f"person{n}@example.com" for n in gifted}


def test_spend_sums_per_state_and_currency_exactly(ledger: Ledger) -> None:
    """spend() adds estimates as Decimal per state and currency, over rows that may cost."""
    cents = {"USD": (Decimal("0.10"), Decimal("0.20"))}
    mixed = {"GBP": (Decimal("60.00"), Decimal("64.50")), "USD": (Decimal("10"), Decimal("15"))}
    rows = [planned(n, estimate=cents) for n in range(2, 12)]  # ten rows of 0.10-0.20 USD
    rows += [planned(12, estimate=mixed), planned(13, estimate=mixed), planned(14)]
    rows += [planned(n, estimate=cents) for n in range(15, 19)]
    make_run(ledger, rows)
    for n in (15, 16):
        put_in(ledger, "run-1", n, S.SUBMITTED)
    put_in(ledger, "run-1", 17, S.REJECTED)  # costs nothing
    put_in(ledger, "run-1", 18, S.SKIPPED)  # costs nothing
    put_in(ledger, "run-1", 13, S.UNKNOWN)
    spend = ledger.spend("run-1")
    assert spend == {
        S.PLANNED: {
            "USD": (Decimal("1.00") + Decimal("10"), Decimal("2.00") + Decimal("15")),
            "GBP": (Decimal("60.00"), Decimal("64.50")),
        },
        S.SUBMITTED: {"USD": (Decimal("0.20"), Decimal("0.40"))},
        S.UNKNOWN: {"GBP": (Decimal("60.00"), Decimal("64.50")), "USD": (Decimal(10), Decimal(15))},
    }
    assert str(spend[S.PLANNED]["USD"][0]) == "11.00"
    assert ledger.spend("missing") == {}


def test_an_owner_in_another_pid_namespace_is_never_taken_for_dead(ledger: Ledger) -> None:
    """Same hostname, other PID namespace (a container): its pids mean nothing here."""
    planned_run(ledger, 2)
    container = f"{socket.gethostname()}#1:{dead_pid()}:x"
    ledger.claim("run-1", container, lease_seconds=LONG_LEASE)
    assert ledger.release_dead_leases("run-1") == 0


def test_a_failed_statement_does_not_show_recipients_data(ledger: Ledger) -> None:
    """A database error's text carries no statement parameters (names, emails, addresses)."""

    def plan_one_row_twice() -> None:
        with ledger.new_run(RunInfo("run-1", BASE_URL)) as writer:
            writer.add([planned(2, recipient="secret.person@example.com")])
            writer.add([planned(2, recipient="secret.person@example.com")])

    with pytest.raises(sa.exc.IntegrityError) as raised:
        plan_one_row_twice()
    assert "secret.person" not in str(raised.value)


def test_long_values_from_the_api_fit_on_every_database(ledger: Ledger) -> None:
    """A send id or status longer than any limit we might guess is stored as it is."""
    planned_run(ledger, 1)
    owner = new_owner()
    ledger.claim("run-1", owner, lease_seconds=LONG_LEASE)
    assert ledger.move("run-1", 2, S.SUBMITTING, owner=owner)
    long_id, long_status = "snd_" + "x" * 500, "awaiting_" + "y" * 200
    assert ledger.move("run-1", 2, S.SUBMITTED, send_id=long_id, status=long_status)
    row = ledger.row("run-1", 2)
    assert row is not None
    assert (row.send_id, row.status) == (long_id, long_status)


def test_a_new_sqlite_ledger_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    """It holds recipients' names and addresses: mode 0600, its WAL file too."""
    import stat

    path = tmp_path / "private" / "ledger.db"
    with Ledger(f"sqlite:///{path}") as ledger:
        planned_run(ledger, 1)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        wal = path.with_name("ledger.db-wal")
        assert not wal.exists() or stat.S_IMODE(wal.stat().st_mode) == 0o600


def test_a_ledger_of_schema_1_is_migrated_on_open(tmp_path: Path) -> None:
    """A ledger written before runs recorded their approval gains the column, keeps its
    runs, and says schema 2."""
    import sqlite3

    path = tmp_path / "old.db"
    with Ledger(f"sqlite:///{path}") as ledger:
        planned_run(ledger, 2)
    db = sqlite3.connect(path)
    db.execute("ALTER TABLE sendoso_runs DROP COLUMN confirmed_at")
    db.execute("UPDATE sendoso_schema SET version = 1")
    db.commit()
    db.close()

    with Ledger(f"sqlite:///{path}") as ledger:
        assert ledger.schema_version == SCHEMA_VERSION
        assert ledger.require_run("run-1").confirmed_at is None
        ledger.confirm("run-1")
        assert ledger.require_run("run-1").confirmed_at is not None
        assert ledger.counts("run-1") == {S.PLANNED: 2}


def test_a_ledger_of_schema_2_is_migrated_to_3_with_an_approvals_table(tmp_path: Path) -> None:
    """A ledger from before the MCP server gains the approvals table, keeps its runs and rows,
    and says the current schema."""
    import sqlite3

    path = tmp_path / "v2.db"
    with Ledger(f"sqlite:///{path}") as ledger:
        planned_run(ledger, 2)
        ledger.confirm("run-1")
    db = sqlite3.connect(path)
    db.execute("DROP TABLE sendoso_approvals")
    db.execute("UPDATE sendoso_schema SET version = 2")
    db.commit()
    db.close()

    with Ledger(f"sqlite:///{path}") as ledger:
        assert ledger.schema_version == SCHEMA_VERSION
        assert ledger.counts("run-1") == {S.PLANNED: 2}
        assert ledger.require_run("run-1").confirmed_at is not None
        assert ledger.approvals() == []
        recorded, new = ledger.add_approval(
            Approval(approval_id="apr_1", run_id="run-1", send_key="k1", request={"a": 1})
        )
        assert new
        assert recorded.state is ApprovalState.PENDING
        assert_utc(recorded.created_at)


def _mcp_run(ledger: Ledger, run_id: str = "mcp-1") -> None:
    ledger.ensure_run(RunInfo(run_id=run_id, base_url=BASE_URL, source="mcp"))


class _OverCap(Exception):
    pass


def test_rows_added_one_at_a_time_are_admitted_atomically(ledger: Ledger) -> None:
    """Eight threads add a $10 send each under a $50 cap read inside the adding
    transaction: exactly five get in, numbered 1 to 5, and the run counts them."""
    _mcp_run(ledger)
    cost: Totals = {"USD": (Decimal(10), Decimal(10))}

    def admit(view: SendAdmission) -> None:
        spent = view.spend(source="mcp").get("USD", (Decimal(0), Decimal(0)))[1]
        if spent + 10 > 50:
            raise _OverCap

    added: list[int] = []
    refused: list[int] = []

    def add(i: int) -> None:
        row = replace(planned(0, run_id="mcp-1", estimate=cost), send_key=f"mcp_{i}")
        try:
            added.append(
                ledger.add_row(
                    "mcp-1", row, owner=new_owner(), lease_seconds=LONG_LEASE, admit=admit
                ).number
            )
        except _OverCap:
            refused.append(i)

    threads = [threading.Thread(target=add, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(added) == [1, 2, 3, 4, 5]
    assert len(refused) == 3
    assert ledger.require_run("mcp-1").rows_total == 5
    # A batch run's spend is not the MCP server's.
    make_run(ledger, [planned(2, estimate=cost)])
    with ledger._engine.connect() as conn:
        view = SendAdmission(conn, "mcp-1")
        assert view.spend(source="mcp")["USD"][1] == 50
        assert view.spend(source="batch")["USD"][1] == 10


def test_an_approval_is_decided_once(ledger: Ledger) -> None:
    """The same key is held once; a rejected approval cannot become a row, and the failed
    attempt adds nothing."""
    _mcp_run(ledger)
    first, new = ledger.add_approval(
        Approval(approval_id="apr_1", run_id="mcp-1", send_key="mcp_k", request={"x": 1})
    )
    again, again_new = ledger.add_approval(
        Approval(approval_id="apr_2", run_id="mcp-1", send_key="mcp_k", request={"x": 1})
    )
    assert new
    assert not again_new
    assert again.approval_id == first.approval_id == "apr_1"
    assert [a.approval_id for a in ledger.approvals(state=ApprovalState.PENDING)] == ["apr_1"]
    rejected = ledger.reject_approval("apr_1", "no")
    assert (rejected.state, rejected.note) == (ApprovalState.REJECTED, "no")
    with pytest.raises(LedgerError, match="already rejected"):
        ledger.reject_approval("apr_1", None)
    with pytest.raises(LedgerError, match="no longer pending"):
        ledger.add_row(
            "mcp-1",
            replace(planned(0, run_id="mcp-1"), send_key="mcp_k"),
            owner=new_owner(),
            lease_seconds=LONG_LEASE,
            approval_id="apr_1",
        )
    assert ledger.counts("mcp-1") == {}
    with pytest.raises(LedgerError, match="no approval"):
        ledger.reject_approval("apr_nope", None)


def test_claim_row_takes_a_dead_owners_row_but_not_a_live_ones(ledger: Ledger) -> None:
    _mcp_run(ledger)
    live = new_owner()
    row = ledger.add_row("mcp-1", planned(0, run_id="mcp-1"), owner=live, lease_seconds=LONG_LEASE)
    assert row.lease_owner == live
    assert ledger.claim_row("mcp-1", row.number, new_owner(), lease_seconds=LONG_LEASE) is None
    dead = f"{live.split(':')[0]}:{dead_pid()}:deadbeef"
    assert ledger.claim_row("mcp-1", row.number, live, lease_seconds=LONG_LEASE) is not None
    ledger.release("mcp-1", row.number, live)
    assert ledger.claim_row("mcp-1", row.number, dead, lease_seconds=LONG_LEASE) is not None
    taken = ledger.claim_row("mcp-1", row.number, live, lease_seconds=LONG_LEASE)
    assert taken is not None
    assert taken.lease_owner == live
    assert ledger.row_by_key(row.send_key or "") == ledger.row("mcp-1", row.number)


def test_a_ledger_of_schema_3_is_migrated_to_4_with_an_index_on_dedupe_keys(
    ledger_url: str,
) -> None:
    """A ledger from before the cross-run duplicate check had an index of its own gains it,
    keeps its runs and rows, and still finds a send made before the upgrade."""
    with Ledger(ledger_url) as ledger:
        numbers = planned_run(ledger, 3, run_id="earlier")
        ledger.confirm("earlier")
        put_in(ledger, "earlier", numbers[0], S.SUBMITTED)
    engine = sa.create_engine(ledger_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("DROP INDEX ix_sendoso_rows_dedupe_key"))
            conn.execute(sa.text("UPDATE sendoso_schema SET version = 3"))
        with engine.connect() as conn:
            assert "ix_sendoso_rows_dedupe_key" not in _leading_columns(conn)
    finally:
        engine.dispose()

    with Ledger(ledger_url) as ledger:
        assert ledger.schema_version == SCHEMA_VERSION
        assert ledger.counts("earlier") == {S.SUBMITTED: 1, S.PLANNED: 2}
        assert ledger.require_run("earlier").confirmed_at is not None
        with ledger._engine.connect() as conn:
            assert _leading_columns(conn)["ix_sendoso_rows_dedupe_key"] == "dedupe_key"
        key = planned(numbers[0], run_id="earlier").dedupe_key or ""
        found = ledger.sent_elsewhere([key], run_id="later", base_url=BASE_URL)
        assert found == {key: ("earlier", numbers[0])}
    with Ledger(ledger_url) as again:
        assert again.schema_version == SCHEMA_VERSION


def _leading_columns(conn: sa.Connection) -> dict[str, str]:
    """Each index on sendoso_rows (its primary key's too) and the column it is sorted by
    first."""
    inspector = sa.inspect(conn)
    leading = {
        str(index["name"]): str(index["column_names"][0])
        for index in inspector.get_indexes("sendoso_rows")
    }
    primary = inspector.get_pk_constraint("sendoso_rows")
    if primary.get("name"):
        leading[str(primary["name"])] = primary["constrained_columns"][0]
    return leading


def _statements(ledger: Ledger, call: Callable[[], object]) -> list[tuple[str, Any]]:
    """The SQL ``call`` sends to the database, as sent (IN lists expanded), with its
    parameters."""
    sent: list[tuple[str, Any]] = []

    def capture(*args: Any) -> None:
        _conn, _cursor, statement, parameters, _context, _many = args
        sent.append((statement, parameters))

    sa.event.listen(ledger._engine, "before_cursor_execute", capture)
    try:
        call()
    finally:
        sa.event.remove(ledger._engine, "before_cursor_execute", capture)
    return sent


def _rows_searched_by(ledger: Ledger, statement: str, parameters: Any) -> set[str]:
    """The columns by which the database would look up sendoso_rows to run ``statement``
    (the leading column of each index it searches), failing if it would read the whole
    table. On PostgreSQL sequential scans are priced out first, so that the plan says whether
    an index *can* serve the statement, however few rows the test's table holds."""
    with ledger._engine.connect() as conn:
        if ledger.dialect == "sqlite":
            plan = "\n".join(
                str(step[-1])
                for step in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
            )
            assert not re.search(r"^SCAN sendoso_rows\b", plan, re.MULTILINE), plan
            # "SEARCH t USING INDEX i (a=? AND b>?)": a is the column the search leads with.
            leads = re.findall(
                r"^SEARCH sendoso_rows USING (?:COVERING )?(?:INDEX \S+|PRIMARY KEY) \((\w+)",
                plan,
                re.MULTILINE,
            )
            assert leads, plan
            return set(leads)
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        plan = "\n".join(
            str(line[0]) for line in conn.exec_driver_sql(f"EXPLAIN {statement}", parameters)
        )
        assert "Seq Scan on sendoso_rows" not in plan, plan
        leading = _leading_columns(conn)
        # A plain index scan may walk a whole index filtering on a later column: only the
        # index's first column makes it a search.
        used = re.findall(
            r"(?:Index Scan|Index Only Scan|Bitmap Index Scan) (?:using |on )(\S+)", plan
        )
        searched = {leading[name] for name in used if name in leading}
        assert searched, plan
        return searched


def _history(ledger: Ledger) -> None:
    """An earlier run to the same host that sent some of its rows, and a run still to send."""
    earlier = planned_run(ledger, 20, run_id="earlier")
    ledger.confirm("earlier")
    for number in earlier[:10]:
        put_in(ledger, "earlier", number, S.SUBMITTED)
    make_run(ledger, [planned(n, run_id="later") for n in range(100, 103)], "later")
    ledger.confirm("later")


def _one(statements: list[tuple[str, Any]], marker: str) -> tuple[str, Any]:
    (found,) = [(sql, params) for sql, params in statements if marker in sql]
    return found


def test_the_duplicate_check_before_each_send_searches_an_index_by_dedupe_key(
    ledger: Ledger,
) -> None:
    """Regression: the cross-run duplicate check begin_send makes in every send's transaction
    read every row of the ledger (no index leads with the dedupe key), so each send got
    slower as the ledger's history grew. The cool-down check beside it searches by
    recipient."""
    _history(ledger)
    owner = new_owner()
    (row,) = ledger.claim("later", owner, lease_seconds=LONG_LEASE)
    since = datetime.now(UTC) - timedelta(days=30)
    outcome: list[RowState | None] = []
    statements = _statements(
        ledger,
        lambda: outcome.append(
            ledger.begin_send(
                "later",
                row.number,
                owner,
                recipient=row.recipient,
                cooldown_since=since,
                dedupe_key=row.dedupe_key,
                base_url=BASE_URL,
            )
        ),
    )
    assert outcome == [S.SUBMITTING]
    assert _rows_searched_by(ledger, *_one(statements, "dedupe_key IN")) == {"dedupe_key"}
    assert _rows_searched_by(ledger, *_one(statements, "submitted_at >=")) == {"recipient"}


def test_the_duplicate_check_while_planning_searches_an_index_by_dedupe_key(
    ledger: Ledger,
) -> None:
    """Regression: the plan-time lookup of keys other runs sent walked every run (or every
    row) instead of finding the keys."""
    _history(ledger)
    keys = [planned(n).dedupe_key or "" for n in (2, 3, 50)]
    found: list[dict[str, tuple[str, int]]] = []
    statements = _statements(
        ledger,
        lambda: found.append(ledger.sent_elsewhere(keys, run_id="later", base_url=BASE_URL)),
    )
    assert found == [{keys[0]: ("earlier", 2), keys[1]: ("earlier", 3)}]
    assert _rows_searched_by(ledger, *_one(statements, "dedupe_key IN")) == {"dedupe_key"}


def test_the_mcp_admission_checks_search_indexes(ledger: Ledger) -> None:
    """Regression: the MCP server's same-gift refusal (SendAdmission.sent_before) read every
    row of the ledger for each send it admitted; its cool-down check searches by
    recipient."""
    _history(ledger)
    answers: list[object] = []

    def admit(admission: SendAdmission) -> None:
        answers.append(admission.sent_before(planned(2).dedupe_key or "", base_url=BASE_URL))
        since = datetime.now(UTC) - timedelta(days=30)
        answers.append(admission.recently_gifted("person2@example.com", since=since))

    statements = _statements(ledger, lambda: ledger.preview_admission("later", admit))
    assert answers == [("earlier", 2), True]
    assert _rows_searched_by(ledger, *_one(statements, "dedupe_key IN")) == {"dedupe_key"}
    assert _rows_searched_by(ledger, *_one(statements, "submitted_at >=")) == {"recipient"}
