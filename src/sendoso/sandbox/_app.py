"""The sandbox's routes: the seed's public endpoints plus ``/_sandbox/*`` controls."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import re
import secrets
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict
from typing import Any, TypeGuard
from urllib.parse import parse_qsl, unquote_plus

import anyio
import pydantic
from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sendoso.errors import FieldProblem
from sendoso.filters import GiftFilters
from sendoso.models import ADDRESSED_CATEGORIES, Gift, GiftCategory, SendRequest
from sendoso.pricing import estimate_cost
from sendoso.sandbox._catalog import CATALOG, find_gift
from sendoso.sandbox._config import SandboxConfig
from sendoso.sandbox._lifecycle import (
    LIFECYCLE,
    MAGIC,
    STATUS_RANK,
    create_time_problems,
    stage_at,
    tracking_number,
)
from sendoso.sandbox._openapi import build_openapi
from sendoso.sandbox._runtime import Clock, Faults, Stats, TokenBucket, iso
from sendoso.sandbox._store import IdempotencyRecord, SendRecord, Store
from sendoso.validation import http_status_for, normalize, validate

__all__ = ["create_app"]

MAX_BODY_BYTES = 1024 * 1024
MAX_IDEMPOTENCY_KEY_LENGTH = 255
DEFAULT_PER_PAGE = 25
MAX_PER_PAGE = 100
REALM = "sendoso-sandbox"

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

_SCOPE_REQUEST_ID = "sandbox.request_id"
_SCOPE_RATE_LIMIT = "sandbox.rate_limit"
_SCOPE_DROPPED = "sandbox.dropped"


class _Reply(Exception):
    """Ends a handler early with ``response`` (an error reply from a helper)."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def _request_id(request: Request) -> str:
    return str(request.scope.get(_SCOPE_REQUEST_ID, ""))


def _problem(field: str, code: str, message: str) -> FieldProblem:
    return FieldProblem(field=field, code=code, message=message)


