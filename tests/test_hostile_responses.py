"""Hostile API responses: whatever a server (or a proxy in front of it) answers, every SDK call
raises one of the SDK's own documented errors, never a bare KeyError, ValueError,
RecursionError, pydantic ValidationError or JSONDecodeError, and never reads an unbounded body.

A mock transport stands in for the server here: the sandbox cannot be made to answer HTML, cut
JSON or a gigabyte.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import anyio
import httpx
import pytest

from sendoso import AsyncSendoso, Sendoso
from sendoso._auth import TokenInfo
from sendoso._http import MAX_RETRY_AFTER
from sendoso.errors import (
    AmbiguousSendError,
    APIConnectionError,
    APIStatusError,
    AuthenticationError,
    InternalServerError,
    RateLimitError,
    ResponseParseError,
    SendosoError,
)

BASE_URL = "http://127.0.0.1:9"
TOKEN = "tok_" + "a" * 40
GIFT = {
    "id": "gft_egift_test_25",
    "name": "Test eGift",
    "category": "egift",
    "price": "25.00",
    "currency": "USD",
}
SEND = {"id": "snd_1", "status": "pending", "gift_id": GIFT["id"], "email": "ada@example.com"}
#: The SDK's read cap (Policy.max_response_bytes).
CAP = 10 * 1024 * 1024


def _ok(path: str, method: str) -> httpx.Response:
    """What a healthy server answers."""
    if path == "/oauth/token":
        return httpx.Response(200, json={"access_token": TOKEN, "expires_in": 7200})
    if path == "/api/v3/gifts":
        return httpx.Response(200, json={"gifts": [GIFT], "meta": {"next_page": None}})
    if method == "POST":
        return httpx.Response(201, json={"send": SEND})
    return httpx.Response(200, json={"send": SEND})


# Each operation: the request it turns hostile, and how to call it (sync and async).
SyncCall = Callable[[Sendoso], object]
AsyncCall = Callable[[AsyncSendoso], Any]
SEND_FIELDS: dict[str, Any] = {
    "gift_id": GIFT["id"],
    "first_name": "Ada",
    "last_name": "Lovelace",
    "email": "ada@example.com",
    "message": "Thank you!",
}


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    sync: SyncCall
    run_async: AsyncCall
    is_send: bool = False


OPERATIONS = {
    "token": Operation(
        "POST",
        "/oauth/token",
        lambda c: c.authenticate(refresh=True),
        lambda c: c.authenticate(refresh=True),
    ),
    "gifts.list": Operation(
        "GET", "/api/v3/gifts", lambda c: c.gifts.list(), lambda c: c.gifts.list()
    ),
    "gifts.get": Operation(
        "GET",
        "/api/v3/gifts",
        lambda c: c.gifts.get(GIFT["id"]),
        lambda c: c.gifts.get(GIFT["id"]),
    ),
    "sends.create": Operation(
        "POST",
        "/api/v3/sends",
        lambda c: c.sends.create(**SEND_FIELDS),
        lambda c: c.sends.create(**SEND_FIELDS),
        is_send=True,
    ),
    "sends.retrieve": Operation(
        "GET",
        "/api/v3/sends/snd_1",
        lambda c: c.sends.retrieve("snd_1"),
        lambda c: c.sends.retrieve("snd_1"),
    ),
}


@dataclass
class Server:
    """A mock server: healthy, except ``hostile`` answers the operation under test."""

    operation: Operation
    hostile: Callable[[], httpx.Response]
    hits: list[str] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.hits.append(path)
        if path == self.operation.path and request.method == self.operation.method:
            return self.hostile()
        return _ok(path, request.method)


def _call(operation: Operation, server: Server, mode: str) -> object:
    transport = httpx.MockTransport(server)
    options: dict[str, Any] = {
        "base_url": BASE_URL,
        "client_id": "hostile-client",
        "client_secret": "hostile-secret",
        "max_retries": 0,
    }
    if mode == "sync":
        with Sendoso(**options, http_client=httpx.Client(transport=transport)) as client:
            return operation.sync(client)

    async def main() -> object:
        http = httpx.AsyncClient(transport=transport)
        async with AsyncSendoso(**options, http_client=http) as client:
            try:
                return await operation.run_async(client)
            finally:
                await http.aclose()

    return anyio.run(main)


def _raises(operation: Operation, hostile: Callable[[], httpx.Response], mode: str) -> SendosoError:
    """The error the call raised; fails the test for anything that is not the SDK's own."""
    server = Server(operation, hostile)
    with pytest.raises(SendosoError) as caught:
        _call(operation, server, mode)
    error = caught.value
    message = str(error)
    assert message, "an error must say what happened"
    assert len(message) < 600, f"error message too long: {message[:200]}..."
    for leak in ("<html", "<!doctype", TOKEN, "hostile-secret"):
        assert leak not in message.lower()
    assert error.__cause__ is None or isinstance(error.__cause__, SendosoError | httpx.HTTPError)
    return error


