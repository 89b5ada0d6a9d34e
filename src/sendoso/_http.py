"""The one HTTP policy: pacing, retries, Retry-After, token refresh, ambiguity, error mapping.

The policy is written once, as a generator (:func:`call_flow`) that *asks* for I/O instead of
doing it: it yields :class:`Authorize`, :class:`Wait` and :class:`Transmit` and is resumed
with the result. The sync and async clients each drive it with a few lines of their own
(``time.sleep`` vs ``anyio.sleep``, ``httpx.Client`` vs ``httpx.AsyncClient``), so the rules
cannot drift apart between them.

Hand-written rather than delegated to a retry library (tenacity, stamina) because the retry
decision depends on the send state machine: whether a failure is *ambiguous* (the request may
have been processed) and whether the server deduplicates on ``Idempotency-Key``; a generic
library would only see exceptions.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

import httpx

from sendoso._net import is_loopback_host
from sendoso._pacing import Pacer
from sendoso.errors import (
    AmbiguousSendError,
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    FieldProblem,
    Param,
    RateLimitError,
    ResponseParseError,
    Text,
    TokenUnavailableError,
    status_error_class,
)

__all__ = [
    "Action",
    "Authorize",
    "Call",
    "Policy",
    "RequestSpec",
    "ServerIdentity",
    "Transmit",
    "Wait",
    "aread_capped",
    "call_flow",
    "error_from_response",
    "read_capped",
    "response_json",
    "retry_after_seconds",
]

logger = logging.getLogger("sendoso")

#: "read": safe to repeat. "token": safe to repeat. "send": creates a gift; repeating it is
#: safe only when the server deduplicates on the idempotency key.
CallKind = Literal["read", "send", "token"]

# Failures that happen before the request could reach the server: never ambiguous.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)

# A refused connection is a definite answer, not a glitch: the host is up and nothing listens
# on that port (a wrong URL, or a server not started), which backing off for seconds does not
# change. On loopback that is the whole story (the sandbox is not running), so it fails at
# once. A remote host may refuse for a moment while a server or load balancer restarts, so it
# gets one more attempt after the first, short backoff; timeouts, resets and name lookups keep
# the full retries.
_REFUSED_RETRIES_LOOPBACK = 0
_REFUSED_RETRIES_REMOTE = 1


@dataclass(frozen=True)
class Call:
    """One logical API call, however many attempts it takes."""

    method: str
    path: str
    kind: CallKind = "read"
    params: Mapping[str, str] | None = None
    # Bodies hold the client secret (token calls) and recipients' addresses (sends): never in
    # a repr, so never in a traceback that captures locals.
    json: Any = field(default=None, repr=False)
    form: Mapping[str, str] | None = field(default=None, repr=False)
    idempotency_key: str | None = None

    @property
    def authenticated(self) -> bool:
        return self.kind != "token"


@dataclass(frozen=True)
class Policy:
    max_retries: int = 4
    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    #: Longest a call keeps waiting out 429s in total before giving up with RateLimitError,
    #: and how many 429s it takes at most (a server saying "retry now" must not loop forever).
    max_rate_limit_wait: float = 300.0
    max_rate_limit_retries: int = 30
    #: False: a 429 on a send raises RateLimitError at once (everyone sharing the pacer still
    #: pauses), for a caller that keeps its own durable queue and would rather not hold a
    #: send "in flight" while it waits (the batch runner).
    wait_on_rate_limited_sends: bool = True
    #: Most of a response body that is read (after decompression); a longer one is cut there
    #: and so fails to parse, rather than filling memory (see :func:`read_capped`).
    max_response_bytes: int = 10 * 1024 * 1024
    #: True/False: the server does / does not deduplicate on Idempotency-Key. None: only if it
    #: identifies itself as the sandbox (see :class:`ServerIdentity`).
    trusts_idempotency: bool | None = False

    def backoff(self, attempt: int) -> float:
        # Exponential with jitter so that many workers failing together do not return together.
        ceiling = min(self.backoff_cap, self.backoff_base * (2**attempt))
        return float(ceiling * random.uniform(0.5, 1.0))


@dataclass(frozen=True)
class RequestSpec:
    method: str
    url: str
    params: Mapping[str, str] | None
    json: Any = field(repr=False)
    form: Mapping[str, str] | None = field(repr=False)
    headers: dict[str, str] = field(repr=False)


class BearerToken(Protocol):
    """An access token whose repr does not show its value."""

    @property
    def value(self) -> str: ...


@dataclass(frozen=True)
class Authorize:
    """Asks the driver for a usable access token (a :class:`BearerToken`), never ``stale``."""

    stale: BearerToken | None


@dataclass(frozen=True)
class Wait:
    seconds: float


@dataclass(frozen=True)
class Transmit:
    """Asks the driver to send; it resumes with an ``httpx.Response`` (body read) or the
    ``httpx.TransportError`` raised."""

    request: RequestSpec


class ServerIdentity:
    """What the server has said about itself; shared by every call of one client.

    Only the local sandbox is known to deduplicate on ``Idempotency-Key``, and it says so
    with a ``Sendoso-Sandbox`` header. Being on loopback is not enough: a port-forward or a
    TLS proxy to production is on loopback too.
    """

    HEADER = "sendoso-sandbox"

    def __init__(self) -> None:
        self.is_sandbox = False

    def observe(self, response: httpx.Response) -> None:
        if response.headers.get(self.HEADER) == "1":
            self.is_sandbox = True


Action = Authorize | Wait | Transmit
Flow = Generator[Action, Any, httpx.Response]


def call_flow(
    call: Call, *, base_url: str, pacer: Pacer, policy: Policy, identity: ServerIdentity
) -> Flow:
    """Carry ``call`` out under the policy; returns the successful response or raises."""

    def deduplicated() -> bool:
        if policy.trusts_idempotency is None:
            return identity.is_sandbox
        return policy.trusts_idempotency

    url = base_url.rstrip("/") + call.path
    retries = 0
    rate_limited_for = 0.0
    throttled = 0
    stale_token: BearerToken | None = None
    refreshed = False
    # Whether an attempt so far may have been processed (no answer, a 5xx, a 409): until then
    # a send handed back is certainly not sent.
    may_have_sent = False
    # The first attempt takes the slot prebooked under the idempotency key, if any (the batch
    # runner waits for it before recording "submitting"); retries book their own.
    ticket = call.idempotency_key
    while True:
        paused = pacer.paused_for()
        if paused > policy.max_rate_limit_wait - rate_limited_for:
            # Another call's 429 asked everyone to hold off longer than this call may wait (a
            # Retry-After of hours): say so now, instead of sleeping through it.
            raise RateLimitError(
                f"rate limited: the API asked to wait {paused:.0f} s more before the next "
                f"request, longer than this call waits ({policy.max_rate_limit_wait:.0f} s)",
                status_code=429,
                retry_after=paused,
            )
        if (
            paused > 0
            and call.kind == "send"
            and not (may_have_sent or policy.wait_on_rate_limited_sends)
        ):
            raise _handed_back(paused)
        token: BearerToken | None = None
        if call.authenticated:
            # The driver answers with the token, or with the error that getting one raised:
            # either way this call's own request has not been transmitted yet.
            answer = yield Authorize(stale_token)
            if isinstance(answer, BaseException):
                raise _without_token(answer)
            token = answer
        delay = pacer.reserve(ticket)
        ticket = None
        if delay > 0:
            yield Wait(delay)
            # Another caller's 429 may have paused everyone while this one waited for a slot
            # booked before the pause: never transmit inside the pause.
            while (delay := pacer.paused_for()) > 0:
                if call.kind == "send" and not (may_have_sent or policy.wait_on_rate_limited_sends):
                    raise _handed_back(delay)
                yield Wait(delay)
        started = time.monotonic()
        outcome = yield Transmit(_request_spec(call, url, token))
        elapsed_ms = (time.monotonic() - started) * 1000
        attempt = retries + 1

        # Transport errors, and also answers that could not be decoded (a bad gzip body):
        # either way the request may have been processed.
        if isinstance(outcome, httpx.RequestError):
            logger.debug(
                "%s %s failed after %.0f ms: %s (attempt %d)",
                call.method, call.path, elapsed_ms, type(outcome).__name__, attempt,
            )  # fmt: skip
            never_sent = isinstance(outcome, _NOT_SENT)
            may_have_sent = may_have_sent or not never_sent
            if call.kind == "send" and not never_sent and not deduplicated():
                raise _ambiguous(call, f"no readable reply ({_transport_text(outcome)})")
            if _refused(outcome) and retries >= _refused_retries(url, policy):
                raise _refused_error(url, attempt)
            if retries >= policy.max_retries:
                if call.kind == "send" and not never_sent:
                    raise _ambiguous(
                        call,
                        f"still failing after {attempt} attempts ({_transport_text(outcome)})",
                        retry_safe=True,
                    )
                raise _connection_error(outcome, attempt)
            wait = policy.backoff(retries)
            retries += 1
            _log_wait(call, wait, "connection error", retries + 1)
            yield Wait(wait)
            continue

        response: httpx.Response = outcome
        identity.observe(response)
        status = response.status_code
        request_id = _request_id(response)
        logger.debug(
            "%s %s -> %d in %.0f ms (request id %s, attempt %d)",
            call.method, call.path, status, elapsed_ms, request_id or "-", attempt,
        )  # fmt: skip
        if 200 <= status < 300:
            return response

        if status == 401 and call.authenticated and not refreshed:
            # The seed contract: 401 means the token expired. Refresh it once; a second 401 is
            # final.
            refreshed = True
            stale_token = token
            logger.debug("%s %s: token refused, refreshing it once", call.method, call.path)
            continue

        in_progress = status == 409 and call.kind == "send" and deduplicated()
        may_have_sent = may_have_sent or in_progress or status >= 500
        if status == 429 or in_progress:
            asked = retry_after_seconds(response.headers)
            # "Retry now" (0, or a reset time already past) still gets a backoff, or a busy
            # server would be hammered.
            wait = asked if asked else policy.backoff(min(throttled, 6))
            throttled += 1
            if status == 429:
                # Everyone sharing this client waits, not just this call (the server counts
                # all of them), even if this call now gives up.
                pacer.throttled(wait)
            if (
                throttled > policy.max_rate_limit_retries
                or rate_limited_for + wait > policy.max_rate_limit_wait
                or (status == 429 and call.kind == "send" and not policy.wait_on_rate_limited_sends)
            ):
                raise error_from_response(response, retry_after=wait)
            rate_limited_for += wait
            if status != 429:
                yield Wait(wait)
            _log_wait(call, wait, f"HTTP {status}", attempt + 1)
            continue

        if status >= 500:
            if call.kind == "send" and not deduplicated():
                raise _ambiguous(call, f"the API answered {status}", request_id)
            if retries < policy.max_retries:
                wait = policy.backoff(retries)
                retries += 1
                _log_wait(call, wait, f"HTTP {status}", retries + 1)
                yield Wait(wait)
                continue
            if call.kind == "send":
                raise _ambiguous(
                    call, f"still {status} after {attempt} attempts", request_id, retry_safe=True
                )
        raise error_from_response(response)


def _handed_back(paused: float) -> RateLimitError:
    """A send not transmitted because everyone is paused after a 429, for a caller that keeps
    its own queue (``wait_on_rate_limited_sends=False``): it must not sit "in flight" for the
    pause, where it could not be stopped."""
    return RateLimitError(
        f"rate limited: the API asked to wait {paused:.0f} s more before the next request; "
        "the send was not transmitted",
        status_code=429,
        retry_after=paused,
    )


def _without_token(exc: BaseException) -> BaseException:
    """What a call fails with when no token could be had for it. A token endpoint that failed
    (5xx, an unreadable answer, unreachable) is a :class:`TokenUnavailableError`, which says
    the call's own request never left, unlike the same 5xx from a send. Refused credentials,
    a 429 and other definite answers stay what they are."""
    if isinstance(exc, TokenUnavailableError):
        return exc
    status: int | None = None
    if isinstance(exc, APIStatusError) and exc.status_code >= 500:
        status = exc.status_code
        reason = f"the token endpoint answered HTTP {status}: {exc.message}"
    elif isinstance(exc, ResponseParseError | APIConnectionError):
        reason = f"the token endpoint failed: {exc}"
    else:
        return exc
    failure = TokenUnavailableError(
        f"could not obtain an access token ({reason}); the request was not sent",
        status_code=status,
    )
    failure.__cause__ = exc
    return failure


def _request_spec(call: Call, url: str, token: BearerToken | None) -> RequestSpec:
    # Built here rather than in call_flow, so that no local variable of the flow holds the
    # raw token for a traceback that captures locals to show.
    headers = {"Accept": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token.value}"
    if call.idempotency_key:
        headers["Idempotency-Key"] = call.idempotency_key
    return RequestSpec(call.method, url, call.params, call.json, call.form, headers)


def _log_wait(call: Call, seconds: float, reason: str, next_attempt: int) -> None:
    logger.debug(
        "%s %s: %s, waiting %.2f s before attempt %d",
        call.method, call.path, reason, seconds, next_attempt,
    )  # fmt: skip


def _ambiguous(
    call: Call, reason: str, request_id: str | None = None, *, retry_safe: bool = False
) -> AmbiguousSendError:
    key = call.idempotency_key or ""
    if retry_safe:
        advice = f"the server deduplicates, so retrying with idempotency key {key} is safe"
    else:
        advice = (
            "this server is not known to deduplicate, so sending again may create a second "
            "gift: confirm with Sendoso whether it exists before sending again"
        )
    return AmbiguousSendError(
        f"outcome of the send is unknown: {reason}. It may or may not have been created; {advice}",
        idempotency_key=key,
        request_id=request_id,
        retry_safe=retry_safe,
    )


def _refused(exc: BaseException) -> bool:
    """Whether the connection was refused: httpx keeps the socket's error in the chain (the
    async transport wraps it in an ``OSError`` of its own)."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, ConnectionRefusedError):
            return True
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return False


