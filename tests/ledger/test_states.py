"""The send state machine (docs/architecture.md): which moves are allowed, and what each
failure means."""

from __future__ import annotations

import itertools

import pytest

from sendoso.errors import (
    AmbiguousSendError,
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    FieldProblem,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ResponseParseError,
    SendosoError,
    TokenUnavailableError,
    UnprocessableEntityError,
    ValidationError,
    status_error_class,
)
from sendoso.ledger import (
    OPEN_STATES,
    TRANSITIONS,
    Outcome,
    RowState,
    SkipKind,
    can_move,
    outcome_of,
)

S = RowState

#: Every move the state machine in docs/architecture.md allows, as (from, to).
DESIGNED_MOVES = {
    (S.PLANNED, S.SUBMITTING),  # committed durably before the POST
    (S.PLANNED, S.SKIPPED),  # a gift that left the catalog
    (S.SUBMITTING, S.SUBMITTED),  # the API answered with the send
    (S.SUBMITTING, S.REJECTED),  # the API said no
    (S.SUBMITTING, S.UNKNOWN),  # ambiguous and the server does not dedupe
    (S.SUBMITTING, S.PLANNED),  # certainly not taken (401, 429, never connected)
    (S.UNKNOWN, S.SUBMITTED),  # settled as sent, or a late reply naming the send
    (S.UNKNOWN, S.PLANNED),  # settled as not sent
}

ALL_PAIRS = list(itertools.product(RowState, RowState))


# --- transitions ----------------------------------------------------------------------


def test_every_state_has_an_entry_in_the_table() -> None:
    """TRANSITIONS names, for every target state, the states it may be reached from."""
    assert set(TRANSITIONS) == set(RowState)


def test_the_table_allows_exactly_the_designed_moves() -> None:
    """The allowed (from, to) pairs are exactly those of docs/architecture.md, no more, no fewer."""
    allowed = {(current, target) for current, target in ALL_PAIRS if can_move(current, target)}
    assert allowed == DESIGNED_MOVES


@pytest.mark.parametrize(("current", "target"), ALL_PAIRS)
def test_can_move_agrees_with_the_table(current: RowState, target: RowState) -> None:
    """can_move is a lookup in TRANSITIONS for every pair of states."""
    assert can_move(current, target) is (current in TRANSITIONS[target])


@pytest.mark.parametrize("current", [S.SKIPPED, S.REJECTED, S.SUBMITTED, S.UNKNOWN, S.SUBMITTING])
def test_only_planned_rows_are_ever_submitted(current: RowState) -> None:
    """A row reaches submitting only from planned: a finished or in-flight row is never sent."""
    assert not can_move(current, S.SUBMITTING)
    assert can_move(S.PLANNED, S.SUBMITTING)


@pytest.mark.parametrize("finished", [S.SUBMITTED, S.REJECTED, S.SKIPPED])
def test_finished_rows_never_move_again(finished: RowState) -> None:
    """Submitted, rejected and skipped rows are final: no transition leaves them."""
    assert [target for target in RowState if can_move(finished, target)] == []


def test_unknown_rows_can_only_be_settled() -> None:
    """An unknown row moves only by settlement: to submitted (sent) or planned (not sent)."""
    assert {t for t in RowState if can_move(S.UNKNOWN, t)} == {S.SUBMITTED, S.PLANNED}


def test_skipping_happens_only_before_an_attempt() -> None:
    """Only a planned row can be skipped; a row that may have been sent cannot be."""
    assert {c for c in RowState if can_move(c, S.SKIPPED)} == {S.PLANNED}


def test_no_state_moves_to_itself() -> None:
    """A transition always changes the state (so a repeated move is refused, not redone)."""
    assert not any(can_move(state, state) for state in RowState)


def test_open_states_are_the_ones_a_runner_still_works_on() -> None:
    """Planned and submitting rows need a runner; every other state is done or parked."""
    assert frozenset({S.PLANNED, S.SUBMITTING}) == OPEN_STATES


