"""POST /oauth/token in every form a client may use, and bearer checks on /api/v3."""

from __future__ import annotations

import base64
import time
import warnings
from collections.abc import Callable
from urllib.parse import quote

import authlib.deprecate  # type: ignore[import-untyped]
import httpx
import pytest

with warnings.catch_warnings():
    # authlib warns on import that it prefers httpx2; the httpx integration is the one under test.
    # (Its own module installs an "always" filter on first import, hence the import above.)
    warnings.simplefilter("ignore", authlib.deprecate.AuthlibDeprecationWarning)
    from authlib.integrations.httpx_client import OAuth2Client  # type: ignore[import-untyped]

from sendoso.sandbox import SandboxConfig, SandboxServer

from .conftest import FrozenClock

CLIENT_ID = "sandbox-client"
CLIENT_SECRET = "sandbox-secret"


def _basic(client_id: str, secret: str) -> str:
    raw = f"{quote(client_id, safe='')}:{quote(secret, safe='')}".encode()
    return "Basic " + base64.b64encode(raw).decode()


def _assert_token(response: httpx.Response, ttl: int = 7200) -> str:
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == ttl
    assert isinstance(body["created_at"], int)
    assert abs(body["created_at"] - time.time()) < 60
    assert body["access_token"].startswith("sbx_")
    assert len(body["access_token"]) > 30
    token: str = body["access_token"]
    return token


def test_seed_token_request_json_body(client: httpx.Client) -> None:
    response = client.post(
        "/oauth/token",
        headers={"Content-Type": "application/json"},
        json={
            "grant_type": "client_credentials",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        },
    )
    token = _assert_token(response)
    gifts = client.get("/api/v3/gifts", headers={"Authorization": f"Bearer {token}"})
    assert gifts.status_code == 200


def test_each_token_is_different(client: httpx.Client, new_token: Callable[[], str]) -> None:
    assert new_token() != new_token()


def test_token_form_body(client: httpx.Client) -> None:
    response = client.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        },
    )
    _assert_token(response)


def test_token_http_basic(client: httpx.Client) -> None:
    response = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": _basic(CLIENT_ID, CLIENT_SECRET)},
    )
    _assert_token(response)


def test_basic_credentials_are_url_decoded_per_rfc_6749() -> None:
    secret = "s3cret:with%special+chars/é"
    with (
        SandboxServer(SandboxConfig(client_secret=secret, rate_limit=None)) as server,
        httpx.Client(base_url=server.url) as client,
    ):
        response = client.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            headers={"Authorization": _basic(CLIENT_ID, secret)},
        )
        _assert_token(response)


def test_basic_wrong_secret_is_401_with_www_authenticate(client: httpx.Client) -> None:
    response = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": _basic(CLIENT_ID, "wrong")},
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert response.headers["www-authenticate"].startswith("Basic ")


def test_basic_garbage_is_invalid_client(client: httpx.Client) -> None:
    response = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": "Basic !!!notbase64"},
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


@pytest.mark.parametrize(
    "credentials", [b"\xc3\xa9t\xc3\xa9", b"\xff\xfe", b"Og==", b"bm9jb2xvbg=="]
)
def test_undecodable_basic_credentials_are_invalid_client(
    client: httpx.Client, credentials: bytes
) -> None:
    response = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers=[(b"Authorization", b"Basic " + credentials)],
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


@pytest.mark.parametrize(
    ("client_id", "client_secret"),
    [(CLIENT_ID, "wrong"), ("someone-else", CLIENT_SECRET), (CLIENT_ID, None)],
)
def test_body_credentials_refused(
    client: httpx.Client, client_id: str, client_secret: str | None
) -> None:
    body = {"grant_type": "client_credentials", "client_id": client_id}
    if client_secret is not None:
        body["client_secret"] = client_secret
    response = client.post("/oauth/token", json=body)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert response.json()["error_description"]
    assert CLIENT_SECRET not in response.text


def test_unsupported_grant_type(client: httpx.Client) -> None:
    response = client.post(
        "/oauth/token",
        json={"grant_type": "password", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
    )
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b'{"client_id": "sandbox-client", "client_secret": "sandbox-secret"}', "application/json"),
        (b"{not json", "application/json"),
        (b"[1, 2]", "application/json"),
        (b'{"grant_type": 5}', "application/json"),
        (b"grant_type=client_credentials&grant_type=x", "application/x-www-form-urlencoded"),
        (b"<xml/>", "text/xml"),
    ],
)
def test_malformed_token_requests_are_invalid_request(
    client: httpx.Client, content: bytes, content_type: str
) -> None:
    response = client.post("/oauth/token", content=content, headers={"Content-Type": content_type})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert response.json()["error_description"]


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_authlib_fetch_token(sandbox: SandboxServer, method: str) -> None:
    with OAuth2Client(CLIENT_ID, CLIENT_SECRET, token_endpoint_auth_method=method) as oauth:
        token = oauth.fetch_token(sandbox.url + "/oauth/token", grant_type="client_credentials")
        assert token["token_type"] == "Bearer"
        assert token["expires_in"] == 7200
        # authlib adds the bearer token itself on later requests.
        response = oauth.get(sandbox.url + "/api/v3/gifts")
        assert response.status_code == 200
        assert response.json()["gifts"]


def test_missing_token_is_401(client: httpx.Client) -> None:
    response = client.get("/api/v3/gifts")
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["type"] == "authentication_error"
    assert error["details"] == []
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert response.headers["www-authenticate"].startswith("Bearer ")


def test_invalid_token_is_401(client: httpx.Client) -> None:
    response = client.get("/api/v3/sends/snd_x", headers={"Authorization": "Bearer sbx_forged"})
    assert response.status_code == 401
    assert "invalid" in response.json()["error"]["message"]
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


def test_token_expires_on_the_virtual_clock(
    api: httpx.Client, advance: Callable[[float], None], new_token: Callable[[], str]
) -> None:
    advance(7199)
    assert api.get("/api/v3/gifts").status_code == 200
    advance(2)
    response = api.get("/api/v3/gifts")
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"
    assert "expired" in response.json()["error"]["message"]
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    fresh = new_token()
    assert api.get("/api/v3/gifts", headers={"Authorization": f"Bearer {fresh}"}).is_success


def test_token_ttl_fault_shortens_new_tokens(
    client: httpx.Client, set_faults: Callable[..., object], advance: Callable[[float], None]
) -> None:
    set_faults(token_ttl=60)
    response = client.post(
        "/oauth/token",
        json={
            "grant_type": "client_credentials",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        },
    )
    token = _assert_token(response, ttl=60)
    advance(61)
    expired = client.get("/api/v3/gifts", headers={"Authorization": f"Bearer {token}"})
    assert expired.status_code == 401
    assert "expired" in expired.json()["error"]["message"]


def test_token_endpoint_is_not_rate_limited(
    client: httpx.Client,
    set_faults: Callable[..., object],
    new_token: Callable[[], str],
    rate_clock: FrozenClock,
) -> None:
    set_faults(rate_limit=1)
    tokens = {new_token() for _ in range(5)}
    assert len(tokens) == 5
