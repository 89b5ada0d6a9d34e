"""One request_id is one send across server restarts, a server killed in the middle of a
send, and an ambiguous outcome on a host not trusted to deduplicate."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, suppress
from typing import Any

from tests.conftest import Sandbox, wait_until
from tests.mcp._support import ADA, EGIFT, Ledgers, McpAgent
from typer.testing import CliRunner

from sendoso.cli import app
from sendoso.ledger import RowState
from sendoso.mcp import send_key_for_request

Start = Callable[..., AbstractContextManager[McpAgent]]


def send_args(request_id: str) -> dict[str, Any]:
    return {
        "gift_id": EGIFT,
        "recipient": {**ADA, "email": f"{request_id}@example.com"},
        "message": "Thank you!",
        "request_id": request_id,
    }


def test_a_restarted_server_never_sends_a_request_id_twice(
    agent_factory: Start, ledgers: Ledgers
) -> None:
    with agent_factory("--allow-send") as agent:
        first = agent.ok("send_gift", **send_args("restart-1"))
    with agent_factory("--allow-send") as agent:
        again = agent.ok("send_gift", **send_args("restart-1"))
        assert again["send_id"] == first["send_id"]
        assert again["replayed"] is True
        assert agent.ok("list_sends")["sends"][0]["send_id"] == first["send_id"]
    assert len(ledgers.sandbox_sends_for("restart-1")) == 1


def _owner_pid(owner: str) -> int:
    return int(owner.split(":")[1])


def test_a_server_killed_mid_send_sends_once_after_a_restart(
    agent_factory: Start, ledgers: Ledgers, sandbox: Sandbox
) -> None:
    """SIGKILL while the POST is in flight (committed `submitting`): the next server, asked
    again with the same request_id, re-sends with the same key to the deduplicating sandbox."""
    # The POST waits at the sandbox (no count of 1000 arrives) until the server is killed.
    sandbox.hold(1000, endpoint="POST /api/v3/sends")
    key = send_key_for_request("killed-1", sandbox.url)
    with agent_factory("--allow-send") as agent:
        pending = agent.start("send_gift", **send_args("killed-1"))
        wait_until(lambda: sandbox.hold_state()["arrived"] == 1, "the POST at the sandbox")
        with ledgers.open() as ledger:
            row = ledger.row_by_key(key)
            assert row is not None
            assert row.state is RowState.SUBMITTING
            assert row.lease_owner is not None
            os.kill(_owner_pid(row.lease_owner), signal.SIGKILL)
        with suppress(Exception):
            pending.result(timeout=10)
    # The sandbox answers the POST its client no longer waits for: the send exists.
    sandbox.release_hold()
    with agent_factory("--allow-send") as agent:
        outcome = None
        for _ in range(20):
            result = agent.call("send_gift", **send_args("killed-1"))
            if not result.is_error:
                outcome = result.structured_content
                break
            # The sandbox may still be answering the first request: "retry shortly".
            assert "same request_id" in result.content[0].text  # type: ignore[union-attr]
            time.sleep(0.5)
        assert outcome is not None
        assert outcome["send_id"].startswith("snd_")
    assert len(ledgers.sandbox_sends_for("killed-1")) == 1
    with ledgers.open() as ledger:
        row = ledger.row_by_key(key)
        assert row is not None
        assert row.state is RowState.SUBMITTED
        assert row.attempts >= 2  # one per POST: the first, cut short, and the re-send(s)


def test_an_ambiguous_send_to_an_untrusted_host_is_unknown_until_settled(
    agent_factory: Start, ledgers: Ledgers, sandbox: Sandbox, home: Any, monkeypatch: Any
) -> None:
    """The reply is cut and the host is not trusted to deduplicate: the send is `unknown`,
    never re-sent; the agent is told a person must settle it; once settled as sent, a retry
    reports that send."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(
        'default_profile = "strict"\n[profiles.strict]\ntrust_idempotency = false\n'
    )
    sandbox.faults(drop_rate=1.0)
    with agent_factory("--allow-send") as agent:
        text = agent.refused("send_gift", **send_args("cut-1"))
        assert "outcome of this send is unknown" in text
        assert "sendoso batch settle" in text
        assert "Do not send it again with another request_id" in text
        sandbox.faults(drop_rate=0.0)
        again = agent.refused("send_gift", **send_args("cut-1"))
        assert "unknown" in again
        assert agent.ok("get_send_status", request_id="cut-1")["status"] == "unknown"
    (created,) = ledgers.sandbox_sends_for("cut-1")
    assert sandbox.stats()["requests"]["POST /api/v3/sends"] == 1

    key = send_key_for_request("cut-1", sandbox.url)
    with ledgers.open() as ledger:
        row = ledger.row_by_key(key)
        assert row is not None
    settled = CliRunner().invoke(
        app,
        [
            "batch",
            "settle",
            ledgers.run_id,
            str(row.number),
            "--sent",
            created["id"],
            "--unchecked",
            "--ledger",
            ledgers.url,
        ],
    )
    assert settled.exit_code == 0, settled.output
    with agent_factory("--allow-send") as agent:
        replay = agent.ok("send_gift", **send_args("cut-1"))
        assert replay["send_id"] == created["id"]
    assert len(ledgers.sandbox_sends_for("cut-1")) == 1


