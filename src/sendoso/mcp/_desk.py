"""What the MCP tools do, as a library: browse, estimate, validate, send once, follow.

:class:`SendDesk` holds no protocol code; the MCP server (``_server``) and ``sendoso
approvals`` are thin skins over it. Every send goes through the batch ledger, in one run per
host whose source is ``mcp``, by the batch engine's rules:

- the agent's ``request_id`` becomes the send's idempotency key, and the row (or the pending
  approval) is recorded under it before anything is sent, so one request_id is one send,
  across retries and server restarts;
- ``planned -> submitting`` is committed before the POST and the outcome right after; an
  attempt left ``submitting`` by a crash is sent again with its key only to a server that
  deduplicates, else it becomes ``unknown`` for a person to settle (``batch settle``);
- the guardrails' caps, cool-down and duplicate check are decided in the transaction that
  adds the row, counting sends in flight.

Refusals raise :class:`Refusal`, whose text tells the agent what to do next. The text names
the tools an agent calls next, the server's settings and the commands of the person running
it as :class:`~sendoso.errors.Call`, :class:`~sendoso.errors.Param` and
:class:`~sendoso.errors.Step` parts, which the MCP server (and ``sendoso approvals``) word
their own way; ``str()`` of one is the library's wording.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import anyio
from sqlalchemy.exc import IntegrityError

from sendoso import AsyncSendoso
from sendoso.batch import check_host
from sendoso.errors import (
    Call,
    FieldProblem,
    OverCapError,
    Param,
    SendosoError,
    Step,
    Text,
    ValidationError,
)
from sendoso.filters import GiftFilters
from sendoso.ledger import (
    Approval,
    ApprovalState,
    AttemptRules,
    Ledger,
    LedgerCalls,
    LedgerRow,
    Outcome,
    PlannedRow,
    Repriced,
    RowState,
    RunInfo,
    SendAdmission,
    SendAttempt,
    dedupe_key,
    new_owner,
    recipient_key,
)
from sendoso.mcp._guardrails import Guardrails, Totals
from sendoso.models import CostEstimate, Gift, Send, SendRequest
from sendoso.pricing import estimate_cost
from sendoso.resources import check_against, request_from_fields
from sendoso.validation import check_country, country_only_problems

__all__ = [
    "MCP_SOURCE",
    "REQUEST_ID_KEY",
    "Checked",
    "GiftOffer",
    "Refusal",
    "SendDesk",
    "SendView",
    "mcp_run_id",
    "send_key_for_request",
]

MCP_SOURCE = "mcp"
#: The metadata key that carries the agent's request_id to Sendoso (and into the ledger).
REQUEST_ID_KEY = "sendoso_request_id"
_MAX_REQUEST_ID = 200
_CATALOG_TTL = 300.0


class Refusal(SendosoError):
    """A tool call that could not do what was asked; the text says what to do next.
    ``outcome`` is ``unknown`` when the send may have happened (a person must settle it),
    ``rejected`` when the API refused it, else ``refused`` (nothing was sent). ``over_cap``
    is the cap that refused it, with its figures, when one did."""

    def __init__(
        self, message: str, *, outcome: str = "refused", over_cap: OverCapError | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.outcome = outcome
        self.over_cap = over_cap

    @property
    def next_steps(self) -> tuple[Call | Step, ...]:
        """What the text says to do next: the tools to call, the commands a person runs."""
        parts = self.message.parts if isinstance(self.message, Text) else ()
        return tuple(p for p in parts if isinstance(p, Call | Step))


def mcp_run_id(base_url: str) -> str:
    """The ledger run that holds every MCP send to ``base_url``."""
    digest = hashlib.sha256(base_url.rstrip("/").encode()).hexdigest()
    return f"mcp-{digest[:10]}"


def send_key_for_request(request_id: str, base_url: str) -> str:
    """The idempotency key of the agent's ``request_id``: stable across restarts, distinct
    per host, and not the agent's raw text (which the server may log)."""
    digest = hashlib.sha256(f"{base_url.rstrip('/')}\x1f{request_id}".encode()).hexdigest()
    return f"mcp_{digest[:40]}"


