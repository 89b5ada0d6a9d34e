"""Serving: the in-process server, the foreground serve(), routing errors and openapi.json."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest

from sendoso.sandbox import SandboxConfig, SandboxServer, create_app, serve


def test_openapi_document(client: httpx.Client) -> None:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.1")
    assert set(document["paths"]) == {
        "/oauth/token",
        "/api/v3/gifts",
        "/api/v3/sends",
        "/api/v3/sends/{send_id}",
    }
    create = document["paths"]["/api/v3/sends"]["post"]
    assert {"201", "400", "401", "404", "409", "413", "422", "429"} <= set(create["responses"])
    assert create["security"] == [{"bearerAuth": []}]
    schemas = document["components"]["schemas"]
    assert {"SendRequest", "Send", "Gift", "Error", "Token", "Address"} <= set(schemas)
    assert schemas["SendRequest"]["additionalProperties"] is False
    assert "bearerAuth" in document["components"]["securitySchemes"]
    # Every reference resolves.
    text = response.text
    for name in {part.split('"')[0] for part in text.split("#/components/schemas/")[1:]}:
        assert name in schemas


def test_unknown_route_is_json_404(client: httpx.Client) -> None:
    response = client.get("/api/v3/nothing-here")
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found"
    assert response.headers["x-request-id"] == response.json()["error"]["request_id"]


def test_wrong_method_is_json_405(client: httpx.Client) -> None:
    response = client.delete("/api/v3/gifts")
    assert response.status_code == 405
    assert response.json()["error"]["type"] == "method_not_allowed"
    assert "GET" in response.headers["allow"]


def test_server_lifecycle() -> None:
    server = SandboxServer(SandboxConfig())
    with pytest.raises(RuntimeError):
        _ = server.url
    with server:
        assert server.url == f"http://127.0.0.1:{server.port}"
        assert httpx.get(server.url + "/_sandbox/clock").status_code == 200
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.url + "/_sandbox/clock")


def test_state_persists_in_a_database_file(tmp_path: Path) -> None:
    config = SandboxConfig(db=str(tmp_path / "sandbox.db"), rate_limit=None)
    body = {
        "send": {
            "gift_id": "gft_egift_amazon_us_25",
            "first_name": "Ann",
            "last_name": "Lee",
            "email": "ann@example.com",
            "message": "Thanks!",
        }
    }
    with SandboxServer(config) as first:
        token = httpx.post(
            first.url + "/oauth/token",
            json={
                "grant_type": "client_credentials",
                "client_id": config.client_id,
                "client_secret": config.client_secret,
            },
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "persisted"}
        created = httpx.post(first.url + "/api/v3/sends", json=body, headers=headers).json()
    with SandboxServer(config) as second:
        replayed = httpx.post(second.url + "/api/v3/sends", json=body, headers=headers)
        assert replayed.headers["idempotent-replayed"] == "true"
        assert replayed.json() == created
        sends = httpx.get(second.url + "/_sandbox/sends").json()["sends"]
        assert [s["id"] for s in sends] == [created["send"]["id"]]


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "example.com", "::"])  # noqa: S104
def test_serve_refuses_non_loopback_hosts(host: str) -> None:
    with pytest.raises(ValueError, match="allow_remote"):
        serve(SandboxConfig(), host, 0)
    with pytest.raises(ValueError, match="allow_remote"):
        SandboxServer(SandboxConfig(), host=host)


def test_create_app_exposes_its_state() -> None:
    app = create_app(SandboxConfig(client_id="abc"))
    assert app.state.sandbox.config.client_id == "abc"


@pytest.mark.skipif(sys.platform == "win32", reason="uses POSIX signals")
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_serve_runs_in_the_foreground_until_interrupted(signum: signal.Signals) -> None:
    script = textwrap.dedent(
        """
        from sendoso.sandbox import SandboxConfig, serve
        serve(SandboxConfig(), "127.0.0.1", 0, on_ready=lambda url: print(url, flush=True))
        print("stopped", flush=True)
        """
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        assert httpx.get(url + "/openapi.json").status_code == 200
        process.send_signal(signum)
        out, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert "stopped" in out
    assert process.returncode == 0
    assert "Traceback" not in err