def _json(status: int, body: object, content_type: str = "application/json") -> httpx.Response:
    return httpx.Response(
        status, content=json.dumps(body).encode(), headers={"Content-Type": content_type}
    )


def _raw(status: int, body: bytes, content_type: str = "application/json") -> httpx.Response:
    return httpx.Response(status, content=body, headers={"Content-Type": content_type})


HTML_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>"
    b"<body><h1>Bad Gateway</h1><p>nginx</p></body></html>"
)

#: Successful statuses with bodies nothing could read as the answer.
UNREADABLE_SUCCESSES: dict[str, Callable[[], httpx.Response]] = {
    "plain text": lambda: _raw(200, b"OK", "text/plain"),
    "html page": lambda: _raw(200, HTML_PAGE, "text/html"),
    "empty body": lambda: _raw(200, b""),
    "truncated json": lambda: _raw(200, b'{"access_token": "abc", "gifts": [{"id": "g'),
    "invalid utf-8": lambda: _raw(200, b'\xff\xfe{"a": 1}'),
    "json null": lambda: _json(200, None),
    "json string": lambda: _json(200, "ok"),
    "json number": lambda: _json(200, 42),
    "json list of numbers": lambda: _json(200, [1, 2, 3]),
    "nested too deeply": lambda: _raw(200, b"[" * 200_000 + b"]" * 200_000),
    "huge integer": lambda: _raw(200, b'{"expires_in": ' + b"9" * 5000 + b"}"),
    "html labelled as json": lambda: _raw(200, HTML_PAGE, "application/json"),
    "no content": lambda: httpx.Response(204),
    "broken gzip": lambda: httpx.Response(
        200, content=b"not gzip at all", headers={"Content-Encoding": "gzip"}
    ),
}

#: Well-formed JSON with the wrong shape, per operation.
WRONG_SHAPES: dict[str, list[object]] = {
    "/oauth/token": [
        {},
        {"token_type": "Bearer"},
        {"access_token": 12345},
        {"access_token": ""},
        {"access_token": None},
        {"access_token": ["a"]},
        {"access_token": "has spaces in it"},
        {"access_token": "line\nbreak"},
        {"access_token": "naïve-unicode"},
        {"access_token": "x" * 10_000},
        {"data": {"access_token": TOKEN}},
    ],
    "/api/v3/gifts": [
        {},
        {"gifts": "none"},
        {"gifts": {"id": "x"}},
        {"gifts": [1, 2]},
        {"gifts": [None]},
        {"gifts": [{"name": "no id"}]},
        {"gifts": [{**GIFT, "id": ""}]},
        {"gifts": [{**GIFT, "price": "free"}]},
        {"gifts": [{**GIFT, "price": "NaN"}]},
        {"gifts": [{**GIFT, "price": "Infinity"}]},
        {"gifts": [{**GIFT, "price": "-25"}]},
        {"gifts": [{**GIFT, "price": None}]},
        {"gifts": [{**GIFT, "variants": "all"}]},
        {"gifts": [{**GIFT, "ships_to": "US"}]},
        {"gifts": [{**GIFT, "shipping_estimate": {"domestic": "-5", "international": "1"}}]},
        {"gifts": [{**GIFT, "name": {"en": "x"}}]},
    ],
    "/api/v3/sends": [
        {},
        {"send": None},
        {"send": "snd_1"},
        {"send": {}},
        {"send": {"status": "pending"}},
        {"send": {"id": "", "status": "pending"}},
        {"send": {"id": 5, "status": ["pending"]}},
        {"send": {**SEND, "created_at": "yesterday"}},
        {"send": {**SEND, "cost": "25"}},
        {"send": {**SEND, "cost": [{"low": "x", "high": "1"}]}},
        {"send": {**SEND, "cost": [{"low": "-1", "high": "1"}]}},
        {"send": {**SEND, "metadata": ["a"]}},
        {"error": "the send is fine, honest"},
    ],
}
WRONG_SHAPES["/api/v3/sends/snd_1"] = WRONG_SHAPES["/api/v3/sends"]

