"""Guardrails as pure data: where they come from (flags > environment > file) and what each
check says, with figures."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from sendoso.errors import Call, ConfigurationError, Param, Step, Text
from sendoso.mcp import ENV_NAMES, Guardrails, load_guardrails
from sendoso.models import Gift
from sendoso.pricing import estimate_cost

D = Decimal
EGIFT = Gift(id="gft_e", name="eGift", category="egift", price=D("50"), currency="USD")
POUNDS = Gift(id="gft_p", name="Tea", category="egift", price=D("20"), currency="GBP")
MUG = Gift(id="gft_m", name="Mug", category="physical", price=D("20"), currency="USD")


def test_nothing_configured_means_no_live_sending_and_no_limits(tmp_path: Path) -> None:
    rails = load_guardrails(environ={"SENDOSO_CONFIG": str(tmp_path / "none.toml")})
    assert rails == Guardrails()
    assert rails.allow_send is False
    assert rails.describe()[0].startswith("live sending: OFF")


def test_flags_outrank_the_environment_which_outranks_the_file(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        "[mcp]\n"
        "allow_send = true\n"
        'max_price = ["100", "80 GBP"]\n'
        'daily_cap = "500"\n'
        'allow_categories = ["EGift", "donation"]\n'
        "cooldown_days = 30\n"
    )
    environ = {ENV_NAMES["daily_cap"]: "400", ENV_NAMES["allow_gifts"]: "gft_a, gft_b"}
    rails = load_guardrails(
        {"max_price": ["60"], "cooldown_days": None, "allow_send": False},
        environ=environ,
        path=path,
    )
    assert rails.allow_send is True  # a flag left off does not switch a setting off
    assert rails.max_price == {"USD": D("60")}
    assert rails.daily_cap == {"USD": D("400")}
    assert rails.allow_categories == frozenset({"egift", "donation"})
    assert rails.allow_gifts == frozenset({"gft_a", "gft_b"})
    assert rails.cooldown_days == 30
    assert Guardrails.from_dict(rails.as_dict()) == rails


@pytest.mark.parametrize(
    ("flags", "environ", "message"),
    [
        ({"daily_cap": ["lots"]}, {}, "daily_cap 'lots' is not an amount"),
        ({}, {"SENDOSO_MCP_ALLOW_SEND": "maybe"}, "SENDOSO_MCP_ALLOW_SEND must be true or false"),
        ({"max_price": ["-5"]}, {}, "max_price must be 0 or more"),
    ],
)
def test_a_bad_setting_is_refused_naming_it(
    tmp_path: Path, flags: dict[str, object], environ: dict[str, str], message: str
) -> None:
    environ = {**environ, "SENDOSO_CONFIG": str(tmp_path / "none.toml")}
    with pytest.raises(ConfigurationError, match=message):
        load_guardrails(flags, environ=environ)


def test_a_guardrails_file_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    """A mistyped --guardrails path must not silently mean "no limits"."""
    with pytest.raises(ConfigurationError, match="does not exist"):
        load_guardrails(environ={}, path=tmp_path / "typo.toml")


def test_an_unknown_key_in_the_mcp_table_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[mcp]\nmax_spend = 5\n")
    with pytest.raises(ConfigurationError, match="unknown keys: max_spend"):
        load_guardrails(environ={}, path=path)


def test_the_checks_say_why_with_figures() -> None:
    rails = Guardrails(
        max_price={"USD": D("40")},
        approval_above={"USD": D("30")},
        allow_categories=frozenset({"egift"}),
    )
    assert "over this server's maximum of 40.00 USD per send" in (
        rails.gift_refusal(EGIFT, estimate_cost(EGIFT)) or ""
    )
    assert "only in USD" in (rails.gift_refusal(POUNDS, estimate_cost(POUNDS)) or "")
    assert "not on this server's allow-list" in (rails.gift_refusal(MUG, estimate_cost(MUG)) or "")
    assert rails.approval_reason(estimate_cost(EGIFT)) == (
        "it costs up to 50.00 USD, above the approval threshold of 30.00 USD"
    )
    cheap = Gift(id="gft_c", name="Coffee", category="egift", price=D("10"), currency="USD")
    assert rails.gift_refusal(cheap, estimate_cost(cheap)) is None
    assert rails.approval_reason(estimate_cost(cheap)) is None


def test_spend_caps_count_what_is_spent_or_in_flight() -> None:
    rails = Guardrails(daily_cap={"USD": D("500")}, total_cap={"USD": D("2000")})
    needs = {"USD": (D("100"), D("120"))}
    refusal = rails.spend_refusal(
        needs, today={"USD": (D("400"), D("412"))}, total={"USD": (D("900"), D("912"))}
    )
    assert refusal == (
        "over the daily cap of 500.00 USD: 412.00 spent or in flight today (UTC), this send "
        "needs up to 120.00; 88.00 is left: choose a cheaper gift, or try again tomorrow (UTC)"
    )
    assert rails.spend_refusal(needs, today={}, total={"USD": (D("0"), D("1890"))}) == (
        "over the total cap of 2000.00 USD: 1890.00 spent or in flight in total, this send "
        "needs up to 120.00; 110.00 is left: choose a cheaper gift, or ask the person running "
        "this server to raise the total cap"
    )
    assert rails.spend_refusal(needs, today={}, total={"USD": (D("0"), D("1880"))}) is None
    assert rails.spend_refusal(needs, today={}, total={}) is None


def test_a_cap_that_refuses_is_a_typed_error_with_its_figures() -> None:
    """Behind each cap's refusal text is an OverCapError carrying the cap (its guardrail's
    name), the currency, the limit and the amounts."""
    rails = Guardrails(max_price={"USD": D("40")}, daily_cap={"USD": D("500")})
    estimate = estimate_cost(EGIFT)
    price = rails.gift_over_cap(EGIFT, estimate)
    assert price is not None
    assert (price.field, price.currency, price.limit, price.needed) == (
        "max_price",
        "USD",
        D("40"),
        D("50"),
    )
    assert price.message == rails.gift_refusal(EGIFT, estimate)
    spend = rails.spend_excess(
        {"USD": (D("100"), D("120"))}, today={"USD": (D("400"), D("412"))}, total={}
    )
    assert spend is not None
    assert (spend.field, spend.limit, spend.spent, spend.needed, spend.left) == (
        "daily_cap",
        D("500"),
        D("412"),
        D("120"),
        D("88"),
    )
    # Refused by the allow-list, not by a cap: no cap error.
    listed = Guardrails(max_price={"USD": D("40")}, allow_categories=frozenset({"physical"}))
    assert listed.gift_refusal(EGIFT, estimate)
    assert listed.gift_over_cap(EGIFT, estimate) is None


def test_the_server_words_settings_as_its_flags_and_steps_as_the_operator_s_commands() -> None:
    """The library's text names a setting and a step; the MCP server words them for the
    person running it, the CLI's way."""
    from sendoso.mcp._server import SERVER_WORDING

    message = Text(
        "restart it with ", Param("allow_send"), "; settle it (", Step("settle", ("m1", "4")), ")"
    )
    assert "--" not in message
    assert message.worded(SERVER_WORDING) == (
        "restart it with --allow-send; settle it "
        "(`sendoso batch settle m1 4 --sent SEND_ID` or `--not-sent`)"
    )
    assert Text(Step("approve", ("apr_1",))).worded(SERVER_WORDING) == (
        "`sendoso approvals approve apr_1`"
    )


