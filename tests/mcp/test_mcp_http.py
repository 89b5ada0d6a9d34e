"""`sendoso mcp --http`: streamable HTTP on loopback only, driven by the official client."""

from __future__ import annotations

import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from mcp.client.streamable_http import streamable_http_client
from tests.mcp._support import ADA, EGIFT, SENDOSO, Ledgers, names, server_env, session_over
from typer.testing import CliRunner

from sendoso.cli import app
from sendoso.sandbox import SandboxServer


@pytest.fixture
def http_url(sandbox_server: SandboxServer, home: Path) -> Iterator[str]:
    """A `sendoso mcp --http --port 0 --allow-send` process; its endpoint URL."""
    env = server_env(sandbox_server.url, home)
    process = subprocess.Popen(
        [SENDOSO, "mcp", "--http", "--port", "0", "--allow-send"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        url = None
        seen = []
        for line in process.stderr:
            seen.append(line)
            found = re.search(r"MCP endpoint: (http://\S+)", line)
            if found:
                url = found.group(1)
                break
        assert url is not None, "".join(seen)
        yield url
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()


def test_the_tools_over_streamable_http_on_loopback(
    http_url: str, home: Path, ledgers: Ledgers
) -> None:
    assert http_url.startswith("http://127.0.0.1:")
    assert http_url.endswith("/mcp")
    with session_over(lambda: streamable_http_client(http_url), home / "stderr.log") as agent:
        assert len(names(agent.tools())) == 6
        assert agent.ok("list_gifts", category="egift")["count"] > 0
        args = {
            "gift_id": EGIFT,
            "recipient": {**ADA, "email": "http-1@example.com"},
            "message": "Thanks!",
            "request_id": "http-1",
        }
        sent = agent.ok("send_gift", **args)
        assert agent.ok("send_gift", **args)["send_id"] == sent["send_id"]
    assert len(ledgers.sandbox_sends_for("http-1")) == 1


def test_a_foreign_host_header_is_refused(http_url: str) -> None:
    """DNS-rebinding protection: a page on another site resolving to 127.0.0.1 cannot call
    the tools (the Host and Origin must be loopback)."""
    body = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    headers = {"Accept": "application/json, text/event-stream"}
    foreign = httpx.post(http_url, json=body, headers={**headers, "Host": "evil.example"})
    assert foreign.status_code in (400, 403, 421)
    origin = httpx.post(http_url, json=body, headers={**headers, "Origin": "http://evil.example"})
    assert origin.status_code in (400, 403, 421)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "example.com"])  # noqa: S104
def test_a_non_loopback_host_is_refused(host: str) -> None:
    result = CliRunner().invoke(app, ["mcp", "--http", "--host", host])
    assert result.exit_code == 2
    assert "only binds to loopback" in result.output
    assert repr(host) in result.output
