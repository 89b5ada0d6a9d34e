"""The SDK against the real sandbox over real sockets: the seed end to end, every row of its
error table, token lifetime, rate limits and the send state machine's ambiguity rule."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import anyio
import httpx
import pytest
from tests.conftest import Sandbox

from sendoso import (
    AmbiguousSendError,
    AsyncSendoso,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    NotFoundError,
    Sendoso,
    UnprocessableEntityError,
    ValidationError,
)

ADDRESS = {
    "line1": "1 Main St",
    "line2": "Suite 5",
    "city": "Springfield",
    "state": "IL",
    "postal_code": "62701",
    "country": "US",
}


def recipient(email: str = "ada@example.com", **extra: Any) -> dict[str, Any]:
    return {
        "first_name": "Ada",
        "last_name": "Lovelace",
        "email": email,
        "message": "Thanks for your time!",
        **extra,
    }


def pick(client: Sendoso, category: str, *, variants: bool = False) -> Any:
    gifts = client.gifts.list(category=category)
    gifts = [g for g in gifts if bool(g.variants) == variants]
    us = [g for g in gifts if g.available_in("US")]
    return us[0]


def token_requests(sandbox: Sandbox) -> int:
    return int(sandbox.stats()["token_requests"])


def send_posts(sandbox: Sandbox) -> int:
    requests: dict[str, int] = sandbox.stats()["requests"]
    return requests.get("POST /api/v3/sends", 0)


# --- the seed, end to end ---------------------------------------------------------------


def test_catalog_lists_every_page_and_filters(sandbox: Sandbox) -> None:
    with sandbox.client() as client:
        gifts = client.gifts.list()
        assert len(gifts) >= 30
        assert {g.category for g in gifts} >= {"physical", "egift", "swag", "donation"}
        assert len({g.id for g in gifts}) == len(gifts)
        cheap_egifts = client.gifts.list(category="egift", max_price="30")
        assert cheap_egifts
        assert all(g.category == "egift" and g.price <= 30 for g in cheap_egifts)
        mid = client.gifts.list(min_price=Decimal("20"), max_price=50)
        assert all(Decimal(20) <= g.price <= 50 for g in mid)
        assert isinstance(mid[0].price, Decimal)
    with pytest.raises(ValidationError, match="max_price is below min_price"):
        sandbox.client().gifts.list(min_price=50, max_price=10)


def test_send_with_every_seed_field_then_track_status(sandbox: Sandbox) -> None:
    with sandbox.client() as client:
        gift = pick(client, "swag", variants=True)
        variant = next(v for v in gift.variants if v.in_stock)
        send = client.sends.create(
            gift_id=gift.id,
            company="Analytical Engines",
            title="Countess",
            address=ADDRESS,
            variant_id=variant.id,
            team_id="team_42",
            metadata={"campaign_id": "q4", "contact_id": "003XYZ"},
            idempotency_key="seed-full-1",
            gift=gift,
            **recipient(),
        )
        assert send.id
        assert send.status == "pending"
        assert send.idempotency_key == "seed-full-1"
        (recorded,) = sandbox.sends()
        assert recorded["idempotency_key"] == "seed-full-1"
        body = recorded["request_body"]["send"]
        assert body["variant_id"] == variant.id
        assert body["metadata"] == {"campaign_id": "q4", "contact_id": "003XYZ"}
        assert body["address"]["postal_code"] == "62701"
        assert body["team_id"] == "team_42"
        assert body["title"] == "Countess"

        seen = [client.sends.retrieve(send.id).status]
        for hours in (2, 30, 80):
            sandbox.advance(hours * 3600)
            seen.append(client.sends.retrieve(send.id).status)
        assert seen[0] == "pending"
        assert seen[-1] == "delivered"
        assert "shipped" in seen or "processing" in seen


def test_async_client_has_the_same_shape(sandbox: Sandbox) -> None:
    async def main() -> None:
        async with sandbox.async_client() as client:
            gifts = await client.gifts.list(category="egift")
            gift = next(g for g in gifts if g.available_in("US"))
            send = await client.sends.create(gift_id=gift.id, gift=gift, **recipient())
            assert (await client.sends.retrieve(send.id)).id == send.id
            info = await client.authenticate()
            assert info.token_type == "Bearer"

    anyio.run(main)
    assert len(sandbox.sends()) == 1


# --- the seed's error table -------------------------------------------------------------


def test_400_missing_field_carries_per_field_details(sandbox: Sandbox) -> None:
    with sandbox.client() as client:
        gift = pick(client, "physical")
        with pytest.raises(BadRequestError) as caught:
            client.sends.create(gift_id=gift.id, validate=False, **recipient())
    fields = {d.field for d in caught.value.details}
    assert "address" in fields
    assert caught.value.request_id
    assert sandbox.sends() == []


def test_400_invalid_address(sandbox: Sandbox) -> None:
    with sandbox.client() as client:
        gift = pick(client, "physical")
        bad = {**ADDRESS, "postal_code": "00000"}
        with pytest.raises(BadRequestError) as caught:
            client.sends.create(gift_id=gift.id, address=bad, gift=gift, **recipient())
    assert [d.field for d in caught.value.details] == ["address.postal_code"]


def test_404_unknown_gift(sandbox: Sandbox) -> None:
    with sandbox.client() as client, pytest.raises(NotFoundError) as caught:
        client.sends.create(gift_id="gft_does_not_exist", **recipient())
    assert caught.value.status_code == 404
    with sandbox.client() as client, pytest.raises(NotFoundError):
        client.sends.retrieve("snd_nope")
    with sandbox.client() as client, pytest.raises(NotFoundError, match="not in the catalog"):
        client.gifts.get("gft_does_not_exist")


def test_422_undeliverable_email_and_ineligible_country(sandbox: Sandbox) -> None:
    with sandbox.client() as client:
        egift = pick(client, "egift")
        with pytest.raises(UnprocessableEntityError) as caught:
            client.sends.create(gift_id=egift.id, **recipient("ada+undeliverable@example.com"))
        assert caught.value.details[0].field == "email"
        us_only = next(g for g in client.gifts.list(category="physical") if g.ships_to == ["US"])
        abroad = {"line1": "10 Downing St", "city": "London", "postal_code": "SW1A 2AA",
                  "country": "GB"}  # fmt: skip
        with pytest.raises(UnprocessableEntityError) as caught:
            client.sends.create(gift_id=us_only.id, address=abroad, validate=False, **recipient())
        assert caught.value.details[0].field == "address.country"
    assert sandbox.sends() == []


def test_401_expired_token_is_refreshed_once_and_the_call_succeeds(sandbox: Sandbox) -> None:
    with sandbox.client() as client:
        client.gifts.list(category="egift")
        assert token_requests(sandbox) == 1
        sandbox.advance(2 * 3600 + 60)  # the server's clock: the token is now expired
        assert client.gifts.list(category="egift")
        assert token_requests(sandbox) == 2


def test_401_with_wrong_credentials_is_an_authentication_error(sandbox: Sandbox) -> None:
    client = Sendoso(base_url=sandbox.url, client_id=sandbox.client_id, client_secret="wrong-1")
    with client, pytest.raises(AuthenticationError) as caught:
        client.gifts.list()
    assert "wrong-1" not in str(caught.value)
    assert caught.value.status_code == 401


def test_429_retry_after_is_honoured(sandbox: Sandbox) -> None:
    events: list[tuple[float, str, str | None]] = []

    def on_request(request: httpx.Request) -> None:
        events.append((time.monotonic(), "request", None))

    def on_response(response: httpx.Response) -> None:
        if response.status_code == 429:
            events.append((time.monotonic(), "429", response.headers["retry-after"]))

    http = httpx.Client(event_hooks={"request": [on_request], "response": [on_response]})
    with sandbox.client(http_client=http) as client:
        gift = pick(client, "egift")
        sandbox.faults(rate_limit=2)
        for i in range(6):
            client.sends.create(gift_id=gift.id, **recipient(f"user{i}@example.com"))
    http.close()
    assert len(sandbox.sends()) == 6
    throttled = [i for i, event in enumerate(events) if event[1] == "429"]
    assert throttled, "the rate limit was never hit"
    for i in throttled:
        # The next request went out no sooner than the server asked.
        waited = events[i + 1][0] - events[i][0]
        assert waited >= float(events[i][2] or 0) - 0.01


def test_client_side_pacing_avoids_429s(sandbox: Sandbox) -> None:
    sandbox.faults(rate_limit=5)
    with sandbox.client(rate_limit=4) as client:
        for _ in range(8):
            client.gifts.list(category="donation")
    assert sandbox.stats()["faults"]["rate_limited"] == 0


# --- the token ----------------------------------------------------------------------------


def test_64_concurrent_async_sends_share_one_token(sandbox: Sandbox) -> None:
    with sandbox.client() as catalog:
        gift = pick(catalog, "egift")
    before = token_requests(sandbox)

    async def main() -> None:
        async with sandbox.async_client() as client, anyio.create_task_group() as tg:

            async def send(i: int) -> None:
                await client.sends.create(
                    gift_id=gift.id, validate=False, **recipient(f"p{i}@example.com")
                )

            for i in range(64):
                tg.start_soon(send, i)

    anyio.run(main)
    assert token_requests(sandbox) - before == 1
    assert len(sandbox.sends()) == 64


def test_64_concurrent_threads_sending_share_one_token(sandbox: Sandbox) -> None:
    with sandbox.client() as catalog:
        gift = pick(catalog, "egift")
    before = token_requests(sandbox)
    with sandbox.client() as client, ThreadPoolExecutor(max_workers=64) as pool:
        sends = list(
            pool.map(
                lambda i: client.sends.create(
                    gift_id=gift.id, validate=False, **recipient(f"t{i}@example.com")
                ),
                range(64),
            )
        )
    assert token_requests(sandbox) - before == 1
    assert len({s.id for s in sends}) == 64
    assert len(sandbox.sends()) == 64


def test_a_failed_token_request_is_shared_not_repeated_by_every_waiter(sandbox: Sandbox) -> None:
    async def main() -> list[BaseException]:
        failures: list[BaseException] = []
        client = AsyncSendoso(
            base_url=sandbox.url, client_id=sandbox.client_id, client_secret="wrong-secret"
        )

        async def call() -> None:
            try:
                await client.gifts.list()
            except AuthenticationError as exc:
                failures.append(exc)

        async with client, anyio.create_task_group() as tg:
            for _ in range(16):
                tg.start_soon(call)
        return failures

    failures = anyio.run(main)
    assert len(failures) == 16
    assert token_requests(sandbox) == 1


def test_no_traceback_frame_holds_the_secret_or_the_token(sandbox: Sandbox) -> None:
    """What tools that capture locals (Sentry, pytest --showlocals, rich) would show."""

    def frames_text(exc: BaseException) -> str:
        shown: list[str] = []
        assert exc.__traceback__ is not None
        tb = exc.__traceback__.tb_next  # past this test's own frame
        while tb is not None:
            shown.extend(repr(value) for value in tb.tb_frame.f_locals.values())
            tb = tb.tb_next
        return "\n".join(shown)

    secret = "s3cret-" + "x" * 8
    with pytest.raises(AuthenticationError) as refused:
        Sendoso(base_url=sandbox.url, client_id="c", client_secret=secret).gifts.list()
    assert secret not in frames_text(refused.value)

    with sandbox.client() as client:
        with pytest.raises(NotFoundError) as missing:
            client.sends.create(gift_id="gft_gone", **recipient())
        token = client._tokens.current
        assert token is not None
        text = frames_text(missing.value)
    assert token.value not in text
    assert sandbox.client_secret not in text


def test_short_lived_tokens_are_refreshed_before_expiry(sandbox: Sandbox) -> None:
    sandbox.faults(token_ttl=1)
    with sandbox.client() as client:
        client.authenticate()
        time.sleep(1.1)
        client.gifts.list(category="donation")
    stats = sandbox.stats()
    assert stats["token_requests"] == 2
    # Refreshed proactively: the API never had to refuse the old token.
    assert stats["responses_by_status"].get("401", 0) == 0


def test_authenticate_reports_expiry_not_the_token(sandbox: Sandbox) -> None:
    with sandbox.client() as client:
        info = client.authenticate()
    assert 7000 < (info.expires_at.timestamp() - time.time()) <= 7200
    assert "sbx" not in repr(info)


# --- the send state machine: retry only what cannot double-send -----------------------


def test_client_side_validation_lists_every_problem_and_sends_nothing(sandbox: Sandbox) -> None:
    with sandbox.client() as client:
        gift = pick(client, "physical")
        with pytest.raises(ValidationError) as caught:
            client.sends.create(
                gift_id=gift.id,
                first_name="",
                last_name="L",
                email="nope",
                message="x" * 2000,
                gift=gift,
            )
    fields = {p.field for p in caught.value.problems}
    assert fields == {"first_name", "email", "message", "address"}
    assert send_posts(sandbox) == 0


def test_trusted_server_retries_a_dropped_send_with_the_same_key(sandbox: Sandbox) -> None:
    sandbox.faults(drop_rate=0.5, seed=7)
    with sandbox.client(max_retries=10) as client:
        gift = pick(client, "egift")
        for i in range(6):
            client.sends.create(gift_id=gift.id, **recipient(f"d{i}@example.com"))
    sends = sandbox.sends()
    assert len(sends) == 6
    assert sandbox.stats()["faults"]["drops"] >= 1
    assert len({s["idempotency_key"] for s in sends}) == 6


def test_a_misspelt_address_field_is_named_not_dropped(sandbox: Sandbox) -> None:
    with sandbox.client() as client:
        gift = pick(client, "physical")
        address = {k: v for k, v in ADDRESS.items() if k != "postal_code"} | {"zip": "62701"}
        with pytest.raises(ValidationError) as caught:
            client.sends.create(gift_id=gift.id, address=address, **recipient())
    assert [p.field for p in caught.value.problems] == ["address.zip"]
    assert "address.zip is not a known field" in str(caught.value)
    assert send_posts(sandbox) == 0


def test_numeric_metadata_is_sent_as_strings_and_cost_is_reported(sandbox: Sandbox) -> None:
    with sandbox.client() as client:
        gift = pick(client, "egift")
        send = client.sends.create(
            gift_id=gift.id,
            metadata={"contact_id": 42, "vip": True},
            **recipient(),
        )
    assert [(c.currency, c.low, c.high) for c in send.cost] == [
        (gift.currency, gift.price, gift.price)
    ]
    (recorded,) = sandbox.sends()
    assert recorded["request_body"]["send"]["metadata"] == {"contact_id": "42", "vip": "true"}


def test_trusted_server_recovers_a_lost_reply_from_the_replay(sandbox: Sandbox) -> None:
    sandbox.faults(drop_rate=1.0)  # every new send's reply is cut after it was committed
    with sandbox.client() as client:
        gift = pick(client, "egift")
        send = client.sends.create(gift_id=gift.id, idempotency_key="k-lost", **recipient())
    assert send.idempotency_key == "k-lost"
    assert send_posts(sandbox) == 2  # the cut reply, then the replay of the same send
    assert [s["id"] for s in sandbox.sends()] == [send.id]


def test_trusted_server_5xx_retries_are_bounded_and_create_nothing(sandbox: Sandbox) -> None:
    sandbox.faults(error_rate=1.0)
    with sandbox.client(max_retries=2) as client:
        gift = pick(client, "egift")
        with pytest.raises(AmbiguousSendError) as caught:
            client.sends.create(gift_id=gift.id, idempotency_key="k-5xx", **recipient())
    assert caught.value.idempotency_key == "k-5xx"
    assert send_posts(sandbox) == 3
    assert sandbox.sends() == []


def test_untrusted_server_turns_a_lost_reply_into_ambiguity_not_a_retry(sandbox: Sandbox) -> None:
    sandbox.faults(drop_rate=1.0)
    with sandbox.client(trust_idempotency=False) as client:
        gift = pick(client, "egift")
        with pytest.raises(AmbiguousSendError) as caught:
            client.sends.create(gift_id=gift.id, **recipient())
    assert caught.value.idempotency_key.startswith("sdk_")
    assert not caught.value.retry_safe
    assert "confirm with Sendoso whether it exists" in str(caught.value)
    assert send_posts(sandbox) == 1
    assert len(sandbox.sends()) == 1


def test_untrusted_server_5xx_is_ambiguous_after_exactly_one_post(sandbox: Sandbox) -> None:
    with sandbox.client(trust_idempotency=False) as client:
        gift = pick(client, "egift")
        sandbox.faults(error_rate=1.0)
        with pytest.raises(AmbiguousSendError):
            client.sends.create(gift_id=gift.id, **recipient())
        assert send_posts(sandbox) == 1


def test_untrusted_server_timeout_is_ambiguous(sandbox: Sandbox) -> None:
    with sandbox.client(trust_idempotency=False, timeout=0.3) as client:
        gift = pick(client, "egift")  # the token and catalog, before the server holds requests
        # Held until a second request that never comes: no answer within the client's timeout,
        # however fast the machine (the reset after the test answers it 503, creating nothing).
        sandbox.hold(2)
        with pytest.raises(AmbiguousSendError):
            client.sends.create(gift_id=gift.id, **recipient())
    assert send_posts(sandbox) == 1


def test_connection_refused_is_safe_to_retry_and_reported(sandbox: Sandbox) -> None:
    from sendoso import APIConnectionError

    client = Sendoso(base_url="http://127.0.0.1:9", client_id="x", client_secret="y", max_retries=1)
    with client, pytest.raises(APIConnectionError, match="after 2 attempts"):
        client.gifts.list()


# --- configuration ------------------------------------------------------------------------


def test_settings_from_the_environment(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENDOSO_BASE_URL", sandbox.url)
    monkeypatch.setenv("SENDOSO_CLIENT_ID", sandbox.client_id)
    monkeypatch.setenv("SENDOSO_CLIENT_SECRET", sandbox.client_secret)
    with Sendoso() as client:
        assert client.base_url == sandbox.url
        assert client.gifts.list(category="donation")


def test_missing_credentials_say_how_to_fix() -> None:
    with pytest.raises(ConfigurationError, match="SENDOSO_CLIENT_SECRET"):
        Sendoso(client_id="x")


def test_plain_http_to_a_remote_host_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="refusing plain http"):
        Sendoso(base_url="http://app.sendoso.com", client_id="x", client_secret="y")


def test_production_defaults_pace_and_do_not_trust_idempotency() -> None:
    client = Sendoso(client_id="x", client_secret="y")
    assert client.base_url == "https://app.sendoso.com"
    assert client.pacer.rate == 10
    assert not client.trusts_idempotency
    assert "y" not in repr(client)


def test_a_caller_provided_http_client_is_used(sandbox: Sandbox) -> None:
    seen: list[str] = []
    http = httpx.Client(event_hooks={"request": [lambda r: seen.append(r.url.path)]})
    with sandbox.client(http_client=http) as client:
        client.gifts.list(category="donation")
    assert seen[:2] == ["/oauth/token", "/api/v3/gifts"]
    assert not http.is_closed  # the caller owns it
    http.close()
