"""Planning: every input row gets a verdict before anything is sent.

A row becomes ``planned`` (a checked request, a stable idempotency key, a cost estimate) or
``skipped`` with the reason: invalid, a duplicate of an earlier row, recently gifted (the
cool-down), or beyond the budget. Planning streams the file in chunks; what it must remember
across chunks (which recipients it has planned) it asks the ledger it is writing to, so
memory does not grow with the file.

The budget is reserved here, in row order, with the high end of each row's estimate: the
rows that are planned can all be sent without exceeding it, however many are in flight at
once and whatever order the workers take them in.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import hashlib
import itertools
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

import pycountry

from sendoso.batch._records import SourceRow
from sendoso.batch._template import MessageTemplate
from sendoso.errors import FieldProblem, OverCapError, Param, Text, ValidationError
from sendoso.ledger import (
    PlannedRow,
    PlanWriter,
    RowState,
    SkipKind,
    Totals,
    dedupe_key,
    recipient_key,
)
from sendoso.models import CostEstimate, Gift
from sendoso.pricing import EstimateMemo, over_cap
from sendoso.resources import check_against, request_from_fields
from sendoso.validation import clean_text, country_only_problems

__all__ = ["Budget", "PlanOptions", "PlanSummary", "plan_rows", "send_key_for"]

_CHUNK = 500
#: "5000", "$5,000.00", "4000 GBP", "GBP 4000", "gbp4000".
_AMOUNT = re.compile(
    r"\s*(?P<before>[A-Za-z]{3})?\s*\$?(?P<amount>-?[0-9][0-9,]*(\.[0-9]+)?)\s*(?P<after>[A-Za-z]{3})?\s*"
)
_ADDRESS_FIELDS = ("line1", "line2", "city", "state", "postal_code", "country")
_ADDRESS_PARTS = frozenset(_ADDRESS_FIELDS)


class RecipientHistory(Protocol):
    def recently_gifted(
        self, recipients: Iterable[str], *, since: datetime, exclude_run: str | None = None
    ) -> set[str]: ...

    def sent_elsewhere(
        self, dedupe_keys: Iterable[str], *, run_id: str, base_url: str
    ) -> dict[str, tuple[str, int]]: ...


class Budget:
    """Spending caps, one per currency (``max_spend=["5000"]`` or ``["4000 GBP"]``).

    A row fits when, for every currency its estimate involves, that currency has a cap and
    the high end still fits under it. There is no conversion between currencies: a row
    priced in a currency with no cap does not fit. ``field`` is the parameter that set the
    caps, which its errors name.
    """

    def __init__(self, caps: Mapping[str, Decimal], *, field: str = "max_spend") -> None:
        self.caps = {cur.upper(): Decimal(cap) for cur, cap in caps.items()}
        self.reserved: dict[str, Decimal] = dict.fromkeys(self.caps, Decimal(0))
        self.field = field

    @classmethod
    def parse(cls, values: Iterable[str], *, field: str = "max_spend") -> Budget:
        """Caps from amounts such as ``"5000"``, ``"$5,000.00"`` or ``"4000 GBP"`` (US dollars
        when no currency is given); a :class:`ValidationError` on ``field`` otherwise."""

        def invalid(*message: str | Param) -> ValidationError:
            return ValidationError([FieldProblem(field, "invalid", Text(*message))])

        caps: dict[str, Decimal] = {}
        for value in values:
            match = _AMOUNT.fullmatch(value)
            cap = None
            if match and not (match["before"] and match["after"]):
                currency = (match["before"] or match["after"] or "USD").upper()
                with contextlib.suppress(InvalidOperation):
                    cap = Decimal(match["amount"].replace(",", ""))
            if cap is None:
                raise invalid(Param(field), f" {value!r} is not an amount; e.g. 5000 or '4000 GBP'")
            if not cap.is_finite() or cap < 0:
                raise invalid(Param(field), " must be 0 or more")
            if currency in caps:
                raise invalid(Param(field), f" gives {currency} twice")
            caps[currency] = cap
        return cls(caps, field=field)

    def as_options(self) -> dict[str, str]:
        return {cur: str(cap) for cur, cap in self.caps.items()}

    def reserve(self, totals: Totals, *, shipping_known: bool) -> OverCapError | None:
        """Reserve a row's high end; returns why it does not fit (nothing reserved)."""
        if not shipping_known:
            return self._over(
                "its shipping rate is not published, so its cost has no upper bound",
                currency=None,
                limit=None,
            )
        excess = over_cap(totals, self.caps, self.reserved)
        if excess is not None:
            currency, high, cap = excess.currency, excess.needed, excess.cap
            facts = {"currency": currency, "limit": cap, "spent": excess.used, "needed": high}
            if cap is None:
                return self._over(
                    f"it costs {currency} and ",
                    Param(self.field),
                    f" sets no {currency} cap",
                    **facts,
                )
            left = cap - excess.used
            return self._over(
                f"it needs up to {high:.2f} {currency} and {left:.2f} of the "
                f"{cap:.2f} {currency} budget is left",
                **facts,
            )
        for currency, (_, high) in totals.items():
            self.reserved[currency] += high
        return None

    def _over(self, *why: str | Param, **facts: Any) -> OverCapError:
        return OverCapError(Text("over ", Param(self.field), ": ", *why), field=self.field, **facts)


