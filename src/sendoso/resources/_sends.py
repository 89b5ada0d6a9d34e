"""``/api/v3/sends``: create a send, follow its status."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Required, TypedDict, Unpack
from urllib.parse import quote

import httpx
from pydantic import ValidationError as PydanticValidationError

from sendoso._http import Call, response_json
from sendoso.errors import FieldProblem, ResponseParseError, ValidationError
from sendoso.filters import GiftFilters
from sendoso.models import Address, CostEstimate, Gift, Send, SendRequest
from sendoso.pricing import estimate_cost
from sendoso.resources._gifts import list_gifts
from sendoso.resources._steps import AsyncRunner, Runner, Steps
from sendoso.validation import normalize, validate

if TYPE_CHECKING:
    from sendoso._profile import HostProfile

__all__ = [
    "AsyncSends",
    "SendCheck",
    "SendFields",
    "Sends",
    "check_against",
    "new_idempotency_key",
    "request_from_fields",
]


class SendFields(TypedDict, total=False):
    """The seed contract's send fields (docs/architecture.md, section 5), as keyword
    arguments of ``sends.create``."""

    gift_id: Required[str]
    first_name: Required[str]
    last_name: Required[str]
    email: Required[str]
    message: Required[str]
    company: str | None
    title: str | None
    address: Address | Mapping[str, str | None] | None
    variant_id: str | None
    team_id: str | None
    metadata: Mapping[str, str | int | float | bool] | None


def new_idempotency_key() -> str:
    return f"sdk_{uuid.uuid4().hex}"


def request_from_fields(fields: Mapping[str, Any]) -> SendRequest:
    """A :class:`SendRequest` from loose data; wrong types become field problems."""
    data = {k: v for k, v in fields.items() if v is not None}
    try:
        return SendRequest.model_validate(data)
    except PydanticValidationError as exc:
        problems = []
        for error in exc.errors():
            field = ".".join(str(part) for part in error["loc"]) or "send"
            if error["type"] == "extra_forbidden":
                message = f"{field} is not a known field of a send"
            else:
                message = f"{field}: {error['msg']}"
            problems.append(FieldProblem(field, "invalid", message))
        raise ValidationError(problems) from None


def prepare(request: SendRequest, *, gift: Gift | None, check: bool) -> SendRequest:
    request = normalize(request)
    if check:
        problems = validate(request, gift)
        if problems:
            raise ValidationError(problems)
    return request


@dataclass(frozen=True)
class SendCheck:
    """A request checked against the live catalog, before anything is sent.

    ``problems`` lists every one (an unknown gift among them); when there are none,
    ``gift`` and ``estimate`` are set and ``request`` (normalised) is ready to submit.
    """

    request: SendRequest
    gift: Gift | None
    problems: list[FieldProblem]
    estimate: CostEstimate | None

    @property
    def ok(self) -> bool:
        return not self.problems

    def raise_for_problems(self) -> None:
        if self.problems:
            raise ValidationError(self.problems)


def check_against(
    request: SendRequest,
    catalog: Iterable[Gift],
    *,
    estimator: Callable[[Gift, str | None], CostEstimate] = estimate_cost,
) -> SendCheck:
    """Pure: :class:`SendCheck` for ``request`` given the catalog's items.

    ``estimator`` prices the gift: :func:`~sendoso.pricing.estimate_cost`, or a memo of it
    (:class:`~sendoso.pricing.EstimateMemo`) when many requests are checked against one
    catalog.
    """
    request = normalize(request)
    gift = None
    for item in catalog:
        if item.id == request.gift_id:
            gift = item
            break
    problems = validate(request, gift)
    if request.gift_id and gift is None:
        problems.append(
            FieldProblem(
                "gift_id",
                "unknown_gift",
                f"gift_id {request.gift_id!r} is not in the catalog; list gifts to see "
                "what is available",
            )
        )
    country = request.country
    estimate = estimator(gift, country) if gift is not None and not problems else None
    return SendCheck(request=request, gift=gift, problems=problems, estimate=estimate)


def create_call(profile: HostProfile, request: SendRequest, key: str) -> Call:
    return Call(
        "POST", profile.sends_path, kind="send", json=request.to_body(), idempotency_key=key
    )


def retrieve_call(profile: HostProfile, send_id: str) -> Call:
    if not send_id or not send_id.strip():
        raise ValidationError([FieldProblem("send_id", "missing", "send_id is required")])
    return Call("GET", f"{profile.sends_path}/{quote(send_id.strip(), safe='')}")


def parse_send(response: httpx.Response, *, idempotency_key: str | None = None) -> Send:
    """The send in a response, with or without a ``send`` wrapper."""

    def fail(why: str) -> ResponseParseError:
        created = " The send was created; keep its idempotency key." if idempotency_key else ""
        return ResponseParseError(
            f"could not read the send in the API's {response.status_code} response: "
            f"{why}.{created}",
            status_code=response.status_code,
            request_id=response.headers.get("x-request-id"),
            idempotency_key=idempotency_key,
        )

    try:
        body: Any = response_json(response)
    except ValueError as exc:
        why = str(exc) if str(exc).startswith("the body") else "the body is not JSON"
        raise fail(why) from None
    if isinstance(body, dict):
        for wrapper in ("send", "data"):
            if isinstance(body.get(wrapper), dict):
                body = body[wrapper]
                break
    if not isinstance(body, dict):
        raise fail("the body is not a JSON object")
    try:
        send = Send.model_validate(body)
    except PydanticValidationError as exc:
        missing = ", ".join(".".join(str(p) for p in e["loc"]) for e in exc.errors())
        raise fail(f"missing or invalid {missing}") from None
    if idempotency_key:
        send = send.model_copy(update={"idempotency_key": idempotency_key})
    return send


def check_send(profile: HostProfile, request: SendRequest) -> Steps[SendCheck]:
    catalog = yield from list_gifts(profile, GiftFilters())
    return check_against(request, catalog)


def submit_send(
    profile: HostProfile,
    request: SendRequest,
    *,
    idempotency_key: str | None,
    gift: Gift | None,
    validate: bool,
) -> Steps[Send]:
    request = prepare(request, gift=gift, check=validate)
    key = idempotency_key or new_idempotency_key()
    response = yield create_call(profile, request, key)
    return parse_send(response, idempotency_key=key)


def retrieve_send(profile: HostProfile, send_id: str) -> Steps[Send]:
    return parse_send((yield retrieve_call(profile, send_id)))


class Sends:
    def __init__(self, run: Runner, profile: HostProfile) -> None:
        self._run = run
        self._profile = profile

    def check(self, request: SendRequest) -> SendCheck:
        """Every problem with ``request``, its catalog item's rules included, and its cost
        estimate; reads the catalog, sends nothing."""
        return self._run(check_send(self._profile, request))

    def create(
        self,
        *,
        idempotency_key: str | None = None,
        gift: Gift | None = None,
        validate: bool = True,
        **fields: Unpack[SendFields],
    ) -> Send:
        """Send a gift to one recipient. See :meth:`submit`."""
        return self.submit(
            request_from_fields(fields),
            idempotency_key=idempotency_key,
            gift=gift,
            validate=validate,
        )

    def submit(
        self,
        request: SendRequest,
        *,
        idempotency_key: str | None = None,
        gift: Gift | None = None,
        validate: bool = True,
    ) -> Send:
        """Send ``request``. Checks it first (with the catalog item's rules when ``gift`` is
        given) and raises :class:`ValidationError` listing every problem, sending nothing.

        ``idempotency_key`` identifies this send across retries; one is generated if not
        given. If the outcome is unknown, :class:`AmbiguousSendError` carries it.
        """
        return self._run(
            submit_send(
                self._profile,
                request,
                idempotency_key=idempotency_key,
                gift=gift,
                validate=validate,
            )
        )

    def retrieve(self, send_id: str) -> Send:
        """The send's current status."""
        return self._run(retrieve_send(self._profile, send_id))


class AsyncSends:
    def __init__(self, run: AsyncRunner, profile: HostProfile) -> None:
        self._run = run
        self._profile = profile

    async def check(self, request: SendRequest) -> SendCheck:
        """Every problem with ``request``; see :meth:`Sends.check`."""
        return await self._run(check_send(self._profile, request))

    async def create(
        self,
        *,
        idempotency_key: str | None = None,
        gift: Gift | None = None,
        validate: bool = True,
        **fields: Unpack[SendFields],
    ) -> Send:
        """Send a gift to one recipient. See :meth:`Sends.submit`."""
        return await self.submit(
            request_from_fields(fields),
            idempotency_key=idempotency_key,
            gift=gift,
            validate=validate,
        )

    async def submit(
        self,
        request: SendRequest,
        *,
        idempotency_key: str | None = None,
        gift: Gift | None = None,
        validate: bool = True,
    ) -> Send:
        """Send ``request``; see :meth:`Sends.submit`."""
        return await self._run(
            submit_send(
                self._profile,
                request,
                idempotency_key=idempotency_key,
                gift=gift,
                validate=validate,
            )
        )

    async def retrieve(self, send_id: str) -> Send:
        """The send's current status."""
        return await self._run(retrieve_send(self._profile, send_id))
