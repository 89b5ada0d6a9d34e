"""The batch runner against the real sandbox: exactly once, under faults, and its run-wide
recovery (a gift that is gone, a failing API, refused credentials)."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import pytest
from tests.conftest import Sandbox

from sendoso import AsyncSendoso
from sendoso.batch import (
    BatchRunner,
    BatchSpec,
    Ledger,
    RowState,
    RunEnd,
    RunResult,
    prepare_run,
    report_record,
)
from sendoso.errors import AuthenticationError, Param, Step, Text
from sendoso.models import Gift

from ._files import EGIFT, recipients_csv

pytestmark = pytest.mark.anyio


def _plan(
    ledger: Ledger,
    sandbox: Any,
    path: Path,
    run_id: str,
    catalog: list[Gift] | None = None,
    **options: Any,
) -> None:
    if catalog is None:
        with sandbox.client() as client:
            catalog = client.gifts.list()
    spec = BatchSpec(path=str(path), run_id=run_id, **options)
    prepare_run(ledger, spec, catalog, base_url=sandbox.url)


async def _run(ledger: Ledger, client: AsyncSendoso, run_id: str, **options: Any) -> RunResult:
    async with client:
        return await BatchRunner(ledger, client, run_id, **options).run()


def _keys_on_server(sandbox: Any) -> Counter[str]:
    return Counter(send["idempotency_key"] for send in sandbox.sends())


def _row_keys(ledger: Ledger, run_id: str, state: RowState | None = None) -> set[str]:
    states = [state] if state else None
    return {row.send_key for row in ledger.rows(run_id, states=states) if row.send_key}


@pytest.fixture
def ledger(tmp_path: Path) -> Any:
    with Ledger(f"sqlite:///{tmp_path}/ledger.db") as opened:
        yield opened


async def test_every_valid_row_is_sent_once_and_invalid_rows_never(
    sandbox: Any, ledger: Ledger, tmp_path: Path
) -> None:
    """60 rows, 6 invalid: 54 sends on the server, each with its row's key."""
    path, invalid = recipients_csv(tmp_path / "r.csv", 60, invalid_every=10)
    _plan(ledger, sandbox, path, "plain")

    result = await _run(ledger, sandbox.async_client(), "plain", concurrency=4)

    assert result.end is RunEnd.FINISHED
    assert result.counts == {RowState.SUBMITTED: 54, RowState.SKIPPED: 6}
    on_server = _keys_on_server(sandbox)
    assert set(on_server) == _row_keys(ledger, "plain", RowState.SUBMITTED)
    assert set(on_server.values()) == {1}
    skipped = {row.number for row in ledger.rows("plain", states=[RowState.SKIPPED])}
    assert skipped == invalid


async def test_faults_with_a_deduplicating_server_still_send_each_row_once(
    sandbox: Any, ledger: Ledger, tmp_path: Path
) -> None:
    """5xx, replies cut after the commit, 429s and a token that expires every second."""
    path, _ = recipients_csv(tmp_path / "r.csv", 120)
    _plan(ledger, sandbox, path, "faulty")
    sandbox.faults(error_rate=0.15, drop_rate=0.1, rate_limit=300, token_ttl=1, seed=7)

    result = await _run(ledger, sandbox.async_client(), "faulty", concurrency=8)

    assert result.end is RunEnd.FINISHED, result.message
    assert result.counts == {RowState.SUBMITTED: 120}
    on_server = _keys_on_server(sandbox)
    assert len(on_server) == 120
    assert set(on_server.values()) == {1}
    faults = sandbox.stats()["faults"]
    assert faults["errors"] > 0
    assert faults["drops"] > 0