@dataclass
class PlanOptions:
    run_id: str
    gift_id: str | None = None
    variant_id: str | None = None
    template: MessageTemplate | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    budget: Budget | None = None
    cooldown_days: float | None = None
    allow_resend: bool = False
    #: The host the run sends to: earlier runs to it count as having sent.
    base_url: str = ""

    def as_options(self) -> dict[str, Any]:
        """What a resumed run must be planned with again, for the ledger's record."""
        return {
            "gift_id": self.gift_id,
            "variant_id": self.variant_id,
            "message_template": self.template.text if self.template else None,
            "metadata": self.metadata,
            "max_spend": self.budget.as_options() if self.budget else None,
            "cooldown_days": self.cooldown_days,
            "allow_resend": self.allow_resend,
        }


@dataclass
class PlanSummary:
    rows: int = 0
    planned: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    per_gift: Counter[str] = field(default_factory=Counter)
    estimate: dict[str, list[Decimal]] = field(default_factory=dict)
    shipping_unknown: int = 0

    def add_estimate(self, totals: Totals) -> None:
        for currency, (low, high) in totals.items():
            sums = self.estimate.setdefault(currency, [Decimal(0), Decimal(0)])
            sums[0] += low
            sums[1] += high


def send_key_for(run_id: str, number: int, dedupe_key: str) -> str:
    """Deterministic, so that even a run re-planned into a fresh ledger under the same id
    presents the same keys to a deduplicating server."""
    digest = hashlib.sha256(f"{run_id}\x1f{number}\x1f{dedupe_key}".encode()).hexdigest()
    return f"sb_{digest[:40]}"


@functools.lru_cache(maxsize=512)
def _country_code(value: str) -> str:
    """ "United States", "USA" -> "US"; anything unrecognised is left for validation."""
    if len(value) <= 2:
        return value
    try:
        return str(pycountry.countries.lookup(value).alpha_2)
    except LookupError:
        return value


@functools.lru_cache(maxsize=256)
def _address_part(name: str) -> str | None:
    """``"address.city"`` -> ``"city"``; None for a field that is not part of the address."""
    return name.removeprefix("address.") if name.startswith("address.") else None


def _request_fields(row: SourceRow, options: PlanOptions) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    address: dict[str, str] = {}
    for name, value in row.fields.items():
        part = _address_part(name)
        if part is not None:
            address[part] = value
        elif name != "contact_id":
            fields[name] = value
    if "country" in address:
        address["country"] = _country_code(address["country"])
    street = address.get("line1", "")
    if "\n" in street and not address.get("line2"):
        # Salesforce's "Mailing Street" holds every street line in one cell.
        first, *rest = [line.strip() for line in street.splitlines() if line.strip()]
        address["line1"], address["line2"] = first, ", ".join(rest)
    if address:
        fields["address"] = address
    if options.gift_id:
        fields["gift_id"] = options.gift_id
    if options.variant_id:
        fields["variant_id"] = options.variant_id
    if options.template is not None:
        fields["message"] = options.template.render_row(row)
    metadata = dict(options.metadata)
    if row.fields.get("contact_id"):
        metadata["contact_id"] = row.fields["contact_id"]
    metadata["sendoso_run"] = options.run_id
    metadata["sendoso_row"] = str(row.number)
    fields["metadata"] = metadata
    return fields


