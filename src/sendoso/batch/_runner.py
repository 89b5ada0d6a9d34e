"""The batch runner: async workers that take planned rows from the ledger and send them.

Each row goes ``planned -> submitting`` (committed) *before* its POST, and to its outcome
right after the reply, so a process killed at any instant leaves every row either untouched
or marked as possibly sent. A row found ``submitting`` with no live owner (a crash, a kill, a
lost lease) is retried with its own idempotency key only when the server deduplicates on
it; otherwise it becomes ``unknown`` and waits for a person (``batch settle``).

Run-wide recovery (the seed's recovery column, applied to a whole file): a 404 re-reads the
catalog once per gift and skips the rest of a gift that is gone; a 401 that survives a token
refresh stops the run; a streak of server failures pauses it. Stopped and paused runs resume
where they left off.
"""

from __future__ import annotations

import contextlib
import math
import signal
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import partial
from typing import Any, ParamSpec, TypeVar

import anyio
import anyio.to_thread
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from sendoso import AsyncSendoso
from sendoso.errors import SendosoError
from sendoso.ledger import (
    Ledger,
    LedgerRow,
    Outcome,
    RowState,
    describe_failure,
    new_owner,
    outcome_of,
)
from sendoso.models import SendRequest

__all__ = [
    "BatchRunner",
    "RunEnd",
    "RunResult",
    "default_concurrency",
    "run_interruptibly",
    "settle_hint",
]

#: Sends in flight without a rate to keep up with (the host's own limit paces them).
DEFAULT_CONCURRENCY = 8
#: Slowest reply the default concurrency still keeps a run at its rate for.
_REPLY_SECONDS = 0.25
_MAX_DEFAULT_CONCURRENCY = 64


def default_concurrency(rate: float | None) -> int:
    """Sends in flight for a run paced at ``rate`` requests/s: enough to keep that rate when
    each reply takes up to 250 ms (8 in flight cap a run at 80/s with 100 ms replies)."""
    if rate is None:
        return DEFAULT_CONCURRENCY
    wanted = math.ceil(rate * _REPLY_SECONDS)
    return max(DEFAULT_CONCURRENCY, min(_MAX_DEFAULT_CONCURRENCY, wanted))


_P = ParamSpec("_P")
_T = TypeVar("_T")

#: A row wakes up before its turn to send by the longest it recently took from its planned
#: wake-up to the "submitting" commit, at most this long (a row so early sits "submitting"
#: while the pacer holds it back). That peak fades by this factor per row (a half-life of
#: about 350 rows), so one slow moment does not set it for good.
MAX_COMMIT_LEAD = 0.25
COMMIT_LEAD_DECAY = 0.998


class RunEnd(StrEnum):
    FINISHED = "finished"  # no open row left
    STOPPED = "stopped"  # asked to stop (Ctrl-C): resumable
    AUTH = "auth"  # credentials refused after a refresh: resumable once fixed
    FAILING = "failing"  # too many server failures (or rejections) in a row: resumable
    LEDGER = "ledger"  # the ledger stopped answering: resumable once it is back


@dataclass
class RunResult:
    end: RunEnd
    message: str
    counts: dict[RowState, int] = field(default_factory=dict)
    sent_now: int = 0
    #: Moves this process made into each state (what is known when the ledger is not).
    moved: dict[RowState, int] = field(default_factory=dict)


def settle_hint(run_id: str, number: int) -> str:
    return (
        f"check it in Sendoso, then `sendoso batch settle {run_id} {number} --sent SEND_ID` "
        "or `--not-sent`"
    )


