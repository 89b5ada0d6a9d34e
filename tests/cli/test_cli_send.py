"""``sendoso send`` and ``sendoso status`` against the sandbox: exactly the sends intended."""

from __future__ import annotations

import re
from typing import Any

import pytest

from sendoso.cli import ExitCode

from ._support import EGIFT, Invoke, parse_json

ADDRESS = [
    "--address-line1",
    "1 Market Street",
    "--address-line2",
    "Suite 300",
    "--city",
    "San Francisco",
    "--state",
    "ca",
    "--postal-code",
    "94105",
    "--country",
    "us",
]
HOODIE = [
    "send",
    "--gift-id",
    "gft_swag_zip_hoodie",
    "--variant-id",
    "var_hoodie_m_navy",
    "--first-name",
    "  Grace ",
    "--last-name",
    "Hopper",
    "--email",
    "grace@example.com",
    "--company",
    "Navy",
    "--title",
    "Rear Admiral",
    "--message",
    "Welcome aboard!",
    "--team-id",
    "team_growth",
    "--metadata",
    "campaign_id=q3-launch",
    "--metadata",
    "contact_id=c-42",
    *ADDRESS,
]


def _key_in(text: str) -> str:
    match = re.search(r"sdk_[0-9a-f]{32}", text)
    assert match, text
    return match.group(0)


def test_egift_happy_path(cli: Invoke, env: Any) -> None:
    result = cli([*EGIFT, "--yes"])
    assert result.exit_code == 0, result.stderr
    sends = env.sends()
    assert len(sends) == 1
    sent = sends[0]
    assert sent["request_body"] == {
        "send": {
            "gift_id": "gft_egift_amazon_us_25",
            "first_name": "Ada",
            "last_name": "Lovelace",
            "email": "ada@example.com",
            "message": "Thank you for your time!",
        }
    }
    assert sent["id"] in result.stdout
    assert "pending" in result.stdout
    assert sent["idempotency_key"] == _key_in(result.stdout)
    assert "25.00 USD" in result.stdout  # the estimate was shown before sending


def test_physical_gift_with_variant_address_and_metadata(cli: Invoke, env: Any) -> None:
    result = cli([*HOODIE, "--yes", "--json"])
    assert result.exit_code == 0, result.stderr
    output = parse_json(result)
    sends = env.sends()
    assert len(sends) == 1
    assert sends[0]["request_body"] == {
        "send": {
            "gift_id": "gft_swag_zip_hoodie",
            "variant_id": "var_hoodie_m_navy",
            "first_name": "Grace",  # normalised: trimmed
            "last_name": "Hopper",
            "email": "grace@example.com",
            "company": "Navy",
            "title": "Rear Admiral",
            "address": {
                "line1": "1 Market Street",
                "line2": "Suite 300",
                "city": "San Francisco",
                "state": "CA",  # normalised: upper-cased
                "postal_code": "94105",
                "country": "US",
            },
            "message": "Welcome aboard!",
            "team_id": "team_growth",
            "metadata": {"campaign_id": "q3-launch", "contact_id": "c-42"},
        }
    }
    assert output["dry_run"] is False
    assert output["send"]["id"] == sends[0]["id"]
    assert output["send"]["status"] == "pending"
    assert output["send"]["idempotency_key"] == sends[0]["idempotency_key"]
    # 55.00 + 10-15 fulfilment + 8.00 domestic shipping to the US
    assert output["cost_estimate"]["total"] == [
        {"currency": "USD", "low": "73.00", "high": "78.00"}
    ]


def test_validation_failure_lists_every_problem_and_sends_nothing(cli: Invoke, env: Any) -> None:
    result = cli(
        [
            "send",
            "--gift-id",
            "gft_phys_coffee_sampler",
            "--first-name",
            "Ada",
            "--email",
            "ada@",
            "--address-line1",
            "1 Main St",
            "--country",
            "US",
            "--yes",
        ]
    )
    assert result.exit_code == ExitCode.USAGE
    for problem in (
        "last_name is required",
        "message is required",
        "email 'ada@' is not valid",
        "address.city is required for physical gifts",
        "address.postal_code is required for physical gifts",
        "address.state is required for addresses in US",
    ):
        assert problem in result.stderr
    assert "6 problems" in result.stderr
    assert env.sends() == []
    assert env.stats()["requests"]["POST /api/v3/sends"] == 0


def test_validation_failure_as_json(cli: Invoke, env: Any) -> None:
    result = cli(
        ["send", "--gift-id", "gft_swag_zip_hoodie", "--first-name", "A", "--json", "--yes"]
    )
    assert result.exit_code == ExitCode.USAGE
    error = parse_json(result)["error"]
    assert error["type"] == "ValidationError"
    fields = {d["field"] for d in error["details"]}
    assert fields == {"last_name", "email", "message", "address", "variant_id"}
    assert all(d["message"] and d["code"] for d in error["details"])
    assert env.sends() == []


def test_unknown_gift_is_reported_with_the_other_problems_and_nothing_sent(
    cli: Invoke, env: Any
) -> None:
    result = cli(
        [
            "send",
            "--gift-id",
            "gft_no_such_thing",
            "--first-name",
            "Ada",
            "--last-name",
            "L",
            "--email",
            "ada@example.com",
            "--yes",
        ]
    )
    assert result.exit_code == ExitCode.USAGE
    assert "gift_id 'gft_no_such_thing' is not in the catalog" in result.stderr
    assert "message is required" in result.stderr
    assert env.sends() == []


