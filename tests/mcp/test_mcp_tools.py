"""The six tools over stdio, against one `sendoso mcp --allow-send` process for the module:
schemas, browsing, estimates, validation, one send per request_id, status and listing."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.mcp._support import ADA, EGIFT, Ledgers, McpAgent, names, server_env, start_agent
from typer.testing import CliRunner

from sendoso.cli import app
from sendoso.sandbox import SandboxServer

#: $45 + $10-15 fee + $8.50 domestic / $24.00 international shipping; ships to US, CA, MX.
COFFEE = "gft_phys_coffee_sampler"
ADDRESS = {
    "line1": "1 Main St",
    "city": "Springfield",
    "state": "IL",
    "postal_code": "62701",
    "country": "US",
}


@pytest.fixture(scope="module")
def module_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mcp-module") / "home"


@pytest.fixture(scope="module")
def agent(sandbox_server: SandboxServer, module_home: Path) -> Iterator[McpAgent]:
    env = server_env(sandbox_server.url, module_home)
    with start_agent(env, "--allow-send", stderr=module_home / "stderr.log") as running:
        yield running


@pytest.fixture(scope="module")
def store(sandbox_server: SandboxServer, module_home: Path) -> Ledgers:
    return Ledgers(server_env(sandbox_server.url, module_home), sandbox_server.url)


def new_id() -> str:
    return f"req-{uuid.uuid4().hex[:12]}"


def test_six_tools_with_descriptions_schemas_and_hints(agent: McpAgent) -> None:
    """Every tool has a description, a JSON schema whose fields are described, an output
    schema, and honest hints: only send_gift writes, and it is idempotent."""
    tools = {t.name: t for t in agent.tools()}
    assert names(list(tools.values())) == [
        "estimate_cost",
        "get_send_status",
        "list_gifts",
        "list_sends",
        "send_gift",
        "validate_recipient",
    ]
    for tool in tools.values():
        assert len(tool.description or "") > 80
        assert tool.output_schema is not None
        for name, prop in tool.input_schema["properties"].items():
            if "$ref" not in prop:
                assert prop.get("description"), f"{tool.name}.{name} has no description"
        assert tool.annotations is not None
        assert tool.annotations.read_only_hint is (tool.name != "send_gift")
    send = tools["send_gift"].input_schema
    assert sorted(send["required"]) == ["gift_id", "message", "recipient", "request_id"]
    assert send["properties"]["request_id"]["maxLength"] == 200
    recipient = send["$defs"]["RecipientInput"]
    assert sorted(recipient["required"]) == ["email", "first_name", "last_name"]
    assert recipient["additionalProperties"] is False
    assert send["$defs"]["AddressInput"]["additionalProperties"] is False
    assert tools["send_gift"].annotations.idempotent_hint is True  # type: ignore[union-attr]
    category = tools["list_gifts"].input_schema["properties"]["category"]
    assert {"enum": ["physical", "egift", "swag", "donation"], "type": "string"} in category[
        "anyOf"
    ]
    # Nothing an agent can pass touches a guardrail.
    for tool in tools.values():
        for field in tool.input_schema["properties"]:
            assert not any(w in field for w in ("cap", "allow", "approv", "cooldown"))


def test_list_gifts_filters_and_marks_what_may_be_sent(agent: McpAgent) -> None:
    everything = agent.ok("list_gifts")
    assert everything["count"] == len(everything["gifts"]) >= 30
    egifts = agent.ok("list_gifts", category="egift", max_price="50")["gifts"]
    assert egifts
    assert all(g["category"] == "egift" and float(g["price"]) <= 50 for g in egifts)
    assert all(g["allowed"] and g["refusal"] is None for g in egifts)
    in_gb = agent.ok("list_gifts", country="GB")["gifts"]
    assert in_gb
    assert all(g["ships_to"] is None or "GB" in g["ships_to"] for g in in_gb)
    amazon = next(g for g in everything["gifts"] if g["id"] == EGIFT)
    assert amazon["estimate"] == [{"currency": "USD", "low": "25.00", "high": "25.00"}]


def test_list_gifts_with_a_bad_filter_is_a_tool_error(agent: McpAgent) -> None:
    text = agent.refused("list_gifts", min_price="60", max_price="10")
    assert "max_price is below min_price" in text


def test_estimate_cost_prices_fees_and_shipping_by_country(agent: McpAgent) -> None:
    anywhere = agent.ok("estimate_cost", gift_id=COFFEE)
    assert anywhere["fulfillment"] == {"currency": "USD", "low": "10.00", "high": "15.00"}
    assert anywhere["shipping"] == {"currency": "USD", "low": "8.50", "high": "24.00"}
    assert anywhere["total"] == [{"currency": "USD", "low": "63.50", "high": "84.00"}]
    domestic = agent.ok("estimate_cost", gift_id=COFFEE, country="US")
    assert domestic["total"] == [{"currency": "USD", "low": "63.50", "high": "68.50"}]
    abroad = agent.ok("estimate_cost", gift_id=COFFEE, country="CA")
    assert abroad["total"] == [{"currency": "USD", "low": "79.00", "high": "84.00"}]
    assert domestic["allowed"] is True
    assert "not available in GB" in agent.refused("estimate_cost", gift_id=COFFEE, country="GB")
    unknown = agent.refused("estimate_cost", gift_id="gft_nope")
    assert "not in the catalog" in unknown
    assert "list_gifts" in unknown


def test_validate_recipient_reports_every_problem_at_once(agent: McpAgent) -> None:
    result = agent.ok(
        "validate_recipient",
        gift_id=COFFEE,
        recipient={
            "first_name": "Ada",
            "last_name": "Lovelace",
            "email": "not-an-email",
            "address": {"line1": "1 Main St", "state": "ZZ", "postal_code": "abc", "country": "US"},
        },
    )
    assert result["ok"] is False
    fields = {p["field"] for p in result["problems"]}
    assert {"email", "address.city", "address.state", "address.postal_code"} <= fields
    assert result["estimate"] == []
    good = agent.ok(
        "validate_recipient",
        gift_id=COFFEE,
        recipient={**ADA, "address": ADDRESS},
        message="Thank you!",
    )
    assert good["ok"] is True
    assert good["problems"] == []
    assert good["estimate"]
    assert good["guardrail_refusals"] == []


def test_an_unknown_recipient_field_is_refused_by_the_schema(agent: McpAgent) -> None:
    text = agent.refused("validate_recipient", gift_id=EGIFT, recipient={**ADA, "zip": "62701"})
    assert "zip" in text


def test_send_gift_sends_once_however_often_it_is_retried(agent: McpAgent, store: Ledgers) -> None:
    request_id = new_id()
    args = {
        "gift_id": EGIFT,
        "recipient": {**ADA, "email": f"{request_id}@example.com"},
        "message": "Thanks for a great quarter!",
        "request_id": request_id,
        "metadata": {"contact_id": "003XYZ", "score": 7},
    }
    first = agent.ok("send_gift", **args)
    assert first["status"] == "pending"
    assert first["send_id"].startswith("snd_")
    assert first["replayed"] is False
    again = agent.ok("send_gift", **args)
    assert again["send_id"] == first["send_id"]
    assert again["replayed"] is True
    sends = store.sandbox_sends_for(request_id)
    assert len(sends) == 1
    assert sends[0]["metadata"]["contact_id"] == "003XYZ"
    assert sends[0]["metadata"]["sendoso_request_id"] == request_id
    # The same request_id for another gift or person is refused, not sent.
    other = agent.refused("send_gift", **{**args, "recipient": {**ADA, "email": "bob@example.com"}})
    assert "already used for a different send" in other
    assert "differs in email" in other
    assert len(store.sandbox_sends_for(request_id)) == 1


def test_an_invalid_send_is_refused_with_every_problem_and_nothing_recorded(
    agent: McpAgent, store: Ledgers
) -> None:
    request_id = new_id()
    text = agent.refused(
        "send_gift",
        gift_id=COFFEE,
        recipient={**ADA, "email": "ada@@example"},
        message="Hi",
        request_id=request_id,
    )
    assert "nothing was sent" in text
    assert "email" in text
    assert "address is required" in text
    assert store.sandbox_sends_for(request_id) == []
    with store.open() as ledger:
        assert ledger.row_by_key(store_key(store, request_id)) is None


def store_key(store: Ledgers, request_id: str) -> str:
    from sendoso.mcp import send_key_for_request

    return send_key_for_request(request_id, store.sandbox_url)


def test_status_and_listing_of_what_this_server_sent(agent: McpAgent, store: Ledgers) -> None:
    request_id = new_id()
    sent = agent.ok(
        "send_gift",
        gift_id=EGIFT,
        recipient={**ADA, "email": f"{request_id}@example.com"},
        message="Thanks!",
        request_id=request_id,
    )
    by_id = agent.ok("get_send_status", send_id=sent["send_id"])
    by_request = agent.ok("get_send_status", request_id=request_id)
    assert by_id["send_id"] == by_request["send_id"] == sent["send_id"]
    assert by_id["status"] in ("pending", "processing", "shipped", "delivered")
    assert by_request["request_id"] == request_id
    listed = agent.ok("list_sends")
    assert request_id in [s["request_id"] for s in listed["sends"]]
    assert listed["sends"][0]["request_id"] == request_id  # newest first
    assert agent.ok("list_sends", since="2999-01-01")["count"] == 0
    only = agent.ok("list_sends", status=by_id["status"])
    assert all(s["status"] == by_id["status"] for s in only["sends"])
    assert "not made by this server" in agent.refused("get_send_status", send_id="snd_other")
    assert "exactly one" in agent.refused("get_send_status")
    assert "ISO 8601" in agent.refused("list_sends", since="yesterday")


def test_mcp_sends_show_in_batch_runs_and_reports(
    agent: McpAgent, store: Ledgers, tmp_path: Path
) -> None:
    request_id = new_id()
    agent.ok(
        "send_gift",
        gift_id=EGIFT,
        recipient={**ADA, "email": f"{request_id}@example.com"},
        message="Thanks!",
        request_id=request_id,
    )
    runner = CliRunner()
    runs = runner.invoke(app, ["batch", "runs", "--json", "--ledger", store.url])
    assert runs.exit_code == 0, runs.output
    mine = next(r for r in json.loads(runs.stdout) if r["run_id"] == store.run_id)
    assert mine["source"] == "mcp"
    assert mine["counts"]["submitted"] >= 1
    table = runner.invoke(app, ["batch", "runs", "--ledger", store.url], env={"COLUMNS": "200"})
    assert any(store.run_id in line and " mcp " in line for line in table.stdout.splitlines()), (
        table.stdout
    )
    out = tmp_path / "report.json"
    report = runner.invoke(
        app, ["batch", "report", store.run_id, "--out", str(out), "--ledger", store.url]
    )
    assert report.exit_code == 0, report.output
    rows = json.loads(out.read_text())
    assert f"{request_id}@example.com" in [r["recipient"] for r in rows]


def test_batch_resume_never_takes_over_the_mcp_run(agent: McpAgent, store: Ledgers) -> None:
    """The MCP run's rows were admitted by the operator's guardrails; a batch runner that
    resumed them would bypass --allow-send and the caps, so it refuses before touching it."""
    request_id = new_id()
    agent.ok(
        "send_gift",
        gift_id=EGIFT,
        recipient={**ADA, "email": f"{request_id}@example.com"},
        message="Thanks!",
        request_id=request_id,
    )
    refused = CliRunner().invoke(app, ["batch", "resume", store.run_id, "--ledger", store.url])
    assert refused.exit_code == 2, refused.output
    assert "sendoso mcp" in refused.output


def test_no_secret_reaches_the_server_log(agent: McpAgent, module_home: Path) -> None:
    agent.ok("list_gifts", category="donation")
    log = (module_home / "stderr.log").read_text()
    assert "sandbox-secret" not in log
    assert "live sending: ON" in log


def test_concurrent_calls_with_one_request_id_send_once(agent: McpAgent, store: Ledgers) -> None:
    """Four calls with the same request_id at once: one send; the others report it or say
    it is being sent right now."""
    request_id = new_id()
    args = {
        "gift_id": EGIFT,
        "recipient": {**ADA, "email": f"{request_id}@example.com"},
        "message": "Thanks!",
        "request_id": request_id,
    }
    calls = [agent.start("send_gift", **args) for _ in range(4)]
    results = [call.result(timeout=60) for call in calls]
    sent = {r.structured_content["send_id"] for r in results if not r.is_error}
    assert len(sent) == 1
    for result in results:
        if result.is_error:
            assert "being sent right now by another call" in result.content[0].text
    assert len(store.sandbox_sends_for(request_id)) == 1
    assert agent.ok("get_send_status", request_id=request_id)["send_id"] in sent


def test_refused_credentials_are_a_tool_error_for_the_operator(
    sandbox_server: SandboxServer, tmp_path: Path
) -> None:
    env = server_env(sandbox_server.url, tmp_path / "home") | {
        "SENDOSO_CLIENT_SECRET": "wrong-secret"
    }
    with start_agent(env, "--allow-send", stderr=tmp_path / "stderr.log") as wrong:
        text = wrong.refused("list_gifts")
    assert "refused this server's credentials" in text
    assert "wrong-secret" not in text
    assert "wrong-secret" not in (tmp_path / "stderr.log").read_text()