async def test_without_deduplication_ambiguous_rows_become_unknown_and_are_never_resent(
    sandbox: Any, ledger: Ledger, tmp_path: Path
) -> None:
    """An untrusted server: a 5xx or a cut reply marks the row unknown; resuming sends
    only the rows that were never attempted."""
    path, _ = recipients_csv(tmp_path / "r.csv", 80)
    _plan(ledger, sandbox, path, "untrusted")
    sandbox.faults(error_rate=0.1, drop_rate=0.1, seed=3)

    first = await _run(
        ledger,
        sandbox.async_client(trust_idempotency=False),
        "untrusted",
        concurrency=4,
        max_failures_in_a_row=1000,
    )
    assert first.end is RunEnd.FINISHED
    unknown = first.counts.get(RowState.UNKNOWN, 0)
    assert unknown > 0
    assert first.counts[RowState.SUBMITTED] + unknown == 80
    on_server = _keys_on_server(sandbox)
    assert set(on_server.values()) == {1}
    # A dropped reply was created on the server; a 5xx was not: unknown covers both.
    assert _row_keys(ledger, "untrusted", RowState.SUBMITTED) <= set(on_server)

    sandbox.faults(error_rate=0, drop_rate=0)
    before = sandbox.stats()["requests"]["POST /api/v3/sends"]
    again = await _run(ledger, sandbox.async_client(trust_idempotency=False), "untrusted")
    assert again.counts == first.counts
    assert sandbox.stats()["requests"]["POST /api/v3/sends"] == before


async def test_rows_left_submitting_by_a_crash_are_retried_only_when_deduplicated(
    sandbox: Any, ledger: Ledger, tmp_path: Path
) -> None:
    """A row whose POST may have gone out (state submitting, owner gone): the same key is
    sent again to a deduplicating server, and never to one that is not."""
    path, _ = recipients_csv(tmp_path / "r.csv", 4, gift=EGIFT)
    for run_id in ("crash-trusted", "crash-untrusted"):
        _plan(ledger, sandbox, path, run_id, allow_resend=True)
        claimed = ledger.claim(run_id, "host:1:dead", lease_seconds=0.0, limit=2)
        for row in claimed:
            assert ledger.move(run_id, row.number, RowState.SUBMITTING, owner="host:1:dead")

    trusted = await _run(ledger, sandbox.async_client(), "crash-trusted")
    assert trusted.counts == {RowState.SUBMITTED: 4}

    untrusted = await _run(ledger, sandbox.async_client(trust_idempotency=False), "crash-untrusted")
    assert untrusted.counts == {RowState.SUBMITTED: 2, RowState.UNKNOWN: 2}
    unknown = list(ledger.rows("crash-untrusted", states=[RowState.UNKNOWN]))
    assert all(
        Step("settle", ("crash-untrusted", str(row.number))) in Text(row.error or "").parts
        for row in unknown
    )
    assert not {row.send_key for row in unknown} & set(_keys_on_server(sandbox))


async def test_a_gift_that_left_the_catalog_costs_one_request_not_one_per_row(
    sandbox: Any, ledger: Ledger, tmp_path: Path
) -> None:
    """The API answers 404 for a gift the plan saw: the catalog is read again once, and
    the other rows for that gift are skipped without a request each."""
    with sandbox.client() as client:
        catalog = client.gifts.list()
    gone = Gift(id="gft_retired", name="Retired mug", category="egift", price=Decimal("20"))
    path, _ = recipients_csv(tmp_path / "r.csv", 30, gift="gft_retired")
    _plan(ledger, sandbox, path, "gone", [*catalog, gone])
    reads_before = sandbox.stats()["requests"]["GET /api/v3/gifts"]

    result = await _run(ledger, sandbox.async_client(), "gone", concurrency=1)

    assert result.end is RunEnd.FINISHED
    assert result.counts == {RowState.REJECTED: 1, RowState.SKIPPED: 29}
    stats = sandbox.stats()["requests"]
    assert stats["POST /api/v3/sends"] == 1
    assert stats["GET /api/v3/gifts"] - reads_before == 2  # at start, and once after the 404
    skipped = next(iter(ledger.rows("gone", states=[RowState.SKIPPED])))
    assert skipped.skip_kind == "gift_gone"