def _check_request_id(request_id: str) -> str:
    if not request_id or len(request_id) > _MAX_REQUEST_ID or not request_id.isprintable():
        raise Refusal(
            f"request_id must be 1 to {_MAX_REQUEST_ID} printable characters: one unique "
            "id per intended send (e.g. a UUID), reused only to retry that same send"
        )
    return request_id


def _money(totals: Mapping[str, tuple[Decimal, Decimal]] | None) -> dict[str, dict[str, str]]:
    return {c: {"low": f"{lo:.2f}", "high": f"{hi:.2f}"} for c, (lo, hi) in (totals or {}).items()}


@dataclass(frozen=True)
class GiftOffer:
    """A catalog item as the agent sees it: with its estimate and whether it may be sent."""

    gift: Gift
    estimate: CostEstimate
    refusal: str | None
    approval: str | None


@dataclass(frozen=True)
class Checked:
    """A send request checked against the catalog: ``problems`` lists every one."""

    request: SendRequest
    gift: Gift | None
    estimate: CostEstimate | None
    problems: list[FieldProblem]


@dataclass
class SendView:
    """One send as the agent sees it, from the ledger (and the API, when asked)."""

    status: str
    request_id: str | None = None
    send_id: str | None = None
    gift_id: str | None = None
    recipient: str | None = None
    estimate: dict[str, dict[str, str]] = field(default_factory=dict)
    approval_id: str | None = None
    detail: str | None = None
    tracking_number: str | None = None
    attempted_at: datetime | None = None
    replayed: bool = False


def _request_id_of(request: Mapping[str, Any] | None) -> str | None:
    metadata = (request or {}).get("metadata") or {}
    value = metadata.get(REQUEST_ID_KEY)
    return str(value) if value is not None else None


def view_of_row(row: LedgerRow) -> SendView:
    if row.state is RowState.SUBMITTED:
        status = row.status or "submitted"
    elif row.state is RowState.PLANNED:
        status = "sending" if row.lease_owner else "not_sent"
    elif row.state is RowState.SUBMITTING:
        status = "sending"
    elif row.state is RowState.SKIPPED:
        status = "refused"
    else:
        status = row.state.value  # rejected, unknown
    return SendView(
        status=status,
        request_id=_request_id_of(row.request),
        send_id=row.send_id,
        gift_id=row.gift_id,
        recipient=row.recipient,
        estimate=_money(row.estimate),
        detail=row.error,
        attempted_at=row.submitted_at,
    )


def view_of_approval(approval: Approval) -> SendView:
    status = {
        ApprovalState.PENDING: "pending_approval",
        ApprovalState.REJECTED: "rejected_by_operator",
        ApprovalState.APPROVED: "approved",
    }[approval.state]
    detail = approval.reason if approval.state is ApprovalState.PENDING else approval.note
    return SendView(
        status=status,
        request_id=_request_id_of(approval.request),
        gift_id=approval.gift_id,
        recipient=approval.recipient,
        estimate=_money(approval.estimate),
        approval_id=approval.approval_id,
        detail=detail,
        attempted_at=approval.created_at,
    )