def _error(
    request: Request,
    status: int,
    error_type: str,
    message: str,
    details: Sequence[FieldProblem] = (),
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(
        {"error": _error_body(request, error_type, message, details)},
        status_code=status,
        headers=headers,
    )


def _error_body(
    request: Request, error_type: str, message: str, details: Sequence[FieldProblem] = ()
) -> dict[str, Any]:
    return {
        "type": error_type,
        "message": message,
        "details": [asdict(d) for d in details],
        "request_id": _request_id(request),
    }


def _oauth_error(
    status: int, error: str, description: str, *, basic_used: bool = False
) -> JSONResponse:
    headers = {"Cache-Control": "no-store", "Pragma": "no-cache"}
    if status == 401 and basic_used:
        # RFC 6749 §5.2: a failed Authorization-header authentication names the scheme to use.
        headers["WWW-Authenticate"] = f'Basic realm="{REALM}", charset="UTF-8"'
    return JSONResponse(
        {"error": error, "error_description": description}, status_code=status, headers=headers
    )


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _parse_json(raw: bytes) -> tuple[Any, str | None]:
    """``(value, None)`` or ``(None, what is wrong)``; never raises on bad input."""
    if not raw.strip():
        return None, "the request body is empty; send a JSON object"
    try:
        value = json.loads(raw, parse_constant=_reject_constant)
        # Lone surrogates parse but cannot be stored or echoed as UTF-8.
        _dumps(value).encode("utf-8")
    except UnicodeError:
        return None, "the request body is not valid UTF-8 JSON"
    except RecursionError:
        return None, "the request body is nested too deeply"
    except ValueError as exc:
        return None, f"the request body is not valid JSON: {exc}"
    return value, None


async def _read_body(request: Request, too_large: Callable[[], Response]) -> bytes:
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_BODY_BYTES:
        raise _Reply(too_large())
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY_BYTES:
                raise _Reply(too_large())
    except ClientDisconnect:
        # Nobody is listening for the answer; this one merely ends the handler quietly.
        raise _Reply(Response(status_code=400)) from None
    return bytes(body)


def _format_rate(rate: float) -> str:
    return str(int(rate)) if rate == int(rate) else f"{rate:g}"


class _RequestContext:
    """Gives every request an id (``X-Request-Id``), rate-limit headers, and status counts."""

    def __init__(self, app: ASGIApp, stats: Stats, dedupes: Callable[[], bool]) -> None:
        self.app = app
        self.stats = stats
        self.dedupes = dedupes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = "req_" + secrets.token_hex(12)
        scope[_SCOPE_REQUEST_ID] = request_id
        path: str = scope.get("path", "")
        counted = not (path.startswith("/_sandbox/") or path == "/openapi.json")

        async def send_with_context(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["X-Request-Id"] = request_id
                # Tells the SDK it talks to a server that deduplicates on Idempotency-Key
                # (not said while the dedupe fault is off: that server would be lying).
                if self.dedupes():
                    headers["Sendoso-Sandbox"] = "1"
                limit = scope.get(_SCOPE_RATE_LIMIT)
                if limit is not None:
                    headers["X-RateLimit-Limit"], headers["X-RateLimit-Remaining"] = limit
                if counted and not scope.get(_SCOPE_DROPPED):
                    self.stats.responses_by_status[str(message["status"])] += 1
            await send(message)

        await self.app(scope, receive, send_with_context)


class _CutResponse(Response):
    """Starts ``inner`` and hangs up half way through its body, as a flaky network would."""

    def __init__(self, inner: Response) -> None:
        super().__init__(content=inner.body, status_code=inner.status_code)
        self.raw_headers = list(inner.raw_headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope[_SCOPE_DROPPED] = True
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        await send(
            {
                "type": "http.response.body",
                "body": bytes(self.body[: len(self.body) // 2]),
                "more_body": True,
            }
        )
        # Returning now, with Content-Length unmet, makes the server close the connection.


class _Sandbox:
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

    def reset(self) -> None:
        self.store.reset()
        self.client_secret = self.config.client_secret
        self.clock = Clock(self.config.speed)
        self.faults = Faults.from_config(self.config)
        self.bucket.set_rate(self.config.rate_limit)
        self.stats.clear()
        self.in_flight.clear()

    # Shared steps.

    async def _delay(self) -> None:
        seconds = self.faults.delay_seconds()
        if seconds > 0:
            await anyio.sleep(seconds)

    def _rate_limit(self, request: Request) -> None:
        allowed, retry_after = self.bucket.take()
        if self.bucket.rate is None:
            return
        request.scope[_SCOPE_RATE_LIMIT] = (
            _format_rate(self.bucket.rate),
            str(self.bucket.remaining),
        )
        if not allowed:
            self.stats.rate_limited += 1
            raise _Reply(
                _error(
                    request,
                    429,
                    "rate_limit_exceeded",
                    f"rate limit of {_format_rate(self.bucket.rate)} requests/s exceeded;"
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
        expires_at = self.store.token_expiry(_hash_token(token))
        if expires_at is None:
            self._unauthorized(request, "the access token is invalid; request a new one")
        elif self.clock.now() >= expires_at:
            self._unauthorized(
                request, "the access token expired; request a new one from POST /oauth/token"
            )

    def _unauthorized(self, request: Request, message: str) -> None:
        description = message.replace('"', "'")
        raise _Reply(
            _error(
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

    def _progress(self, send: SendRecord) -> SendRecord:
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
    def _send_json(send: SendRecord) -> dict[str, Any]:
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
        raw = await _read_body(
            request,
            lambda: _oauth_error(413, "invalid_request", "the request body is larger than 1 MB"),
        )
        basic, basic_error = _basic_credentials(request.headers.get("authorization", ""))
        if basic_error:
            return _oauth_error(401, "invalid_client", basic_error, basic_used=True)
        params, params_error = _token_params(request.headers.get("content-type", ""), raw)
        if params_error:
            return _oauth_error(400, "invalid_request", params_error)
        grant_type = params.get("grant_type")
        if not grant_type:
            return _oauth_error(400, "invalid_request", "grant_type is required")
        if grant_type != "client_credentials":
            return _oauth_error(
                400,
                "unsupported_grant_type",
                f"grant_type {grant_type[:40]!r} is not supported; use client_credentials",
            )
        if basic is not None:
            if "client_secret" in params:
                return _oauth_error(
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
                return _oauth_error(
                    401,
                    "invalid_client",
                    "client authentication is required: client_id and client_secret in the"
                    " body, or HTTP Basic",
                )
            authenticated = self._client_ok(client_id, client_secret)
        if not authenticated:
            return _oauth_error(
                401, "invalid_client", "client authentication failed", basic_used=basic is not None
            )

        access_token = "sbx_" + secrets.token_urlsafe(32)
        now = self.clock.now()
        ttl = self.faults.token_ttl
        self.store.add_token(_hash_token(access_token), self.config.client_id, now, ttl)
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
                _problem(
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
                    _problem(
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
            return _error(request, 400, "invalid_request", problems[0].message, problems)

        gifts = [gift for gift in CATALOG if filters.matches(gift)]
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
        self._authenticate(request)
        raw = await _read_body(
            request,
            lambda: _error(
                request,
                413,
                "payload_too_large",
                f"the request body is larger than {MAX_BODY_BYTES} bytes",
            ),
        )
        key = request.headers.get("idempotency-key")
        if key is not None:
            self._check_idempotency_key(request, key)
        body, parse_error = _parse_json(raw)
        request_hash = hashlib.sha256(
            raw if parse_error else _dumps(body).encode("utf-8")
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
            await self._delay()
            if key is not None and deduped and not reserved:
                return self._idempotent_reply(request, request_hash, previous)
            fault = self._injected_error(request)
            if fault is not None:
                return fault
            response = self._create(request, body, parse_error, request_hash, key)
            if self.faults.drop_rate > 0 and self.faults.rng.random() < self.faults.drop_rate:
                self.stats.drops += 1
                return _CutResponse(response)
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
            raise _Reply(
                _error(
                    request,
                    400,
                    "invalid_request",
                    problem,
                    [_problem("Idempotency-Key", "invalid", problem)],
                )
            )

    def _idempotent_reply(
        self,
        request: Request,
        request_hash: str,
        previous: IdempotencyRecord | None,
    ) -> Response:
        if previous is None:
            return _error(
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
            return _error(
                request,
                422,
                "idempotency_key_reused",
                message,
                [_problem("Idempotency-Key", "reused", message)],
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
        return _error(
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
                {"error": _error_body(request, _ERROR_TYPES[status], first.message, problems)},
                None,
            )

        if parse_error:
            return refuse([_problem("body", "invalid_json", parse_error)])
        if not isinstance(body, dict) or not isinstance(body.get("send"), dict):
            return refuse(
                [_problem("send", "missing", 'the body must be a JSON object {"send": {...}}')]
            )
        extra = sorted(set(body) - {"send"})
        if extra:
            return refuse(
                [_problem(name, "unknown_field", f"{name} is not a known field") for name in extra]
            )
        try:
            parsed = SendRequest.model_validate(body["send"])
        except pydantic.ValidationError as exc:
            return refuse([_pydantic_problem(e) for e in exc.errors()])

        send_request = normalize(parsed)
        gift = find_gift(send_request.gift_id) if send_request.gift_id else None
        problems = validate(send_request, gift)
        fields_with_problems = {p.field for p in problems}
        if send_request.gift_id and gift is None and "gift_id" not in fields_with_problems:
            problems.append(
                _problem(
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
        return 201, {"send": self._send_json(send)}, send

    async def get_send(self, request: Request) -> Response:
        self.stats.requests["GET /api/v3/sends/{id}"] += 1
        self._rate_limit(request)
        self._authenticate(request)
        await self._delay()
        send_id = str(request.path_params["send_id"])
        send = self.store.get_send(send_id)
        if send is None:
            message = f"send {send_id[:100]!r} not found"
            return _error(
                request, 404, "not_found", message, [_problem("id", "unknown_send", message)]
            )
        return JSONResponse({"send": self._send_json(self._progress(send))})

    async def openapi_json(self, request: Request) -> Response:
        return JSONResponse(self.openapi)

    # Control endpoints.

    async def get_faults(self, request: Request) -> Response:
        return JSONResponse(self.faults.snapshot())

    async def rotate_credentials(self, request: Request) -> Response:
        """Someone rotated the client secret: every token is revoked, the old secret refused."""
        body = await self._control_body(request)
        secret = body.get("client_secret")
        if not isinstance(secret, str) or not secret:
            problem = _problem("client_secret", "invalid", "client_secret must be a string")
            return _error(request, 400, "invalid_request", problem.message, [problem])
        self.client_secret = secret
        self.store.revoke_tokens()
        return JSONResponse({"rotated": True})

    async def set_faults(self, request: Request) -> Response:
        body = await self._control_body(request)
        problems: list[FieldProblem] = []
        updates: dict[str, Any] = {}
        for name, value in body.items():
            check = _FAULT_CHECKS.get(name)
            if check is None:
                problems.append(_problem(name, "unknown_field", f"{name} is not a fault setting"))
                continue
            message = check(value)
            if message:
                problems.append(_problem(name, "invalid", f"{name} {message}"))
            else:
                updates[name] = value
        if problems:
            return _error(request, 400, "invalid_request", problems[0].message, problems)
        faults = self.faults
        for name, value in updates.items():
            if name == "seed":
                faults.reseed(value)
            elif name == "dedupe":
                faults.dedupe = value
            elif name == "rate_limit":
                faults.rate_limit = None if value is None else float(value)
                self.bucket.set_rate(faults.rate_limit)
            else:
                setattr(faults, name, float(value))
        return JSONResponse(faults.snapshot())

    async def get_clock(self, request: Request) -> Response:
        return JSONResponse(self.clock.snapshot())

    async def advance_clock(self, request: Request) -> Response:
        body = await self._control_body(request)
        seconds = body.get("advance_seconds")
        unknown = sorted(set(body) - {"advance_seconds"})
        if unknown or not _is_number(seconds) or not 0 <= seconds <= 10 * 365 * 86400:
            message = (
                "send {'advance_seconds': N} with 0 <= N <= 315360000; the clock only moves forward"
            )
            return _error(
                request,
                400,
                "invalid_request",
                message,
                [_problem("advance_seconds", "invalid", message)],
            )
        self.clock.advance(float(seconds))
        return JSONResponse(self.clock.snapshot())

    async def list_sends(self, request: Request) -> Response:
        sends = []
        for send in self.store.list_sends():
            item = self._send_json(self._progress(send))
            item["idempotency_key"] = send.idempotency_key
            item["request_body"] = send.request_body
            sends.append(item)
        return JSONResponse({"sends": sends})

    async def get_stats(self, request: Request) -> Response:
        return JSONResponse(self.stats.snapshot())

    async def reset_all(self, request: Request) -> Response:
        self.reset()
        return JSONResponse({"reset": True, "clock": self.clock.snapshot()})

    async def magic(self, request: Request) -> Response:
        return JSONResponse({"magic": MAGIC, "lifecycle": LIFECYCLE})

    async def _control_body(self, request: Request) -> dict[str, Any]:
        raw = await _read_body(
            request, lambda: _error(request, 413, "payload_too_large", "body too large")
        )
        if not raw.strip():
            return {}
        body, problem = _parse_json(raw)
        if problem is None and not isinstance(body, dict):
            problem = "the body must be a JSON object"
        if problem is not None:
            raise _Reply(
                _error(
                    request, 400, "invalid_request", problem, [_problem("body", "invalid", problem)]
                )
            )
        assert isinstance(body, dict)
        return body


def _hash_token(token: str) -> str:
    # Only hashes are stored, so a leaked sandbox database leaks no usable token.
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def _basic_credentials(header: str) -> tuple[tuple[str, str] | None, str | None]:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None, None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except ValueError:  # binascii.Error, UnicodeDecodeError, or non-ASCII header text
        return None, "the HTTP Basic credentials are not valid base64 of 'client_id:secret'"
    client_id, colon, secret = decoded.partition(":")
    if not colon:
        return None, "the HTTP Basic credentials must be 'client_id:client_secret'"
    return (client_id, secret), None


def _token_params(content_type: str, raw: bytes) -> tuple[dict[str, str], str | None]:
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type == "application/x-www-form-urlencoded":
        try:
            pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True)
        except (UnicodeDecodeError, ValueError):
            return {}, "the form body is not valid UTF-8 application/x-www-form-urlencoded"
        params: dict[str, str] = {}
        for name, value in pairs:
            if name in params:
                # RFC 6749 §3.2: request parameters must not be included more than once.
                return {}, f"parameter {name[:40]!r} is repeated"
            params[name] = value
        return params, None
    if not raw.strip():
        return {}, None
    if media_type and media_type != "application/json" and not media_type.endswith("+json"):
        return {}, (
            f"unsupported Content-Type {media_type[:60]!r}; send application/json or"
            " application/x-www-form-urlencoded"
        )
    body, problem = _parse_json(raw)
    if problem:
        return {}, problem
    if not isinstance(body, dict):
        return {}, "the body must be a JSON object"
    for name in ("grant_type", "client_id", "client_secret", "scope"):
        if name in body and not isinstance(body[name], str):
            return {}, f"{name} must be a string"
    return {name: value for name, value in body.items() if isinstance(value, str)}, None


def _int_param(
    name: str, raw: str | None, low: int, high: int, default: int, problems: list[FieldProblem]
) -> int:
    if raw is None:
        return default
    value = raw
    if not _PAGE_NUMBER.fullmatch(value) or not low <= int(value) <= high:
        problems.append(
            _problem(
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
        return _problem(field, "unknown_field", f"{field} is not a known field")
    code = "missing" if kind == "missing" else "invalid_type"
    return _problem(field, code, f"{field}: {error.get('msg', 'invalid value')}")


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _check_rate(value: Any) -> str | None:
    return None if _is_number(value) and 0 <= value <= 1 else "must be a number from 0 to 1"


def _check_latency(value: Any) -> str | None:
    ok = _is_number(value) and 0 <= value <= 120_000
    return None if ok else "must be a number of milliseconds from 0 to 120000"


def _check_rate_limit(value: Any) -> str | None:
    ok = value is None or (_is_number(value) and value > 0)
    return None if ok else "must be a positive number of requests/s, or null for unlimited"


def _check_ttl(value: Any) -> str | None:
    return None if _is_number(value) and value > 0 else "must be a positive number of seconds"


def _check_bool(value: Any) -> str | None:
    return None if isinstance(value, bool) else "must be true or false"


def _check_seed(value: Any) -> str | None:
    ok = value is None or (isinstance(value, int) and not isinstance(value, bool))
    return None if ok else "must be an integer or null"


_FAULT_CHECKS: dict[str, Callable[[Any], str | None]] = {
    "latency_ms": _check_latency,
    "jitter_ms": _check_latency,
    "error_rate": _check_rate,
    "drop_rate": _check_rate,
    "rate_limit": _check_rate_limit,
    "token_ttl": _check_ttl,
    "dedupe": _check_bool,
    "seed": _check_seed,
}


def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        allowed = (exc.headers or {}).get("Allow", "")
        return _error(
            request,
            405,
            "method_not_allowed",
            f"{request.method} is not allowed on {request.url.path}; allowed: {allowed}",
            headers=exc.headers,
        )
    if exc.status_code == 404:
        return _error(
            request, 404, "not_found", f"no such endpoint: {request.method} {request.url.path}"
        )
    return _error(request, exc.status_code, "http_error", str(exc.detail), headers=exc.headers)


def _reply(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, _Reply)
    return exc.response


_Endpoint = Callable[[Request], Awaitable[Response]]


def create_app(config: SandboxConfig | None = None) -> Starlette:
    """The sandbox as an ASGI app; ``app.state.sandbox`` holds its state (for tests)."""
    sandbox = _Sandbox(config or SandboxConfig())
    routes: list[tuple[str, _Endpoint, str, str]] = [
        ("/oauth/token", sandbox.token, "POST", "token"),
        ("/api/v3/gifts", sandbox.list_gifts, "GET", "list_gifts"),
        ("/api/v3/sends", sandbox.create_send, "POST", "create_send"),
        ("/api/v3/sends/{send_id}", sandbox.get_send, "GET", "get_send"),
        ("/openapi.json", sandbox.openapi_json, "GET", "openapi"),
        ("/_sandbox/faults", sandbox.get_faults, "GET", "get_faults"),
        ("/_sandbox/faults", sandbox.set_faults, "POST", "set_faults"),
        ("/_sandbox/clock", sandbox.get_clock, "GET", "get_clock"),
        ("/_sandbox/clock", sandbox.advance_clock, "POST", "advance_clock"),
        ("/_sandbox/sends", sandbox.list_sends, "GET", "sandbox_sends"),
        ("/_sandbox/stats", sandbox.get_stats, "GET", "stats"),
        ("/_sandbox/credentials", sandbox.rotate_credentials, "POST", "rotate_credentials"),
        ("/_sandbox/reset", sandbox.reset_all, "POST", "reset"),
        ("/_sandbox/magic", sandbox.magic, "GET", "magic"),
    ]
    app = Starlette(
        routes=[Route(path, fn, methods=[method], name=name) for path, fn, method, name in routes],
        middleware=[
            Middleware(_RequestContext, stats=sandbox.stats, dedupes=lambda: sandbox.faults.dedupe)
        ],
        exception_handlers={HTTPException: _http_exception, _Reply: _reply},
    )
    app.state.sandbox = sandbox
    return app