async def test_a_failing_api_pauses_the_run_and_a_resume_finishes_it(
    sandbox: Any, ledger: Ledger, tmp_path: Path
) -> None:
    """Every send fails with a 5xx: the run pauses after a streak instead of burning
    through the file; once the API recovers, a resume sends each row once."""
    path, _ = recipients_csv(tmp_path / "r.csv", 40, gift=EGIFT)
    _plan(ledger, sandbox, path, "failing")
    sandbox.faults(error_rate=1.0)

    paused = await _run(
        ledger,
        sandbox.async_client(max_retries=1),
        "failing",
        concurrency=2,
        max_failures_in_a_row=5,
    )
    assert paused.end is RunEnd.FAILING
    assert "in a row" in paused.message
    assert paused.counts.get(RowState.PLANNED, 0) + paused.counts.get(RowState.SUBMITTING, 0) == 40
    run = ledger.require_run("failing")
    assert run.note
    assert run.finished_at is None

    sandbox.faults(error_rate=0)
    done = await _run(ledger, sandbox.async_client(), "failing")
    assert done.end is RunEnd.FINISHED
    assert done.counts == {RowState.SUBMITTED: 40}
    assert set(_keys_on_server(sandbox).values()) == {1}


async def test_refused_credentials_touch_no_row(
    sandbox: Any, ledger: Ledger, tmp_path: Path
) -> None:
    """A wrong secret fails before any row is claimed, so the run resumes intact."""
    path, _ = recipients_csv(tmp_path / "r.csv", 5, gift=EGIFT)
    _plan(ledger, sandbox, path, "auth")
    client = AsyncSendoso(base_url=sandbox.url, client_id=sandbox.client_id, client_secret="no")
    with pytest.raises(AuthenticationError):
        await _run(ledger, client, "auth")
    assert ledger.counts("auth") == {RowState.PLANNED: 5}
    assert sandbox.sends() == []


async def test_two_runners_on_one_ledger_split_the_rows(
    sandbox: Any, ledger: Ledger, tmp_path: Path
) -> None:
    """Two runners (two owners) working on one run at once send each row exactly once."""
    path, _ = recipients_csv(tmp_path / "r.csv", 100)
    _plan(ledger, sandbox, path, "pair")
    # Eight sends in flight at once, four per runner at most: both runners are sending
    # together, however the machine schedules them.
    sandbox.hold(8, endpoint="POST /api/v3/sends")
    results: list[RunResult] = []

    async def one() -> None:
        results.append(await _run(ledger, sandbox.async_client(), "pair", concurrency=4))

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(one)
        tasks.start_soon(one)

    assert sandbox.hold_state()["state"] == "released"
    assert all(r.end is RunEnd.FINISHED for r in results)
    assert sum(r.sent_now for r in results) == 100
    assert all(r.sent_now > 0 for r in results)
    on_server = _keys_on_server(sandbox)
    assert len(on_server) == 100
    assert set(on_server.values()) == {1}


