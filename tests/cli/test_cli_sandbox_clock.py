"""``sendoso sandbox clock`` against a running sandbox, and what ``serve`` says about its state
and its clock."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from tests.conftest import Sandbox

from sendoso.cli._commands_sandbox import ready_lines

from ._support import Invoke, parse_json

_RUN_CLI = "from sendoso.cli import main; main()"


def _physical_send(sandbox: Sandbox) -> str:
    with sandbox.client() as client:
        send = client.sends.create(
            gift_id="gft_phys_coffee_sampler",
            first_name="Ada",
            last_name="Lovelace",
            email="ada@example.com",
            message="Thank you!",
            address={
                "line1": "1 Main St",
                "city": "Austin",
                "state": "TX",
                "postal_code": "78701",
                "country": "US",
            },
        )
        return send.id


def _status(sandbox: Sandbox, send_id: str) -> str:
    with sandbox.client() as client:
        return str(client.sends.retrieve(send_id).status)


def test_clock_advance_moves_statuses_on(cli: Invoke, sandbox: Sandbox) -> None:
    send_id = _physical_send(sandbox)
    assert _status(sandbox, send_id) == "pending"
    result = cli(["sandbox", "clock", "advance", "3d", "--url", sandbox.url])
    assert result.exit_code == 0, result.stderr
    assert "moved forward 3d" in result.stdout
    assert "advanced 3d in all" in result.stdout
    assert _status(sandbox, send_id) == "delivered"


def test_clock_show_and_set_as_json(cli: Invoke, sandbox: Sandbox) -> None:
    shown = parse_json(cli(["sandbox", "clock", "show", "--url", sandbox.url, "--json"]))
    assert shown["offset_seconds"] == 0
    assert shown["speed"] == 1
    target = datetime.fromisoformat(shown["now"]) + timedelta(days=2)
    moved = cli(["sandbox", "clock", "set", target.isoformat(), "--url", sandbox.url, "--json"])
    assert moved.exit_code == 0, moved.stderr
    clock = parse_json(moved)
    assert datetime.fromisoformat(clock["now"]) >= target
    assert 0 < clock["offset_seconds"] <= 2 * 86400  # less the real time since "show"


def test_the_clock_never_moves_back(cli: Invoke, sandbox: Sandbox) -> None:
    result = cli(["sandbox", "clock", "set", "2020-01-01T00:00Z", "--url", sandbox.url])
    assert result.exit_code == 2
    assert "only moves forward" in result.stderr
    assert sandbox.clock()["offset_seconds"] == 0


def test_the_sandbox_url_comes_from_the_environment(
    cli: Invoke, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SENDOSO_BASE_URL", sandbox.url)
    result = cli(["sandbox", "clock", "advance", "90m"])
    assert result.exit_code == 0, result.stderr
    assert sandbox.clock()["offset_seconds"] == 5400


def test_bad_durations_and_missing_sandboxes_are_said_plainly(cli: Invoke) -> None:
    bad = cli(["sandbox", "clock", "advance", "tomorrow", "--url", "http://127.0.0.1:9"])
    assert bad.exit_code == 2
    assert "not a duration" in bad.stderr
    gone = cli(["sandbox", "clock", "show", "--url", "http://127.0.0.1:9"])
    assert gone.exit_code == 1
    assert "no sandbox answered at http://127.0.0.1:9" in gone.stderr
    assert "sendoso sandbox serve" in gone.stderr


def test_serve_says_where_state_lives_and_how_fast_its_clock_runs() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENDOSO_")}
    process = subprocess.Popen(
        [sys.executable, "-c", _RUN_CLI, "sandbox", "serve", "--port", "0", "--speed", "3600"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        lines = []
        for line in process.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith("Press Ctrl+C"):
                break
        banner = "\n".join(lines)
        assert "in memory: sends are lost when the sandbox stops" in banner
        assert "--db" in banner
        assert "3600x real time" in banner
        assert "sendoso sandbox clock advance 24h" in banner
        match = re.search(r"listening on (http://\S+)", banner)
        assert match, banner
        clock = httpx.get(match.group(1) + "/_sandbox/clock", timeout=10).json()
        assert clock["speed"] == 3600
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=20)
    assert process.returncode == 0


def test_the_banner_of_a_sandbox_with_a_file_names_the_file(tmp_path: Path) -> None:
    lines = ready_lines("http://127.0.0.1:8787", "id", "secret", db=str(tmp_path / "s.db"))
    banner = "\n".join(lines)
    assert f"sends kept in {tmp_path / 's.db'}" in banner
    assert "survive restarts" in banner
    assert "lost" not in banner
