"""The batch runner: async workers that take planned rows from the ledger and send them.

Each row is sent by :class:`~sendoso.ledger.SendAttempt` (``planned -> submitting``
committed *before* its POST, the outcome right after the reply), so a process killed at any
instant leaves every row either untouched or marked as possibly sent; a row found
``submitting`` with no live owner is retried with its key only by a server that deduplicates.

Run-wide recovery (the seed contract's recovery column, docs/architecture.md section 5, applied
to a whole file): a 404 re-reads the catalog once per gift and skips the rest of a gift that is
gone; a 401 that survives a token refresh stops the run; a streak of server failures pauses it.
Stopped and paused runs resume where they left off.
"""

from __future__ import annotations

import contextlib
import math
import signal
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from enum import StrEnum

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from sqlalchemy.exc import SQLAlchemyError

from sendoso import AsyncSendoso
from sendoso.errors import SendosoError
from sendoso.ledger import (
    AttemptResult,
    AttemptRules,
    Ledger,
    LedgerCalls,
    LedgerRow,
    Outcome,
    Repriced,
    RowState,
    SendAttempt,
    UnrecordedSend,
    describe_failure,
    new_owner,
)
from sendoso.models import Gift, SendRequest
from sendoso.pricing import estimate_cost

__all__ = [
    "BatchRunner",
    "RunEnd",
    "RunResult",
    "default_concurrency",
    "run_interruptibly",
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
    #: Sends the API confirmed that the ledger failed to record (its end is ``ledger``).
    unrecorded: list[UnrecordedSend] = field(default_factory=list)
    #: Skipped rows per kind (``invalid``...), as the ledger counted them at the end;
    #: empty if it could not.
    skipped: dict[str, int] = field(default_factory=dict)


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
        self._rules = AttemptRules(base_url="")
        self.idle_poll = idle_poll
        self.owner = new_owner()
        self._on_progress = on_progress
        #: Set with the first stop (asked for, or a halt): ends rows' waits for their turn.
        self._stop_requested = anyio.Event()
        self._db = LedgerCalls(ledger, wanted=concurrency, attempts=ledger_attempts)
        self._attempt = SendAttempt(
            client,
            self._db,
            owner=self.owner,
            on_moved=self._moved,
            on_gift_not_found=self._gift_not_found,
            commit_lead=lambda: self._commit_lead,
            on_committed=self._committed,
            stopping=lambda: self._stopping,
            stop_requested=self._stop_requested,
            reprice=self._reprice,
        )
        #: Sends the API confirmed that the ledger could not record.
        self.unrecorded = self._attempt.unrecorded
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
        #: The catalog as this runner last read it, by id: rows are re-priced against it.
        self._catalog: dict[str, Gift] = {}
        self._caps: dict[str, Decimal] | None = None
        self._prices_moved = False
        self._sent_now = 0
        self.moves: Counter[RowState] = Counter()

    def request_stop(self) -> None:
        """Finish the sends in flight, claim nothing more; rows waiting for their turn (a
        429's pause) stop waiting and stay planned."""
        self._stopping = True
        self._stop_requested.set()
        if self._end is None:
            self._end = RunEnd.STOPPED
            self._message = "stopped on request"

    async def run(self) -> RunResult:
        try:
            return await self._run()
        except BaseExceptionGroup as group:
            raise _only_error(group) from None

    async def _run(self) -> RunResult:
        info = await self._db(self.ledger.require_run, self.run_id)
        cooldown = info.options.get("cooldown_days")
        self._rules = AttemptRules(
            base_url=info.base_url,
            cooldown=timedelta(days=float(cooldown)) if cooldown else None,
            allow_resend=bool(info.options.get("allow_resend")),
        )
        spend = info.options.get("max_spend")
        self._caps = {cur: Decimal(cap) for cur, cap in spend.items()} if spend else None
        # Reading the catalog first also lets a sandbox identify itself, which decides
        # whether rows left in flight may be retried.
        self._catalog = {gift.id: gift for gift in await self.client.gifts.list()}
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
                await self._closing_db()(self.ledger.release_owner, self.run_id, self.owner)
        if self._end is None:
            self._end = RunEnd.FINISHED
            self._message = "every row has a final state"
        if self.unrecorded:
            # Every send that ended up unrecorded, not only those known at the first failure.
            self._message += "; " + _unrecorded_text(self.unrecorded)
        counts: dict[RowState, int] = {}
        skipped: dict[str, int] = {}
        with contextlib.suppress(SQLAlchemyError):  # a failed ledger is already the end
            db = self._closing_db()
            counts = await db(self.ledger.counts, self.run_id)
            skipped = await db(self.ledger.skip_counts, self.run_id)
            await db(
                self.ledger.set_note,
                self.run_id,
                None if self._end is RunEnd.FINISHED else self._message,
                finished=self._end is RunEnd.FINISHED,
            )
        return RunResult(
            self._end,
            self._message,
            counts,
            self._sent_now,
            dict(self.moves),
            unrecorded=list(self.unrecorded),
            skipped=skipped,
        )

    def _closing_db(self) -> LedgerCalls:
        """Ledger calls for the run's last words: tried once only if the ledger already
        failed (it was given every chance; the report must not wait on it again)."""
        if self._end is RunEnd.LEDGER:
            return LedgerCalls(self.ledger, wanted=1, attempts=1)
        return self._db

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
        # The sends left unrecorded are added to the message when the run ends: more may
        # come from the sends still in flight.
        self._halt(RunEnd.LEDGER, describe_failure(exc))

    def _moved(self, state: RowState, n: int = 1) -> None:
        self.moves[state] += n
        if self._on_progress is not None:
            self._on_progress()

    def _committed(self, late: float) -> None:
        self._commit_lead = min(MAX_COMMIT_LEAD, max(late, self._commit_lead * COMMIT_LEAD_DECAY))

    async def _process(self, row: LedgerRow) -> None:
        if row.state is RowState.PLANNED and row.gift_id in self._gone:
            moved = await self._db(
                self.ledger.move,
                self.run_id,
                row.number,
                RowState.SKIPPED,
                skip_kind="gift_gone",
                error=self._gone_reason(row),
            )
            if moved:
                self._moved(RowState.SKIPPED)
            return
        result = await self._attempt(row, self._rules)
        if result.outcome is Outcome.SENT:
            self._failures_in_a_row = 0
            self._rejections_in_a_row = 0
            if result.state is RowState.SUBMITTED:
                self._sent_now += 1
        elif result.verdict is not None:
            self._brakes(result)

    def _brakes(self, result: AttemptResult) -> None:
        """The run's own policy after a failed send: pause on a streak, stop on refused
        credentials."""
        verdict = result.verdict
        assert verdict is not None
        # A 429 is the server pacing us, not failing: it never counts towards the brake.
        if verdict.server_failure or verdict.outcome is Outcome.RETRY:
            self._failures_in_a_row += 1
        if result.outcome is Outcome.REJECTED:
            self._rejections_in_a_row += 1
            if self._rejections_in_a_row >= self.max_rejections_in_a_row:
                self._halt(
                    RunEnd.FAILING,
                    f"the API rejected {self._rejections_in_a_row} sends in a row (last: "
                    f"{verdict.error}); paused: check the host and the catalog, then resume",
                )
        elif result.outcome is Outcome.STOP:
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

    def _reprice(self, row: LedgerRow) -> Repriced | None:
        """The row's cost against the catalog as read now, once any row's price has moved
        since the plan (until then every row costs what the plan's budget reserved)."""
        gift = self._catalog.get(row.gift_id or "")
        if gift is None or row.estimate is None or row.request is None:
            return None
        now = estimate_cost(gift, SendRequest.model_validate(row.request).country).totals()
        if now != row.estimate:
            self._prices_moved = True
        if not self._prices_moved:
            return None
        return Repriced(planned=row.estimate, now=now, caps=self._caps)

    def _halt(self, end: RunEnd, message: str) -> None:
        if self._end is None or self._end is RunEnd.STOPPED:
            self._end = end
            self._message = message
        self._stopping = True
        self._stop_requested.set()

    def _gone_reason(self, row: LedgerRow) -> str:
        return f"gift {row.gift_id} is no longer in the catalog (row {row.number})"

    async def _gift_not_found(self, row: LedgerRow) -> None:
        """A 404: is the gift really gone? Asks the catalog once per gift per run, and skips
        the gift's rows not yet attempted if it is (the row itself is rejected)."""
        gift_id = row.gift_id or ""
        async with self._catalog_lock:
            if gift_id not in self._gift_checked:
                try:
                    catalog = await self.client.gifts.list()
                except SendosoError:
                    return
                self._catalog = {gift.id: gift for gift in catalog}
                still_there = gift_id in self._catalog
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


async def run_interruptibly(
    runner: BatchRunner, *, on_signal: Callable[[int], None] | None = None
) -> RunResult:
    """Run, stopping cleanly on the first Ctrl-C or SIGTERM (the sends in flight finish and
    are recorded) and at once on the second (only a send whose ``submitting`` commit has
    begun still finishes its POST and records it; a kill leaves it ``submitting``, resolved
    on resume by the usual rule). Call from the main thread."""
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
        counts: dict[RowState, int] = {}
        skipped: dict[str, int] = {}
        with contextlib.suppress(SQLAlchemyError):  # what is known is still reported
            counts = runner.ledger.counts(runner.run_id)
            skipped = runner.ledger.skip_counts(runner.run_id)
            runner.ledger.set_note(
                runner.run_id, "interrupted; rows in flight are checked on resume"
            )
        return RunResult(
            RunEnd.STOPPED,
            "interrupted with sends in flight",
            counts,
            unrecorded=list(runner.unrecorded),
            skipped=skipped,
        )
    return result


def _unrecorded_text(unrecorded: list[UnrecordedSend]) -> str:
    sent = ", ".join(f"row {u.number}: send {u.send_id}" for u in unrecorded)
    if all(u.journalled for u in unrecorded):
        return f"sent but not recorded (kept in the send journal, recorded on resume): {sent}"
    return f"sent but not recorded (settle each with its send id once it is back): {sent}"


def _only_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The one error inside (nested) task-group wrappers, so callers see e.g. the
    ``AuthenticationError`` itself; a real group of several is left as it is."""
    error: BaseException = group
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    return error