class BatchRunner:
    """Send a planned run's open rows with ``concurrency`` workers sharing ``client``.

    ``ledger_attempts``: tries of each ledger call before the run stops (with SQLite's own
    busy wait per try and growing sleeps between, the default rides out minutes of a locked
    or unreachable database). ``on_progress()`` is called after rows change state;
    :attr:`moves` counts the moves into each state so far (for progress bars). Pacing and
    the shared pause after a 429 live in the client, so every worker of this process obeys
    one schedule.
    """

    def __init__(
        self,
        ledger: Ledger,
        client: AsyncSendoso,
        run_id: str,
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        lease_seconds: float = 60.0,
        max_failures_in_a_row: int = 10,
        max_rejections_in_a_row: int = 25,
        ledger_attempts: int = 8,
        idle_poll: float = 0.5,
        on_progress: Callable[[], None] | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.ledger = ledger
        self.client = client
        self.run_id = run_id
        self.concurrency = concurrency
        self.lease_seconds = lease_seconds
        self.max_failures_in_a_row = max_failures_in_a_row
        self.max_rejections_in_a_row = max_rejections_in_a_row
        self.ledger_attempts = ledger_attempts
        self._rejections_in_a_row = 0
        self._cooldown: timedelta | None = None
        self._allow_resend = False
        self._base_url = ""
        #: (row, send id) the API confirmed but the ledger could not record.
        self.unrecorded: list[tuple[int, str]] = []
        self.idle_poll = idle_poll
        self.owner = new_owner()
        self._on_progress = on_progress
        self._ledger_limiter = anyio.CapacityLimiter(ledger.threads(concurrency))
        self._held: set[int] = set()
        self._row_done = anyio.Event()
        self._commit_lead = 0.0
        self._stopping = False
        self._end: RunEnd | None = None
        self._message = ""
        self._failures_in_a_row = 0
        self._gone: set[str] = set()
        self._gift_checked: dict[str, bool] = {}
        self._catalog_lock = anyio.Lock()
        self._sent_now = 0
        self.moves: Counter[RowState] = Counter()

    def request_stop(self) -> None:
        """Finish the sends in flight, claim nothing more."""
        self._stopping = True
        if self._end is None:
            self._end = RunEnd.STOPPED
            self._message = "stopped on request"

    async def _db(self, fn: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """A ledger call in a worker thread, retried while the database is busy or briefly
        unreachable (another process planning a big file holds SQLite's write lock)."""
        call = partial(fn, *args, **kwargs)
        for attempt in range(self.ledger_attempts):
            try:
                return await anyio.to_thread.run_sync(call, limiter=self._ledger_limiter)
            except OperationalError:
                if attempt == self.ledger_attempts - 1:
                    raise
                await anyio.sleep(min(0.1 * 2**attempt, 5.0))
        raise AssertionError("unreachable")

    async def run(self) -> RunResult:
        try:
            return await self._run()
        except BaseExceptionGroup as group:
            raise _only_error(group) from None

    async def _run(self) -> RunResult:
        info = await self._db(self.ledger.require_run, self.run_id)
        cooldown = info.options.get("cooldown_days")
        self._cooldown = timedelta(days=float(cooldown)) if cooldown else None
        self._allow_resend = bool(info.options.get("allow_resend"))
        self._base_url = info.base_url
        # Reading the catalog first also lets a sandbox identify itself, which decides
        # whether rows left in flight may be retried.
        await self.client.gifts.list()
        await self._db(self.ledger.release_dead_leases, self.run_id)
        try:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(self._heartbeat)
                claimed, rows = anyio.create_memory_object_stream[LedgerRow]()
                async with anyio.create_task_group() as workers:
                    workers.start_soon(self._feed, claimed)
                    with rows:
                        for _ in range(self.concurrency):
                            workers.start_soon(self._worker, rows.clone())
                tasks.cancel_scope.cancel()
        finally:
            # Whatever this runner still holds (cancelled mid-row) is free for the next one
            # at once; its state alone says what happens to it.
            with anyio.CancelScope(shield=True), contextlib.suppress(SQLAlchemyError):
                await self._db(self.ledger.release_owner, self.run_id, self.owner)
        if self._end is None:
            self._end = RunEnd.FINISHED
            self._message = "every row has a final state"
        counts: dict[RowState, int] = {}
        with contextlib.suppress(SQLAlchemyError):  # a failed ledger is already the end
            counts = await self._db(self.ledger.counts, self.run_id)
            await self._db(
                self.ledger.set_note,
                self.run_id,
                None if self._end is RunEnd.FINISHED else self._message,
                finished=self._end is RunEnd.FINISHED,
            )
        return RunResult(self._end, self._message, counts, self._sent_now, dict(self.moves))

    async def _heartbeat(self) -> None:
        while True:
            await anyio.sleep(self.lease_seconds / 3)
            if not self._held:
                continue
            try:
                await self._db(
                    self.ledger.renew,
                    self.run_id,
                    self.owner,
                    list(self._held),
                    lease_seconds=self.lease_seconds,
                )
            except SQLAlchemyError as exc:
                # Like a worker's failure: stop claiming, let the sends in flight finish.
                self._ledger_failed(exc)
                return

    async def _feed(self, claimed: MemoryObjectSendStream[LedgerRow]) -> None:
        """Claim open rows for the workers, up to one per worker in one transaction (a claim
        per row was a third of the ledger's commits, all queued on its one thread), and hand
        them over one at a time, as workers become free."""
        # Closing the stream (on return, or on a failure) lets the workers finish.
        async with claimed:
            try:
                while not self._stopping:
                    self._row_done = anyio.Event()
                    rows = await self._db(
                        self.ledger.claim,
                        self.run_id,
                        self.owner,
                        lease_seconds=self.lease_seconds,
                        limit=self.concurrency,
                    )
                    if not rows:
                        if not await self._db(self.ledger.open_rows, self.run_id):
                            return
                        # Rows in flight here (one may come back after a 429) or held by
                        # other runners: look again when one of ours is done, or when a dead
                        # owner's lease may have lapsed.
                        await self._db(self.ledger.release_dead_leases, self.run_id)
                        with anyio.move_on_after(self.idle_poll):
                            await self._row_done.wait()
                        continue
                    self._held.update(row.number for row in rows)
                    for row in rows:
                        await claimed.send(row)
            except anyio.BrokenResourceError:
                return  # every worker has stopped
            except SQLAlchemyError as exc:
                self._ledger_failed(exc)

    async def _worker(self, rows: MemoryObjectReceiveStream[LedgerRow]) -> None:
        # A failing ledger stops this runner gently: the other workers finish (and record)
        # the sends they have in flight instead of being cancelled mid-POST.
        async with rows:
            async for row in rows:
                if self._stopping:
                    return  # rows claimed but not started are released when the run ends
                try:
                    await self._process(row)
                except SQLAlchemyError as exc:
                    self._ledger_failed(exc)
                    return
                finally:
                    self._held.discard(row.number)
                    self._row_done.set()

    def _ledger_failed(self, exc: SQLAlchemyError) -> None:
        message = describe_failure(exc)
        if self.unrecorded:
            sent = ", ".join(f"row {n}: send {send_id}" for n, send_id in self.unrecorded)
            message += f"; sent but not recorded (settle them once it is back): {sent}"
        self._halt(RunEnd.LEDGER, message)

    def _moved(self, state: RowState, n: int = 1) -> None:
        self.moves[state] += n
        if self._on_progress is not None:
            self._on_progress()

    async def _move(self, row: LedgerRow, target: RowState, **values: Any) -> bool:
        moved = await self._db(self.ledger.move, self.run_id, row.number, target, **values)
        if moved:
            self._moved(target)
        return moved

    async def _process(self, row: LedgerRow) -> None:
        trusted = self.client.trusts_idempotency
        if row.state is RowState.PLANNED:
            if row.gift_id in self._gone:
                await self._move(
                    row, RowState.SKIPPED, skip_kind="gift_gone", error=self._gone_reason(row)
                )
                return
            # Wait for this send's turn *before* committing "submitting": a row queued on
            # the pacer when the process dies was certainly never sent. Wake up as long
            # before the turn as that commit has lately taken, though: a send that reaches
            # the pacer after its turn has gone is booked again at the back of the queue and
            # its slot goes out empty (a busy ledger cost a third of the slots at 200/s).
            wake_at = time.monotonic()
            if row.send_key:
                wake_at += max(0.0, self.client.pacer.prebook(row.send_key) - self._commit_lead)
                await anyio.sleep(max(0.0, wake_at - time.monotonic()))
            if self._stopping:
                # Asked to stop while it waited for its turn: it was never sent.
                await self._db(self.ledger.release, self.run_id, row.number, self.owner)
                return
            since = datetime.now(UTC) - self._cooldown if self._cooldown else None
            state = await self._db(
                self.ledger.begin_send,
                self.run_id,
                row.number,
                self.owner,
                recipient=row.recipient,
                cooldown_since=since,
                dedupe_key=None if self._allow_resend else row.dedupe_key,
                base_url=self._base_url,
            )
            # Counted from the planned wake-up: a busy machine also wakes rows late.
            self._commit_lead = min(
                MAX_COMMIT_LEAD,
                max(time.monotonic() - wake_at, self._commit_lead * COMMIT_LEAD_DECAY),
            )
            if state is None:
                # Lost, or committed but its acknowledgement lost (then retried): look.
                current = await self._db(self.ledger.row, self.run_id, row.number)
                held = current is not None and current.lease_owner == self.owner
                if held and current is not None and current.state is RowState.SUBMITTING:
                    state = RowState.SUBMITTING
            if state is not None:
                self._moved(state)
            if state is not RowState.SUBMITTING:
                return
        elif not trusted:
            # A previous attempt may have reached the server, which would not recognise a
            # second one: never send it again, leave it for a person.
            await self._move(
                row,
                RowState.UNKNOWN,
                owner=self.owner,
                error="a previous attempt was interrupted and may have been sent; "
                + settle_hint(self.run_id, row.number),
            )
            return
        elif not await self._db(self.ledger.count_attempt, self.run_id, row.number, self.owner):
            return
        await self._send(row)

    async def _send(self, row: LedgerRow) -> None:
        assert row.request is not None
        request = SendRequest.model_validate(row.request)
        try:
            send = await self.client.sends.submit(
                request, idempotency_key=row.send_key, validate=False
            )
        except SendosoError as exc:
            await self._failed(row, exc)
            return
        self._failures_in_a_row = 0
        self._rejections_in_a_row = 0
        # The gift exists now: record its id even if the run is being cancelled.
        with anyio.CancelScope(shield=True):
            try:
                moved = await self._move(
                    row, RowState.SUBMITTED, send_id=send.id, status=send.status
                )
            except SQLAlchemyError:
                self.unrecorded.append((row.number, send.id))
                raise
            if moved:
                self._sent_now += 1

    async def _failed(self, row: LedgerRow, exc: SendosoError) -> None:
        verdict = outcome_of(exc, trusted=self.client.trusts_idempotency)
        # A 429 is the server pacing us, not failing: it never counts towards the brake.
        if verdict.server_failure or verdict.outcome is Outcome.RETRY:
            self._failures_in_a_row += 1
        outcome = verdict.outcome
        if outcome is Outcome.GIFT_NOT_FOUND:
            outcome = await self._gift_not_found(row)
        if outcome is Outcome.REJECTED:
            await self._move(row, RowState.REJECTED, error=verdict.error)
            self._rejections_in_a_row += 1
            if self._rejections_in_a_row >= self.max_rejections_in_a_row:
                self._halt(
                    RunEnd.FAILING,
                    f"the API rejected {self._rejections_in_a_row} sends in a row (last: "
                    f"{verdict.error}); paused: check the host and the catalog, then resume",
                )
        elif outcome is Outcome.UNKNOWN:
            await self._move(
                row,
                RowState.UNKNOWN,
                error=f"{verdict.error}; {settle_hint(self.run_id, row.number)}",
            )
        elif outcome is Outcome.RETRY:
            await self._db(self.ledger.release, self.run_id, row.number, self.owner)
        elif outcome is Outcome.NOT_SENT:
            await self._move(
                row, RowState.PLANNED, owner=self.owner, error=verdict.error, release=True
            )
        elif outcome is Outcome.STOP:
            await self._move(
                row, RowState.PLANNED, owner=self.owner, error=verdict.error, release=True
            )
            self._halt(
                RunEnd.AUTH,
                f"the API refused the credentials even after a token refresh ({verdict.error})",
            )
        if self._failures_in_a_row >= self.max_failures_in_a_row:
            self._halt(
                RunEnd.FAILING,
                f"the API failed {self._failures_in_a_row} sends in a row "
                f"(last: {verdict.error}); paused so as not to burn through the file",
            )

    def _halt(self, end: RunEnd, message: str) -> None:
        if self._end is None or self._end is RunEnd.STOPPED:
            self._end = end
            self._message = message
        self._stopping = True

    def _gone_reason(self, row: LedgerRow) -> str:
        return f"gift {row.gift_id} is no longer in the catalog (row {row.number})"

    async def _gift_not_found(self, row: LedgerRow) -> Outcome:
        """A 404: is the gift really gone? Asks the catalog once per gift per run."""
        gift_id = row.gift_id or ""
        async with self._catalog_lock:
            if gift_id not in self._gift_checked:
                try:
                    catalog = await self.client.gifts.list()
                except SendosoError:
                    return Outcome.REJECTED
                still_there = any(gift.id == gift_id for gift in catalog)
                self._gift_checked[gift_id] = still_there
                if not still_there:
                    self._gone.add(gift_id)
                    skipped = await self._db(
                        self.ledger.skip_planned_for_gift,
                        self.run_id,
                        gift_id,
                        f"gift {gift_id} is no longer in the catalog",
                    )
                    self._moved(RowState.SKIPPED, skipped)
        return Outcome.REJECTED


async def run_interruptibly(
    runner: BatchRunner, *, on_signal: Callable[[int], None] | None = None
) -> RunResult:
    """Run, stopping cleanly on the first Ctrl-C or SIGTERM (the sends in flight finish and
    are recorded) and at once on the second (rows in flight stay ``submitting`` and are
    resolved on resume by the usual rule). Call from the main thread."""
    result: RunResult | None = None

    async def watch(scope: anyio.CancelScope) -> None:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            seen = 0
            async for _ in signals:
                seen += 1
                if on_signal is not None:
                    on_signal(seen)
                if seen == 1:
                    runner.request_stop()
                else:
                    scope.cancel()

    try:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(watch, tasks.cancel_scope)
            result = await runner.run()
            tasks.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        raise _only_error(group) from None
    if result is None:
        counts = runner.ledger.counts(runner.run_id)
        runner.ledger.set_note(runner.run_id, "interrupted; rows in flight are checked on resume")
        return RunResult(RunEnd.STOPPED, "interrupted with sends in flight", counts)
    return result


def _only_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The one error inside (nested) task-group wrappers, so callers see e.g. the
    ``AuthenticationError`` itself; a real group of several is left as it is."""
    error: BaseException = group
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    return error