def test_a_call_reads_as_the_desk_s_method_and_as_the_server_s_tool() -> None:
    """The desk names the tool an agent calls next; the server words it as that tool, the
    library as the SendDesk method behind it, and a stored text keeps it."""
    from sendoso.mcp._server import SERVER_WORDING

    message = Text(
        "check it with ", Call("get_send_status", (("request_id", "'r1'"),)), " in a while"
    )
    assert (
        message.worded(SERVER_WORDING) == "check it with get_send_status request_id='r1' in a while"
    )
    assert message == "check it with `SendDesk.status(request_id='r1')` in a while"
    back = Text.from_stored(message.stored())
    assert isinstance(back, Text)
    assert back.parts == message.parts


def test_every_tool_the_library_names_is_one_the_server_has() -> None:
    """A Call names a tool by its name on the server: a renamed tool must not leave the
    refusals naming the old one."""
    import ast

    src = Path(__file__).resolve().parents[2] / "src" / "sendoso"
    named: set[str] = set()
    for path in src.rglob("*.py"):
        module = ast.parse(path.read_text(encoding="utf-8"))
        if not any(  # sendoso._http has a Call of its own
            isinstance(node, ast.ImportFrom)
            and node.module == "sendoso.errors"
            and any(alias.name == "Call" for alias in node.names)
            for node in ast.walk(module)
        ):
            continue
        for node in ast.walk(module):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "Call"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                named.add(str(node.args[0].value))
    server = ast.parse((src / "mcp" / "_server.py").read_text(encoding="utf-8"))
    tools = {
        node.name
        for node in ast.walk(server)
        if isinstance(node, ast.AsyncFunctionDef)
        and any(
            isinstance(d, ast.Call) and isinstance(d.func, ast.Attribute) and d.func.attr == "tool"
            for d in node.decorator_list
        )
    }
    assert len(tools) == 6
    assert named, "no Call found: the scan is broken"
    assert sorted(named - tools) == []


def test_the_cli_and_the_desk_do_not_import_the_mcp_sdk() -> None:
    """`sendoso --help` (and `sendoso approvals`) never pay for the MCP SDK; only serving
    imports it."""
    import subprocess
    import sys

    probe = (
        "import sys\n"
        "from sendoso.cli import app\n"
        "import sendoso.mcp\n"
        "assert 'mcp' not in sys.modules, 'imported early'\n"
        "sendoso.mcp.build_server\n"
        "assert 'mcp' in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
