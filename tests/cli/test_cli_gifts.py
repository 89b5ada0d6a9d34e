"""``sendoso gifts list`` against the sandbox's catalog."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sendoso.cli import ExitCode

from ._support import Invoke, parse_json


def test_table_with_filters(cli: Invoke, env: Any) -> None:
    result = cli(["gifts", "list", "--category", "egift", "--max-price", "30"])
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "gft_egift_amazon_us_25" in out
    assert "Amazon.com eGift Card $25" in out
    assert "25.00 USD" in out
    assert "15.00 CAD" in out  # the currency is shown with the price
    assert "gft_egift_amazon_us_50" not in out  # over max-price
    assert "gft_phys_" not in out  # other categories
    assert "gifts." in out


def test_table_shows_variants_ships_to_and_a_cost_range(cli: Invoke, env: Any) -> None:
    result = cli(["gifts", "list", "--category", "swag"])
    assert result.exit_code == 0, result.stderr
    row = next(line for line in result.stdout.splitlines() if "gft_swag_zip_hoodie" in line)
    # 55.00 + 10-15 fulfilment + 8.00-23.00 shipping
    assert "55.00 USD" in row
    assert "73.00\u201393.00 USD" in row
    assert " 10 " in row  # variants
    assert "US, CA +7" in row


def test_narrow_terminal_keeps_ids_whole(runner: Any, env: Any) -> None:
    from sendoso.cli import app

    result = runner.invoke(app, ["gifts", "list", "--category", "egift"], env={"COLUMNS": "80"})
    assert result.exit_code == 0
    assert "gft_egift_global_choice_100" in result.stdout
    assert max(len(line) for line in result.stdout.splitlines()) <= 80


def test_json_with_filters(cli: Invoke, env: Any) -> None:
    result = cli(["gifts", "list", "--min-price", "40", "--max-price", "60", "--json"])
    assert result.exit_code == 0, result.stderr
    gifts = parse_json(result)
    assert isinstance(gifts, list)
    assert gifts
    for gift in gifts:
        assert isinstance(gift["price"], str)  # Decimals as strings
        assert Decimal("40") <= Decimal(gift["price"]) <= Decimal("60")
    hoodie = next(g for g in gifts if g["id"] == "gft_swag_zip_hoodie")
    assert hoodie["variants"]
    assert hoodie["shipping_estimate"]["domestic"] == "8.00"
    assert {g["category"] for g in gifts} >= {"physical", "swag"}


def test_json_with_no_match_is_an_empty_array(cli: Invoke, env: Any) -> None:
    result = cli(["gifts", "list", "--category", "egift", "--min-price", "5000", "--json"])
    assert result.exit_code == 0
    assert parse_json(result) == []


def test_bad_price_filter_is_a_validation_error(cli: Invoke, env: Any) -> None:
    result = cli(["gifts", "list", "--min-price", "cheap", "--max-price", "-3", "--json"])
    assert result.exit_code == ExitCode.USAGE
    error = parse_json(result)["error"]
    assert error["type"] == "ValidationError"
    assert {d["field"] for d in error["details"]} == {"min_price", "max_price"}
    assert env.stats()["requests"]["GET /api/v3/gifts"] == 0

    human = cli(["gifts", "list", "--min-price", "cheap"])
    assert human.exit_code == ExitCode.USAGE
    assert "min_price 'cheap' is not a number" in human.stderr