def _problems_text(problems: Sequence[FieldProblem], number: int) -> Text:
    return Text.joining("; ", (Text(p.message, f" (row {number})") for p in problems))


@dataclass(slots=True)
class _Checked:
    planned: PlannedRow
    shipping_known: bool = True


def _skipped(row: SourceRow, problems: Sequence[FieldProblem], **identity: Any) -> _Checked:
    return _Checked(
        PlannedRow(
            number=row.number,
            state=RowState.SKIPPED,
            skip_kind=SkipKind.INVALID.value,
            error=_problems_text(problems, row.number),
            **identity,
        ),
    )


class _Pricing:
    """Estimates and their totals, each worked out once per (gift, country) of a run."""

    def __init__(self) -> None:
        self.estimate = EstimateMemo()
        self._totals: dict[int, tuple[CostEstimate, Totals]] = {}

    def totals(self, estimate: CostEstimate) -> Totals:
        hit = self._totals.get(id(estimate))
        if hit is None or hit[0] is not estimate:
            hit = self._totals[id(estimate)] = (estimate, estimate.totals())
        # A row's own copy: rows are values, and nothing one does should reach another.
        return dict(hit[1])


def _check(
    row: SourceRow,
    catalog: Sequence[Gift],
    gifts: Mapping[str, Gift],
    options: PlanOptions,
    pricing: _Pricing,
) -> _Checked:
    if row.problems:
        return _skipped(row, row.problems)
    fields = _request_fields(row, options)
    gift_id = fields.get("gift_id")
    gift = gifts.get(gift_id) if isinstance(gift_id, str) else None
    problems: list[FieldProblem] = []
    address = fields.get("address")
    if address is not None and _well_formed(address):
        # An export's address columns may be incomplete, and mean nothing to an eGift or a
        # donation but their country. Dropped before the request is built (an address with
        # unknown parts is left in, for the request to report them).
        country_only = country_only_problems(gift, _country_code(address.get("country") or ""))
        if country_only is not None:
            problems = country_only
            del fields["address"]
    try:
        request = request_from_fields(fields)
    except ValidationError as exc:
        return _skipped(row, exc.problems)
    # The gift found already is the one check_against would find first (``gifts`` keeps
    # the first item of each id, and an id equal to its normal form is looked up as such):
    # handing it over alone spares a scan of the catalog per row.
    candidates = [gift] if gift is not None and clean_text(gift_id) == gift_id else catalog
    check = check_against(request, candidates, estimator=pricing.estimate)
    if problems:
        check = replace(check, problems=[*check.problems, *problems], estimate=None)
    request = check.request
    recipient = recipient_key(request.email)
    first, last = request.first_name, request.last_name
    name = f"{first} {last}" if first and last else first or last or None
    if not check.ok or check.estimate is None:
        return _skipped(
            row, check.problems, recipient=recipient, name=name, gift_id=request.gift_id
        )
    key = dedupe_key(recipient, request.gift_id)
    planned = PlannedRow(
        number=row.number,
        state=RowState.PLANNED,
        send_key=send_key_for(options.run_id, row.number, key),
        dedupe_key=key,
        request=request.model_dump(mode="json", exclude_none=True),
        estimate=pricing.totals(check.estimate),
        recipient=recipient,
        name=name,
        gift_id=request.gift_id,
    )
    return _Checked(planned, shipping_known=check.estimate.shipping_known)


def _well_formed(address: Mapping[str, Any]) -> bool:
    """Whether an address dict is one the request takes without a problem of its own."""
    return address.keys() <= _ADDRESS_PARTS and all(isinstance(v, str) for v in address.values())


def _skip(row: PlannedRow, kind: SkipKind, reason: str) -> PlannedRow:
    # A Text reason keeps the parameters it names when stored, for the front end to word.
    return PlannedRow(
        number=row.number,
        state=RowState.SKIPPED,
        recipient=row.recipient,
        name=row.name,
        gift_id=row.gift_id,
        estimate=row.estimate,
        skip_kind=kind.value,
        error=Text(reason, f" (row {row.number})"),
    )


