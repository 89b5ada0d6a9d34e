"""The HTTP policy's pure parts: Retry-After parsing, error mapping, pacing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any, cast

import httpx
import pytest

from sendoso import (
    AmbiguousSendError,
    APIConnectionError,
    AuthenticationError,
    BadRequestError,
    InternalServerError,
    NotFoundError,
    RateLimitError,
    UnprocessableEntityError,
)
from sendoso._http import (
    Authorize,
    Call,
    Policy,
    ServerIdentity,
    Transmit,
    Wait,
    _request_spec,
    call_flow,
    error_from_response,
    retry_after_seconds,
)
from sendoso._pacing import Pacer

NOW = 1_800_000_000.0


def test_retry_after_in_seconds() -> None:
    assert retry_after_seconds(httpx.Headers({"Retry-After": "3"}), now=NOW) == 3.0


def test_retry_after_as_http_date() -> None:
    when = datetime.fromtimestamp(NOW, tz=UTC) + timedelta(seconds=42)
    headers = httpx.Headers({"Retry-After": format_datetime(when, usegmt=True)})
    assert retry_after_seconds(headers, now=NOW) == pytest.approx(42, abs=1)


def test_retry_after_in_the_past_means_now() -> None:
    headers = httpx.Headers({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})
    assert retry_after_seconds(headers, now=NOW) == 0.0


def test_x_rate_limit_reset_as_epoch_or_delta() -> None:
    assert retry_after_seconds(httpx.Headers({"X-Rate-Limit-Reset": str(NOW + 7)}), now=NOW) == 7
    assert retry_after_seconds(httpx.Headers({"X-Rate-Limit-Reset": "5"}), now=NOW) == 5


def test_garbage_retry_after_is_ignored() -> None:
    assert retry_after_seconds(httpx.Headers({"Retry-After": "soon"}), now=NOW) is None
    assert retry_after_seconds(httpx.Headers({}), now=NOW) is None


def response(status: int, body: object = None, text: str | None = None, **headers: str):  # type: ignore[no-untyped-def]
    request = httpx.Request("POST", "https://api.test/api/v3/sends")
    if text is not None:
        return httpx.Response(status, text=text, headers=headers, request=request)
    return httpx.Response(status, json=body, headers=headers, request=request)


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (404, NotFoundError),
        (422, UnprocessableEntityError),
        (429, RateLimitError),
        (503, InternalServerError),
    ],
)
def test_the_seed_error_table_maps_to_typed_errors(status: int, cls: type) -> None:
    body = {
        "error": {
            "type": "invalid_request",
            "message": "address is invalid",
            "details": [{"field": "address.postal_code", "code": "invalid", "message": "bad zip"}],
        }
    }
    error = error_from_response(response(status, body, **{"X-Request-Id": "req_1"}))
    assert isinstance(error, cls)
    assert error.status_code == status
    assert error.error_type == "invalid_request"
    assert error.request_id == "req_1"
    assert error.details[0].field == "address.postal_code"
    assert "address.postal_code" in str(error)


def test_oauth_style_error_body() -> None:
    error = error_from_response(
        response(401, {"error": "invalid_client", "error_description": "bad secret"})
    )
    assert isinstance(error, AuthenticationError)
    assert (error.error_type, error.message) == ("invalid_client", "bad secret")


@pytest.mark.parametrize(
    "text", ["<html><body>502 Bad Gateway</body></html>", '{"error": {"type": ', "", "\x00\xff"]
)
def test_unreadable_error_bodies_still_give_a_typed_error(text: str) -> None:
    error = error_from_response(response(502, text=text))
    assert isinstance(error, InternalServerError)
    assert error.message.startswith("HTTP 502")
    assert "<html>" not in error.message


def test_pacer_spaces_slots_and_pauses_everyone() -> None:
    now = [100.0]
    pacer = Pacer(10, clock=lambda: now[0])
    assert [round(pacer.reserve(), 3) for _ in range(3)] == [0.0, 0.1, 0.2]
    now[0] = 200.0
    pacer.pause_for(2.0)
    assert pacer.reserve() == pytest.approx(2.0)
    assert pacer.reserve() == pytest.approx(2.1)


def test_unpaced_pacer_only_honours_pauses() -> None:
    now = [0.0]
    pacer = Pacer(None, clock=lambda: now[0])
    assert pacer.reserve() == 0.0
    assert pacer.reserve() == 0.0
    pacer.pause_for(1.5)
    assert pacer.reserve() == 1.5


def test_pacer_rejects_nonsense_rates() -> None:
    with pytest.raises(ValueError, match="positive"):
        Pacer(0)


def test_millisecond_epoch_reset_is_understood() -> None:
    headers = httpx.Headers({"X-Rate-Limit-Reset": str(int((NOW + 9) * 1000))})
    assert retry_after_seconds(headers, now=NOW) == pytest.approx(9)


def wait_about(seconds: float) -> Wait:
    """A ``Wait`` equal to any ``Wait`` of about ``seconds`` (dataclass equality compares the
    fields, and ``pytest.approx`` equals every float close to its own)."""
    return Wait(cast(float, pytest.approx(seconds)))


# --- the policy itself, driven step by step (it is a generator: no sockets, no sleeping) ---


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def drive(flow, answer, log: list[object] | None = None, clock: FakeClock | None = None):  # type: ignore[no-untyped-def]
    """Runs a flow, answering each Transmit with ``answer(n, spec)``; every action it asked
    for is appended to ``log``; each Wait moves ``clock`` on (the pacer's, if it has one).
    Returns (result, log)."""
    log = [] if log is None else log
    outcome: object = None
    transmits = 0
    while True:
        try:
            action = flow.send(outcome)
        except StopIteration as done:
            return done.value, log
        log.append(action)
        if isinstance(action, Transmit):
            outcome = answer(transmits, action.request)
            transmits += 1
        elif isinstance(action, Authorize):
            outcome = FakeToken("tok")
        else:
            if clock is not None:
                clock.now += action.seconds
            outcome = None


class FakeToken:
    def __init__(self, value: str) -> None:
        self.value = value


def flow_for(call: Call, pacer: Pacer | None = None, **policy: Any):  # type: ignore[no-untyped-def]
    return call_flow(
        call,
        base_url="https://api.test",
        pacer=Pacer(None) if pacer is None else pacer,
        policy=Policy(**policy),
        identity=ServerIdentity(),
    )


def answer_with(status: int, **headers: str):  # type: ignore[no-untyped-def]
    def answer(n: int, spec: Any) -> httpx.Response:
        return httpx.Response(status, headers=headers, request=httpx.Request(spec.method, spec.url))

    return answer


def test_retry_after_zero_is_neither_hammered_nor_retried_forever() -> None:
    log: list[object] = []
    clock = FakeClock()
    pacer = Pacer(None, clock=clock)
    flow = flow_for(Call("GET", "/api/v3/gifts"), pacer, max_rate_limit_retries=5)
    with pytest.raises(RateLimitError):
        drive(flow, answer_with(429, **{"Retry-After": "0"}), log, clock)
    transmits = [a for a in log if isinstance(a, Transmit)]
    waits = [a for a in log if isinstance(a, Wait)]
    assert len(transmits) == 6
    assert len(waits) == 5
    assert all(w.seconds > 0 for w in waits)  # "retry now" still gets a backoff


def test_gets_are_retried_on_5xx_then_succeed() -> None:
    def answer(n: int, spec: Any) -> httpx.Response:
        status = 503 if n < 2 else 200
        return httpx.Response(status, json={}, request=httpx.Request(spec.method, spec.url))

    response, log = drive(flow_for(Call("GET", "/api/v3/gifts")), answer)
    assert response.status_code == 200
    assert sum(isinstance(a, Transmit) for a in log) == 3


def test_an_untrusted_send_is_never_repeated_after_a_5xx() -> None:
    call = Call("POST", "/api/v3/sends", kind="send", json={}, idempotency_key="k1")
    with pytest.raises(AmbiguousSendError) as caught:
        drive(flow_for(call, trusts_idempotency=False), answer_with(502))
    assert caught.value.idempotency_key == "k1"
    assert not caught.value.retry_safe


def test_a_send_with_an_undecodable_reply_is_ambiguous() -> None:
    call = Call("POST", "/api/v3/sends", kind="send", json={}, idempotency_key="k2")

    def answer(n: int, spec: Any) -> httpx.DecodingError:
        return httpx.DecodingError("bad gzip", request=httpx.Request(spec.method, spec.url))

    with pytest.raises(AmbiguousSendError):
        drive(flow_for(call, trusts_idempotency=False), answer)


def test_a_loopback_server_is_trusted_only_once_it_says_it_is_the_sandbox() -> None:
    call = Call("POST", "/api/v3/sends", kind="send", json={}, idempotency_key="k3")
    identity = ServerIdentity()
    flow = call_flow(
        call, base_url="http://127.0.0.1:1", pacer=Pacer(None),
        policy=Policy(trusts_idempotency=None), identity=identity,
    )  # fmt: skip
    with pytest.raises(AmbiguousSendError):
        drive(flow, answer_with(502))  # a port-forward to a server that does not dedupe
    sandbox_says = {"Sendoso-Sandbox": "1"}

    def answer(n: int, spec: Any) -> httpx.Response:
        status = 502 if n == 0 else 201
        return httpx.Response(
            status, json={}, headers=sandbox_says, request=httpx.Request(spec.method, spec.url)
        )

    flow = call_flow(
        call, base_url="http://127.0.0.1:1", pacer=Pacer(None),
        policy=Policy(trusts_idempotency=None, backoff_base=0.0), identity=identity,
    )  # fmt: skip
    response, log = drive(flow, answer)
    assert identity.is_sandbox
    assert response.status_code == 201
    keys = [a.request.headers["Idempotency-Key"] for a in log if isinstance(a, Transmit)]
    assert keys == ["k3", "k3"]


def test_request_reprs_hide_secrets_and_addresses() -> None:
    call = Call("POST", "/oauth/token", kind="token", json={"client_secret": "S3CRET"})
    spec = _request_spec(call, "https://api.test/oauth/token", FakeToken("T0KEN"))
    assert "S3CRET" not in repr(call)
    assert "S3CRET" not in repr(spec)
    assert "T0KEN" not in repr(spec)


# --- the policy and the shared schedule ----------------------------------------------------


def test_a_slot_booked_before_a_pause_is_not_used_inside_it() -> None:
    clock = FakeClock()
    pacer = Pacer(2.0, clock=clock)
    pacer.reserve()  # another caller has the slot now; ours is 0.5 s ahead
    flow = flow_for(Call("GET", "/api/v3/gifts"), pacer)
    assert isinstance(flow.send(None), Authorize)
    assert flow.send(FakeToken("tok")) == Wait(0.5)

    clock.now += 0.1
    pacer.throttled(5.0)  # the other caller's 429, while this one sleeps
    clock.now += 0.4
    sent_at: list[float] = []

    def answer(n: int, spec: Any) -> httpx.Response:
        sent_at.append(clock.now)
        return httpx.Response(200, json={}, request=httpx.Request(spec.method, spec.url))

    response, log = drive(flow, answer, clock=clock)  # resumed after its 0.5 s

    assert response.status_code == 200
    assert sent_at == [pytest.approx(105.1)]  # when the pause ended, not at 100.5
    assert log[0] == wait_about(4.6)


def test_the_first_attempt_of_a_send_uses_the_slot_prebooked_under_its_key() -> None:
    clock = FakeClock()
    pacer = Pacer(10.0, clock=clock)
    assert pacer.prebook("k1") == 0.0  # the runner's turn, waited for before "submitting"
    call = Call("POST", "/api/v3/sends", kind="send", json={}, idempotency_key="k1")
    sent_at: list[float] = []

    def answer(n: int, spec: Any) -> httpx.Response:
        sent_at.append(clock.now)
        status = 503 if n == 0 else 201
        return httpx.Response(status, json={}, request=httpx.Request(spec.method, spec.url))

    flow = flow_for(call, pacer, trusts_idempotency=True, backoff_base=0.0)
    response, _ = drive(flow, answer, clock=clock)

    assert response.status_code == 201
    # The first attempt went at once, in the prebooked slot; the retry booked the next one.
    assert sent_at == [100.0, pytest.approx(100.1)]
    assert pacer.reserve() == pytest.approx(0.1)  # and nothing else was booked


def test_a_send_without_a_ticket_books_its_own_slot() -> None:
    clock = FakeClock()
    pacer = Pacer(10.0, clock=clock)
    pacer.prebook("someone-else")
    call = Call("POST", "/api/v3/sends", kind="send", json={}, idempotency_key="k2")

    response, log = drive(flow_for(call, pacer), answer_with(201), clock=clock)

    assert response.status_code == 201
    assert wait_about(0.1) in log


def test_a_pause_longer_than_a_call_may_wait_fails_it_at_once_without_a_request() -> None:
    """Retry-After: 86400 on one call used to make every later call of the client sleep a
    day before its request; now they raise RateLimitError with the time left, sending
    nothing, while a pause it may wait out is still waited out."""
    clock = FakeClock()
    pacer = Pacer(None, clock=clock)
    log: list[object] = []
    with pytest.raises(RateLimitError):
        drive(
            flow_for(Call("GET", "/api/v3/gifts"), pacer),
            answer_with(429, **{"Retry-After": "86400"}),
            log,
            clock,
        )
    assert sum(isinstance(a, Transmit) for a in log) == 1

    later: list[object] = []
    with pytest.raises(RateLimitError) as raised:
        drive(flow_for(Call("GET", "/api/v3/gifts"), pacer), answer_with(200), later, clock)
    assert later == []  # no token asked for, no wait, no request
    assert raised.value.retry_after == pytest.approx(86400)
    assert "86400 s" in str(raised.value)

    clock.now += 86400 - 60  # a minute left: within what a call waits
    response, waited = drive(
        flow_for(Call("GET", "/api/v3/gifts"), pacer), answer_with(200), None, clock
    )
    assert response.status_code == 200
    assert wait_about(60) in waited


def test_a_rate_limited_send_can_be_handed_back_at_once_with_everyone_paused() -> None:
    """wait_on_rate_limited_sends=False: a 429 on a send raises after one attempt (the
    caller requeues it), and the shared pacer still holds every caller back; a read keeps
    waiting the 429 out as before."""
    clock = FakeClock()
    pacer = Pacer(None, clock=clock)
    send = Call("POST", "/api/v3/sends", kind="send", json={}, idempotency_key="k9")
    log: list[object] = []
    with pytest.raises(RateLimitError):
        drive(
            flow_for(send, pacer, wait_on_rate_limited_sends=False),
            answer_with(429, **{"Retry-After": "7"}),
            log,
            clock,
        )
    assert sum(isinstance(a, Transmit) for a in log) == 1
    assert pacer.paused_for() == pytest.approx(7.0)

    def read_answer(n: int, spec: Any) -> httpx.Response:
        status = 429 if n == 0 else 200
        headers = {"Retry-After": "2"} if n == 0 else {}
        return httpx.Response(status, headers=headers, request=httpx.Request(spec.method, spec.url))

    response, _ = drive(
        flow_for(Call("GET", "/api/v3/gifts"), Pacer(None, clock=clock),
                 wait_on_rate_limited_sends=False),
        read_answer, clock=clock,
    )  # fmt: skip
    assert response.status_code == 200


def test_a_transport_error_without_a_message_is_still_named() -> None:
    # httpx raises some errors (a read timeout, a cut stream) with an empty message: the
    # error must still say what failed, never "after 5 attempts ()".
    call = Call("POST", "/api/v3/sends", kind="send", json={}, idempotency_key="k9")

    def answer(n: int, spec: Any) -> httpx.ReadError:
        return httpx.ReadError("", request=httpx.Request(spec.method, spec.url))

    with pytest.raises(AmbiguousSendError) as caught:
        drive(flow_for(call, trusts_idempotency=True, backoff_base=0), answer)
    assert "()" not in str(caught.value)
    assert "attempts (ReadError)" in str(caught.value)
    with pytest.raises(AmbiguousSendError) as untrusted:
        drive(flow_for(call, trusts_idempotency=False), answer)
    assert "(ReadError)" in str(untrusted.value)
    with pytest.raises(APIConnectionError) as read:
        drive(flow_for(Call("GET", "/api/v3/gifts"), backoff_base=0), answer)
    assert str(read.value).endswith("attempts: ReadError")
