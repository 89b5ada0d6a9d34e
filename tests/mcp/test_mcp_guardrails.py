"""Every guardrail holds against an agent driving `sendoso mcp` over stdio, each refusal says
what to do next with figures, and nothing refused reaches the sandbox. Approvals are settled
with the real `sendoso approvals` CLI."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import pytest
from tests.mcp._support import ADA, EGIFT, Ledgers, McpAgent, server_env
from typer.testing import CliRunner, Result

from sendoso.cli import app
from sendoso.sandbox import SandboxServer

Start = Callable[..., AbstractContextManager[McpAgent]]

#: $50 eGift and a $10 one; both USD, no fees.
EGIFT_50 = "gft_egift_amazon_us_50"
STARBUCKS_10 = "gft_egift_starbucks_10"
COFFEE = "gft_phys_coffee_sampler"


def send(agent: McpAgent, gift_id: str = EGIFT, email: str | None = None, **extra: Any) -> Any:
    request_id = extra.pop("request_id", None) or f"req-{uuid.uuid4().hex[:12]}"
    return agent.call(
        "send_gift",
        gift_id=gift_id,
        recipient={**ADA, "email": email or f"{request_id}@example.com"},
        message="Thank you!",
        request_id=request_id,
        **extra,
    ), request_id


def sandbox_count(ledgers: Ledgers, *request_ids: str) -> int:
    return sum(len(ledgers.sandbox_sends_for(r)) for r in request_ids)


@pytest.fixture
def approvals(
    sandbox_server: SandboxServer, ledgers: Ledgers, home: Any, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Result]:
    """`sendoso approvals ARGS` in-process, with the server's credentials and ledger."""
    for name, value in server_env(sandbox_server.url, home).items():
        if name != "PATH":
            monkeypatch.setenv(name, value)
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        result = runner.invoke(app, ["approvals", *args, "--ledger", ledgers.url])
        assert "Traceback" not in result.output
        assert "sandbox-secret" not in result.output
        return result

    return invoke


def test_live_sending_is_off_unless_the_operator_allows_it(
    agent_factory: Start, ledgers: Ledgers
) -> None:
    with agent_factory() as agent:
        result, request_id = send(agent)
        text = " ".join(getattr(c, "text", "") for c in result.content)
        assert result.is_error
        assert "live sending is off" in text
        assert "--allow-send" in text
        assert "every check passed" in text
        # The dry answer still validates: a bad request says what is wrong, not "off".
        bad, _ = send(agent, email="nope")
        assert bad.is_error
        assert "email" in " ".join(getattr(c, "text", "") for c in bad.content)
    assert sandbox_count(ledgers, request_id) == 0
    with ledgers.open() as ledger:
        assert ledger.counts(ledgers.run_id) == {}


def test_max_price_per_send(agent_factory: Start, ledgers: Ledgers) -> None:
    with agent_factory("--allow-send", "--max-price", "30") as agent:
        listed = {g["id"]: g for g in agent.ok("list_gifts", category="egift")["gifts"]}
        assert listed[EGIFT]["allowed"] is True
        assert listed[EGIFT_50]["allowed"] is False
        assert "50.00 USD" in listed[EGIFT_50]["refusal"]
        result, request_id = send(agent, EGIFT_50)
        assert result.is_error
        text = result.content[0].text
        assert "up to 50.00 USD" in text
        assert "maximum of 30.00 USD per send" in text
        assert "cheaper gift" in text
        ok, sent_id = send(agent, EGIFT)
        assert not ok.is_error
    assert sandbox_count(ledgers, request_id) == 0
    assert sandbox_count(ledgers, sent_id) == 1


def test_allow_list_of_gifts_and_categories(agent_factory: Start, ledgers: Ledgers) -> None:
    with agent_factory(
        "--allow-send", "--allow-category", "donation", "--allow-gift", STARBUCKS_10
    ) as agent:
        refused, request_id = send(agent, EGIFT)
        assert refused.is_error
        text = refused.content[0].text
        assert "not on this server's allow-list" in text
        assert STARBUCKS_10 in text
        assert "category donation" in text
        allowed, sent_id = send(agent, STARBUCKS_10)
        assert not allowed.is_error
        validation = agent.ok("validate_recipient", gift_id=EGIFT, recipient=ADA)
        assert validation["ok"] is True
        assert any("allow-list" in r for r in validation["guardrail_refusals"])
    assert sandbox_count(ledgers, request_id) == 0
    assert sandbox_count(ledgers, sent_id) == 1


