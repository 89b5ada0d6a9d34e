"""``sendoso sandbox serve`` as a real process, and ``sendoso demo`` end to end."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from ._support import Invoke

_RUN_CLI = "from sendoso.cli import main; main()"


def test_sandbox_serve_prints_a_usable_url_and_the_exports(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENDOSO_")}
    process = subprocess.Popen(
        [sys.executable, "-c", _RUN_CLI, "sandbox", "serve", "--port", "0", "--rate-limit", "0",
         "--client-id", "cli-test", "--client-secret", "cli-test-secret", "--token-ttl", "60"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        lines = []
        for line in process.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith("Press Ctrl+C"):
                break
        ready = "\n".join(lines)
        match = re.search(r"listening on (http://127\.0\.0\.1:(\d+))", ready)
        assert match, ready
        url, port = match.group(1), int(match.group(2))
        assert port != 0  # port 0 picked a free port, and the ready line says which
        assert f"export SENDOSO_BASE_URL={url}" in ready
        assert "export SENDOSO_CLIENT_ID=cli-test" in ready
        assert "export SENDOSO_CLIENT_SECRET=cli-test-secret" in ready

        token = httpx.post(
            f"{url}/oauth/token",
            json={
                "grant_type": "client_credentials",
                "client_id": "cli-test",
                "client_secret": "cli-test-secret",
            },
            timeout=10,
        )
        assert token.status_code == 200
        assert token.json()["expires_in"] == 60
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    assert "Sandbox stopped." in out
    assert "Traceback" not in err


def test_demo_tells_the_whole_story(cli: Invoke) -> None:
    result = cli(["demo"])
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "expires" in out
    for category in ("physical", "egift", "swag", "donation"):
        assert category in out
    assert "Refused locally, nothing sent" in out
    assert "address.state is required for addresses in US" in out
    for status in ("pending", "processing", "shipped", "delivered"):
        assert status in out
    summary = out[out.index("Summary") :]
    assert summary.count("delivered") == 2
    assert len(re.findall(r"snd_[0-9a-f]+", summary)) == 2
    assert "sandbox-secret" not in out
    assert "Bearer ey" not in out


def test_demo_needs_no_network_beyond_loopback(cli: Invoke, monkeypatch: Any) -> None:
    import ipaddress
    import socket

    connect = socket.socket.connect
    seen: list[str] = []

    def loopback_only(self: socket.socket, address: Any) -> Any:
        host = address[0] if isinstance(address, tuple) else str(address)
        seen.append(host)
        assert ipaddress.ip_address(host).is_loopback, f"demo connected to {host}"
        return connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", loopback_only)
    assert cli(["demo"]).exit_code == 0
    assert seen  # it did talk to the in-process sandbox


def test_demo_sends_the_example_file_as_a_batch_and_follows_it(
    cli: Invoke, tmp_path: Path, monkeypatch: Any
) -> None:
    """`make demo`: plan (invalid rows listed), send, then statuses as the clock moves."""
    monkeypatch.setenv("COLUMNS", "400")  # table cells unwrapped, so phrases stay whole
    examples = Path(__file__).resolve().parents[2] / "examples" / "recipients.csv"
    result = cli(["demo", "--recipients", str(examples)])
    assert result.exit_code == 0, result.stderr
    out = " ".join(result.stdout.split())
    assert "Rows │ 30" in out
    assert "To send │ 24" in out
    assert "address.postal_code is required for physical gifts (row 28)" in out
    assert "Finished: 24 sent" in out
    assert "delivered │ 24" in out  # after the 72 hours
    # The demo's ledger is a throwaway: nothing lands in the user's data directory.
    assert not list((tmp_path / "data").glob("**/ledger.db"))


def test_the_demos_hints_work_as_printed_without_sendoso_on_path(tmp_path: Path) -> None:
    """`make demo` runs `.venv/bin/sendoso demo` with `sendoso` not on PATH: every command the
    demo suggests at its end is typed so that it works there, as printed (the batch ones on
    the ledger the demo keeps), and it says how to get `sendoso` on PATH."""
    import shlex
    import shutil

    repo = Path(__file__).resolve().parents[2]
    script = Path(sys.executable).parent / "sendoso"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENDOSO_")}
    env["PATH"] = os.pathsep.join(
        p for p in env.get("PATH", "").split(os.pathsep) if p and not Path(p, "sendoso").exists()
    )
    env["COLUMNS"] = "400"
    assert shutil.which("sendoso", path=env["PATH"]) is None
    shown = os.path.relpath(script, repo)
    demo = subprocess.run(
        [shown, "demo", "--recipients", "examples/recipients.csv"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert demo.returncode == 0, demo.stderr
    tail = demo.stdout[demo.stdout.rindex("Try it yourself") :]
    assert "source .venv/bin/activate" in tail or "make install" in tail
    suggested = [
        shlex.split(line.split("#")[0])
        for line in tail.splitlines()
        if line.strip().startswith(shown + " ")
    ]
    assert {tuple(words[1:3]) for words in suggested} >= {
        ("batch", "show"),
        ("batch", "report"),
        ("sandbox", "serve"),
    }
    assert not re.search(r"(?<![/\w])sendoso batch \w+ demo", demo.stdout), "a hint that fails"
    for words in suggested:
        if words[1] == "batch":
            words = [w.replace("report.csv", str(tmp_path / "report.csv")) for w in words]
            done = subprocess.run(words, cwd=repo, env=env, capture_output=True, text=True)
            assert done.returncode == 0, (words, done.stdout, done.stderr)
    assert (tmp_path / "report.csv").read_text("utf-8").count("\n") == 31