def _refused_retries(url: str, policy: Policy) -> int:
    host = urlsplit(url).hostname or ""
    limit = _REFUSED_RETRIES_LOOPBACK if is_loopback_host(host) else _REFUSED_RETRIES_REMOTE
    return min(limit, policy.max_retries)


def _refused_error(url: str, attempts: int) -> APIConnectionError:
    parts = urlsplit(url)
    where = f"{parts.scheme}://{parts.netloc}"
    tries = "" if attempts == 1 else f", {attempts} attempts"
    if is_loopback_host(parts.hostname or ""):
        advice = "Start the server (is the local sandbox running?) or correct "
    else:
        advice = "Check "
    return APIConnectionError(
        Text(
            f"could not connect to {where}: connection refused (nothing is listening there"
            f"{tries}). {advice}",
            Param("base_url"),
            ".",
        )
    )


def _connection_error(exc: httpx.RequestError, attempts: int) -> APIConnectionError:
    cls = APITimeoutError if isinstance(exc, httpx.TimeoutException) else APIConnectionError
    host = urlsplit(str(exc.request.url)).netloc if _has_request(exc) else "the API"
    return cls(f"could not reach {host} after {attempts} attempts: {_transport_text(exc)}")


def _transport_text(exc: httpx.RequestError) -> str:
    """``ReadError: reason``, or just ``ReadError``: httpx raises some errors (timeouts, cut
    streams) with an empty message, which alone would read as nothing at all."""
    reason = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {reason}" if reason else type(exc).__name__


