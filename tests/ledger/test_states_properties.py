"""Properties of the send state machine: only the moves docs/architecture.md draws, every state
can end, and no failure of a send attempt is ever classified in a way that could send twice.

Hypothesis runs derandomized (a fixed seed per test) and without an example database, so a
run in CI sees exactly the examples a run on a laptop sees.
"""

from __future__ import annotations

import itertools
from collections import deque

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sendoso.errors import (
    AmbiguousSendError,
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    ConfigurationError,
    InputError,
    ResponseParseError,
    SendosoError,
    ValidationError,
    status_error_class,
)
from sendoso.ledger import (
    OPEN_STATES,
    TRANSITIONS,
    Outcome,
    RowState,
    can_move,
    outcome_of,
)

S = RowState
PROPERTY = settings(max_examples=300, derandomize=True, database=None, deadline=None)

#: The state machine of docs/architecture.md, as (from, to). Restated here on purpose: this is
#: the spec the table in _states.py is checked against.
DESIGNED_MOVES = {
    (S.PLANNED, S.SUBMITTING),
    (S.PLANNED, S.SKIPPED),
    (S.SUBMITTING, S.SUBMITTED),
    (S.SUBMITTING, S.REJECTED),
    (S.SUBMITTING, S.UNKNOWN),
    (S.SUBMITTING, S.PLANNED),
    (S.UNKNOWN, S.SUBMITTED),
    (S.UNKNOWN, S.PLANNED),
}
FINAL = {S.SUBMITTED, S.REJECTED, S.SKIPPED}

#: Where a row in ``submitting`` goes for each outcome of its attempt. RETRY keeps it
#: in flight (same key, later); GIFT_NOT_FOUND re-reads the catalog and rejects the row
#: (the gift's other, still planned rows are skipped from planned).
OUTCOME_TARGETS = {
    Outcome.SENT: {S.SUBMITTED},
    Outcome.REJECTED: {S.REJECTED},
    Outcome.UNKNOWN: {S.UNKNOWN},
    Outcome.RETRY: {S.SUBMITTING},
    Outcome.NOT_SENT: {S.PLANNED},
    Outcome.GIFT_NOT_FOUND: {S.REJECTED},
    Outcome.STOP: {S.PLANNED},
}


def successors(state: RowState) -> set[RowState]:
    return {target for target in RowState if can_move(state, target)}


def reachable(start: RowState) -> set[RowState]:
    seen = {start}
    queue = deque([start])
    while queue:
        for nxt in successors(queue.popleft()) - seen:
            seen.add(nxt)
            queue.append(nxt)
    return seen


def test_transitions_allow_only_the_designed_moves() -> None:
    allowed = {(a, b) for a in RowState for b in RowState if can_move(a, b)}
    assert allowed <= DESIGNED_MOVES
    assert allowed == DESIGNED_MOVES  # and none of them is missing
    assert set(TRANSITIONS) == set(RowState)


def test_every_state_is_reachable_from_planned_and_can_end() -> None:
    assert reachable(S.PLANNED) == set(RowState)
    final = {state for state in RowState if not successors(state)}
    assert final == FINAL
    for state in reachable(S.PLANNED):
        assert reachable(state) & FINAL, f"{state} can never end"
    assert not (OPEN_STATES & FINAL)


@PROPERTY
@given(st.lists(st.sampled_from(list(RowState)), max_size=60))
def test_any_sequence_of_attempted_moves(targets: list[RowState]) -> None:
    """Whatever a runner, a resume and ``batch settle`` try in whatever order, a row only
    takes allowed moves, stays where a refused move would take it, can always still end,
    and is sent again only after going back to ``planned``."""
    state = S.PLANNED
    path = [state]
    for target in targets:
        if can_move(state, target):
            assert (state, target) in DESIGNED_MOVES
            state = target
            path.append(state)
        assert reachable(state) & FINAL
    for before, after in itertools.pairwise(path):
        if after is S.SUBMITTING:
            assert before is S.PLANNED
    if state in FINAL:
        assert not successors(state)


_STATUS = st.one_of(
    st.sampled_from([400, 401, 403, 404, 409, 422, 429, 500, 502, 503, 504]),
    st.integers(min_value=100, max_value=999),
)
_TEXT = st.text(max_size=80)


@st.composite
def send_failures(draw: st.DrawFn) -> SendosoError:
    """Any exception the SDK may raise out of a send attempt, with hostile messages."""
    message = draw(_TEXT)
    kind = draw(st.integers(min_value=0, max_value=7))
    if kind == 0:
        status = draw(_STATUS)
        return status_error_class(status)(
            message,
            status_code=status,
            details=[],
            request_id=draw(st.none() | _TEXT),
        )
    if kind == 1:
        return AmbiguousSendError(message, idempotency_key="sb_x", retry_safe=draw(st.booleans()))
    if kind == 2:
        return ResponseParseError(message, status_code=draw(_STATUS), idempotency_key="sb_x")
    if kind == 3:
        return draw(st.sampled_from([APIConnectionError, APITimeoutError]))(message)
    if kind == 4:
        return ValidationError([])
    if kind == 5:
        whole: type[SendosoError] = draw(st.sampled_from([ConfigurationError, InputError]))
        return whole(message)
    if kind == 6:
        return APIStatusError(message, status_code=draw(_STATUS))
    return SendosoError(message)


@PROPERTY
@given(send_failures(), st.booleans())
def test_every_send_failure_gets_a_verdict_that_cannot_send_twice(
    exc: SendosoError, trusted: bool
) -> None:
    verdict = outcome_of(exc, trusted=trusted)
    assert verdict.outcome in OUTCOME_TARGETS
    for target in OUTCOME_TARGETS[verdict.outcome] - {S.SUBMITTING}:
        assert can_move(S.SUBMITTING, target)
    # One line, never empty: it goes into a ledger cell, a report and a progress line.
    assert verdict.error
    assert "\n" not in verdict.error
    assert "\r" not in verdict.error
    maybe_sent = isinstance(exc, AmbiguousSendError | ResponseParseError) or (
        isinstance(exc, APIStatusError) and exc.status_code >= 500
    )
    if maybe_sent and not trusted:
        # The server does not deduplicate: a request that may have been taken is never
        # tried again by itself.
        assert verdict.outcome is Outcome.UNKNOWN
    if not trusted:
        assert verdict.outcome is not Outcome.RETRY
    if isinstance(exc, ResponseParseError):
        assert verdict.outcome is Outcome.UNKNOWN  # created, id unknown: never re-sent


@PROPERTY
@given(st.sampled_from([KeyError, ValueError, RuntimeError, OSError]), _TEXT, st.booleans())
def test_an_exception_from_outside_the_sdk_is_not_classified(
    kind: type[Exception], message: str, trusted: bool
) -> None:
    """A bug is not an API outcome: it propagates rather than being recorded as one."""
    exc = kind(message)
    with pytest.raises(kind) as caught:
        outcome_of(exc, trusted=trusted)
    assert caught.value is exc