def test_state_and_skip_kind_values_are_the_stored_strings() -> None:
    """The enum values are what the ledger stores, so they must not change."""
    assert [s.value for s in RowState] == [
        "planned",
        "submitting",
        "submitted",
        "rejected",
        "unknown",
        "skipped",
    ]
    assert {k.value for k in SkipKind} == {
        "invalid",
        "duplicate",
        "budget",
        "cooldown",
        "gift_gone",
    }


# --- outcome_of -----------------------------------------------------------------------


def status_error(status: int, message: str = "failed") -> APIStatusError:
    """The error the SDK raises for an HTTP status, built like the HTTP policy builds it."""
    return status_error_class(status)(message, status_code=status, request_id="req_1")


def ambiguous(*, retry_safe: bool) -> AmbiguousSendError:
    return AmbiguousSendError("no readable reply", idempotency_key="sb_key", retry_safe=retry_safe)


def unparsable() -> ResponseParseError:
    return ResponseParseError("could not read the send", status_code=201, idempotency_key="sb_key")


# (error, trusted, outcome, counts towards the failing-API brake)
CASES = [
    pytest.param(
        ambiguous(retry_safe=True), True, Outcome.RETRY, True, id="ambiguous-safe-trusted"
    ),
    pytest.param(
        ambiguous(retry_safe=True), False, Outcome.UNKNOWN, True, id="ambiguous-safe-untrusted"
    ),
    pytest.param(
        ambiguous(retry_safe=False), True, Outcome.UNKNOWN, True, id="ambiguous-unsafe-trusted"
    ),
    pytest.param(
        ambiguous(retry_safe=False), False, Outcome.UNKNOWN, True, id="ambiguous-unsafe-untrusted"
    ),
    pytest.param(unparsable(), True, Outcome.UNKNOWN, True, id="parse-trusted"),
    pytest.param(unparsable(), False, Outcome.UNKNOWN, True, id="parse-untrusted"),
    pytest.param(status_error(401), True, Outcome.STOP, False, id="401-trusted"),
    pytest.param(status_error(401), False, Outcome.STOP, False, id="401-untrusted"),
    pytest.param(status_error(403), True, Outcome.STOP, False, id="403-trusted"),
    pytest.param(status_error(403), False, Outcome.STOP, False, id="403-untrusted"),
    pytest.param(status_error(429), True, Outcome.NOT_SENT, False, id="429-trusted"),
    pytest.param(status_error(429), False, Outcome.NOT_SENT, False, id="429-untrusted"),
    pytest.param(status_error(409), True, Outcome.RETRY, False, id="409-trusted"),
    pytest.param(status_error(409), False, Outcome.UNKNOWN, False, id="409-untrusted"),
    pytest.param(status_error(404), True, Outcome.GIFT_NOT_FOUND, False, id="404-trusted"),
    pytest.param(status_error(404), False, Outcome.GIFT_NOT_FOUND, False, id="404-untrusted"),
    pytest.param(status_error(400), True, Outcome.REJECTED, False, id="400-trusted"),
    pytest.param(status_error(400), False, Outcome.REJECTED, False, id="400-untrusted"),
    pytest.param(status_error(422), True, Outcome.REJECTED, False, id="422-trusted"),
    pytest.param(status_error(422), False, Outcome.REJECTED, False, id="422-untrusted"),
    pytest.param(status_error(418), False, Outcome.REJECTED, False, id="other-4xx"),
    pytest.param(status_error(500), True, Outcome.RETRY, True, id="500-trusted"),
    pytest.param(status_error(500), False, Outcome.UNKNOWN, True, id="500-untrusted"),
    pytest.param(status_error(503), True, Outcome.RETRY, True, id="503-trusted"),
    pytest.param(status_error(503), False, Outcome.UNKNOWN, True, id="503-untrusted"),
    pytest.param(
        APIConnectionError("connection refused"), True, Outcome.NOT_SENT, True, id="conn-trusted"
    ),
    pytest.param(
        APIConnectionError("connection refused"),
        False,
        Outcome.NOT_SENT,
        True,
        id="conn-untrusted",
    ),
    pytest.param(
        APITimeoutError("connect timed out"), False, Outcome.NOT_SENT, True, id="connect-timeout"
    ),
    pytest.param(
        TokenUnavailableError("could not obtain an access token", status_code=500),
        False,
        Outcome.NOT_SENT,
        True,
        id="token-endpoint-5xx-untrusted",
    ),
    pytest.param(
        ValidationError([FieldProblem("email", "invalid", "email is not valid")], row=3),
        False,
        Outcome.REJECTED,
        False,
        id="validation",
    ),
    pytest.param(SendosoError("something else"), True, Outcome.UNKNOWN, False, id="other-sdk"),
]