async def test_a_secret_rotated_mid_run_stops_the_run_instead_of_failing_every_row(
    sandbox: Any, ledger: Ledger, tmp_path: Path
) -> None:
    """Tokens revoked and the old secret refused: after one refresh attempt the run stops
    (resumable) with the unsent rows still planned; with the new secret it finishes."""
    path, _ = recipients_csv(tmp_path / "r.csv", 60, gift=EGIFT)
    _plan(ledger, sandbox, path, "rotated")
    rotated = False

    def rotate_after_ten() -> None:
        nonlocal rotated
        if not rotated and sum(runner.moves.values()) >= 10:
            rotated = True
            sandbox.rotate_secret("new-secret")

    async with sandbox.async_client() as client:
        runner = BatchRunner(ledger, client, "rotated", concurrency=2, on_progress=rotate_after_ten)
        stopped = await runner.run()

    assert stopped.end is RunEnd.AUTH
    assert "credentials" in stopped.message
    counts = stopped.counts
    assert counts[RowState.PLANNED] > 30
    assert counts.get(RowState.REJECTED, 0) == counts.get(RowState.UNKNOWN, 0) == 0
    posts_refused = sandbox.stats()["responses_by_status"].get("401", 0)
    assert posts_refused < 10  # one refusal per worker and token request, not one per row
    # Nothing stays leased: the next runner (even in this same process) starts at once.
    assert all(row.lease_owner is None for row in ledger.rows("rotated"))

    fresh = AsyncSendoso(
        base_url=sandbox.url, client_id=sandbox.client_id, client_secret="new-secret"
    )
    done = await _run(ledger, fresh, "rotated")
    assert done.counts == {RowState.SUBMITTED: 60}
    assert set(_keys_on_server(sandbox).values()) == {1}


async def test_the_cool_down_is_checked_again_when_each_row_is_sent(
    sandbox: Any, ledger: Ledger, tmp_path: Path
) -> None:
    """Two runs planned before either sent anything, both with a cool-down: whichever
    sends second skips every recipient the first one reached."""
    path, _ = recipients_csv(tmp_path / "r.csv", 12, gift=EGIFT)
    with sandbox.client() as client:
        catalog = client.gifts.list()
    for run_id in ("first", "second"):
        spec = BatchSpec(path=str(path), run_id=run_id, cooldown_days=30, allow_resend=True)
        prepare_run(ledger, spec, catalog, base_url=sandbox.url)

    first = await _run(ledger, sandbox.async_client(), "first")
    second = await _run(ledger, sandbox.async_client(), "second")

    assert first.counts == {RowState.SUBMITTED: 12}
    assert second.counts == {RowState.SKIPPED: 12}
    assert {row.skip_kind for row in ledger.rows("second")} == {"cooldown"}
    assert len(sandbox.sends()) == 12


async def test_a_streak_of_rejections_pauses_the_run(
    sandbox: Any, ledger: Ledger, tmp_path: Path
) -> None:
    """Every send refused (a misrouted host would do this): paused after the streak, not
    the whole file burnt as rejected."""
    path = tmp_path / "r.csv"
    path.write_text(
        "Email,First Name,Last Name,Gift,Message\n"
        + "".join(f"p{i}+undeliverable@example.com,Pat,P{i},{EGIFT},Hi\n" for i in range(40)),
        encoding="utf-8",
    )
    _plan(ledger, sandbox, path, "refused")

    result = await _run(
        ledger, sandbox.async_client(), "refused", concurrency=1, max_rejections_in_a_row=5
    )

    assert result.end is RunEnd.FAILING
    assert "rejected 5 sends in a row" in result.message
    assert result.counts == {RowState.REJECTED: 5, RowState.PLANNED: 35}


async def test_a_busy_ledger_is_waited_for_not_fatal(sandbox: Any, tmp_path: Path) -> None:
    """Another process holds SQLite's write lock for longer than the busy timeout (a big
    file being planned): the run waits and finishes, each row sent once."""
    import sqlite3
    import threading

    url = f"sqlite:///{tmp_path}/ledger.db"
    path, _ = recipients_csv(tmp_path / "r.csv", 30, gift=EGIFT)
    with Ledger(url, busy_timeout=0.2) as ledger:
        _plan(ledger, sandbox, path, "busy")
        started = threading.Event()

        def hold_the_lock() -> None:
            blocker = sqlite3.connect(tmp_path / "ledger.db", isolation_level=None)
            blocker.execute("BEGIN IMMEDIATE")
            started.set()
            threading.Event().wait(1.5)
            blocker.execute("COMMIT")
            blocker.close()

        holder = threading.Thread(target=hold_the_lock)
        holder.start()
        started.wait()
        result = await _run(ledger, sandbox.async_client(), "busy")
        holder.join()

    assert result.end is RunEnd.FINISHED
    assert result.counts == {RowState.SUBMITTED: 30}
    assert set(_keys_on_server(sandbox).values()) == {1}


