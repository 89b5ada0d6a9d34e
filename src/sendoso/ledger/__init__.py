"""The durable ledger: every run, every row and every state transition of a send, on SQLite
or PostgreSQL, and the one send attempt that moves a row through them.

The batch engine (``sendoso.batch``) and the MCP server (``sendoso.mcp``) sit above it; it
knows neither, and speaks to the API only through the client it is given.
"""

from sendoso.ledger._admission import PlanWriter, Repriced, SendAdmission
from sendoso.ledger._attempt import AttemptResult, AttemptRules, SendAttempt, settle_hint
from sendoso.ledger._calls import LedgerCalls
from sendoso.ledger._errors import (
    LedgerError,
    LedgerFailedError,
    RunExistsError,
    describe_failure,
    ledger_failures,
)
from sendoso.ledger._journal import JournalEntry, SendJournal, UnrecordedSend
from sendoso.ledger._keys import dedupe_key, recipient_key
from sendoso.ledger._leases import new_owner
from sendoso.ledger._ledger import Ledger, default_ledger_url
from sendoso.ledger._migrations import SCHEMA_VERSION
from sendoso.ledger._records import (
    Approval,
    ApprovalState,
    LedgerRow,
    PlannedRow,
    RunInfo,
    Totals,
)
from sendoso.ledger._states import (
    OPEN_STATES,
    TRANSITIONS,
    Outcome,
    RowState,
    SkipKind,
    Verdict,
    can_move,
    outcome_of,
)

__all__ = [
    "OPEN_STATES",
    "SCHEMA_VERSION",
    "TRANSITIONS",
    "Approval",
    "ApprovalState",
    "AttemptResult",
    "AttemptRules",
    "JournalEntry",
    "Ledger",
    "LedgerCalls",
    "LedgerError",
    "LedgerFailedError",
    "LedgerRow",
    "Outcome",
    "PlanWriter",
    "PlannedRow",
    "Repriced",
    "RowState",
    "RunExistsError",
    "RunInfo",
    "SendAdmission",
    "SendAttempt",
    "SendJournal",
    "SkipKind",
    "Totals",
    "UnrecordedSend",
    "Verdict",
    "can_move",
    "dedupe_key",
    "default_ledger_url",
    "describe_failure",
    "ledger_failures",
    "new_owner",
    "outcome_of",
    "recipient_key",
    "settle_hint",
]