@pytest.mark.parametrize(("exc", "trusted", "outcome", "server_failure"), CASES)
def test_outcome_of_each_error(
    exc: SendosoError, trusted: bool, outcome: Outcome, server_failure: bool
) -> None:
    """Each documented failure maps to the outcome docs/architecture.md gives it, trusted or not."""
    verdict = outcome_of(exc, trusted=trusted)
    assert verdict.outcome is outcome
    assert verdict.server_failure is server_failure
    assert verdict.error


@pytest.mark.parametrize(
    ("cls", "status"),
    [
        (BadRequestError, 400),
        (AuthenticationError, 401),
        (PermissionDeniedError, 403),
        (NotFoundError, 404),
        (ConflictError, 409),
        (UnprocessableEntityError, 422),
        (RateLimitError, 429),
        (InternalServerError, 502),
    ],
)
def test_status_errors_are_built_as_their_documented_classes(
    cls: type[APIStatusError], status: int
) -> None:
    """The cases above use the very classes the SDK raises for each status."""
    assert type(status_error(status)) is cls


@pytest.mark.parametrize(
    "exc",
    [
        status_error(429),
        APIConnectionError("connection refused"),
        status_error(401),
    ],
)
def test_certainly_unsent_failures_never_count_as_ambiguous(exc: SendosoError) -> None:
    """Failures where the request certainly was not taken are never parked as unknown."""
    for trusted in (True, False):
        assert outcome_of(exc, trusted=trusted).outcome in (Outcome.NOT_SENT, Outcome.STOP)


def test_an_untrusted_server_never_gets_a_blind_retry() -> None:
    """With a server that does not dedupe, no failure that may have created a send retries."""
    maybe_sent = [
        ambiguous(retry_safe=True),
        ambiguous(retry_safe=False),
        unparsable(),
        status_error(409),
        status_error(500),
        status_error(504),
        SendosoError("?"),
    ]
    for exc in maybe_sent:
        assert outcome_of(exc, trusted=False).outcome is Outcome.UNKNOWN, exc


def test_status_errors_are_described_with_their_status() -> None:
    """The stored error text of an HTTP failure starts with its status and keeps the message."""
    verdict = outcome_of(status_error(422, "email is not deliverable"), trusted=False)
    assert verdict.error.startswith("HTTP 422")
    assert "email is not deliverable" in verdict.error


def test_an_error_without_a_message_is_described_by_its_type() -> None:
    """An exception with an empty message still leaves a readable error on the row."""
    assert outcome_of(APIConnectionError(""), trusted=True).error == "APIConnectionError"


def test_ambiguous_error_text_is_kept() -> None:
    """The ambiguous send's explanation is what the row records."""
    verdict = outcome_of(ambiguous(retry_safe=False), trusted=False)
    assert verdict.error == "no readable reply"


@pytest.mark.parametrize(
    "exc", [ValueError("bug"), KeyError("x"), RuntimeError("boom"), KeyboardInterrupt()]
)
@pytest.mark.parametrize("trusted", [True, False])
def test_foreign_exceptions_are_re_raised(exc: BaseException, trusted: bool) -> None:
    """An exception that is not the SDK's is a bug or an interrupt: it propagates unchanged."""
    with pytest.raises(type(exc)) as raised:
        outcome_of(exc, trusted=trusted)
    assert raised.value is exc