def test_daily_and_total_caps_count_what_was_sent(agent_factory: Start, ledgers: Ledgers) -> None:
    with agent_factory("--allow-send", "--daily-cap", "60", "--total-cap", "100") as agent:
        first, a = send(agent, EGIFT)
        second, b = send(agent, EGIFT)
        assert not first.is_error
        assert not second.is_error
        third, c = send(agent, EGIFT)
        assert third.is_error
        text = third.content[0].text
        assert "over the daily cap of 60.00 USD: 50.00 spent or in flight today (UTC)" in text
        assert "this send needs up to 25.00; 10.00 is left" in text
        small, d = send(agent, STARBUCKS_10)
        assert not small.is_error
    assert sandbox_count(ledgers, a, b, d) == 3
    assert sandbox_count(ledgers, c) == 0
    # The total cap binds across days: another server on the same ledger, a bigger day cap.
    with agent_factory("--allow-send", "--daily-cap", "500", "--total-cap", "100") as agent:
        over, e = send(agent, EGIFT_50)
        assert over.is_error
        text = over.content[0].text
        assert "over the total cap of 100.00 USD: 60.00 spent or in flight in total" in text
    assert sandbox_count(ledgers, e) == 0


def test_a_cap_in_another_currency_refuses(agent_factory: Start) -> None:
    with agent_factory("--allow-send", "--daily-cap", "500 GBP") as agent:
        result, _ = send(agent, EGIFT)
        assert result.is_error
        assert "costs USD and the daily cap is set only in GBP" in result.content[0].text


def test_per_recipient_cooldown(agent_factory: Start, ledgers: Ledgers) -> None:
    with agent_factory("--allow-send", "--cooldown", "30") as agent:
        first, a = send(agent, EGIFT, email="grace@example.com")
        assert not first.is_error
        again, b = send(agent, STARBUCKS_10, email="grace@example.com")
        assert again.is_error
        text = again.content[0].text
        assert "grace@example.com was sent a gift in the last 30 days" in text
        other, c = send(agent, STARBUCKS_10, email="alan@example.com")
        assert not other.is_error
    assert sandbox_count(ledgers, a, c) == 2
    assert sandbox_count(ledgers, b) == 0


def test_the_same_gift_to_the_same_person_twice_is_refused_unless_allowed(
    agent_factory: Start, ledgers: Ledgers
) -> None:
    with agent_factory("--allow-send") as agent:
        first, a = send(agent, EGIFT, email="kat@example.com")
        assert not first.is_error
        twice, b = send(agent, EGIFT, email="kat@example.com")
        assert twice.is_error
        assert "already got gift" in twice.content[0].text
    with agent_factory("--allow-send", "--allow-resend") as agent:
        resent, c = send(agent, EGIFT, email="kat@example.com")
        assert not resent.is_error
    assert sandbox_count(ledgers, a, c) == 2
    assert sandbox_count(ledgers, b) == 0