def _checked_chunks(
    rows: Iterable[SourceRow], catalog: Sequence[Gift], options: PlanOptions
) -> Iterator[list[_Checked]]:
    """Every row checked, in chunks. A row is checked as soon as it is read and not kept,
    so that only verdicts wait for their chunk (fewer objects live long enough to cost the
    garbage collector a full pass)."""
    gifts: dict[str, Gift] = {}
    for gift in catalog:
        gifts.setdefault(gift.id, gift)
    pricing = _Pricing()
    source = iter(rows)
    while True:
        with _collector_paused():
            chunk = [
                _check(row, catalog, gifts, options, pricing)
                for row in itertools.islice(source, _CHUNK)
            ]
        if not chunk:
            return
        yield chunk


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """The cyclic garbage collector held off while one chunk is checked.

    Checking a row makes a few dozen short-lived objects, nearly all freed by reference
    counting, yet they set off a young-generation pass every few rows, and every pass also
    walks the chunk's verdicts that are still alive: ~10 % of planning. Held off per chunk
    (and only when it was on), the pass runs once between chunks instead; cycles made while
    checking (almost none) are collected then, so memory stays flat. Restored even when a
    row raises, and left alone when the caller had turned it off.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def plan_rows(
    rows: Iterable[SourceRow],
    catalog: Sequence[Gift],
    options: PlanOptions,
    writer: PlanWriter,
    *,
    history: RecipientHistory | None = None,
    now: datetime | None = None,
) -> PlanSummary:
    """Give every row a verdict and write it through ``writer``.

    ``history`` is searched for the cool-down (earlier runs): the ledger, or ``writer``
    itself when planning into that same ledger; ``writer`` may belong to a different,
    throwaway ledger (a dry run).
    """
    summary = PlanSummary()
    since = None
    if options.cooldown_days:
        since = (now or datetime.now(UTC)) - timedelta(days=options.cooldown_days)
    for checked in _checked_chunks(rows, catalog, options):
        keys = [c.planned.dedupe_key for c in checked if c.planned.dedupe_key]
        first_row = writer.first_rows(keys)
        elsewhere: dict[str, tuple[str, int]] = {}
        if history is not None and not options.allow_resend and options.base_url:
            elsewhere = history.sent_elsewhere(
                keys, run_id=options.run_id, base_url=options.base_url
            )
        recent: set[str] = set()
        if since is not None and history is not None:
            recipients = [
                c.planned.recipient
                for c in checked
                if c.planned.recipient and c.planned.state is RowState.PLANNED
            ]
            recent = history.recently_gifted(recipients, since=since, exclude_run=options.run_id)
        out: list[PlannedRow] = []
        for item in checked:
            planned = item.planned
            summary.rows += 1
            if planned.state is RowState.PLANNED:
                planned = _decide(planned, item, first_row, elsewhere, recent, options)
            if planned.state is RowState.PLANNED:
                summary.planned += 1
                summary.per_gift[planned.gift_id or "?"] += 1
                summary.add_estimate(planned.estimate or {})
                if not item.shipping_known:
                    summary.shipping_unknown += 1
            else:
                summary.skipped[planned.skip_kind or "?"] += 1
            out.append(planned)
        writer.add(out)
    return summary


def _decide(
    planned: PlannedRow,
    item: _Checked,
    first_row: dict[str, int],
    elsewhere: dict[str, tuple[str, int]],
    recent: set[str],
    options: PlanOptions,
) -> PlannedRow:
    key = planned.dedupe_key or ""
    if key in first_row:
        return _skip(
            planned,
            SkipKind.DUPLICATE,
            f"{planned.recipient} already gets {planned.gift_id} from row {first_row[key]}",
        )
    if key in elsewhere:
        other_run, other_row = elsewhere[key]
        return _skip(
            planned,
            SkipKind.DUPLICATE,
            Text(
                f"{planned.recipient} already got {planned.gift_id} in run {other_run} "
                f"(row {other_row}); ",
                Param("allow_resend"),
                " sends it again",
            ),
        )
    if planned.recipient in recent:
        return _skip(
            planned,
            SkipKind.COOLDOWN,
            f"{planned.recipient} was sent a gift in the last {options.cooldown_days:g} days",
        )
    if options.budget is not None:
        over = options.budget.reserve(planned.estimate or {}, shipping_known=item.shipping_known)
        if over is not None:
            return _skip(planned, SkipKind.BUDGET, over.message)
    first_row[key] = planned.number
    return planned