async def test_a_ledger_that_stays_locked_stops_the_run_cleanly(
    sandbox: Any, tmp_path: Path
) -> None:
    """The ledger stops answering mid-run: the run ends as LEDGER (no exception group, the
    sends in flight not cancelled) and, once the ledger is back, a resume sends each
    remaining row exactly once."""
    import sqlite3

    url = f"sqlite:///{tmp_path}/ledger.db"
    path, _ = recipients_csv(tmp_path / "r.csv", 40, gift=EGIFT)
    blocker = sqlite3.connect(tmp_path / "ledger.db", isolation_level=None, timeout=30)
    with Ledger(url, busy_timeout=0.05) as ledger:
        _plan(ledger, sandbox, path, "locked")

        def lock_after_five() -> None:
            if runner.moves[RowState.SUBMITTED] == 5 and not blocker.in_transaction:
                blocker.execute("BEGIN IMMEDIATE")

        async with sandbox.async_client() as client:
            runner = BatchRunner(
                ledger, client, "locked", concurrency=4, ledger_attempts=2,
                lease_seconds=1, on_progress=lock_after_five,
            )  # fmt: skip
            stopped = await runner.run()
        blocker.execute("ROLLBACK")
        blocker.close()

        assert stopped.end is RunEnd.LEDGER
        assert "ledger failed" in stopped.message
        # Its leases could not be given back while the ledger was down: they lapse.
        done = await _run(ledger, sandbox.async_client(), "locked", lease_seconds=1)
    assert done.end is RunEnd.FINISHED
    assert done.counts == {RowState.SUBMITTED: 40}
    on_server = _keys_on_server(sandbox)
    assert len(on_server) == 40
    assert set(on_server.values()) == {1}


async def test_two_runs_of_one_file_send_each_recipient_its_gift_once(
    sandbox: Any, ledger: Ledger, tmp_path: Path
) -> None:
    """Planned side by side before either sent (a re-exported file, say): the second to
    send finds every row already sent by the first and skips it as a duplicate."""
    path, _ = recipients_csv(tmp_path / "r.csv", 10, gift=EGIFT)
    _plan(ledger, sandbox, path, "one")
    _plan(ledger, sandbox, path, "two")

    await _run(ledger, sandbox.async_client(), "one")
    second = await _run(ledger, sandbox.async_client(), "two")

    assert second.counts == {RowState.SKIPPED: 10}
    assert {row.skip_kind for row in ledger.rows("two")} == {"duplicate"}
    assert len(sandbox.sends()) == 10


class _RenewFails(Ledger):
    """A ledger whose lease renewals fail (the database went away between two beats) once a
    send is held in flight by ``sandbox``'s hold, which the failing renewal then opens; until
    a send is held, renewals succeed."""

    sandbox: Sandbox

    def renew(self, *args: Any, **kwargs: Any) -> None:
        import sqlalchemy as sa

        if self.sandbox.hold_state()["arrived"] == 0:
            super().renew(*args, **kwargs)
            return
        self.sandbox.release_hold()
        raise sa.exc.OperationalError("UPDATE", {}, Exception("server closed the connection"))