def _has_request(exc: httpx.RequestError) -> bool:
    try:
        exc.request  # noqa: B018 - httpx raises RuntimeError when no request is attached
    except RuntimeError:
        return False
    return True


#: Set in ``response.extensions`` when the body was cut at ``Policy.max_response_bytes``.
TRUNCATED = "sendoso.truncated"


def _fits(response: httpx.Response, limit: int) -> bool:
    """Whether the body is known to fit before reading it: a plain Content-Length within the
    limit (a compressed body may inflate past it, so only identity encoding counts)."""
    length = response.headers.get("content-length", "")
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    return length.isdigit() and int(length) <= limit and encoding in ("", "identity")


def _rebuilt(response: httpx.Response, body: bytes, *, truncated: bool) -> httpx.Response:
    # The body is already decoded: drop the encoding, or reading it again would decode twice.
    headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() != "content-encoding"]
    extensions = {**response.extensions, TRUNCATED: truncated}
    return httpx.Response(
        response.status_code,
        headers=headers,
        content=body,
        request=response.request,
        extensions=extensions,
    )


def read_capped(response: httpx.Response, limit: int) -> httpx.Response:
    """A streamed response with its body read, at most ``limit`` bytes of it; closes it.

    A read error (cut connection, bad compression) propagates as the ``httpx.RequestError``
    it is, to be judged like any transport failure.
    """
    try:
        if _fits(response, limit):
            response.read()
            return response
        body = bytearray()
        for chunk in response.iter_bytes():
            body += chunk
            if len(body) > limit:
                return _rebuilt(response, bytes(body[:limit]), truncated=True)
        return _rebuilt(response, bytes(body), truncated=False)
    finally:
        response.close()