class SendDesk:
    """The MCP server's capabilities over one client (one host) and one ledger."""

    def __init__(
        self,
        client: AsyncSendoso,
        ledger: Ledger,
        guardrails: Guardrails,
        *,
        lease_seconds: float = 120.0,
        catalog_ttl: float = _CATALOG_TTL,
    ) -> None:
        self.client = client
        self.ledger = ledger
        self.guardrails = guardrails
        self.base_url = client.base_url
        self.run_id = mcp_run_id(self.base_url)
        self.lease_seconds = lease_seconds
        self.catalog_ttl = catalog_ttl
        self._catalog: list[Gift] | None = None
        self._catalog_at = 0.0
        self._catalog_lock = anyio.Lock()
        self._db = LedgerCalls(ledger, wanted=4)
        self._run_ready = False

    async def _run(self) -> RunInfo:
        info = await self._db(
            self.ledger.ensure_run,
            RunInfo(
                run_id=self.run_id,
                base_url=self.base_url,
                source=MCP_SOURCE,
                options={"note": "sends made by agents through the MCP server"},
            ),
        )
        check_host(info, self.base_url)
        self._run_ready = True
        return info

    # Catalog ---------------------------------------------------------------------------

    async def catalog(self, *, fresh: bool = False) -> list[Gift]:
        """The whole catalog, read at most every ``catalog_ttl`` seconds. (Reading it first
        also lets a sandbox identify itself, which decides whether an interrupted send may
        be retried with its key.)"""
        async with self._catalog_lock:
            stale = time.monotonic() - self._catalog_at > self.catalog_ttl
            if self._catalog is None or stale or fresh:
                self._catalog = await self.client.gifts.list()
                self._catalog_at = time.monotonic()
            return self._catalog

    def _offer(self, gift: Gift, country: str | None) -> GiftOffer:
        estimate = estimate_cost(gift, country)
        return GiftOffer(
            gift=gift,
            estimate=estimate,
            refusal=self.guardrails.gift_refusal(gift, estimate),
            approval=self.guardrails.approval_reason(estimate),
        )

    async def list_gifts(
        self,
        *,
        category: str | None = None,
        min_price: Decimal | str | None = None,
        max_price: Decimal | str | None = None,
        country: str | None = None,
    ) -> list[GiftOffer]:
        filters = GiftFilters.of(category, min_price, max_price)
        country = country.strip().upper() if country and country.strip() else None
        offers = []
        for gift in await self.catalog():
            if filters.matches(gift) and (country is None or gift.available_in(country)):
                offers.append(self._offer(gift, country))
        return offers

    async def _gift(self, gift_id: str) -> Gift:
        for gift in await self.catalog():
            if gift.id == gift_id:
                return gift
        raise Refusal(
            Text(
                f"gift_id {gift_id!r} is not in the catalog; call ",
                Call("list_gifts"),
                " to see what is available",
            )
        )

    async def estimate(self, gift_id: str, country: str | None = None) -> GiftOffer:
        gift = await self._gift(gift_id.strip())
        country = country.strip().upper() if country and country.strip() else None
        if country and not gift.available_in(country):
            problem = check_country(gift, country)
            raise Refusal(
                Text(
                    problem.message if problem is not None else "None",
                    "; choose a gift available there (",
                    Call("list_gifts", (("country", "..."),)),
                    ")",
                )
            )
        return self._offer(gift, country)

    # Checking --------------------------------------------------------------------------

    async def check(
        self,
        gift_id: str,
        recipient: Mapping[str, Any],
        *,
        message: str | None,
        variant_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        request_id: str | None = None,
    ) -> Checked:
        """Every problem with this send, its catalog item's rules included; sends nothing.
        Without a ``message``, the rest is checked (a recipient on their own)."""
        fields: dict[str, Any] = {
            **recipient,
            "gift_id": gift_id,
            "message": message,
            "variant_id": variant_id,
            "metadata": dict(metadata or {}),
        }
        if request_id is not None:
            fields["metadata"][REQUEST_ID_KEY] = request_id
        try:
            request = request_from_fields(fields)
        except ValidationError as exc:
            return Checked(SendRequest(), None, None, list(exc.problems))
        catalog = await self.catalog()
        gift = next((g for g in catalog if g.id == (request.gift_id or "").strip()), None)
        extra: list[FieldProblem] = []
        if request.address is not None:
            country = (request.address.country or "").strip().upper()
            country_only = country_only_problems(gift, country)
            if country_only is not None:
                extra = country_only
                request = request.model_copy(update={"address": None})
        if message is None:
            # A stand-in note, so that only the recipient and the gift are judged.
            check = check_against(request.model_copy(update={"message": "-"}), catalog)
            check = replace(check, request=check.request.model_copy(update={"message": None}))
        else:
            check = check_against(request, catalog)
        problems = [*check.problems, *extra]
        return Checked(check.request, check.gift, None if problems else check.estimate, problems)

    async def recipient_refusals(self, checked: Checked) -> list[str]:
        """What the guardrails would say about sending this now (nothing is recorded)."""
        if checked.gift is None or checked.estimate is None:
            return []
        refusals = []
        gift_refusal = self.guardrails.gift_refusal(checked.gift, checked.estimate)
        if gift_refusal:
            refusals.append(gift_refusal)
        try:
            await self._db(self.ledger.preview_admission, self.run_id, self._admit(checked, None))
        except Refusal as exc:
            refusals.append(exc.message)
        return refusals

    # Sending ---------------------------------------------------------------------------

    def _admit(
        self, checked: Checked, guardrails: Guardrails | None
    ) -> Callable[[SendAdmission], None]:
        rails = guardrails or self.guardrails
        request = checked.request
        recipient = recipient_key(request.email) or ""
        key = dedupe_key(recipient, request.gift_id)
        totals = checked.estimate.totals() if checked.estimate else {}

        def admit(ledger: SendAdmission) -> None:
            if not rails.allow_resend:
                other = ledger.sent_before(key, base_url=self.base_url)
                if other is not None:
                    raise Refusal(
                        f"{recipient} already got gift {request.gift_id} from this account "
                        f"(run {other[0]}, row {other[1]}); this server does not send the "
                        "same gift to the same person twice: choose another gift or recipient"
                    )
            if rails.cooldown_days:
                since = datetime.now(UTC) - timedelta(days=rails.cooldown_days)
                if ledger.recently_gifted(recipient, since=since):
                    raise Refusal(
                        f"{recipient} was sent a gift in the last {rails.cooldown_days:g} days "
                        "(this server's per-recipient cool-down); do not send them another "
                        "one now"
                    )
            excess = _spend_excess(ledger, rails, totals)
            if excess is not None:
                raise Refusal(excess.message, over_cap=excess)

        return admit

    def _reprice(
        self, rails: Guardrails, refused: list[OverCapError]
    ) -> Callable[[LedgerRow], Repriced | None]:
        """A recorded row's cost from the catalog as read now (``None`` if it has not moved:
        it was admitted at that price); then the guardrails' caps, re-checked when it is
        committed ``submitting``, without its own first estimate. A refusal is kept in
        ``refused`` for the caller."""

        def reprice(row: LedgerRow) -> Repriced | None:
            gift = next((g for g in self._catalog or () if g.id == row.gift_id), None)
            if gift is None or row.estimate is None or row.request is None:
                return None
            request = SendRequest.model_validate(row.request)
            estimate = estimate_cost(gift, request.address.country if request.address else None)
            now = estimate.totals()
            if now == row.estimate:
                return None

            def check(ledger: SendAdmission) -> str | None:
                excess = rails.price_excess(gift, estimate) or _spend_excess(
                    ledger, rails, now, excluding=row.number
                )
                if excess is None:
                    return None
                refused.append(excess)
                return excess.message

            return Repriced(planned=row.estimate, now=now, caps=None, check=check)

        return reprice

    def _planned_row(self, checked: Checked, send_key: str) -> PlannedRow:
        request = checked.request
        recipient = recipient_key(request.email) or ""
        name = " ".join(p for p in (request.first_name, request.last_name) if p) or None
        return PlannedRow(
            number=0,
            state=RowState.PLANNED,
            send_key=send_key,
            recipient=recipient,
            name=name,
            gift_id=request.gift_id,
            dedupe_key=dedupe_key(recipient, request.gift_id),
            request=request.model_dump(mode="json", exclude_none=True),
            estimate=checked.estimate.totals() if checked.estimate else None,
        )

    async def send(
        self,
        *,
        request_id: str,
        gift_id: str,
        recipient: Mapping[str, Any],
        message: str | None,
        variant_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> SendView:
        """Send once per ``request_id``; a repeated call reports the first one's outcome."""
        request_id = _check_request_id(request_id)
        key = send_key_for_request(request_id, self.base_url)
        if not self._run_ready:
            await self._run()
        checked = await self.check(
            gift_id,
            recipient,
            message=message,
            variant_id=variant_id,
            metadata=metadata,
            request_id=request_id,
        )
        seen = await self._recorded(key, request_id, checked)
        if seen is not None:
            return seen
        if checked.problems:
            problems = Text.joining("; ", (p.message for p in checked.problems))
            raise Refusal(
                Text(
                    "nothing was sent: ",
                    problems,
                    ". Fix these (",
                    Call("validate_recipient"),
                    " lists them) and call ",
                    Call("send_gift"),
                    " again; the same request_id may be reused, as nothing was recorded for it",
                )
            )
        assert checked.gift is not None
        assert checked.estimate is not None
        refusal = self.guardrails.gift_refusal(checked.gift, checked.estimate)
        if refusal:
            # Recorded before the price moved: its row answers (sent, or checked again).
            seen = await self._recorded(key, request_id, checked)
            if seen is not None:
                return seen
            raise Refusal(
                Text("refused, nothing was sent: ", refusal),
                over_cap=self.guardrails.gift_over_cap(checked.gift, checked.estimate),
            )
        admit = self._admit(checked, None)
        try:
            await self._db(self.ledger.preview_admission, self.run_id, admit)
        except Refusal:
            # A concurrent call with this request_id may be the very send the rules see.
            seen = await self._recorded(key, request_id, checked)
            if seen is None:
                raise
            return seen
        if not self.guardrails.allow_send:
            raise Refusal(
                Text(
                    "live sending is off on this server, nothing was sent (every check passed: "
                    f"{checked.gift.id} to {checked.request.email}, about "
                    f"{checked.estimate}). The person running it must restart it with ",
                    Param("allow_send"),
                    "; do not retry until then",
                )
            )
        reason = self.guardrails.approval_reason(checked.estimate)
        if reason:
            return await self._hold(checked, key, reason)
        new_row = self._planned_row(checked, key)
        owner = new_owner()
        try:
            row = await self._db(
                self.ledger.add_row,
                self.run_id,
                new_row,
                owner=owner,
                lease_seconds=self.lease_seconds,
                admit=admit,
            )
        except (IntegrityError, Refusal):
            # Another call with this request_id recorded it first: report that one.
            seen = await self._recorded(key, request_id, checked)
            if seen is None:
                raise
            return seen
        return await self._attempt(row, owner, self.guardrails)

    async def _recorded(self, key: str, request_id: str, checked: Checked) -> SendView | None:
        """The outcome of ``request_id`` if it was recorded (as a row, or held for approval)
        with the same request, finishing a send that was cut short; ``None`` if it was not."""
        row = await self._db(self.ledger.row_by_key, key)
        if row is not None:
            self._same_request(request_id, row.request, checked)
            return await self._resume(row)
        approval = await self._db(self.ledger.approval_for_key, key)
        if approval is not None:
            self._same_request(request_id, approval.request, checked)
            return self._approval_outcome(approval)
        return None

    def _same_request(
        self, request_id: str, recorded: Mapping[str, Any] | None, checked: Checked
    ) -> None:
        now = checked.request.model_dump(mode="json", exclude_none=True)
        before = dict(recorded or {})
        # Metadata is optional and an agent's retry often leaves it out: a retry that gives
        # none of its own (only the request_id this desk adds) means the recorded request.
        if set(now.get("metadata") or {}) <= {REQUEST_ID_KEY}:
            now["metadata"] = before.get("metadata", now.get("metadata"))
            if now["metadata"] is None:
                del now["metadata"]
        # Compared as normalised requests: the same call is recognised even if the catalog
        # changed since (its problems then would not make it another send).
        if now != before:
            differing = sorted(
                k for k in set(now) | set(before) if now.get(k) != before.get(k)
            ) or ["the request"]
            raise Refusal(
                Text(
                    f"request_id {request_id!r} was already used for a different send (to "
                    f"{before.get('email')}, gift {before.get('gift_id')}; this call differs "
                    f"in {', '.join(differing)}). That send stands (",
                    Call("get_send_status", (("request_id", repr(request_id)),)),
                    "); use a new request_id for a new send",
                )
            )

    async def _hold(self, checked: Checked, key: str, reason: str) -> SendView:
        row = self._planned_row(checked, key)
        approval = Approval(
            approval_id=f"apr_{uuid.uuid4().hex[:12]}",
            run_id=self.run_id,
            send_key=key,
            request=dict(row.request or {}),
            recipient=row.recipient,
            name=row.name,
            gift_id=row.gift_id,
            dedupe_key=row.dedupe_key,
            estimate=row.estimate,
            reason=reason,
            context={"guardrails": self.guardrails.as_dict(), "base_url": self.base_url},
        )
        recorded, new = await self._db(self.ledger.add_approval, approval)
        return self._approval_outcome(recorded, replayed=not new)

    def _approval_outcome(self, approval: Approval, *, replayed: bool = True) -> SendView:
        view = view_of_approval(approval)
        view.replayed = replayed
        if approval.state is ApprovalState.PENDING:
            view.detail = Text(
                f"waiting for a person's approval ({approval.reason}); nothing is sent until "
                "they run ",
                Step("approve", (approval.approval_id,)),
                ". Check later with ",
                Call("get_send_status", (("request_id", repr(view.request_id)),)),
                "; do not send it again with another request_id",
            )
            return view
        if approval.state is ApprovalState.REJECTED:
            note = f": {approval.note}" if approval.note else ""
            raise Refusal(
                f"a person rejected this send (approval {approval.approval_id}){note}; nothing "
                "was sent. Do not retry it"
            )
        # Approved: its row tells the outcome (looked up by the caller next time).
        view.detail = "approved; the send is being made"
        return view

    async def _resume(self, row: LedgerRow) -> SendView:
        """The outcome of a request_id already recorded, finishing it if it was cut short."""
        if row.state in (RowState.PLANNED, RowState.SUBMITTING):
            owner = new_owner()
            claimed = await self._db(
                self.ledger.claim_row,
                row.run_id,
                row.number,
                owner,
                lease_seconds=self.lease_seconds,
            )
            if claimed is None:
                current = await self._db(self.ledger.row, row.run_id, row.number)
                if current is None or current.state in (RowState.PLANNED, RowState.SUBMITTING):
                    raise Refusal(
                        Text(
                            "this request_id is being sent right now by another call; "
                            "check it with ",
                            Call("get_send_status"),
                            " in a few seconds",
                        )
                    )
                return await self._resume(current)
            if claimed.state is RowState.PLANNED and not self.guardrails.allow_send:
                await self._db(self.ledger.release, row.run_id, row.number, owner)
                raise Refusal(
                    Text(
                        "this send was recorded but not sent, and live sending is now off on "
                        "this server; the person running it must restart it with ",
                        Param("allow_send"),
                    )
                )
            if claimed.state is RowState.PLANNED:
                # Recorded earlier: its price may have moved since (see _reprice).
                await self.catalog(fresh=True)
            return await self._attempt(claimed, owner, self.guardrails)
        view = self._final(row)
        view.replayed = True
        return view

    def _final(self, row: LedgerRow) -> SendView:
        """The view of a row no call is working on: a refusal unless it was sent."""
        if row.state is RowState.REJECTED:
            raise Refusal(
                Text(
                    "the API rejected this send (",
                    row.error or "None",
                    "); nothing was sent. This request_id is final: fix the problem and use a "
                    "new request_id",
                ),
                outcome="rejected",
            )
        if row.state is RowState.UNKNOWN:
            raise Refusal(
                Text(
                    "the outcome of this send is unknown (",
                    row.error or "None",
                    "); it may have been sent. Do not send it again with another request_id: "
                    "the person running this server must check Sendoso and settle it (",
                    Step("settle", (row.run_id, str(row.number))),
                    "), then retry this request_id",
                ),
                outcome="unknown",
            )
        if row.state is RowState.SKIPPED:
            raise Refusal(Text("refused, nothing was sent: ", row.error or "None"))
        if row.state is not RowState.SUBMITTED:
            raise Refusal(
                Text(
                    "this request_id is being sent by another call; check it with ",
                    Call("get_send_status"),
                    " in a few seconds",
                )
            )
        return view_of_row(row)

    async def _attempt(self, row: LedgerRow, owner: str, rails: Guardrails) -> SendView:
        """Send a row this call holds (commit ``submitting``, POST, commit the outcome) and
        say what became of it. Its price is checked again as it is committed: a row
        recorded earlier may cost more now."""
        refused: list[OverCapError] = []
        attempt = SendAttempt(
            self.client,
            self._db,
            owner=owner,
            on_gift_not_found=self._catalog_changed,
            reprice=self._reprice(rails, refused),
        )
        rules = AttemptRules(
            base_url=self.base_url,
            cooldown=timedelta(days=rails.cooldown_days) if rails.cooldown_days else None,
            allow_resend=rails.allow_resend,
        )
        result = await attempt(row, rules, reread=True)
        error = result.verdict.error if result.verdict else ""
        if result.outcome is Outcome.RETRY:
            raise Refusal(
                Text(
                    f"the API failed ({error}); the send may be in progress there. Call ",
                    Call("send_gift"),
                    " again with the same request_id in a little while: the server "
                    "deduplicates it, so it cannot be sent twice",
                )
            )
        if result.outcome is Outcome.STOP:
            raise Refusal(
                f"Sendoso refused this server's credentials ({error}); nothing was "
                "sent. The person running it must fix them; then retry this request_id"
            )
        if result.outcome is Outcome.NOT_SENT:
            raise Refusal(
                Text(
                    f"not sent ({error}); call ",
                    Call("send_gift"),
                    " again with the same request_id in a little while",
                )
            )
        assert result.row is not None
        if result.outcome is Outcome.SENT:
            return view_of_row(result.row)
        if result.row.state is RowState.SKIPPED and refused:
            raise Refusal(
                Text("refused, nothing was sent: ", result.row.error or "None"),
                over_cap=refused[-1],
            )
        return self._final(result.row)

    async def _catalog_changed(self, _row: LedgerRow) -> None:
        """A 404 on send: the catalog this desk holds is out of date."""
        await self.catalog(fresh=True)

    # Approvals -------------------------------------------------------------------------

    async def approve(self, approval_id: str) -> SendView:
        """Send a pending approval, re-checking the guardrails it was held under (caps and
        cool-down against the ledger as it is now). A refusal leaves it pending."""
        approval = await self._db(self.ledger.approval, approval_id)
        if approval is None:
            raise Refusal(Text(f"no approval {approval_id!r}; ", Step("approvals"), " lists them"))
        if approval.state is not ApprovalState.PENDING:
            raise Refusal(f"approval {approval_id} is already {approval.state.value}")
        if approval.run_id != self.run_id:
            raise Refusal(
                Text(
                    f"approval {approval_id} is for another host; use the profile or ",
                    Param("base_url"),
                    f" it was requested on ({approval.context.get('base_url')})",
                )
            )
        rails = Guardrails.from_dict(approval.context.get("guardrails") or {})
        request = SendRequest.model_validate(approval.request)
        gift = await self._gift(request.gift_id or "")
        country = request.address.country if request.address else None
        estimate = estimate_cost(gift, country)
        checked = Checked(request, gift, estimate, [])
        refusal = rails.gift_refusal(gift, estimate)
        if refusal:
            raise Refusal(
                Text("not approved (it stays pending): ", refusal),
                over_cap=rails.gift_over_cap(gift, estimate),
            )
        owner = new_owner()
        row = PlannedRow(
            number=0,
            state=RowState.PLANNED,
            send_key=approval.send_key,
            recipient=approval.recipient,
            name=approval.name,
            gift_id=approval.gift_id,
            dedupe_key=approval.dedupe_key,
            request=approval.request,
            estimate=estimate.totals(),
        )
        try:
            added = await self._db(
                self.ledger.add_row,
                self.run_id,
                row,
                owner=owner,
                lease_seconds=self.lease_seconds,
                admit=self._admit(checked, rails),
                approval_id=approval_id,
            )
        except (Refusal, IntegrityError) as exc:
            # Approved by someone else a moment ago? Then its own row is what the rules saw.
            current = await self._db(self.ledger.approval, approval_id)
            if current is not None and current.state is not ApprovalState.PENDING:
                raise Refusal(f"approval {approval_id} is already {current.state.value}") from None
            if isinstance(exc, Refusal):
                raise Refusal(
                    Text("not approved (it stays pending): ", exc.message), over_cap=exc.over_cap
                ) from None
            raise
        return await self._attempt(added, owner, rails)

    # Reading ---------------------------------------------------------------------------

    async def status(
        self, *, send_id: str | None = None, request_id: str | None = None
    ) -> SendView:
        """A send made by this server, its status asked of the API when it was sent."""
        if (send_id is None) == (request_id is None):
            raise Refusal("give exactly one of send_id or request_id")
        row: LedgerRow | None
        if request_id is not None:
            key = send_key_for_request(_check_request_id(request_id), self.base_url)
            row = await self._db(self.ledger.row_by_key, key)
            if row is None:
                approval = await self._db(self.ledger.approval_for_key, key)
                if approval is None:
                    raise Refusal(
                        Text(
                            f"no send with request_id {request_id!r} was made by this server; ",
                            Call("list_sends"),
                            " shows what was",
                        )
                    )
                return view_of_approval(approval)
        else:
            assert send_id is not None
            row = await self._db(self.ledger.row_by_send_id, self.run_id, send_id.strip())
            if row is None:
                raise Refusal(
                    Text(
                        f"send {send_id!r} was not made by this server; it only reports its "
                        "own sends (",
                        Call("list_sends"),
                        " shows them)",
                    )
                )
        view = view_of_row(row)
        if row.state is RowState.SUBMITTED and row.send_id:
            send = await self.client.sends.retrieve(row.send_id)
            await self._db(self.ledger.record_status, row.run_id, row.number, send.status)
            view = self._with_send(view, send)
        return view

    @staticmethod
    def _with_send(view: SendView, send: Send) -> SendView:
        view.status = send.status
        view.tracking_number = send.tracking_number
        if send.status_reason:
            view.detail = send.status_reason
        return view

    async def list_sends(
        self, *, since: datetime | None = None, status: str | None = None, limit: int = 50
    ) -> list[SendView]:
        """This server's sends and held requests, newest first, from the ledger."""

        def read() -> list[SendView]:
            if self.ledger.run(self.run_id) is None:
                return []
            views = [view_of_row(r) for r in self.ledger.rows(self.run_id)]
            views += [
                view_of_approval(a)
                for a in self.ledger.approvals(run_id=self.run_id)
                if a.state is not ApprovalState.APPROVED
            ]
            return views

        views = await self._db(read)
        if since is not None:
            views = [v for v in views if v.attempted_at is None or v.attempted_at >= since]
        if status:
            views = [v for v in views if v.status == status.strip().lower()]
        epoch = datetime.min.replace(tzinfo=UTC)
        views.sort(key=lambda v: v.attempted_at or epoch, reverse=True)
        return views[:limit]


def _spend_excess(
    ledger: SendAdmission, rails: Guardrails, totals: Totals, *, excluding: int | None = None
) -> OverCapError | None:
    """How one more send costing ``totals`` breaks the daily or the total cap, with this
    server's other sends (``excluding`` one of its rows) at the price they were sent at."""
    if not (rails.daily_cap or rails.total_cap):
        return None
    midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return rails.spend_excess(
        totals,
        today=ledger.spend(source=MCP_SOURCE, since=midnight, excluding=excluding),
        total=ledger.spend(source=MCP_SOURCE, excluding=excluding),
    )
