"""The sandbox's state and its public endpoints, those of the original spec's contract (the
``seed`` dialect): ``POST /oauth/token``, ``GET /api/v3/gifts``, ``POST /api/v3/sends``,
``GET /api/v3/sends/{id}``."""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import secrets
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import unquote_plus

import anyio
import pydantic
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sendoso.errors import FieldProblem
from sendoso.filters import GiftFilters
from sendoso.models import ADDRESSED_CATEGORIES, Gift, GiftCategory, SendRequest
from sendoso.pricing import estimate_cost
from sendoso.sandbox._catalog import CATALOG, find_gift
from sendoso.sandbox._config import SandboxConfig
from sendoso.sandbox._hold import Hold
from sendoso.sandbox._lifecycle import STATUS_RANK, create_time_problems, stage_at, tracking_number
from sendoso.sandbox._middleware import CutResponse
from sendoso.sandbox._oauth import basic_credentials, hash_token, token_params
from sendoso.sandbox._openapi import build_openapi
from sendoso.sandbox._prices import Prices
from sendoso.sandbox._replies import (
    MAX_BODY_BYTES,
    REALM,
    SCOPE_RATE_LIMIT,
    Reply,
    dumps,
    error_body,
    error_reply,
    field_problem,
    format_rate,
    oauth_error,
    parse_json,
    read_body,
)
from sendoso.sandbox._runtime import Clock, Faults, Stats, TokenBucket, iso
from sendoso.sandbox._store import IdempotencyRecord, SendRecord, Store
from sendoso.validation import http_status_for, normalize, validate

__all__ = ["SandboxState"]

MAX_IDEMPOTENCY_KEY_LENGTH = 255
DEFAULT_PER_PAGE = 25
MAX_PER_PAGE = 100

#: Outcomes an idempotency key replays: the send itself and the API's considered refusals.
#: Faults (5xx) and 429s are not the API's answer to the request, so they leave the key free.
_REPLAYABLE = frozenset({201, 400, 404, 422})
_ERROR_TYPES = {400: "invalid_request", 404: "not_found", 422: "unprocessable_entity"}
_IDEMPOTENCY_KEY_CHARS = re.compile(r"[\x20-\x7e]+")
_PAGE_NUMBER = re.compile(r"[0-9]{1,9}")
#: A price filter as /openapi.json describes it (PRICE_PATTERN there), at most 30 characters.
_PRICE = re.compile(r"(?=.{1,30}\Z)[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?", re.ASCII)
MAX_PAGE = 999_999_999
_SHIPPED_STATUSES = frozenset({"shipped", "delivered", "returned"})