def test_a_ten_megabyte_message_is_a_clean_validation_error(cli: Invoke, env: Any) -> None:
    huge = "x" * (10 * 1024 * 1024)
    egift = list(EGIFT)
    egift[egift.index("--message") + 1] = huge
    result = cli([*egift, "--yes"])
    assert result.exit_code == ExitCode.USAGE
    assert f"message is {len(huge)} characters; the limit is 1000" in result.stderr
    assert len(result.stdout) + len(result.stderr) < 10_000  # the note is not echoed back
    assert env.sends() == []


def test_dry_run_sends_nothing(cli: Invoke, env: Any) -> None:
    result = cli([*HOODIE, "--dry-run"])
    assert result.exit_code == 0, result.stderr
    assert "Dry run" in result.stdout
    assert "73.00\u201378.00 USD" in result.stdout
    assert "Grace Hopper <grace@example.com>" in result.stdout

    as_json = cli([*HOODIE, "--dry-run", "--json"])
    assert as_json.exit_code == 0
    plan = parse_json(as_json)
    assert plan["dry_run"] is True
    assert plan["request"]["address"]["country"] == "US"
    assert plan["gift"]["id"] == "gft_swag_zip_hoodie"
    assert plan["cost_estimate"]["total"][0]["low"] == "73.00"
    assert env.sends() == []
    assert env.stats()["requests"]["POST /api/v3/sends"] == 0


def test_without_yes_and_no_terminal_it_refuses_to_prompt(cli: Invoke, env: Any) -> None:
    result = cli(EGIFT, input="y\n")
    assert result.exit_code == ExitCode.USAGE
    assert "--yes" in result.stderr
    assert env.sends() == []

    as_json = cli([*EGIFT, "--json"])
    assert as_json.exit_code == ExitCode.USAGE
    assert "--yes" in parse_json(as_json)["error"]["message"]
    assert env.sends() == []


@pytest.mark.parametrize(("answer", "sent"), [("n\n", 0), ("y\n", 1)])
def test_confirmation_prompt_on_a_terminal(
    cli: Invoke, env: Any, monkeypatch: pytest.MonkeyPatch, answer: str, sent: int
) -> None:
    monkeypatch.setattr("sendoso.cli._commands_send.stdin_is_interactive", lambda: True)
    result = cli(EGIFT, input=answer)
    assert "Send Amazon.com eGift Card $25 to ada@example.com" in result.stdout
    assert result.exit_code == (0 if sent else ExitCode.INTERRUPTED)
    assert len(env.sends()) == sent
    if not sent:
        assert "nothing was sent" in result.stderr


def test_same_idempotency_key_twice_sends_once(cli: Invoke, env: Any) -> None:
    first = cli([*EGIFT, "--yes", "--json", "--idempotency-key", "order-1234"])
    second = cli([*EGIFT, "--yes", "--json", "--idempotency-key", "order-1234"])
    assert first.exit_code == second.exit_code == 0
    assert parse_json(first)["send"]["id"] == parse_json(second)["send"]["id"]
    sends = env.sends()
    assert len(sends) == 1
    assert sends[0]["idempotency_key"] == "order-1234"


def test_api_refusal_is_exit_1_with_the_api_details(cli: Invoke, env: Any) -> None:
    egift = list(EGIFT)
    egift[egift.index("--email") + 1] = "ada+undeliverable@example.com"
    result = cli([*egift, "--yes"])
    assert result.exit_code == ExitCode.API_ERROR
    assert "API error 422" in result.stderr
    assert "undeliverable" in result.stderr
    assert env.sends() == []

    as_json = cli([*egift, "--yes", "--json"])
    error = parse_json(as_json)["error"]
    assert as_json.exit_code == ExitCode.API_ERROR
    assert error["status"] == 422
    assert error["type"] == "UnprocessableEntityError"
    assert error["request_id"]
    assert error["details"][0]["field"] == "email"


def test_status_follows_the_send(cli: Invoke, env: Any) -> None:
    sent = parse_json(cli([*HOODIE, "--yes", "--json"]))["send"]
    first = cli(["status", sent["id"], "--json"])
    assert first.exit_code == 0
    assert parse_json(first)["status"] == "pending"

    env.advance(25 * 3600)
    table = cli(["status", sent["id"]])
    assert table.exit_code == 0
    assert sent["id"] in table.stdout
    assert "shipped" in table.stdout
    assert "1ZSBX" in table.stdout  # tracking number

    env.advance(48 * 3600)
    assert parse_json(cli(["status", sent["id"], "--json"]))["status"] == "delivered"


def test_status_of_an_unknown_send(cli: Invoke, env: Any) -> None:
    result = cli(["status", "snd_nope"])
    assert result.exit_code == ExitCode.API_ERROR
    assert "404" in result.stderr
    as_json = cli(["status", "snd_nope", "--json"])
    error = parse_json(as_json)["error"]
    assert error["type"] == "NotFoundError"
    assert error["status"] == 404


def test_interrupt_while_sending_prints_the_key_to_retry_with(
    cli: Invoke, env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sendoso.resources import Sends

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt  # Ctrl+C while the POST is in flight

    monkeypatch.setattr(Sends, "submit", interrupted)
    result = cli([*EGIFT, "--yes", "--idempotency-key", "ctrl-c-1"])
    assert result.exit_code == ExitCode.INTERRUPTED
    assert "may or may not have been created" in result.stderr
    assert "--idempotency-key ctrl-c-1" in result.stderr