def test_guardrails_from_the_environment_and_a_config_file(
    agent_factory: Start, ledgers: Ledgers, home: Any
) -> None:
    """SENDOSO_MCP_* and the [mcp] table set guardrails too; a flag outranks both."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text('[mcp]\nallow_send = true\nmax_price = "30"\n')
    with agent_factory(extra_env={"SENDOSO_MCP_ALLOW_CATEGORIES": "egift"}) as agent:
        ok, a = send(agent, EGIFT)
        assert not ok.is_error
        pricey, b = send(agent, EGIFT_50)
        assert "maximum of 30.00 USD" in pricey.content[0].text
        donation = agent.ok("list_gifts", category="donation")["gifts"]
        assert donation
        assert not any(g["allowed"] for g in donation)
    with agent_factory("--max-price", "60") as agent:
        fine, c = send(agent, EGIFT_50)
        assert not fine.is_error
    assert sandbox_count(ledgers, a, c) == 2
    assert sandbox_count(ledgers, b) == 0


def test_a_send_above_the_threshold_waits_for_approval_then_is_sent_once(
    agent_factory: Start, ledgers: Ledgers, approvals: Callable[..., Result]
) -> None:
    with agent_factory("--allow-send", "--approval-above", "30") as agent:
        small, a = send(agent, EGIFT)
        assert small.structured_content["status"] == "pending"
        held, request_id = send(agent, EGIFT_50)
        assert not held.is_error
        pending = held.structured_content
        assert pending is not None
        assert pending["status"] == "pending_approval"
        assert pending["replayed"] is False
        assert "approval threshold of 30.00 USD" in pending["detail"]
        assert sandbox_count(ledgers, request_id) == 0
        # Asking again does not queue it twice.
        again, _ = send(agent, EGIFT_50, request_id=request_id, email=f"{request_id}@example.com")
        assert again.structured_content["approval_id"] == pending["approval_id"]
        assert again.structured_content["replayed"] is True
        listed = approvals("list", "--json")
        assert listed.exit_code == 0, listed.output
        [waiting] = json.loads(listed.stdout)
        assert waiting["approval_id"] == pending["approval_id"]
        assert waiting["request_id"] == request_id
        assert waiting["estimate"] == {"USD": {"low": "50.00", "high": "50.00"}}
        status = agent.ok("get_send_status", request_id=request_id)
        assert status["status"] == "pending_approval"
        table = approvals("list").output
        assert pending["approval_id"] in table
        assert "50.00 USD" in table

        approved = approvals("approve", pending["approval_id"], "--json")
        assert approved.exit_code == 0, approved.output
        sent = json.loads(approved.stdout)
        assert sent["status"] == "pending"
        assert sent["send_id"].startswith("snd_")

        # The agent sees the outcome by a retry or by asking; still exactly one send.
        retry, _ = send(agent, EGIFT_50, request_id=request_id, email=f"{request_id}@example.com")
        assert retry.structured_content["send_id"] == sent["send_id"]
        assert retry.structured_content["replayed"] is True
        assert agent.ok("get_send_status", request_id=request_id)["send_id"] == sent["send_id"]
        twice = approvals("approve", pending["approval_id"])
        assert twice.exit_code == 2
        assert "already approved" in twice.output
    assert sandbox_count(ledgers, request_id) == 1
    assert sandbox_count(ledgers, a) == 1
    assert "No sends are waiting" in approvals("list").output


def test_a_rejected_send_is_never_sent_and_the_agent_is_told(
    agent_factory: Start, ledgers: Ledgers, approvals: Callable[..., Result]
) -> None:
    with agent_factory("--allow-send", "--approval-above", "0") as agent:
        held, request_id = send(agent, STARBUCKS_10)
        approval_id = held.structured_content["approval_id"]
        rejected = approvals("reject", approval_id, "--reason", "not this quarter")
        assert rejected.exit_code == 0, rejected.output
        retry, _ = send(
            agent, STARBUCKS_10, request_id=request_id, email=f"{request_id}@example.com"
        )
        assert retry.is_error
        text = retry.content[0].text
        assert "a person rejected this send" in text
        assert "not this quarter" in text
        assert agent.ok("get_send_status", request_id=request_id)["status"] == (
            "rejected_by_operator"
        )
        assert agent.ok("list_sends", status="rejected_by_operator")["count"] == 1
        assert approvals("approve", approval_id).exit_code == 2
    assert sandbox_count(ledgers, request_id) == 0


def test_approving_rechecks_the_caps_and_leaves_it_pending_when_over(
    agent_factory: Start, ledgers: Ledgers, approvals: Callable[..., Result]
) -> None:
    with agent_factory("--allow-send", "--approval-above", "30", "--daily-cap", "60") as agent:
        held, request_id = send(agent, EGIFT_50)
        approval_id = held.structured_content["approval_id"]
        spent, a = send(agent, EGIFT)  # 25 of the 60 are gone meanwhile
        assert not spent.is_error
    refused = approvals("approve", approval_id)
    assert refused.exit_code == 2
    assert "stays pending" in refused.output
    assert "over the daily cap of 60.00 USD: 25.00 spent" in refused.output
    listed = json.loads(approvals("list", "--json").stdout)
    assert [w["approval_id"] for w in listed] == [approval_id]
    assert sandbox_count(ledgers, request_id) == 0
    assert sandbox_count(ledgers, a) == 1