class SandboxState:
    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.store = Store(config.db)
        self.clock = Clock(config.speed)
        self.faults = Faults.from_config(config)
        self.bucket = TokenBucket(config.rate_limit)
        self.stats = Stats()
        self.in_flight: set[str] = set()
        self.openapi = build_openapi()
        self.client_secret = config.client_secret
        self.hold = Hold()
        self.prices = Prices()
        #: How the latency fault waits; a test may record the delays instead of waiting them.
        self.sleep: Callable[[float], Awaitable[None]] = anyio.sleep

    def reset(self) -> None:
        self.store.reset()
        self.client_secret = self.config.client_secret
        self.clock = Clock(self.config.speed)
        self.faults = Faults.from_config(self.config)
        self.bucket.set_rate(self.config.rate_limit)
        self.stats.clear()
        self.in_flight.clear()
        self.hold.clear()
        self.prices.clear()

    # Shared steps.

    async def _held(self, request: Request, endpoint: str) -> None:
        """Wait at the test hold, if one is armed for ``endpoint`` (see ``_hold``)."""
        problem = await self.hold.enter(endpoint)
        if problem is not None:
            raise Reply(error_reply(request, 503, "hold_failed", problem))

    async def _delay(self) -> None:
        seconds = self.faults.delay_seconds()
        if seconds > 0:
            await self.sleep(seconds)

    def _rate_limit(self, request: Request) -> None:
        allowed, retry_after = self.bucket.take()
        if self.bucket.rate is None:
            return
        request.scope[SCOPE_RATE_LIMIT] = (
            format_rate(self.bucket.rate),
            str(self.bucket.remaining),
        )
        if not allowed:
            self.stats.rate_limited += 1
            raise Reply(
                error_reply(
                    request,
                    429,
                    "rate_limit_exceeded",
                    f"rate limit of {format_rate(self.bucket.rate)} requests/s exceeded;"
                    f" retry after {retry_after} s",
                    headers={"Retry-After": str(retry_after)},
                )
            )

    def _authenticate(self, request: Request) -> None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            self._unauthorized(
                request,
                "missing or invalid Authorization header: send 'Bearer <access_token>'"
                " from POST /oauth/token",
            )
        expires_at = self.store.token_expiry(hash_token(token))
        if expires_at is None:
            self._unauthorized(request, "the access token is invalid; request a new one")
        elif self.clock.now() >= expires_at:
            self._unauthorized(
                request, "the access token expired; request a new one from POST /oauth/token"
            )

    def _unauthorized(self, request: Request, message: str) -> None:
        description = message.replace('"', "'")
        raise Reply(
            error_reply(
                request,
                401,
                "authentication_error",
                message,
                headers={
                    "WWW-Authenticate": f'Bearer realm="{REALM}", error="invalid_token",'
                    f' error_description="{description}"'
                },
            )
        )

    def progress(self, send: SendRecord) -> SendRecord:
        """Move ``send`` to the status its age has reached, never backwards."""
        stage = stage_at(send.category, send.data.get("email"), self.clock.now() - send.created_at)
        if STATUS_RANK[stage.status] > STATUS_RANK[send.status]:
            self.store.update_status(send.id, stage.status, stage.since, stage.reason)
            send.status, send.status_since, send.status_reason = (
                stage.status,
                stage.since,
                stage.reason,
            )
        return send

    @staticmethod
    def send_json(send: SendRecord) -> dict[str, Any]:
        tracking = None
        if send.category in ADDRESSED_CATEGORIES and send.status in _SHIPPED_STATUSES:
            tracking = tracking_number(send.id)
        return {
            "id": send.id,
            "status": send.status,
            "status_reason": send.status_reason,
            "tracking_number": tracking,
            **send.data,
            "created_at": iso(send.created_at),
            "updated_at": iso(send.created_at + send.status_since),
        }

    # Public endpoints.

    async def token(self, request: Request) -> Response:
        self.stats.requests["POST /oauth/token"] += 1
        self.stats.token_requests += 1
        await self._delay()
        if self.faults.token_error:
            self.stats.errors += 1
            status = self.faults.token_error
            return oauth_error(
                status, "server_error", f"injected fault: the token endpoint answered {status}"
            )
        raw = await read_body(
            request,
            lambda: oauth_error(413, "invalid_request", "the request body is larger than 1 MB"),
        )
        basic, basic_error = basic_credentials(request.headers.get("authorization", ""))
        if basic_error:
            return oauth_error(401, "invalid_client", basic_error, basic_used=True)
        params, params_error = token_params(request.headers.get("content-type", ""), raw)
        if params_error:
            return oauth_error(400, "invalid_request", params_error)
        grant_type = params.get("grant_type")
        if not grant_type:
            return oauth_error(400, "invalid_request", "grant_type is required")
        if grant_type != "client_credentials":
            return oauth_error(
                400,
                "unsupported_grant_type",
                f"grant_type {grant_type[:40]!r} is not supported; use client_credentials",
            )
        if basic is not None:
            if "client_secret" in params:
                return oauth_error(
                    400,
                    "invalid_request",
                    "send the client credentials once: HTTP Basic or the body, not both",
                )
            body_id = params.get("client_id")
            authenticated = (body_id is None or body_id in (basic[0], unquote_plus(basic[0]))) and (
                self._client_ok(*basic)
                or self._client_ok(unquote_plus(basic[0]), unquote_plus(basic[1]))
            )
        else:
            client_id, client_secret = params.get("client_id"), params.get("client_secret")
            if not client_id or not client_secret:
                return oauth_error(
                    401,
                    "invalid_client",
                    "client authentication is required: client_id and client_secret in the"
                    " body, or HTTP Basic",
                )
            authenticated = self._client_ok(client_id, client_secret)
        if not authenticated:
            return oauth_error(
                401, "invalid_client", "client authentication failed", basic_used=basic is not None
            )

        access_token = "sbx_" + secrets.token_urlsafe(32)
        now = self.clock.now()
        ttl = self.faults.token_ttl
        self.store.add_token(hash_token(access_token), self.config.client_id, now, ttl)
        self.stats.tokens_issued += 1
        return JSONResponse(
            {
                "access_token": access_token,
                "token_type": "Bearer",
                "expires_in": int(ttl),
                "created_at": int(now),
            },
            headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
        )

    def _client_ok(self, client_id: str, client_secret: str) -> bool:
        # Both compared in full, in constant time, so timing does not reveal which was wrong.
        id_ok = hmac.compare_digest(client_id.encode(), self.config.client_id.encode())
        secret_ok = hmac.compare_digest(client_secret.encode(), self.client_secret.encode())
        return id_ok and secret_ok

    async def list_gifts(self, request: Request) -> Response:
        self.stats.requests["GET /api/v3/gifts"] += 1
        self._rate_limit(request)
        self._authenticate(request)
        await self._held(request, "GET /api/v3/gifts")
        await self._delay()
        query = request.query_params
        # The parameters are held to the exact forms /openapi.json gives them (the SDK sends
        # nothing else): GiftFilters alone would also take " 5", "+5", other scripts' digits or
        # "PHYSICAL".
        problems: list[FieldProblem] = []
        category = query.get("category")
        categories = [c.value for c in GiftCategory]
        if category is not None and category not in categories:
            problems.append(
                field_problem(
                    "category",
                    "invalid",
                    f"category {category[:40]!r} is not one of {', '.join(categories)}",
                )
            )
        prices: dict[str, str | None] = {}
        for name in ("min_price", "max_price"):
            raw = query.get(name)
            if raw is not None and not _PRICE.fullmatch(raw):
                problems.append(
                    field_problem(
                        name,
                        "invalid",
                        f"{name} {raw[:30]!r} must be a number of at most 30 characters, e.g. 25"
                        " or 49.99",
                    )
                )
                raw = None
            prices[name] = raw
        filters, price_problems = GiftFilters.parse(None, prices["min_price"], prices["max_price"])
        problems += price_problems
        if not problems and category is not None:
            filters = GiftFilters(category, filters.min_price, filters.max_price)
        page = _int_param("page", query.get("page"), 1, MAX_PAGE, 1, problems)
        per_page = _int_param(
            "per_page", query.get("per_page"), 1, MAX_PER_PAGE, DEFAULT_PER_PAGE, problems
        )
        if problems:
            return error_reply(request, 400, "invalid_request", problems[0].message, problems)

        gifts = [gift for gift in map(self.prices.of, CATALOG) if filters.matches(gift)]
        total = len(gifts)
        total_pages = math.ceil(total / per_page)
        start = (page - 1) * per_page
        return JSONResponse(
            {
                "gifts": [_gift_json(g) for g in gifts[start : start + per_page]],
                "meta": {
                    "page": page,
                    "per_page": per_page,
                    "total": total,
                    "total_pages": total_pages,
                    "next_page": page + 1 if page < total_pages else None,
                },
            }
        )

    async def create_send(self, request: Request) -> Response:
        self.stats.requests["POST /api/v3/sends"] += 1
        self._rate_limit(request)
        if self.faults.send_retry_after:
            self.stats.rate_limited += 1
            wait = math.ceil(self.faults.send_retry_after)
            raise Reply(
                error_reply(
                    request,
                    429,
                    "rate_limit_exceeded",
                    f"injected fault: sends are paused; retry after {wait} s",
                    headers={"Retry-After": str(wait)},
                )
            )
        self._authenticate(request)
        raw = await read_body(
            request,
            lambda: error_reply(
                request,
                413,
                "payload_too_large",
                f"the request body is larger than {MAX_BODY_BYTES} bytes",
            ),
        )
        key = request.headers.get("idempotency-key")
        if key is not None:
            self._check_idempotency_key(request, key)
        body, parse_error = parse_json(raw)
        request_hash = hashlib.sha256(
            raw if parse_error else dumps(body).encode("utf-8")
        ).hexdigest()

        previous: IdempotencyRecord | None = None
        reserved = False
        deduped = self.faults.dedupe
        if key is not None and deduped:
            # No await between the lookup and the reservation: two requests with one key
            # cannot both get past here.
            previous = self.store.get_outcome(key)
            if previous is None and key not in self.in_flight:
                self.in_flight.add(key)
                reserved = True
        try:
            await self._held(request, "POST /api/v3/sends")
            await self._delay()
            if key is not None and deduped and not reserved:
                return self._idempotent_reply(request, request_hash, previous)
            fault = self._injected_error(request)
            if fault is not None:
                return fault
            response = self._create(request, body, parse_error, request_hash, key)
            if self.faults.drop_rate > 0 and self.faults.rng.random() < self.faults.drop_rate:
                self.stats.drops += 1
                return CutResponse(response)
            return response
        finally:
            if reserved:
                self.in_flight.discard(key)

    def _check_idempotency_key(self, request: Request, key: str) -> None:
        problem = None
        if not key or len(key) > MAX_IDEMPOTENCY_KEY_LENGTH:
            problem = f"Idempotency-Key must be 1-{MAX_IDEMPOTENCY_KEY_LENGTH} characters long"
        elif not _IDEMPOTENCY_KEY_CHARS.fullmatch(key):
            problem = "Idempotency-Key must be printable ASCII"
        if problem:
            raise Reply(
                error_reply(
                    request,
                    400,
                    "invalid_request",
                    problem,
                    [field_problem("Idempotency-Key", "invalid", problem)],
                )
            )

    def _idempotent_reply(
        self,
        request: Request,
        request_hash: str,
        previous: IdempotencyRecord | None,
    ) -> Response:
        if previous is None:
            return error_reply(
                request,
                409,
                "idempotency_in_progress",
                "a request with this Idempotency-Key is still being processed; retry shortly",
                headers={"Retry-After": "1"},
            )
        if previous.request_hash != request_hash:
            message = (
                "this Idempotency-Key was already used with a different request body;"
                " use a new key for a new request"
            )
            return error_reply(
                request,
                422,
                "idempotency_key_reused",
                message,
                [field_problem("Idempotency-Key", "reused", message)],
            )
        headers = {"Idempotent-Replayed": "true"}
        if previous.location:
            headers["Location"] = previous.location
        return JSONResponse(previous.response_body, previous.status_code, headers=headers)

    def _injected_error(self, request: Request) -> Response | None:
        faults = self.faults
        if faults.error_rate <= 0 or faults.rng.random() >= faults.error_rate:
            return None
        self.stats.errors += 1
        status = faults.rng.choice((500, 502, 503))
        headers = {"Retry-After": "1"} if status == 503 else None
        return error_reply(
            request,
            status,
            "api_error",
            f"injected fault: the sandbox answered {status} before processing the request",
            headers=headers,
        )

    def _create(
        self,
        request: Request,
        body: Any,
        parse_error: str | None,
        request_hash: str,
        key: str | None,
    ) -> JSONResponse:
        status, payload, send = self._evaluate(request, body, parse_error, request_hash, key)
        location = f"/api/v3/sends/{send.id}" if send is not None else None
        outcome = None
        if key is not None and status in _REPLAYABLE and self.faults.dedupe:
            outcome = IdempotencyRecord(
                key=key,
                request_hash=request_hash,
                status_code=status,
                response_body=payload,
                location=location,
                send_id=send.id if send else None,
            )
        if send is not None:
            self.store.create_send(send, outcome)
        elif outcome is not None:
            self.store.put_outcome(outcome, self.clock.now())
        headers = {"Location": location} if location else None
        return JSONResponse(payload, status, headers=headers)

    def _evaluate(
        self,
        request: Request,
        body: Any,
        parse_error: str | None,
        request_hash: str,
        key: str | None,
    ) -> tuple[int, dict[str, Any], SendRecord | None]:
        def refuse(problems: list[FieldProblem]) -> tuple[int, dict[str, Any], None]:
            status = http_status_for(problems)
            first = next(p for p in problems if http_status_for([p]) == status)
            return (
                status,
                {"error": error_body(request, _ERROR_TYPES[status], first.message, problems)},
                None,
            )

        if parse_error:
            return refuse([field_problem("body", "invalid_json", parse_error)])
        if not isinstance(body, dict) or not isinstance(body.get("send"), dict):
            return refuse(
                [field_problem("send", "missing", 'the body must be a JSON object {"send": {...}}')]
            )
        extra = sorted(set(body) - {"send"})
        if extra:
            return refuse(
                [
                    field_problem(name, "unknown_field", f"{name} is not a known field")
                    for name in extra
                ]
            )
        try:
            parsed = SendRequest.model_validate(body["send"])
        except pydantic.ValidationError as exc:
            return refuse([_pydantic_problem(e) for e in exc.errors()])

        send_request = normalize(parsed)
        gift = find_gift(send_request.gift_id) if send_request.gift_id else None
        gift = self.prices.of(gift) if gift is not None else None
        problems = validate(send_request, gift)
        fields_with_problems = {p.field for p in problems}
        if send_request.gift_id and gift is None and "gift_id" not in fields_with_problems:
            problems.append(
                field_problem(
                    "gift_id",
                    "unknown_gift",
                    f"gift {send_request.gift_id[:100]!r} not found;"
                    " re-fetch the catalog with GET /api/v3/gifts",
                )
            )
        problems += [
            p for p in create_time_problems(send_request) if p.field not in fields_with_problems
        ]
        if problems:
            return refuse(problems)
        assert gift is not None  # validate() reports a missing gift_id; unknown ones are above

        now = self.clock.now()
        country = send_request.country
        cost = estimate_cost(gift, country)
        data = send_request.model_dump(mode="json")
        data["cost"] = [
            {"currency": currency, "low": str(low), "high": str(high)}
            for currency, (low, high) in cost.totals().items()
        ]
        send = SendRecord(
            id="snd_" + secrets.token_hex(12),
            category=gift.category,
            created_at=now,
            status="pending",
            status_since=0.0,
            status_reason=None,
            data=data,
            idempotency_key=key,
            request_hash=request_hash,
            request_body=body,
        )
        return 201, {"send": self.send_json(send)}, send

    async def get_send(self, request: Request) -> Response:
        self.stats.requests["GET /api/v3/sends/{id}"] += 1
        self._rate_limit(request)
        self._authenticate(request)
        await self._held(request, "GET /api/v3/sends/{id}")
        await self._delay()
        send_id = str(request.path_params["send_id"])
        send = self.store.get_send(send_id)
        if send is None:
            message = f"send {send_id[:100]!r} not found"
            return error_reply(
                request, 404, "not_found", message, [field_problem("id", "unknown_send", message)]
            )
        return JSONResponse({"send": self.send_json(self.progress(send))})

    async def openapi_json(self, request: Request) -> Response:
        return JSONResponse(self.openapi)


def _int_param(
    name: str, raw: str | None, low: int, high: int, default: int, problems: list[FieldProblem]
) -> int:
    if raw is None:
        return default
    value = raw
    if not _PAGE_NUMBER.fullmatch(value) or not low <= int(value) <= high:
        problems.append(
            field_problem(
                name, "invalid", f"{name} {raw[:20]!r} must be an integer from {low} to {high}"
            )
        )
        return default
    return int(value)


def _gift_json(gift: Gift) -> dict[str, Any]:
    return gift.model_dump(mode="json")


def _pydantic_problem(error: Mapping[str, Any]) -> FieldProblem:
    field = ".".join(str(part) for part in error.get("loc", ())) or "send"
    kind = error.get("type", "")
    if kind == "extra_forbidden":
        return field_problem(field, "unknown_field", f"{field} is not a known field")
    code = "missing" if kind == "missing" else "invalid_type"
    return field_problem(field, code, f"{field}: {error.get('msg', 'invalid value')}")
