"""The send state machine (docs/architecture.md draws it), as pure data and functions (no I/O).

Every row of a batch is in exactly one :class:`RowState`. The ledger applies a transition
only from the states listed in :data:`TRANSITIONS`, in the same statement that checks them,
so two workers (or a worker and ``batch settle``) can never both move one row.

What a send attempt's exception means for the row is decided here too
(:func:`outcome_of`), so the batch runner and the MCP server cannot disagree about which
failures may be retried.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sendoso.errors import (
    AmbiguousSendError,
    APIConnectionError,
    APIStatusError,
    AuthenticationError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ResponseParseError,
    SendosoError,
    ValidationError,
)

__all__ = [
    "OPEN_STATES",
    "TRANSITIONS",
    "Outcome",
    "RowState",
    "SkipKind",
    "Verdict",
    "can_move",
    "outcome_of",
]


class RowState(StrEnum):
    PLANNED = "planned"
    SUBMITTING = "submitting"
    SUBMITTED = "submitted"
    REJECTED = "rejected"
    UNKNOWN = "unknown"
    SKIPPED = "skipped"


class SkipKind(StrEnum):
    INVALID = "invalid"
    DUPLICATE = "duplicate"
    BUDGET = "budget"
    COOLDOWN = "cooldown"
    GIFT_GONE = "gift_gone"


#: target state -> the states a row may move to it from.
TRANSITIONS: dict[RowState, frozenset[RowState]] = {
    # Back to planned: the API certainly did not take it (401, 429, never connected), or a
    # person settled an unknown row as "not sent".
    RowState.PLANNED: frozenset({RowState.SUBMITTING, RowState.UNKNOWN}),
    RowState.SUBMITTING: frozenset({RowState.PLANNED}),
    # A reply naming the send is the truth even after the row was given up as unknown
    # (a slow reply racing a take-over, or ``settle --sent``).
    RowState.SUBMITTED: frozenset({RowState.SUBMITTING, RowState.UNKNOWN}),
    RowState.REJECTED: frozenset({RowState.SUBMITTING}),
    RowState.UNKNOWN: frozenset({RowState.SUBMITTING}),
    RowState.SKIPPED: frozenset({RowState.PLANNED}),
}

#: States in which a row still needs work from a runner.
OPEN_STATES = frozenset({RowState.PLANNED, RowState.SUBMITTING})


def can_move(current: RowState, target: RowState) -> bool:
    return current in TRANSITIONS[target]


class Outcome(StrEnum):
    """What one send attempt's result means for its row."""

    SENT = "sent"  # -> submitted
    REJECTED = "rejected"  # the API said no; never retried blindly
    UNKNOWN = "unknown"  # may have been sent; the server does not dedupe: never re-sent
    RETRY = "retry"  # may have been sent, but the server dedupes: same key later
    NOT_SENT = "not_sent"  # certainly not taken: back to planned, same key
    GIFT_NOT_FOUND = "gift_not_found"  # 404: re-check the catalog before deciding
    STOP = "stop"  # not sent, and no other row will fare better (credentials refused)


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    error: str
    server_failure: bool = False  # counts towards the run's "API is failing" brake


def outcome_of(exc: BaseException, *, trusted: bool) -> Verdict:
    """Classify a send attempt's exception. ``trusted``: the server dedupes on the key."""
    text = _describe(exc)
    if isinstance(exc, AmbiguousSendError):
        if exc.retry_safe and trusted:
            return Verdict(Outcome.RETRY, text, server_failure=True)
        return Verdict(Outcome.UNKNOWN, text, server_failure=True)
    if isinstance(exc, ResponseParseError):
        # A 2xx whose body we cannot read: created, but its id is unknown to us.
        return Verdict(Outcome.UNKNOWN, text, server_failure=True)
    if isinstance(exc, AuthenticationError | PermissionDeniedError):
        return Verdict(Outcome.STOP, text)
    if isinstance(exc, RateLimitError):
        return Verdict(Outcome.NOT_SENT, text)
    if isinstance(exc, ConflictError):
        # 409 "a request with this key is still being processed": only a deduping server
        # says that, and asking again later gets the first request's answer.
        return Verdict(Outcome.RETRY if trusted else Outcome.UNKNOWN, text)
    if isinstance(exc, NotFoundError):
        return Verdict(Outcome.GIFT_NOT_FOUND, text)
    if isinstance(exc, APIStatusError):
        if exc.status_code >= 500:
            return Verdict(Outcome.RETRY if trusted else Outcome.UNKNOWN, text, True)
        return Verdict(Outcome.REJECTED, text)
    if isinstance(exc, ValidationError):
        return Verdict(Outcome.REJECTED, text)
    if isinstance(exc, APIConnectionError):
        # The HTTP policy raises this only when the request never left (the connection
        # was not established, or no access token could be had for it: TokenUnavailableError);
        # anything that may have reached the server is ambiguous.
        return Verdict(Outcome.NOT_SENT, text, server_failure=True)
    if isinstance(exc, SendosoError):
        return Verdict(Outcome.UNKNOWN, text)
    raise exc


def _describe(exc: BaseException) -> str:
    # One line: the text goes into the ledger, a report cell and a progress message.
    text = f"HTTP {exc.status_code}: {exc.message}" if isinstance(exc, APIStatusError) else str(exc)
    return " ".join(text.split()) or type(exc).__name__