async def aread_capped(response: httpx.Response, limit: int) -> httpx.Response:
    """The async twin of :func:`read_capped`."""
    try:
        if _fits(response, limit):
            await response.aread()
            return response
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > limit:
                return _rebuilt(response, bytes(body[:limit]), truncated=True)
        return _rebuilt(response, bytes(body), truncated=False)
    finally:
        await response.aclose()


def response_json(response: httpx.Response) -> Any:
    """The body as JSON; ``ValueError`` saying why when it is not usable as such (not JSON,
    not UTF-8, nested too deeply to parse, or cut at the size limit)."""
    if response.extensions.get(TRUNCATED):
        raise ValueError("the body is larger than this client reads")
    try:
        return response.json()
    except RecursionError:
        raise ValueError("the body is nested too deeply to parse") from None


def _request_id(response: httpx.Response) -> str | None:
    return response.headers.get("x-request-id") or None


#: Longest wait taken from a server's header; a longer one is shortened to this.
MAX_RETRY_AFTER = 86400.0


def retry_after_seconds(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """How long the server asked us to wait: ``Retry-After`` (seconds or an HTTP-date), else
    ``X-Rate-Limit-Reset`` (seconds, or an epoch timestamp); None if neither is usable.
    At most :data:`MAX_RETRY_AFTER`."""
    seconds = _asked_wait(headers, time.time() if now is None else now)
    # "inf" or "1e400" would pause every caller of the client forever (and time.sleep raises
    # on infinity): taken as "very long", which the policy then refuses to wait for.
    if seconds is None or math.isnan(seconds):
        return None
    return min(seconds, MAX_RETRY_AFTER)


def _asked_wait(headers: Mapping[str, str], now: float) -> float | None:
    value = headers.get("retry-after")
    if value:
        value = value.strip()
        try:
            return max(0.0, float(value))
        except ValueError:
            pass
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            when = None
        if when is not None:
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            return max(0.0, when.timestamp() - now)
    reset = headers.get("x-rate-limit-reset") or headers.get("x-ratelimit-reset")
    if reset:
        try:
            number = float(reset.strip())
        except ValueError:
            return None
        # Large values are epoch timestamps (in milliseconds if larger still); small ones are
        # seconds from now.
        if number > 1_000_000_000_000:
            number /= 1000
        return max(0.0, number - now) if number > 1_000_000_000 else max(0.0, number)
    return None


def error_from_response(
    response: httpx.Response, *, retry_after: float | None = None
) -> APIStatusError:
    """The typed error for an error response, read leniently from whatever body it has."""
    status = response.status_code
    error_type: str | None = None
    message: str | None = None
    details: list[FieldProblem] = []
    try:
        body: Any = response_json(response)
    except ValueError:
        body = None
    request_id = _request_id(response)
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            error_type = _str(error.get("type")) or _str(error.get("code"))
            message = _str(error.get("message"))
            details = _details(error.get("details"))
            request_id = request_id or _str(error.get("request_id"))
        elif isinstance(error, str):
            # RFC 6749 token errors: {"error": "invalid_client", "error_description": "..."}
            error_type = error
            message = _str(body.get("error_description")) or _str(body.get("message"))
        else:
            message = _str(body.get("message"))
        if not details:
            details = _details(body.get("errors"))
    if not message:
        text = response.text.strip() if body is None else ""
        reason = response.reason_phrase or "error"
        snippet = " ".join(text.split())[:200] if text and not text.startswith("<") else ""
        message = f"HTTP {status} {reason}" + (f": {snippet}" if snippet else "")
    if retry_after is None:
        retry_after = retry_after_seconds(response.headers)
    return status_error_class(status)(
        message,
        status_code=status,
        error_type=error_type,
        details=details,
        request_id=request_id,
        retry_after=retry_after,
        body=body,
    )


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _details(raw: Any) -> list[FieldProblem]:
    if not isinstance(raw, list):
        return []
    problems = []
    for item in raw:
        if isinstance(item, dict):
            problems.append(
                FieldProblem(
                    field=_str(item.get("field")) or "",
                    code=_str(item.get("code")) or "invalid",
                    message=_str(item.get("message")) or "",
                )
            )
        elif isinstance(item, str):
            problems.append(FieldProblem(field="", code="invalid", message=item))
    return problems