#: Error statuses with bodies the error mapping must survive.
HOSTILE_ERRORS: dict[str, tuple[Callable[[], httpx.Response], type[APIStatusError]]] = {
    "html 502": (lambda: _raw(502, HTML_PAGE, "text/html"), InternalServerError),
    "html 500 labelled as json": (lambda: _raw(500, HTML_PAGE), InternalServerError),
    "truncated json 400": (lambda: _raw(400, b'{"error": {"type": "inv'), APIStatusError),
    "details not a list": (
        lambda: _json(400, {"error": {"message": "bad", "details": "email"}}),
        APIStatusError,
    ),
    "details of odd items": (
        lambda: _json(422, {"error": {"message": 7, "details": [1, None, {"field": 3}]}}),
        APIStatusError,
    ),
    "error is a list": (lambda: _json(404, {"error": ["not", "found"]}), APIStatusError),
    "nested too deeply 400": (lambda: _raw(400, b"[" * 200_000), APIStatusError),
    "huge error page": (lambda: _raw(503, b"x" * (CAP + 1000), "text/plain"), InternalServerError),
    "429 retry after infinity": (
        lambda: httpx.Response(429, headers={"Retry-After": "inf"}, content=b"slow down"),
        RateLimitError,
    ),
    "429 retry after 1e400": (
        lambda: httpx.Response(429, headers={"Retry-After": "1e400"}, content=b""),
        RateLimitError,
    ),
    "429 retry after the year 9999": (
        lambda: httpx.Response(
            429, headers={"Retry-After": "Fri, 31 Dec 9999 23:59:59 GMT"}, content=b""
        ),
        RateLimitError,
    ),
    "302 to a login page": (
        lambda: httpx.Response(302, headers={"Location": "https://login.example/"}, content=b""),
        APIStatusError,
    ),
}

MODES = ["sync", "async"]


def _expect_unreadable(operation: Operation, error: SendosoError) -> None:
    if operation.is_send:
        # The send may exist: the error must carry the key (exit 3 in the CLI), never invite a
        # blind retry.
        assert isinstance(error, ResponseParseError | AmbiguousSendError), repr(error)
        assert error.idempotency_key
    else:
        # Unreadable (or, for a body that cannot even be decompressed, no usable answer).
        assert isinstance(error, ResponseParseError | APIConnectionError), repr(error)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("body", sorted(UNREADABLE_SUCCESSES))
@pytest.mark.parametrize("name", sorted(OPERATIONS))
def test_unreadable_success_is_a_documented_error(name: str, body: str, mode: str) -> None:
    operation = OPERATIONS[name]
    error = _raises(operation, UNREADABLE_SUCCESSES[body], mode)
    _expect_unreadable(operation, error)


def _wrong_shape_cases() -> Iterator[tuple[str, int, object]]:
    for name, operation in sorted(OPERATIONS.items()):
        for index, body in enumerate(WRONG_SHAPES[operation.path]):
            yield name, index, body


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("name", "index", "body"), list(_wrong_shape_cases()))
def test_wrong_types_and_missing_fields_are_a_parse_error(
    name: str, index: int, body: object, mode: str
) -> None:
    operation = OPERATIONS[name]
    status = 201 if operation.is_send else 200
    error = _raises(operation, lambda: _json(status, body), mode)
    assert isinstance(error, ResponseParseError), repr(error)
    if operation.is_send:
        assert error.idempotency_key


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", sorted(HOSTILE_ERRORS))
@pytest.mark.parametrize("name", sorted(OPERATIONS))
def test_hostile_error_responses_map_to_typed_errors(name: str, case: str, mode: str) -> None:
    operation = OPERATIONS[name]
    hostile, expected = HOSTILE_ERRORS[case]
    error = _raises(operation, hostile, mode)
    if operation.is_send and expected is InternalServerError:
        # A 5xx to a send that the server is not known to deduplicate is ambiguous.
        assert isinstance(error, AmbiguousSendError), repr(error)
    else:
        assert isinstance(error, expected), repr(error)
        assert isinstance(error, APIStatusError)
        assert error.status_code == hostile().status_code


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", sorted(OPERATIONS))
def test_json_under_another_content_type_is_read(name: str, mode: str) -> None:
    """Lenient where it is safe: a correct body labelled text/html is still the answer."""
    operation = OPERATIONS[name]
    healthy = _ok(operation.path, operation.method)
    server = Server(operation, lambda: _raw(healthy.status_code, healthy.content, "text/html"))
    assert _call(operation, server, mode) is not None


