"""Batch sends: plan a file of recipients into a durable ledger, then send each row exactly
once, resumably, within a budget, at the API's pace (the send state machine:
docs/architecture.md).

``from sendoso.batch import Ledger, BatchSpec, prepare_run, BatchRunner`` is the library the
``sendoso batch`` commands are a thin skin over.
"""

from sendoso._extras import require_extra

require_extra("batch", "sqlalchemy")

from sendoso.batch._columns import ColumnMapping, SourceError
from sendoso.batch._engine import (
    BatchSpec,
    ForeignRunError,
    Prepared,
    RunFileChangedError,
    RunHostError,
    RunOptionsChangedError,
    Settlement,
    check_batch_run,
    check_host,
    dry_run,
    new_run_id,
    plan_settlement,
    prepare_run,
    send_mismatches,
    settle_row,
)
from sendoso.batch._plan import Budget, PlanOptions, PlanSummary, plan_rows
from sendoso.batch._records import SourceRow
from sendoso.batch._report import neutralise, report_record, write_report, write_report_to
from sendoso.batch._runner import (
    BatchRunner,
    RunEnd,
    RunResult,
    default_concurrency,
    run_interruptibly,
)
from sendoso.batch._sources import Source
from sendoso.batch._template import MessageTemplate, TemplateError
from sendoso.batch._tracker import RefreshResult, refresh_statuses
from sendoso.ledger import (
    SCHEMA_VERSION,
    Ledger,
    LedgerError,
    LedgerFailedError,
    LedgerRow,
    Outcome,
    PlannedRow,
    RowState,
    RunExistsError,
    RunInfo,
    SkipKind,
    UnrecordedSend,
    default_ledger_url,
    ledger_failures,
    outcome_of,
)

__all__ = [
    "SCHEMA_VERSION",
    "BatchRunner",
    "BatchSpec",
    "Budget",
    "ColumnMapping",
    "ForeignRunError",
    "Ledger",
    "LedgerError",
    "LedgerFailedError",
    "LedgerRow",
    "MessageTemplate",
    "Outcome",
    "PlanOptions",
    "PlanSummary",
    "PlannedRow",
    "Prepared",
    "RefreshResult",
    "RowState",
    "RunEnd",
    "RunExistsError",
    "RunFileChangedError",
    "RunHostError",
    "RunInfo",
    "RunOptionsChangedError",
    "RunResult",
    "Settlement",
    "SkipKind",
    "Source",
    "SourceError",
    "SourceRow",
    "TemplateError",
    "UnrecordedSend",
    "check_batch_run",
    "check_host",
    "default_concurrency",
    "default_ledger_url",
    "dry_run",
    "ledger_failures",
    "neutralise",
    "new_run_id",
    "outcome_of",
    "plan_rows",
    "plan_settlement",
    "prepare_run",
    "refresh_statuses",
    "report_record",
    "run_interruptibly",
    "send_mismatches",
    "settle_row",
    "write_report",
    "write_report_to",
]