async def test_a_failing_heartbeat_lets_the_sends_in_flight_finish_and_be_recorded(
    sandbox: Any, tmp_path: Path
) -> None:
    """The heartbeat's ledger call fails while POSTs are in flight: the run stops as
    LEDGER, but every send the server made is recorded, none left `submitting`."""
    path, _ = recipients_csv(tmp_path / "r.csv", 20, gift=EGIFT)
    ledger = _RenewFails(f"sqlite:///{tmp_path}/ledger.db")
    ledger.sandbox = sandbox
    with ledger:
        _plan(ledger, sandbox, path, "beat")
        # The POSTs wait at the hold until the heartbeat fails (no count of 1000 arrives).
        sandbox.hold(1000, endpoint="POST /api/v3/sends")
        result = await _run(
            ledger,
            sandbox.async_client(),
            "beat",
            concurrency=4,
            lease_seconds=0.9,
            ledger_attempts=1,
        )
        assert result.end is RunEnd.LEDGER
        assert RowState.SUBMITTING not in ledger.counts("beat")
        recorded = _row_keys(ledger, "beat", RowState.SUBMITTED)
    assert set(_keys_on_server(sandbox)) == recorded
    assert recorded


async def test_stopping_while_rows_wait_for_their_turn_sends_none_of_them(
    sandbox: Any, ledger: Ledger, tmp_path: Path
) -> None:
    """At 2 requests/s, eight workers queue for slots; a stop request then lets none of
    the queued rows go out, and none is left marked as possibly sent."""
    path, _ = recipients_csv(tmp_path / "r.csv", 30, gift=EGIFT)
    _plan(ledger, sandbox, path, "queued")
    async with sandbox.async_client(rate_limit=2) as client:
        runner = BatchRunner(ledger, client, "queued", concurrency=8)

        def stop_after_first() -> None:
            if runner.moves[RowState.SUBMITTED] >= 1:
                runner.request_stop()

        runner._on_progress = stop_after_first
        result = await runner.run()
    assert result.end is RunEnd.STOPPED
    counts = ledger.counts("queued")
    assert RowState.SUBMITTING not in counts
    assert counts[RowState.SUBMITTED] == len(sandbox.sends()) <= 2


async def test_rate_limited_rows_go_back_to_the_queue_not_to_unknown(
    sandbox: Any, ledger: Ledger, tmp_path: Path
) -> None:
    """A tight server limit and a client that hands 429s back: rows return to `planned`
    while the whole client pauses, the 429s never trip the failure brake, and with no
    deduplication every row still ends sent exactly once, none unknown."""
    path, _ = recipients_csv(tmp_path / "r.csv", 60, gift=EGIFT)
    _plan(ledger, sandbox, path, "limited")
    sandbox.faults(rate_limit=30)

    result = await _run(
        ledger,
        sandbox.async_client(trust_idempotency=False, wait_on_rate_limited_sends=False),
        "limited",
        concurrency=16,
        max_failures_in_a_row=3,
    )

    assert result.end is RunEnd.FINISHED, result.message
    assert result.counts == {RowState.SUBMITTED: 60}
    assert sandbox.stats()["faults"]["rate_limited"] > 0
    assert result.moved.get(RowState.PLANNED, 0) > 0  # handed back at least once
    assert set(_keys_on_server(sandbox).values()) == {1}


async def test_a_failing_token_endpoint_leaves_rows_planned_not_unknown(
    sandbox: Any, ledger: Ledger, tmp_path: Path
) -> None:
    """The token expires mid-run and the token endpoint answers 500: no send was transmitted,
    so with a server that does not deduplicate the rows go back to `planned` (none
    `unknown`), the run pauses on the streak, and a resume sends each row exactly once."""
    path, _ = recipients_csv(tmp_path / "r.csv", 30, gift=EGIFT)
    _plan(ledger, sandbox, path, "tokenless")
    broken = False

    def break_tokens_after_five() -> None:
        nonlocal broken
        if not broken and runner.moves[RowState.SUBMITTED] >= 5:
            broken = True
            sandbox.faults(token_error=500)
            sandbox.advance(3 * 86400)  # every token issued so far has expired on the server

    client = sandbox.async_client(trust_idempotency=False, max_retries=1)
    async with client:
        runner = BatchRunner(
            ledger,
            client,
            "tokenless",
            concurrency=2,
            max_failures_in_a_row=3,
            on_progress=break_tokens_after_five,
        )
        paused = await runner.run()

    assert paused.end is RunEnd.FAILING, paused.message
    assert "access token" in paused.message
    counts = ledger.counts("tokenless")
    assert RowState.UNKNOWN not in counts
    assert RowState.SUBMITTING not in counts
    assert counts[RowState.SUBMITTED] == len(sandbox.sends())
    assert counts[RowState.PLANNED] > 0

    sandbox.faults(token_error=0)
    done = await _run(ledger, sandbox.async_client(trust_idempotency=False), "tokenless")
    assert done.counts == {RowState.SUBMITTED: 30}
    assert set(_keys_on_server(sandbox).values()) == {1}
    assert len(sandbox.sends()) == 30