@pytest.mark.parametrize("mode", MODES)
def test_token_endpoint_answering_401_with_html_is_an_authentication_error(mode: str) -> None:
    server = Server(OPERATIONS["token"], lambda: _raw(401, HTML_PAGE, "text/html"))
    with pytest.raises(AuthenticationError) as caught:
        _call(OPERATIONS["gifts.list"], server, mode)
    assert caught.value.status_code == 401
    assert "<" not in str(caught.value)


class _Endless:
    """A body that never ends, counting what was read from it."""

    CHUNK = b'{"gifts": [' + b" " * (64 * 1024 - 11)

    def __init__(self) -> None:
        self.served = 0

    def __iter__(self) -> Iterator[bytes]:
        while True:
            self.served += len(self.CHUNK)
            yield self.CHUNK

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            self.served += len(self.CHUNK)
            yield self.CHUNK


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", sorted(OPERATIONS))
def test_an_endless_body_is_read_only_up_to_the_cap(name: str, mode: str) -> None:
    operation = OPERATIONS[name]
    endless = _Endless()
    hostile = lambda: httpx.Response(  # noqa: E731
        201 if operation.is_send else 200,
        headers={"Content-Type": "application/json"},
        content=endless if mode == "sync" else endless.__aiter__(),
    )
    error = _raises(operation, hostile, mode)
    _expect_unreadable(operation, error)
    assert "larger than" in str(error)
    assert CAP <= endless.served <= CAP + 2 * len(_Endless.CHUNK)


def _gzip_of_spaces(size: int) -> bytes:
    """A gzip stream of ``[`` and ``size`` spaces, compressed a block at a time (never the
    whole inflated body in memory)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # wbits 31: gzip framing
    block = b" " * (1024 * 1024)
    parts = [packer.compress(b"[")]
    parts += [packer.compress(block) for _ in range(size // len(block))]
    return b"".join([*parts, packer.flush()])


@pytest.mark.parametrize("mode", MODES)
def test_a_compression_bomb_is_capped_after_decompression(mode: str) -> None:
    bomb = _gzip_of_spaces(8 * CAP)  # 80 MB inflated, about 80 KB sent
    assert len(bomb) < CAP // 100
    hostile = lambda: httpx.Response(  # noqa: E731
        200, headers={"Content-Type": "application/json", "Content-Encoding": "gzip"}, content=bomb
    )
    error = _raises(OPERATIONS["gifts.list"], hostile, mode)
    assert isinstance(error, ResponseParseError)
    assert "larger than" in str(error)


@pytest.mark.parametrize("mode", MODES)
def test_a_large_but_allowed_compressed_body_is_read_whole(mode: str) -> None:
    """The cap applies to what is too big, not to every body without a Content-Length."""
    gifts = [{**GIFT, "id": f"gft_{n}", "description": "x" * 500} for n in range(2000)]
    body = gzip.compress(json.dumps({"gifts": gifts, "meta": {"next_page": None}}).encode())
    hostile = lambda: httpx.Response(  # noqa: E731
        200, headers={"Content-Type": "application/json", "Content-Encoding": "gzip"}, content=body
    )
    listed = _call(OPERATIONS["gifts.list"], Server(OPERATIONS["gifts.list"], hostile), mode)
    assert isinstance(listed, list)
    assert len(listed) == 2000


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("expires_in", [10**400, 1e308, -5, 0, "NaN", "soon", None], ids=repr)
def test_absurd_token_lifetimes_are_bounded(expires_in: object, mode: str) -> None:
    """An expiry no datetime can hold once broke ``authenticate()`` with OverflowError."""
    body = json.dumps({"access_token": TOKEN, "expires_in": expires_in}).encode()
    server = Server(OPERATIONS["token"], lambda: _raw(200, body))
    info = _call(OPERATIONS["token"], server, mode)
    assert isinstance(info, TokenInfo)
    lifetime = (info.expires_at - datetime.now(UTC)).total_seconds()
    assert 0 < lifetime <= 366 * 86400


def test_an_infinite_retry_after_does_not_stall_the_client_forever() -> None:
    """``Retry-After: inf`` once paused every later call forever (time.sleep(inf) raises)."""
    hostile = lambda: httpx.Response(429, headers={"Retry-After": "inf"})  # noqa: E731
    server = Server(OPERATIONS["gifts.list"], hostile)
    transport = httpx.MockTransport(server)
    with Sendoso(
        base_url=BASE_URL,
        client_id="hostile-client",
        client_secret="hostile-secret",
        http_client=httpx.Client(transport=transport),
    ) as client:
        with pytest.raises(RateLimitError) as caught:
            client.gifts.list()
        assert caught.value.retry_after == MAX_RETRY_AFTER
        assert 0 < client.pacer.paused_for() <= MAX_RETRY_AFTER