def test_a_send_settled_as_not_sent_is_made_by_a_retry_only_while_sending_is_allowed(
    agent_factory: Start, ledgers: Ledgers, sandbox: Sandbox, home: Any
) -> None:
    """A 5xx on an untrusted host leaves the send unknown; a person finds nothing in Sendoso
    and settles it as not sent; a retry of the request_id sends it, once, but not from a
    server restarted without --allow-send."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(
        'default_profile = "strict"\n[profiles.strict]\ntrust_idempotency = false\n'
    )
    sandbox.faults(error_rate=1.0)
    with agent_factory("--allow-send") as agent:
        assert "unknown" in agent.refused("send_gift", **send_args("failed-1"))
    sandbox.faults(error_rate=0.0)
    assert ledgers.sandbox_sends_for("failed-1") == []
    with ledgers.open() as ledger:
        row = ledger.row_by_key(send_key_for_request("failed-1", sandbox.url))
        assert row is not None
    settled = CliRunner().invoke(
        app,
        ["batch", "settle", ledgers.run_id, str(row.number), "--not-sent", "--ledger", ledgers.url],
    )
    assert settled.exit_code == 0, settled.output
    with agent_factory() as agent:
        assert "live sending is now off" in agent.refused("send_gift", **send_args("failed-1"))
    assert ledgers.sandbox_sends_for("failed-1") == []
    with agent_factory("--allow-send") as agent:
        sent = agent.ok("send_gift", **send_args("failed-1"))
        assert sent["send_id"].startswith("snd_")
        again = agent.ok("send_gift", **send_args("failed-1"))
        assert again["send_id"] == sent["send_id"]
    assert len(ledgers.sandbox_sends_for("failed-1")) == 1


def test_two_servers_on_one_postgresql_ledger_share_request_ids_and_caps(
    agent_factory: Start, sandbox: Sandbox, postgres_url: str
) -> None:
    """Two servers (say, two agents) on one PostgreSQL ledger: a request_id sent by one is
    reported by the other, and the daily cap counts both servers' sends."""
    key = send_key_for_request("pg-1", sandbox.url)
    rails = ("--allow-send", "--daily-cap", "60", "--ledger", postgres_url)
    with agent_factory(*rails) as first, agent_factory(*rails) as second:
        sent = first.ok("send_gift", **send_args("pg-1"))
        assert second.ok("send_gift", **send_args("pg-1"))["send_id"] == sent["send_id"]
        assert not second.call("send_gift", **send_args("pg-2")).is_error
        over = second.refused("send_gift", **send_args("pg-3"))
        assert "over the daily cap of 60.00 USD: 50.00 spent" in over
    assert [s["idempotency_key"] for s in sandbox.sends()].count(key) == 1
    assert len(sandbox.sends()) == 2
