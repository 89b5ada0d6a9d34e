"""SandboxProcess: `python -m sendoso.sandbox` in a child process, over real loopback sockets."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from sendoso import Sendoso
from sendoso.sandbox import (
    RemoteHostRefusedError,
    SandboxConfig,
    SandboxControl,
    SandboxProcess,
    SandboxStartError,
)


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_serves_the_config_it_was_given_until_stopped(tmp_path: Path) -> None:
    config = SandboxConfig(
        client_id="proc-client",
        client_secret="proc-secret",
        token_ttl=60,
        rate_limit=None,
        latency_ms=1,
        db=str(tmp_path / "sandbox.db"),
    )
    with SandboxProcess(config) as sandbox:
        assert sandbox.url.startswith("http://127.0.0.1:")
        assert sandbox.pid != os.getpid()
        faults = sandbox.control.faults()
        assert (faults["token_ttl"], faults["rate_limit"], faults["latency_ms"]) == (60, None, 1)
        refused = httpx.post(
            sandbox.url + "/oauth/token",
            json={
                "grant_type": "client_credentials",
                "client_id": "sandbox-client",
                "client_secret": "sandbox-secret",
            },
        )
        assert refused.status_code == 401
        with Sendoso(
            base_url=sandbox.url, client_id="proc-client", client_secret="proc-secret"
        ) as client:
            gift = client.gifts.list()[0]
            assert gift.id
        assert sandbox.control.stats()["requests"]["GET /api/v3/gifts"] == 1
        url, pid = sandbox.url, sandbox.pid
    assert _gone(pid)
    assert (tmp_path / "sandbox.db").exists()
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/api/v3/gifts", timeout=5)


def test_a_start_that_fails_raises_with_what_the_command_printed() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        sandbox = SandboxProcess(port=port)
        with pytest.raises(SandboxStartError) as failure:
            sandbox.start()
    message = str(failure.value)
    assert message.startswith("the sandbox exited at start (exit code 2); it printed:")
    assert f"cannot listen on 127.0.0.1:{port}" in message
    assert _gone(sandbox.pid)
    with pytest.raises(RuntimeError, match="not started"):
        sandbox.control  # noqa: B018 - the property raises


def test_a_command_that_never_reports_listening_is_stopped() -> None:
    silent = [sys.executable, "-c", "import time; time.sleep(120)"]
    sandbox = SandboxProcess(command=silent, start_timeout=1)
    with pytest.raises(SandboxStartError, match="did not report listening within 1 s"):
        sandbox.start()
    assert _gone(sandbox.pid)


def test_every_setting_reaches_the_child_jitter_included() -> None:
    with SandboxProcess(SandboxConfig(jitter_ms=5, rate_limit=None)) as sandbox:
        assert sandbox.control.faults()["jitter_ms"] == 5


def test_nothing_to_reach_before_start() -> None:
    sandbox = SandboxProcess()
    with pytest.raises(RuntimeError, match="not started"):
        sandbox.url  # noqa: B018 - the property raises
    sandbox.stop()


def test_a_remote_host_is_refused_in_the_librarys_words() -> None:
    with pytest.raises(RemoteHostRefusedError) as refused:
        SandboxProcess(host="0.0.0.0")  # noqa: S104
    assert refused.value.host == "0.0.0.0"  # noqa: S104
    assert "unless allow_remote is set" in str(refused.value)
    assert "--" not in str(refused.value)


@pytest.mark.skipif(sys.platform == "win32", reason="uses POSIX signals")
def test_the_entry_point_takes_json_settings_and_reports_its_url_as_json() -> None:
    settings = {"config": {"client_id": "json-client", "rate_limit": None}, "port": 0}
    child = subprocess.Popen(
        [sys.executable, "-m", "sendoso.sandbox"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdin is not None
        assert child.stdout is not None
        child.stdin.write(json.dumps(settings))
        child.stdin.close()
        url = json.loads(child.stdout.readline())["listening"]
        assert url.startswith("http://127.0.0.1:")
        with SandboxControl(url) as control:
            assert control.faults()["rate_limit"] is None
    finally:
        child.send_signal(signal.SIGINT)
        child.wait(timeout=30)
        assert child.stdout is not None
        assert child.stderr is not None
        err = child.stderr.read()
        child.stdout.close()
        child.stderr.close()
    assert child.returncode == 0, err


@pytest.mark.parametrize(
    ("settings", "reason"),
    [
        ('{"config": {"token_ttl": 0}}', "token_ttl must be a positive number"),
        ('{"prot": 0}', "unknown settings: prot"),
        ("[1]", "must be a JSON object"),
        ("{", "Expecting"),
    ],
)
def test_the_entry_point_refuses_unusable_settings(settings: str, reason: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "sendoso.sandbox"],
        input=settings,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith("invalid sandbox settings: ")
    assert reason in done.stderr
