"""One send attempt: commit ``submitting``, POST with the row's idempotency key, record the
outcome. The batch runner and the MCP desk both send through :class:`SendAttempt`, so the
exactly-once rules exist once; each keeps only its own policy around it.

- The row waits for its turn at the host's pace *before* ``submitting`` is committed: a row
  killed while it waits was certainly never sent.
- The commit re-checks, in its transaction, that no other run sent this recipient this gift
  (or anything within the cool-down); if one did, the row is skipped instead. If the commit's
  acknowledgement was lost (and the call retried), the row is looked at: still ours and
  ``submitting`` means the commit happened.
- A row found ``submitting`` (an attempt cut short by a crash or a kill) is sent again with
  its own key only to a server that deduplicates on it; otherwise it becomes ``unknown``
  and waits for a person to settle it.
- Once ``submitting`` may be committed, the POST and the record of its outcome finish even
  if the caller is cancelled: cut short, the send would be ambiguous for nothing.
- What a failure means for the row is :func:`~sendoso.ledger.outcome_of`'s verdict.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread
from sqlalchemy.exc import SQLAlchemyError

from sendoso.errors import SendosoError, Step, Text
from sendoso.ledger._admission import Repriced
from sendoso.ledger._calls import LedgerCalls
from sendoso.ledger._journal import JournalEntry, UnrecordedSend
from sendoso.ledger._records import LedgerRow
from sendoso.ledger._states import Outcome, RowState, Verdict, outcome_of
from sendoso.models import SendRequest

if TYPE_CHECKING:
    from sendoso import AsyncSendoso

__all__ = ["AttemptResult", "AttemptRules", "SendAttempt", "settle_hint"]


def settle_hint(run_id: str, number: int) -> Text:
    """What a person does about a row whose outcome is unknown; stored with the row's error,
    so that whoever shows it words the settle step (the CLI: its ``batch settle`` command)."""
    return Text("check it in Sendoso, then ", Step("settle", (run_id, str(number))))


@dataclass(frozen=True)
class AttemptRules:
    """What the ``submitting`` commit checks against other runs to the same host."""

    base_url: str
    #: Skip the row if its recipient was sent anything this recently by another run.
    cooldown: timedelta | None = None
    #: Send even if another run already sent this recipient this gift.
    allow_resend: bool = False


@dataclass(frozen=True)
class AttemptResult:
    """What one attempt did.

    ``state``: the state this attempt moved the row to (``submitted``, ``rejected``,
    ``unknown``, ``skipped`` by the commit's checks, or ``planned`` when certainly not
    sent), or ``None`` if it recorded nothing: the caller no longer held the row, stopped
    before the commit, or gave it back to be retried with its key (``outcome`` ``retry``).
    ``outcome``: what the POST's reply meant (``sent`` on success; a 404 is ``rejected``
    once the ``on_gift_not_found`` hook has run), ``None`` if nothing was posted.
    ``verdict``: the failure as :func:`outcome_of` classified it. ``row``: the row as it is
    after the attempt, when asked for.
    """

    state: RowState | None = None
    outcome: Outcome | None = None
    verdict: Verdict | None = None
    send_id: str | None = None
    row: LedgerRow | None = None


class SendAttempt:
    """Send rows the caller holds (leased by ``owner``) through ``client``.

    Hooks, all optional: ``on_moved(state)`` after each move this attempt makes (progress);
    ``on_gift_not_found(row)`` when the API answers 404 (is the gift gone from the catalog?)
    before the row is recorded as rejected; ``commit_lead()``, how long before its turn at
    the pacer a row wakes to commit ``submitting``, and ``on_committed(seconds)``, how long
    after that planned wake-up the commit finished; ``stopping()``, checked once the row's
    turn has come: if true, the row is given back unsent. ``stop_requested``, set when the
    caller stops: it ends a row's wait for its turn at once (a 429's pause may be minutes).
    ``reprice(row)``: the row's cost now, if its price moved since it was planned; the
    ``submitting`` commit then re-checks it against the run's caps (see ``Ledger.begin_send``).

    :attr:`unrecorded` lists the sends the API confirmed but the ledger failed to record
    (each is also in the ledger's send journal, if that could be written, and recorded from
    it when the ledger is next opened): the caller reports them.
    """

    def __init__(
        self,
        client: AsyncSendoso,
        calls: LedgerCalls,
        *,
        owner: str,
        on_moved: Callable[[RowState], None] | None = None,
        on_gift_not_found: Callable[[LedgerRow], Awaitable[object]] | None = None,
        commit_lead: Callable[[], float] | None = None,
        on_committed: Callable[[float], None] | None = None,
        stopping: Callable[[], bool] | None = None,
        stop_requested: anyio.Event | None = None,
        reprice: Callable[[LedgerRow], Repriced | None] | None = None,
    ) -> None:
        self.client = client
        self.calls = calls
        self.ledger = calls.ledger
        self.owner = owner
        self.unrecorded: list[UnrecordedSend] = []
        self._on_moved = on_moved
        self._on_gift_not_found = on_gift_not_found
        self._commit_lead = commit_lead
        self._on_committed = on_committed
        self._stopping = stopping
        self._stop_requested = stop_requested
        self._reprice = reprice

    async def __call__(
        self, row: LedgerRow, rules: AttemptRules, *, reread: bool = False
    ) -> AttemptResult:
        """Attempt ``row`` (``planned``, or ``submitting`` left by an earlier attempt).
        With ``reread``, the result carries the row as it is afterwards."""
        result = await self._attempt(row, rules)
        if reread:
            current = await self.calls(self.ledger.row, row.run_id, row.number)
            result = replace(result, row=current)
        return result

    async def _attempt(self, row: LedgerRow, rules: AttemptRules) -> AttemptResult:
        if row.state is RowState.PLANNED:
            # Wait for this send's turn *before* committing "submitting". Wake up as long
            # before the turn as the caller says the commit lately takes, though: a send
            # that reaches the pacer after its turn has gone is booked again at the back of
            # the queue, and its slot goes out empty.
            wake_at = time.monotonic()
            if row.send_key:
                lead = self._commit_lead() if self._commit_lead is not None else 0.0
                wake_at += max(0.0, self.client.pacer.prebook(row.send_key) - lead)
                await self._wait_until(wake_at)
            # A 429 may have paused everyone since this turn was booked: wait the pause out
            # here, still `planned`, where a stop can end the wait.
            while (pause := self.client.pacer.paused_for()) > 0 and not self._stop_asked():
                wake_at = time.monotonic() + pause
                await self._wait_until(wake_at)
            if self._stopping is not None and self._stopping():
                # Asked to stop while it waited for its turn: it was never sent.
                await self.calls(self.ledger.release, row.run_id, row.number, self.owner)
                return AttemptResult()
            with anyio.CancelScope(shield=True):
                state = await self._commit(row, rules, wake_at)
                result = AttemptResult(state=state)
                if state is RowState.SUBMITTING:
                    result = await self._send(row)
            return result
        if not self.client.trusts_idempotency:
            # A previous attempt may have reached the server, which would not recognise a
            # second one: never send it again, leave it for a person.
            moved = await self._move(
                row,
                RowState.UNKNOWN,
                owner=self.owner,
                error=Text(
                    "a previous attempt was interrupted and may have been sent; ",
                    settle_hint(row.run_id, row.number),
                ),
            )
            return AttemptResult(state=RowState.UNKNOWN if moved else None)
        with anyio.CancelScope(shield=True):
            result = AttemptResult()
            if await self.calls(self.ledger.count_attempt, row.run_id, row.number, self.owner):
                result = await self._send(row)
        return result

    def _stop_asked(self) -> bool:
        return self._stop_requested is not None and self._stop_requested.is_set()

    async def _wait_until(self, deadline: float) -> None:
        """Sleep until ``deadline`` (monotonic), or until a stop is requested."""
        seconds = max(0.0, deadline - time.monotonic())
        if self._stop_requested is None:
            await anyio.sleep(seconds)
            return
        with anyio.move_on_after(seconds):
            await self._stop_requested.wait()

    async def _commit(self, row: LedgerRow, rules: AttemptRules, wake_at: float) -> RowState | None:
        """Commit ``submitting`` (or ``skipped``, by the checks against other runs); the
        row's new state, ``None`` if the caller no longer holds it."""
        since = datetime.now(UTC) - rules.cooldown if rules.cooldown else None
        state = await self.calls(
            self.ledger.begin_send,
            row.run_id,
            row.number,
            self.owner,
            recipient=row.recipient,
            cooldown_since=since,
            dedupe_key=None if rules.allow_resend else row.dedupe_key,
            base_url=rules.base_url,
            price=self._reprice(row) if self._reprice is not None else None,
        )
        if self._on_committed is not None:
            # Counted from the planned wake-up: a busy machine also wakes rows late.
            self._on_committed(time.monotonic() - wake_at)
        if state is None:
            # Lost, or committed but its acknowledgement lost (then retried): look.
            current = await self.calls(self.ledger.row, row.run_id, row.number)
            if (
                current is not None
                and current.lease_owner == self.owner
                and current.state is RowState.SUBMITTING
            ):
                state = RowState.SUBMITTING
        if state is not None:
            self._moved(state)
        return state

    async def _send(self, row: LedgerRow) -> AttemptResult:
        assert row.request is not None
        journal = self.ledger.journal
        earlier = journal.lookup(row.send_key) if row.send_key else None
        if earlier is not None:
            # Sent before under this very key, by an attempt whose record the ledger lost
            # (a ledger deleted, the run planned again under the same id): record that
            # send, never make a second one.
            send_id, status, journalled = earlier.send_id, earlier.status, True
        else:
            request = SendRequest.model_validate(row.request)
            try:
                send = await self.client.sends.submit(
                    request, idempotency_key=row.send_key, validate=False
                )
            except SendosoError as exc:
                return await self._failed(row, exc)
            send_id, status = send.id, send.status
            # The gift exists now: its id goes to the journal before the ledger is asked,
            # so a ledger failing now (a full disk, a server gone, a kill) loses nothing.
            journalled = await self._journal(row, send_id, status)
        try:
            moved = await self._move(row, RowState.SUBMITTED, send_id=send_id, status=status)
        except SQLAlchemyError:
            self.unrecorded.append(UnrecordedSend(row.run_id, row.number, send_id, journalled))
            raise
        return AttemptResult(
            state=RowState.SUBMITTED if moved else None, outcome=Outcome.SENT, send_id=send_id
        )

    async def _journal(self, row: LedgerRow, send_id: str, status: str | None) -> bool:
        """Append the send to the journal; False if it could not be written (the disk the
        ledger failed on may be full too: then the caller's report is its only record)."""
        if not row.send_key:
            return False
        entry = JournalEntry(row.run_id, row.number, row.send_key, send_id, status)
        try:
            await anyio.to_thread.run_sync(self.ledger.journal.record, entry)
        except OSError:
            return False
        return True

    async def _failed(self, row: LedgerRow, exc: SendosoError) -> AttemptResult:
        verdict = outcome_of(exc, trusted=self.client.trusts_idempotency)
        outcome = verdict.outcome
        run_id, number = row.run_id, row.number
        if outcome is Outcome.GIFT_NOT_FOUND:
            if self._on_gift_not_found is not None:
                await self._on_gift_not_found(row)
            outcome = Outcome.REJECTED
        state: RowState | None
        if outcome is Outcome.REJECTED:
            state = RowState.REJECTED
            moved = await self._move(row, state, error=verdict.error)
        elif outcome is Outcome.UNKNOWN:
            state = RowState.UNKNOWN
            moved = await self._move(
                row, state, error=Text(verdict.error, "; ", settle_hint(run_id, number))
            )
        elif outcome is Outcome.RETRY:
            # May have been taken, by a server that deduplicates: the same key later.
            await self.calls(self.ledger.release, run_id, number, self.owner)
            state, moved = None, False
        else:  # NOT_SENT or STOP: certainly not taken
            state = RowState.PLANNED
            moved = await self._move(
                row, state, owner=self.owner, error=verdict.error, release=True
            )
        return AttemptResult(state=state if moved else None, outcome=outcome, verdict=verdict)

    async def _move(self, row: LedgerRow, target: RowState, **values: Any) -> bool:
        moved = await self.calls(self.ledger.move, row.run_id, row.number, target, **values)
        if moved:
            self._moved(target)
        return moved

    def _moved(self, state: RowState) -> None:
        if self._on_moved is not None:
            self._on_moved(state)