async def test_prices_that_rise_after_the_plan_never_take_a_run_over_its_budget(
    sandbox: Any, ledger: Ledger, tmp_path: Path
) -> None:
    """Planned at 25 USD a gift against a 500 USD budget; the price is 40 when the run sends:
    12 rows fit, the 8 others are skipped (budget) saying planned vs now, and what the run
    spent at the prices it paid stays within 500."""
    path, _ = recipients_csv(tmp_path / "r.csv", 20, gift=EGIFT)
    _plan(ledger, sandbox, path, "dearer", max_spend=["500"])
    assert ledger.counts("dearer") == {RowState.PLANNED: 20}
    sandbox.set_price(EGIFT, "40.00")

    result = await _run(ledger, sandbox.async_client(), "dearer", concurrency=4)

    assert result.end is RunEnd.FINISHED, result.message
    assert result.counts == {RowState.SUBMITTED: 12, RowState.SKIPPED: 8}
    sent = list(ledger.rows("dearer", states=[RowState.SUBMITTED]))
    assert all(row.actual_estimate == {"USD": (Decimal(40), Decimal(40))} for row in sent)
    assert len(sandbox.sends()) * Decimal(40) <= Decimal(500)
    # The report and the run's spend show what the sends cost, beside what was planned.
    record = report_record(sent[0])
    assert record["estimate"] == {"USD": {"low": "25.00", "high": "25.00"}}
    assert record["actual_estimate"] == {"USD": {"low": "40.00", "high": "40.00"}}
    assert ledger.spend("dearer")[RowState.SUBMITTED] == {"USD": (Decimal(480), Decimal(480))}
    for row in ledger.rows("dearer", states=[RowState.SKIPPED]):
        assert row.skip_kind == "budget"
        assert isinstance(row.error, Text)
        assert "40.00 USD now (25.00 planned)" in row.error
        assert Param("max_spend") in row.error.parts


async def test_prices_that_fall_after_the_plan_send_every_row_at_the_new_price(
    sandbox: Any, ledger: Ledger, tmp_path: Path
) -> None:
    """Planned at 40 (the budget fits 12 of 20 rows), sent at 25: the 12 planned rows go out,
    recorded at what they cost now, and the rows the plan skipped stay skipped."""
    path, _ = recipients_csv(tmp_path / "r.csv", 20, gift=EGIFT)
    sandbox.set_price(EGIFT, "40.00")
    _plan(ledger, sandbox, path, "cheaper", max_spend=["500"])
    assert ledger.counts("cheaper") == {RowState.PLANNED: 12, RowState.SKIPPED: 8}
    sandbox.set_price(EGIFT, None)

    result = await _run(ledger, sandbox.async_client(), "cheaper", concurrency=4)

    assert result.counts == {RowState.SUBMITTED: 12, RowState.SKIPPED: 8}
    sent = ledger.rows("cheaper", states=[RowState.SUBMITTED])
    assert all(row.actual_estimate == {"USD": (Decimal(25), Decimal(25))} for row in sent)
    assert len(sandbox.sends()) == 12
