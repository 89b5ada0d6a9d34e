"""Starting and resuming runs: the steps the CLI (and any other front end) takes, once.

Refusals to resume are typed (:class:`RunFileChangedError`, :class:`RunOptionsChangedError`,
:class:`RunHostError`, :class:`ForeignRunError`, all :class:`LedgerError`) and name
parameters and next steps as :class:`sendoso.errors.Text` parts, which each front end words.

:func:`prepare_run` turns a :class:`BatchSpec` into a planned run in the ledger, or finds the
run already there and checks that resuming it is what was meant (same file, same host).
:func:`dry_run` plans into a throwaway in-memory ledger instead.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sendoso.batch._plan import Budget, PlanOptions, PlanSummary, plan_rows
from sendoso.batch._sources import Source
from sendoso.batch._template import MessageTemplate
from sendoso.errors import FieldProblem, Param, Step, Text, ValidationError
from sendoso.ledger import (
    Ledger,
    LedgerError,
    LedgerRow,
    RowState,
    RunExistsError,
    RunInfo,
)
from sendoso.models import Gift, Send

__all__ = [
    "BatchSpec",
    "ForeignRunError",
    "Prepared",
    "RunFileChangedError",
    "RunHostError",
    "RunOptionsChangedError",
    "Settlement",
    "check_batch_run",
    "dry_run",
    "new_run_id",
    "plan_settlement",
    "prepare_run",
    "send_mismatches",
    "settle_row",
]

_MAX_RUN_ID = 120


class RunFileChangedError(LedgerError):
    """The run id was planned from another version of the input file."""

    def __init__(self, run_id: str) -> None:
        super().__init__(
            Text(
                f"run {run_id!r} was planned from a different version of this file; "
                "resume it with ",
                Step("resume"),
                " or start a new run with another ",
                Param("run_id"),
            ),
            field="run_id",
        )
        self.run_id = run_id


class RunOptionsChangedError(LedgerError):
    """The run id was planned with other options; ``changed`` names them (``max_spend``)."""

    def __init__(self, run_id: str, changed: Sequence[str]) -> None:
        self.run_id = run_id
        self.changed = tuple(changed)
        super().__init__(
            Text(
                f"run {run_id!r} was planned with other options (",
                Text.joining(", ", (Text(Param(name)) for name in self.changed)),
                "); its plan cannot change: resume it as it is (",
                Step("resume"),
                ") or start a new ",
                Param("run_id"),
            ),
            field="run_id",
        )


class RunHostError(LedgerError):
    """The run sends to ``planned_for``, not to ``base_url``."""

    def __init__(self, run_id: str, planned_for: str, base_url: str) -> None:
        super().__init__(
            Text(
                f"run {run_id!r} sends to {planned_for}, not {base_url}; use the profile or ",
                Param("base_url"),
                " it was started with",
            ),
            field="base_url",
        )
        self.run_id = run_id
        self.planned_for = planned_for
        self.base_url = base_url


class ForeignRunError(LedgerError):
    """The run holds sends made by another front end (``source``, e.g. ``mcp``)."""

    def __init__(self, run_id: str, source: str) -> None:
        super().__init__(
            Text(
                f"run {run_id!r} holds sends made through ",
                Step("front_end", (source,)),
                "; it finishes its own sends (retry the request_id there), and ",
                Step("settle"),
                " settles an unknown row",
            )
        )
        self.run_id = run_id
        self.source = source


def new_run_id(path: str, fingerprint: str, base_url: str) -> str:
    """The default run id: the file's name and a digest of its content and host. Running
    the same command on the same file again therefore resumes the same run instead of
    starting a second one that would send everybody their gift again."""
    stem = re.sub(r"[^a-z0-9]+", "-", Path(path).stem.lower()).strip("-")[:60] or "run"
    digest = hashlib.sha256(f"{fingerprint}\x1f{base_url.rstrip('/')}".encode()).hexdigest()
    return f"{stem}-{digest[:10]}"


def _check_run_id(run_id: str) -> str:
    run_id = run_id.strip()
    if not run_id or len(run_id) > _MAX_RUN_ID or not run_id.isprintable():
        raise ValidationError(
            [
                FieldProblem(
                    "run_id",
                    "invalid",
                    Text(Param("run_id"), f" must be 1 to {_MAX_RUN_ID} printable characters"),
                )
            ]
        )
    return run_id


@dataclass
class BatchSpec:
    """What ``batch run`` was asked to do."""

    path: str
    run_id: str | None = None
    mapping: Mapping[str, str] = field(default_factory=dict)
    format: Literal["auto", "csv", "jsonl"] = "auto"
    encoding: str | None = None
    delimiter: str | None = None
    gift_id: str | None = None
    variant_id: str | None = None
    message_template: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    max_spend: Sequence[str] = ()
    cooldown_days: float | None = None
    allow_resend: bool = False

    def source(self) -> Source:
        return Source(
            self.path,
            mapping=dict(self.mapping),
            format=self.format,
            encoding=self.encoding,
            delimiter=self.delimiter,
        )

    def check_columns(self, source: Source, catalog: Sequence[Gift]) -> None:
        """A field no column of ``source`` feeds, and this spec does not give, is one
        error before planning rather than a skipped row for every row."""
        supplied = {
            "gift_id": self.gift_id,
            "variant_id": self.variant_id,
            "message": self.message_template,
        }
        source.check_columns(supplied, catalog=catalog)

    def options(self, run_id: str, source: Source, base_url: str = "") -> PlanOptions:
        template = None
        if self.message_template is not None:
            template = MessageTemplate(self.message_template)
            template.check(source.placeholders())
        if self.cooldown_days is not None and self.cooldown_days < 0:
            raise ValidationError(
                [
                    FieldProblem(
                        "cooldown_days",
                        "invalid",
                        Text(Param("cooldown_days"), " must be 0 or more days"),
                    )
                ]
            )
        return PlanOptions(
            run_id=run_id,
            gift_id=self.gift_id,
            variant_id=self.variant_id,
            template=template,
            metadata=dict(self.metadata),
            budget=Budget.parse(self.max_spend) if self.max_spend else None,
            cooldown_days=self.cooldown_days,
            allow_resend=self.allow_resend,
            base_url=base_url,
        )


@dataclass
class Prepared:
    run: RunInfo
    resumed: bool
    summary: PlanSummary | None = None


def prepare_run(
    ledger: Ledger, spec: BatchSpec, catalog: Sequence[Gift], *, base_url: str
) -> Prepared:
    """Plan a new run into ``ledger``, or return the existing run of the same id after
    checking that it was planned from the same file, for the same host, with the same
    options. A run never approved and never started is planned again from scratch."""
    source = spec.source()
    fingerprint = source.fingerprint()
    run_id = (
        _check_run_id(spec.run_id) if spec.run_id else new_run_id(spec.path, fingerprint, base_url)
    )
    options = spec.options(run_id, source, base_url)
    recorded = _recorded_options(options, spec)
    existing = ledger.run(run_id)
    if existing is not None and not ledger.discard_unstarted(run_id):
        return Prepared(_check_resumable(existing, source, base_url, recorded), resumed=True)
    spec.check_columns(source, catalog)
    info = RunInfo(
        run_id=run_id,
        base_url=base_url,
        options=recorded,
        input_path=str(spec.path),
        input_fingerprint=fingerprint,
    )
    try:
        with ledger.new_run(info) as writer:
            summary = plan_rows(source.rows(), catalog, options, writer, history=writer)
    except RunExistsError:
        # Another worker planned it first, a moment ago: resume theirs.
        return Prepared(
            _check_resumable(ledger.require_run(run_id), source, base_url, recorded),
            resumed=True,
        )
    if not summary.planned:
        ledger.set_note(run_id, None, finished=True)  # nothing can be sent: nothing is open
    return Prepared(ledger.require_run(run_id), resumed=False, summary=summary)


def _recorded_options(options: PlanOptions, spec: BatchSpec) -> dict[str, Any]:
    recorded = options.as_options() | {"mapping": dict(spec.mapping)}
    # As the ledger stores and returns them, so that a resume compares like with like.
    loaded: dict[str, Any] = json.loads(json.dumps(recorded, sort_keys=True, default=str))
    return loaded


def _check_resumable(
    run: RunInfo, source: Source, base_url: str, options: dict[str, Any]
) -> RunInfo:
    check_batch_run(run)
    check_host(run, base_url)
    if run.input_fingerprint and source.fingerprint() != run.input_fingerprint:
        raise RunFileChangedError(run.run_id)
    changed = sorted(k for k in options if run.options.get(k) != options[k])
    if changed:
        raise RunOptionsChangedError(run.run_id, changed)
    return run


def check_batch_run(run: RunInfo) -> None:
    """Only runs planned by ``batch run`` are sent by the batch runner.

    The MCP server's run holds requests its operator's guardrails admitted (``allow_send``,
    caps, approvals); a batch runner that took them over would bypass those, so it never does.
    """
    if run.source != "batch":
        raise ForeignRunError(run.run_id, run.source)


def check_host(run: RunInfo, base_url: str) -> None:
    """A run is only ever sent to the host it was planned for."""
    if run.base_url.rstrip("/") != base_url.rstrip("/"):
        raise RunHostError(run.run_id, run.base_url, base_url)


def dry_run(
    spec: BatchSpec, catalog: Sequence[Gift], *, history: Ledger | None, base_url: str
) -> tuple[PlanSummary, Ledger, str]:
    """Plan into a scratch ledger (returned, for listing the skipped rows; close it to
    delete it); nothing is written to ``history``, which is only read for the cool-down."""
    source = spec.source()
    run_id = (
        _check_run_id(spec.run_id)
        if spec.run_id
        else new_run_id(spec.path, source.fingerprint(), base_url)
    )
    options = spec.options(run_id, source, base_url)
    spec.check_columns(source, catalog)
    scratch = Ledger.scratch()
    info = RunInfo(run_id=run_id, base_url=base_url, options=options.as_options())
    try:
        with scratch.new_run(info) as writer:
            summary = plan_rows(source.rows(), catalog, options, writer, history=history)
    except BaseException:
        scratch.close()
        raise
    return summary, scratch, run_id


@dataclass(frozen=True)
class Settlement:
    """What settling a row will do: ``row`` as it is now, and the state it moves to
    (``submitted`` with ``send_id``, or ``planned`` when it was not sent). ``correcting``:
    the row was already settled as sent, and this replaces that settlement."""

    row: LedgerRow
    target: RowState
    send_id: str | None
    correcting: bool


def plan_settlement(
    ledger: Ledger, run_id: str, number: int, *, send_id: str | None, correct: bool = False
) -> Settlement:
    """Check that row ``number`` can be settled as sent (``send_id``) or not sent (``None``),
    without moving it. Only unknown rows are settled; with ``correct``, only a row already
    recorded as sent, whose settlement was wrong."""
    ledger.require_run(run_id)
    current = ledger.row(run_id, number)
    if current is None:
        raise LedgerError(f"run {run_id!r} has no row {number}")
    expected = RowState.SUBMITTED if correct else RowState.UNKNOWN
    if current.state is not expected:
        hint: tuple[str | Param, ...] = ()
        if current.state is RowState.SUBMITTED:
            hint = (" (a wrong settlement is replaced with ", Param("correct"), ")")
        raise LedgerError(
            Text(
                f"row {number} is {current.state.value}, not {expected.value}; "
                f"only {expected.value} rows are " + ("corrected" if correct else "settled"),
                *hint,
            )
        )
    if correct and send_id is not None and send_id == current.send_id:
        raise LedgerError(f"row {number} is already recorded as sent by {send_id}")
    target = RowState.SUBMITTED if send_id is not None else RowState.PLANNED
    return Settlement(current, target, send_id, correcting=correct)


def send_mismatches(row: LedgerRow, send: Send) -> list[str]:
    """How ``send`` (as the API reports it) differs from what row ``row`` was to send:
    another recipient, another gift, or metadata naming another run or row. Empty when
    nothing the API reports contradicts the row."""
    found: list[str] = []
    if row.recipient and send.email and row.recipient.casefold() != send.email.casefold():
        found.append(f"it went to {send.email}, the row is for {row.recipient}")
    if row.gift_id and send.gift_id and row.gift_id != send.gift_id:
        found.append(f"it is gift {send.gift_id}, the row's is {row.gift_id}")
    sent_run = send.metadata.get("sendoso_run")
    sent_row = send.metadata.get("sendoso_row")
    if sent_run is not None and str(sent_run) != row.run_id:
        found.append(f"it belongs to run {sent_run}, not {row.run_id}")
    elif sent_row is not None and str(sent_row) != str(row.number):
        found.append(f"it belongs to row {sent_row}, not {row.number}")
    return found


def settle_row(
    ledger: Ledger, run_id: str, number: int, *, send_id: str | None, correct: bool = False
) -> RowState:
    """Record what a person found in Sendoso for a row left ``unknown``: sent as
    ``send_id``, or (``None``) not sent, which returns it to ``planned`` for the next resume.
    Only unknown rows are settled; ``correct`` replaces a settlement as sent that was wrong
    (check the send with the API first: :func:`send_mismatches`)."""
    plan = plan_settlement(ledger, run_id, number, send_id=send_id, correct=correct)
    if correct:
        assert plan.row.send_id is not None  # plan_settlement corrects submitted rows only
        moved = ledger.correct_settlement(
            run_id, number, recorded_send_id=plan.row.send_id, send_id=send_id
        )
    elif send_id is not None:
        moved = ledger.move(run_id, number, RowState.SUBMITTED, send_id=send_id)
    else:
        moved = ledger.move(run_id, number, RowState.PLANNED, release=True)
    if not moved:
        raise LedgerError(
            Text(f"row {number} changed meanwhile; look again with ", Step("show", (run_id,)))
        )
    return plan.target
