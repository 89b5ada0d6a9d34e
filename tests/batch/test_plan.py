"""Planning a batch: every row is planned (with a key and a cost) or skipped with a reason."""

from __future__ import annotations

import csv
import gc
import random
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import Sandbox

from sendoso.batch import Source, SourceRow
from sendoso.batch._engine import BatchSpec, check_host, dry_run, prepare_run
from sendoso.batch._plan import Budget, PlanOptions, PlanSummary, plan_rows, send_key_for
from sendoso.batch._template import MessageTemplate, TemplateError
from sendoso.errors import OverCapError, Param, Text, ValidationError
from sendoso.ledger import (
    Ledger,
    LedgerError,
    LedgerRow,
    PlannedRow,
    PlanWriter,
    RowState,
    RunInfo,
)
from sendoso.models import Gift, ShippingEstimate

S = RowState
BASE_URL = "http://127.0.0.1:8000"
US_ADDRESS = {
    "address.line1": "1 Main St",
    "address.city": "Springfield",
    "address.state": "IL",
    "address.postal_code": "62701",
    "address.country": "US",
}
CA_ADDRESS = {
    "address.line1": "1 King St W",
    "address.city": "Toronto",
    "address.state": "ON",
    "address.postal_code": "M5V 2T6",
    "address.country": "CA",
}
NO_ADDRESS = dict.fromkeys(US_ADDRESS, "")
VISA_50 = "gft_egift_visa_50"
STARBUCKS_10 = "gft_egift_starbucks_10"
DOORDASH_25 = "gft_egift_doordash_25"
GLOBAL_100 = "gft_egift_global_choice_100"
AMAZON_UK_25 = "gft_egift_amazon_uk_25"  # priced in GBP
COFFEE = "gft_phys_coffee_sampler"  # 45 + 8.50 US shipping + 10-15 USD fulfillment
LEATHER_JOURNAL = "gft_phys_leather_journal"  # GBP, ships from GB


@pytest.fixture
def catalog(sandbox: Sandbox) -> list[Gift]:
    """The sandbox's real catalog."""
    with sandbox.client() as client:
        return client.gifts.list()


@pytest.fixture
def history(ledger_url: str) -> Iterator[Ledger]:
    """A real ledger (SQLite and PostgreSQL) holding earlier runs."""
    with Ledger(ledger_url) as ledger:
        yield ledger


def person(n: int, **fields: str) -> dict[str, str]:
    """A valid row for an eGift, with an address (ignored by eGifts) so any gift fits."""
    return {
        "first_name": f"Ada{n}",
        "last_name": "Lovelace",
        "email": f"ada{n}@example.com",
        "gift_id": VISA_50,
        "message": "Thank you!",
        **US_ADDRESS,
        **fields,
    }


def write_csv(path: Path, records: Sequence[Mapping[str, str]]) -> Path:
    """A CSV file with the union of the records' keys as its header (row 1)."""
    header: list[str] = []
    for record in records:
        header += [key for key in record if key not in header]
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=header)
        writer.writeheader()
        writer.writerows(records)
    return path


def plan(
    path: Path,
    catalog: Sequence[Gift],
    *,
    run_id: str = "run-1",
    history: Ledger | None = None,
    now: datetime | None = None,
    **options: Any,
) -> tuple[PlanSummary, dict[int, LedgerRow]]:
    """Plan ``path`` into a throwaway ledger; the summary and every row by number."""
    with Ledger("sqlite://") as scratch:
        with scratch.new_run(RunInfo(run_id, BASE_URL)) as writer:
            summary = plan_rows(
                Source(path).rows(),
                catalog,
                PlanOptions(run_id=run_id, **options),
                writer,
                history=history,
                now=now,
            )
        rows = {row.number: row for row in scratch.rows(run_id)}
    return summary, rows


def submitted_earlier(ledger: Ledger, run_id: str, recipients: Sequence[str]) -> None:
    """An earlier run in ``ledger`` that sent something to each of ``recipients``."""
    rows = [
        PlannedRow(
            number=n,
            state=S.PLANNED,
            send_key=f"sb_{run_id}_{n}",
            recipient=recipient,
            gift_id=VISA_50,
            dedupe_key=f"{recipient}|{VISA_50}",
        )
        for n, recipient in enumerate(recipients, start=2)
    ]
    with ledger.new_run(RunInfo(run_id, BASE_URL)) as writer:
        writer.add(rows)
    for row in rows:
        assert ledger.move(run_id, row.number, S.SUBMITTING)
        assert ledger.move(run_id, row.number, S.SUBMITTED, send_id=f"snd_{row.number}")


def high(row: LedgerRow, currency: str = "USD") -> Decimal:
    assert row.estimate is not None
    return row.estimate[currency][1]


# --- planned rows -----------------------------------------------------------------------


def test_a_valid_row_is_planned_with_a_checked_request(tmp_path: Path, catalog: list[Gift]) -> None:
    """A valid row becomes planned: its request, identity, cost and key are recorded."""
    path = write_csv(tmp_path / "in.csv", [person(1, email="Ada@Example.COM")])
    summary, rows = plan(path, catalog)
    row = rows[2]  # the header is row 1
    assert row.state is S.PLANNED
    assert row.recipient == "ada@example.com"
    assert row.name == "Ada1 Lovelace"
    assert row.gift_id == VISA_50
    assert row.estimate == {"USD": (Decimal("50.00"), Decimal("50.00"))}
    assert row.error is None
    assert row.skip_kind is None
    assert row.request is not None
    assert row.request["gift_id"] == VISA_50
    assert row.request["email"] == "Ada@Example.COM"
    assert row.request["message"] == "Thank you!"
    assert "address" not in row.request  # an eGift's address is only used for its country
    assert row.send_key == send_key_for("run-1", 2, f"ada@example.com|{VISA_50}")
    assert summary.rows == 1
    assert summary.planned == 1
    assert summary.per_gift == {VISA_50: 1}
    assert summary.estimate == {"USD": [Decimal("50.00"), Decimal("50.00")]}
    assert not summary.skipped


def test_a_physical_row_is_estimated_as_a_range(tmp_path: Path, catalog: list[Gift]) -> None:
    """A physical gift costs item, domestic shipping and the 10-15 USD fulfillment fee."""
    path = write_csv(tmp_path / "in.csv", [person(1, gift_id=COFFEE)])
    summary, rows = plan(path, catalog)
    assert rows[2].estimate == {"USD": (Decimal("63.50"), Decimal("68.50"))}
    assert summary.estimate == {"USD": [Decimal("63.50"), Decimal("68.50")]}


def test_send_keys_are_deterministic_per_run_and_row(tmp_path: Path, catalog: list[Gift]) -> None:
    """The same run id and row give the same key, even planned again into a fresh ledger."""
    path = write_csv(tmp_path / "in.csv", [person(n) for n in range(1, 6)])
    _, first = plan(path, catalog, run_id="run-a")
    _, again = plan(path, catalog, run_id="run-a")
    _, other = plan(path, catalog, run_id="run-b")
    keys = {n: row.send_key for n, row in first.items()}
    assert keys == {n: row.send_key for n, row in again.items()}
    assert len(set(keys.values())) == len(keys)
    assert set(keys.values()).isdisjoint(row.send_key for row in other.values())
    for n, row in first.items():
        assert row.send_key == send_key_for("run-a", n, f"ada{n - 1}@example.com|{VISA_50}")
        assert re.fullmatch(r"sb_[0-9a-f]{40}", row.send_key or "")


def test_send_key_for_depends_on_each_part() -> None:
    """send_key_for is a pure function of run id, row number and dedupe key."""
    key = send_key_for("run-1", 2, "a@example.com|g")
    assert key == send_key_for("run-1", 2, "a@example.com|g")
    assert key != send_key_for("run-2", 2, "a@example.com|g")
    assert key != send_key_for("run-1", 3, "a@example.com|g")
    assert key != send_key_for("run-1", 2, "b@example.com|g")
    # The parts are separated, so shifting text between them changes the key.
    assert send_key_for("run-1", 12, "x") != send_key_for("run-11", 2, "x")


def test_a_message_template_is_rendered_into_the_request(
    tmp_path: Path, catalog: list[Gift]
) -> None:
    """--message-template fills each row's note from its fields and columns."""
    records = [
        person(1, company="Acme", **{"Favourite Colour": "teal"}),
        person(2, message="from the file"),
    ]
    path = write_csv(tmp_path / "in.csv", records)
    template = MessageTemplate("Hi {first_name} at {company}! {favourite_colour} {address_city}")
    _, rows = plan(path, catalog, template=template)
    assert rows[2].request["message"] == "Hi Ada1 at Acme! teal Springfield"  # type: ignore[index]
    # The template wins over the file's message column; a missing value renders empty.
    assert rows[3].request["message"] == "Hi Ada2 at !  Springfield"  # type: ignore[index]


def test_a_template_that_renders_empty_makes_the_row_invalid(
    tmp_path: Path, catalog: list[Gift]
) -> None:
    """A note that comes out blank for a row is a problem with that row, not a blank send."""
    path = write_csv(tmp_path / "in.csv", [person(1, company="Acme"), person(2)])
    _, rows = plan(path, catalog, template=MessageTemplate("{company}"))
    assert rows[2].state is S.PLANNED
    assert rows[3].state is S.SKIPPED
    assert rows[3].skip_kind == "invalid"
    assert "message" in (rows[3].error or "")
    assert "(row 3)" in (rows[3].error or "")


@pytest.mark.parametrize("country", ["United States", "USA", "united states", "us", "US"])
def test_country_names_become_iso_codes(tmp_path: Path, catalog: list[Gift], country: str) -> None:
    """Country names and alpha-3 codes in the file become the alpha-2 code the API wants."""
    path = write_csv(
        tmp_path / "in.csv", [person(1, gift_id=COFFEE, **{"address.country": country})]
    )
    _, rows = plan(path, catalog)
    assert rows[2].state is S.PLANNED, rows[2].error
    assert rows[2].request["address"]["country"] == "US"  # type: ignore[index]


def test_an_unknown_country_is_reported_on_its_row(tmp_path: Path, catalog: list[Gift]) -> None:
    """A country that is no country is an invalid row naming the field."""
    path = write_csv(
        tmp_path / "in.csv", [person(1, gift_id=COFFEE, **{"address.country": "Atlantis"})]
    )
    _, rows = plan(path, catalog)
    assert rows[2].state is S.SKIPPED
    assert "address.country" in (rows[2].error or "")
    assert "(row 2)" in (rows[2].error or "")


def test_metadata_carries_the_run_the_row_and_the_contact(
    tmp_path: Path, catalog: list[Gift]
) -> None:
    """Each request's metadata names its run and row, the file's contact id and --metadata."""
    path = write_csv(
        tmp_path / "in.csv",
        [person(1, contact_id="003XYZ"), person(2)],
    )
    _, rows = plan(
        path,
        catalog,
        run_id="run-77",
        metadata={"campaign": "q3", "sendoso_run": "forged", "sendoso_row": "1"},
    )
    assert rows[2].request["metadata"] == {  # type: ignore[index]
        "campaign": "q3",
        "contact_id": "003XYZ",
        "sendoso_run": "run-77",
        "sendoso_row": "2",
    }
    assert rows[3].request["metadata"] == {  # type: ignore[index]
        "campaign": "q3",
        "sendoso_run": "run-77",
        "sendoso_row": "3",
    }
    assert "contact_id" not in rows[2].request  # type: ignore[operator]


def test_gift_and_variant_options_apply_to_every_row(tmp_path: Path, catalog: list[Gift]) -> None:
    """--gift and --variant override the file's columns for every row."""
    path = write_csv(tmp_path / "in.csv", [person(1, gift_id="nonsense"), person(2)])
    summary, rows = plan(path, catalog, gift_id="gft_swag_cap", variant_id="var_cap_navy")
    for n in (2, 3):
        assert rows[n].state is S.PLANNED, rows[n].error
        assert rows[n].gift_id == "gft_swag_cap"
        assert rows[n].request["variant_id"] == "var_cap_navy"  # type: ignore[index]
    assert summary.per_gift == {"gft_swag_cap": 2}


# --- invalid rows -----------------------------------------------------------------------


def test_invalid_rows_are_skipped_naming_the_field_and_the_row(
    tmp_path: Path, catalog: list[Gift]
) -> None:
    """Each invalid row is skipped as invalid, with every problem naming its field and row."""
    records = [
        person(1),
        person(2, email=""),
        person(3, email="not-an-email"),
        person(4, gift_id="gft_does_not_exist"),
        person(5, gift_id=COFFEE, **{"address.postal_code": ""}),
        person(6, gift_id="gft_phys_cabernet", **CA_ADDRESS),
        person(7, first_name="", last_name=""),
        person(8, gift_id="gft_swag_crew_tee"),
    ]
    path = write_csv(tmp_path / "in.csv", records)
    summary, rows = plan(path, catalog)
    expected_fields = {
        3: ["email"],
        4: ["email"],
        5: ["gift_id"],
        6: ["address.postal_code"],
        7: ["not available in CA"],
        8: ["first_name", "last_name"],
        9: ["variant_id"],
    }
    assert rows[2].state is S.PLANNED
    for number, fields in expected_fields.items():
        row = rows[number]
        assert row.state is S.SKIPPED, number
        assert row.skip_kind == "invalid"
        assert row.send_key is None
        assert row.request is None
        for field in fields:
            assert field in (row.error or ""), (number, row.error)
        # Every problem in the text carries its row.
        assert (row.error or "").endswith(f"(row {number})")
        assert (row.error or "").count(f"(row {number})") == len(fields)
    assert summary.skipped == {"invalid": 7}
    assert summary.planned == 1
    assert summary.rows == 8


def test_a_row_the_file_could_not_read_is_skipped_with_its_problem(
    tmp_path: Path, catalog: list[Gift]
) -> None:
    """A record with more cells than the header is skipped, the rest is planned."""
    path = tmp_path / "in.csv"
    path.write_text(
        "first_name,last_name,email,gift_id,message\n"
        f"Ada,Lovelace,ada@example.com,{VISA_50},Hi\n"
        f"Bob,Smith,bob@example.com,{VISA_50},Hi,surplus,cells\n"
        f"Cy,Jones,cy@example.com,{VISA_50},Hi\n",
        encoding="utf-8",
    )
    _, rows = plan(path, catalog)
    assert [rows[n].state for n in (2, 3, 4)] == [S.PLANNED, S.SKIPPED, S.PLANNED]
    assert rows[3].skip_kind == "invalid"
    assert "(row 3)" in (rows[3].error or "")


# --- duplicates -------------------------------------------------------------------------


def test_a_duplicate_within_a_chunk_names_the_first_row(
    tmp_path: Path, catalog: list[Gift]
) -> None:
    """The same recipient (any letter case) and gift again is skipped as a duplicate."""
    records = [person(1), person(2), person(1, email="ADA1@example.com", first_name="A.")]
    path = write_csv(tmp_path / "in.csv", records)
    summary, rows = plan(path, catalog)
    assert rows[4].state is S.SKIPPED
    assert rows[4].skip_kind == "duplicate"
    assert rows[4].send_key is None
    assert rows[4].error == f"ada1@example.com already gets {VISA_50} from row 2 (row 4)"
    assert summary.skipped == {"duplicate": 1}


def test_duplicates_are_found_across_chunks(tmp_path: Path, catalog: list[Gift]) -> None:
    """A duplicate more than a chunk (500 rows) after its first row is still caught."""
    records = [person(n) for n in range(1, 1300)]
    records[1100] = person(1, email="Ada1@EXAMPLE.com")  # row 1102 repeats row 2
    records[1200] = person(1, email="ada1@example.com", gift_id=STARBUCKS_10)  # other gift
    records[1250] = person(1, email="ADA1@example.com", gift_id=STARBUCKS_10)  # repeats 1202
    records[700] = person(5)  # row 702 repeats row 6
    path = write_csv(tmp_path / "in.csv", records)
    summary, rows = plan(path, catalog)
    assert len(rows) == 1299
    assert rows[1102].skip_kind == "duplicate"
    assert "from row 2 (row 1102)" in (rows[1102].error or "")
    assert rows[702].skip_kind == "duplicate"
    assert "from row 6 (row 702)" in (rows[702].error or "")
    assert rows[1202].state is S.PLANNED
    assert rows[1252].skip_kind == "duplicate"
    assert "from row 1202 (row 1252)" in (rows[1252].error or "")
    assert summary.skipped == {"duplicate": 3}
    assert summary.planned == 1296


def test_the_same_recipient_may_get_different_gifts(tmp_path: Path, catalog: list[Gift]) -> None:
    """A different gift for the same email is not a duplicate."""
    records = [person(1), person(1, gift_id=STARBUCKS_10), person(1, gift_id=DOORDASH_25)]
    path = write_csv(tmp_path / "in.csv", records)
    summary, rows = plan(path, catalog)
    assert [rows[n].state for n in (2, 3, 4)] == [S.PLANNED] * 3
    assert summary.planned == 3


def test_a_row_after_an_invalid_one_is_not_its_duplicate(
    tmp_path: Path, catalog: list[Gift]
) -> None:
    """Only planned rows claim a recipient: a corrected row after an invalid one is planned."""
    records = [person(1, message=""), person(1)]
    path = write_csv(tmp_path / "in.csv", records)
    _, rows = plan(path, catalog)
    assert rows[2].skip_kind == "invalid"
    assert rows[3].state is S.PLANNED


# --- cool-down --------------------------------------------------------------------------


def test_a_recently_gifted_recipient_is_skipped(
    tmp_path: Path, catalog: list[Gift], history: Ledger
) -> None:
    """A recipient sent a gift by an earlier run within the cool-down is skipped."""
    submitted_earlier(history, "earlier", ["ada1@example.com"])
    path = write_csv(tmp_path / "in.csv", [person(1, email="Ada1@Example.com"), person(2)])
    summary, rows = plan(path, catalog, history=history, cooldown_days=7)
    assert rows[2].state is S.SKIPPED
    assert rows[2].skip_kind == "cooldown"
    assert rows[2].error == "ada1@example.com was sent a gift in the last 7 days (row 2)"
    assert rows[3].state is S.PLANNED
    assert summary.skipped == {"cooldown": 1}


def test_an_unknown_send_counts_for_the_cool_down(
    tmp_path: Path, catalog: list[Gift], history: Ledger
) -> None:
    """A send whose outcome is unknown may exist, so it blocks the recipient too."""
    with history.new_run(RunInfo("earlier", BASE_URL)) as writer:
        writer.add([PlannedRow(2, S.PLANNED, send_key="k", recipient="ada1@example.com")])
    assert history.move("earlier", 2, S.SUBMITTING)
    assert history.move("earlier", 2, S.UNKNOWN, error="no reply")
    path = write_csv(tmp_path / "in.csv", [person(1)])
    _, rows = plan(path, catalog, history=history, cooldown_days=1)
    assert rows[2].skip_kind == "cooldown"


def test_a_send_older_than_the_cool_down_does_not_count(
    tmp_path: Path, catalog: list[Gift], history: Ledger
) -> None:
    """A gift sent longer ago than the cool-down does not keep the recipient out."""
    submitted_earlier(history, "earlier", ["ada1@example.com"])
    path = write_csv(tmp_path / "in.csv", [person(1)])
    eight_days_on = datetime.now(UTC) + timedelta(days=8)
    _, rows = plan(path, catalog, history=history, cooldown_days=7, now=eight_days_on)
    assert rows[2].state is S.PLANNED
    _, rows = plan(path, catalog, history=history, cooldown_days=9, now=eight_days_on)
    assert rows[2].skip_kind == "cooldown"


def test_the_same_runs_own_sends_do_not_count(
    tmp_path: Path, catalog: list[Gift], history: Ledger
) -> None:
    """Planning a run again under its own id is not blocked by that run's sends."""
    submitted_earlier(history, "run-1", ["ada1@example.com"])
    path = write_csv(tmp_path / "in.csv", [person(1)])
    _, rows = plan(path, catalog, run_id="run-1", history=history, cooldown_days=7)
    assert rows[2].state is S.PLANNED


def test_no_cool_down_without_the_option(
    tmp_path: Path, catalog: list[Gift], history: Ledger
) -> None:
    """Without --cooldown (or with 0 days) earlier sends do not matter."""
    submitted_earlier(history, "earlier", ["ada1@example.com"])
    path = write_csv(tmp_path / "in.csv", [person(1)])
    for days in (None, 0):
        _, rows = plan(path, catalog, history=history, cooldown_days=days)
        assert rows[2].state is S.PLANNED


def test_the_cool_down_reaches_past_the_first_chunk(
    tmp_path: Path, catalog: list[Gift], history: Ledger
) -> None:
    """Recipients far down a long file are checked against the history too."""
    submitted_earlier(history, "earlier", ["ada3@example.com", "ada1100@example.com"])
    path = write_csv(tmp_path / "in.csv", [person(n) for n in range(1, 1200)])
    summary, rows = plan(path, catalog, history=history, cooldown_days=30)
    assert rows[4].skip_kind == "cooldown"
    assert rows[1101].skip_kind == "cooldown"
    assert summary.skipped == {"cooldown": 2}


# --- budget -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "caps"),
    [
        (["100"], {"USD": Decimal("100")}),
        (["4000 GBP"], {"GBP": Decimal("4000")}),
        (["50 usd"], {"USD": Decimal("50")}),
        (["USD50"], {"USD": Decimal("50")}),
        (["$5,000"], {"USD": Decimal("5000")}),
        (["0"], {"USD": Decimal("0")}),
        (["12.34"], {"USD": Decimal("12.34")}),
        (["100", "80 GBP"], {"USD": Decimal("100"), "GBP": Decimal("80")}),
    ],
)
def test_budget_parse(values: list[str], caps: dict[str, Decimal]) -> None:
    """--max-spend takes an amount with an optional currency (USD by default)."""
    budget = Budget.parse(values)
    assert budget.caps == caps
    assert all(isinstance(cap, Decimal) for cap in budget.caps.values())


def test_budget_parse_accepts_a_currency_before_the_amount() -> None:
    """--max-spend 'USD 50' is 50 US dollars, as 'USD50' is."""
    assert Budget.parse(["USD 50"]).caps == {"USD": Decimal("50")}


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (["lots"], "is not an amount"),
        ([""], "is not an amount"),
        (["nan"], "is not an amount"),
        (["ten GBP"], "is not an amount"),
        (["-5"], "must be 0 or more"),
        (["Infinity"], "is not an amount"),
        (["100", "200 USD"], "gives USD twice"),
    ],
)
def test_budget_parse_refuses_bad_values(values: list[str], message: str) -> None:
    """A --max-spend that is not a non-negative amount is a ValidationError on max_spend."""
    with pytest.raises(ValidationError, match=message) as raised:
        Budget.parse(values)
    assert [p.field for p in raised.value.problems] == ["max_spend"]


def test_rows_beyond_the_budget_are_skipped_and_cheaper_ones_still_fit(
    tmp_path: Path, catalog: list[Gift]
) -> None:
    """Rows are reserved in order; one that would pass the cap is skipped, later cheaper
    ones that still fit are planned, and the planned total never passes the cap."""
    gifts = [COFFEE, STARBUCKS_10, VISA_50, DOORDASH_25, STARBUCKS_10, "gft_phys_cookie_box"]
    path = write_csv(tmp_path / "in.csv", [person(n, gift_id=g) for n, g in enumerate(gifts)])
    summary, rows = plan(path, catalog, budget=Budget.parse(["100"]))
    # 68.50 + 10 = 78.50; +50 no; +25 no; +10 = 88.50; +62 no.
    assert {n: row.state for n, row in rows.items()} == {
        2: S.PLANNED,
        3: S.PLANNED,
        4: S.SKIPPED,
        5: S.SKIPPED,
        6: S.PLANNED,
        7: S.SKIPPED,
    }
    planned_high = sum((high(r) for r in rows.values() if r.state is S.PLANNED), Decimal(0))
    assert planned_high == Decimal("88.50")
    assert summary.estimate["USD"][1] == Decimal("88.50")
    assert summary.skipped == {"budget": 3}
    skipped = rows[4]
    assert skipped.skip_kind == "budget"
    assert skipped.send_key is None
    assert skipped.error == (
        "over max_spend: it needs up to 50.00 USD and 21.50 of the 100.00 USD budget is left"
        " (row 4)"
    )


def test_a_budget_exactly_used_up_still_plans_the_last_row(
    tmp_path: Path, catalog: list[Gift]
) -> None:
    """A row whose high end makes the total exactly the cap fits."""
    path = write_csv(tmp_path / "in.csv", [person(1), person(2), person(3)])
    _, rows = plan(path, catalog, budget=Budget.parse(["100.00"]))
    assert [rows[n].state for n in (2, 3, 4)] == [S.PLANNED, S.PLANNED, S.SKIPPED]


def test_the_budget_is_never_exceeded_over_a_long_mixed_file(
    tmp_path: Path, catalog: list[Gift]
) -> None:
    """Over many rows and chunks, planned rows stay under the cap and budget skips are
    exactly the rows that would not have fitted at their turn."""
    gifts = [
        VISA_50,
        STARBUCKS_10,
        DOORDASH_25,
        GLOBAL_100,
        COFFEE,
        "gft_phys_cookie_box",
        "gft_phys_headphones",
        "gft_don_wildlife_20",
    ]
    pick = random.Random(20240611)
    records = [person(n, gift_id=pick.choice(gifts)) for n in range(1, 1201)]
    path = write_csv(tmp_path / "in.csv", records)
    cap = Decimal("7777.77")
    summary, rows = plan(path, catalog, budget=Budget.parse([str(cap)]))
    reserved = Decimal(0)
    for n in sorted(rows):
        row = rows[n]
        if row.state is S.PLANNED:
            reserved += high(row)
            assert reserved <= cap
        else:
            assert row.skip_kind == "budget"
            assert reserved + high(row) > cap
    assert summary.skipped["budget"] > 0
    assert summary.planned > 0
    assert summary.estimate["USD"][1] == reserved


def test_a_gift_in_a_currency_without_a_cap_does_not_fit(
    tmp_path: Path, catalog: list[Gift]
) -> None:
    """There is no conversion: a GBP-priced gift under a USD-only budget is skipped."""
    path = write_csv(
        tmp_path / "in.csv", [person(1, gift_id=AMAZON_UK_25, **NO_ADDRESS), person(2)]
    )
    _, rows = plan(path, catalog, budget=Budget.parse(["1000"]))
    assert rows[2].skip_kind == "budget"
    assert "costs GBP and max_spend sets no GBP cap" in (rows[2].error or "")
    assert rows[3].state is S.PLANNED
    _, rows = plan(path, catalog, budget=Budget.parse(["1000", "25 GBP"]))
    assert rows[2].state is S.PLANNED


def test_a_row_over_the_budget_is_an_over_cap_error_with_its_figures() -> None:
    """Budget.reserve says why a row does not fit as an OverCapError: the cap's parameter,
    the currency, the limit, what is reserved already and what the row needs."""
    budget = Budget.parse(["100"])
    assert budget.reserve({"USD": (Decimal("60"), Decimal("68.50"))}, shipping_known=True) is None
    over = budget.reserve({"USD": (Decimal("50"), Decimal("50"))}, shipping_known=True)
    assert isinstance(over, OverCapError)
    assert (over.field, over.currency, over.limit, over.spent, over.needed, over.left) == (
        "max_spend",
        "USD",
        Decimal("100"),
        Decimal("68.50"),
        Decimal("50"),
        Decimal("31.50"),
    )
    pounds = budget.reserve({"GBP": (Decimal("5"), Decimal("5"))}, shipping_known=True)
    assert pounds is not None
    assert (pounds.currency, pounds.limit, pounds.left) == ("GBP", None, None)
    unbounded = budget.reserve({"USD": (Decimal("1"), Decimal("1"))}, shipping_known=False)
    assert unbounded is not None
    assert (unbounded.currency, unbounded.needed) == (None, None)
    assert budget.reserved == {"USD": Decimal("68.50")}  # nothing reserved for those


def test_a_budget_s_errors_name_the_parameter_that_set_it() -> None:
    with pytest.raises(ValidationError) as raised:
        Budget.parse(["lots"], field="daily_cap")
    assert [p.field for p in raised.value.problems] == ["daily_cap"]
    assert str(raised.value).startswith("daily_cap 'lots' is not an amount")
    over = Budget.parse(["1"], field="daily_cap").reserve(
        {"USD": (Decimal("2"), Decimal("2"))}, shipping_known=True
    )
    assert over is not None
    assert over.field == "daily_cap"
    assert Param("daily_cap") in Text(over.message).parts


def test_a_stored_skip_reason_keeps_the_parameter_it_names(
    tmp_path: Path, catalog: list[Gift]
) -> None:
    """A budget skip is stored with max_spend as a parameter, so whoever shows the row (the
    CLI, a report) words it its own way."""
    path = write_csv(
        tmp_path / "in.csv", [person(1, gift_id=AMAZON_UK_25, **NO_ADDRESS), person(2)]
    )
    _, rows = plan(path, catalog, budget=Budget.parse(["1000"]))
    error = rows[2].error
    assert isinstance(error, Text)
    assert Param("max_spend") in error.parts
    assert error == "over max_spend: it costs GBP and max_spend sets no GBP cap (row 2)"


def test_a_gift_priced_in_two_currencies_needs_both_caps(
    tmp_path: Path, catalog: list[Gift]
) -> None:
    """A GBP item with a USD fulfillment fee fits only when both currencies have room."""
    path = write_csv(tmp_path / "in.csv", [person(1, gift_id=LEATHER_JOURNAL)])
    _, rows = plan(path, catalog)
    assert rows[2].estimate == {
        "GBP": (Decimal("75.00"), Decimal("75.00")),
        "USD": (Decimal("10.00"), Decimal("15.00")),
    }
    _, rows = plan(path, catalog, budget=Budget.parse(["500 GBP"]))
    assert "sets no USD cap" in (rows[2].error or "")
    _, rows = plan(path, catalog, budget=Budget.parse(["500 GBP", "14.99"]))
    assert rows[2].skip_kind == "budget"
    _, rows = plan(path, catalog, budget=Budget.parse(["75 GBP", "15"]))
    assert rows[2].state is S.PLANNED


def test_a_skipped_row_reserves_nothing(tmp_path: Path, catalog: list[Gift]) -> None:
    """Rows skipped for any reason leave the budget to the rows after them."""
    records = [
        person(1, gift_id=AMAZON_UK_25, **NO_ADDRESS),
        person(2, email="bad"),
        person(2),
        person(2),
    ]
    path = write_csv(tmp_path / "in.csv", records)
    _, rows = plan(path, catalog, budget=Budget.parse(["50"]))
    assert [rows[n].skip_kind for n in (2, 3, 4, 5)] == ["budget", "invalid", None, "duplicate"]


def test_a_gift_without_a_shipping_rate_has_no_upper_bound(tmp_path: Path) -> None:
    """A physical gift with no published shipping rate cannot be budgeted, but can be planned."""
    unpriced = Gift(id="gft_crate", name="Crate", category="physical", price=Decimal("20"))
    priced = Gift(
        id="gft_box",
        name="Box",
        category="physical",
        price=Decimal("20"),
        shipping_estimate=ShippingEstimate(domestic=Decimal("5"), international=Decimal("9")),
    )
    path = write_csv(
        tmp_path / "in.csv", [person(1, gift_id="gft_crate"), person(2, gift_id="gft_box")]
    )
    summary, rows = plan(path, [unpriced, priced])
    assert [rows[n].state for n in (2, 3)] == [S.PLANNED, S.PLANNED]
    assert summary.shipping_unknown == 1
    _, rows = plan(path, [unpriced, priced], budget=Budget.parse(["1000"]))
    assert rows[2].skip_kind == "budget"
    assert "shipping rate is not published" in (rows[2].error or "")
    assert rows[3].state is S.PLANNED


def test_plan_options_record_the_budget(tmp_path: Path) -> None:
    """A run's recorded options carry the caps as strings, exactly."""
    options = PlanOptions(
        run_id="r",
        budget=Budget.parse(["1234.50", "10 GBP"]),
        template=MessageTemplate("Hi {first_name}"),
        cooldown_days=3,
    )
    recorded = options.as_options()
    assert recorded["max_spend"] == {"USD": "1234.50", "GBP": "10"}
    assert recorded["message_template"] == "Hi {first_name}"
    assert recorded["cooldown_days"] == 3


# --- the engine: dry runs and prepared runs ---------------------------------------------


def test_a_dry_run_writes_nothing_to_the_history(
    tmp_path: Path, catalog: list[Gift], history: Ledger
) -> None:
    """dry_run plans into a scratch ledger, reading the history only for the cool-down."""
    submitted_earlier(history, "earlier", ["ada1@example.com"])
    before = history.runs()
    path = write_csv(tmp_path / "in.csv", [person(1), person(2), person(3, email="x")])
    spec = BatchSpec(
        path=str(path), run_id="try-1", cooldown_days=7, max_spend=["1000"], allow_resend=True
    )
    summary, scratch, run_id = dry_run(spec, catalog, history=history, base_url=BASE_URL)
    try:
        assert run_id == "try-1"
        assert summary.planned == 1
        assert summary.skipped == {"cooldown": 1, "invalid": 1}
        assert [r.skip_kind for r in scratch.rows(run_id)] == ["cooldown", None, "invalid"]
    finally:
        scratch.close()
    assert history.runs() == before
    assert history.run("try-1") is None


def test_a_dry_run_without_history_or_run_id(tmp_path: Path, catalog: list[Gift]) -> None:
    """Without a history or a run id, a dry run still plans, under a fresh run id."""
    path = write_csv(tmp_path / "in.csv", [person(1)])
    summary, scratch, run_id = dry_run(
        BatchSpec(path=str(path)), catalog, history=None, base_url=BASE_URL
    )
    try:
        assert run_id.startswith("in-")  # named after the file (in.csv) and its content
        assert summary.planned == 1
        assert scratch.counts(run_id) == {S.PLANNED: 1}
    finally:
        scratch.close()


def test_prepare_run_plans_once_and_then_resumes(
    tmp_path: Path, catalog: list[Gift], history: Ledger
) -> None:
    """The first prepare_run plans the run; the same run id again resumes it untouched."""
    path = write_csv(tmp_path / "in.csv", [person(1), person(2, email="")])
    spec = BatchSpec(path=str(path), run_id="run-1", max_spend=["60"])
    first = prepare_run(history, spec, catalog, base_url=BASE_URL)
    assert first.resumed is False
    assert first.summary is not None
    assert first.summary.planned == 1
    assert first.run.run_id == "run-1"
    assert first.run.rows_total == 2
    assert first.run.input_path == str(path)
    assert first.run.options["max_spend"] == {"USD": "60"}
    assert history.counts("run-1") == {S.PLANNED: 1, S.SKIPPED: 1}
    keys = [r.send_key for r in history.rows("run-1")]
    history.confirm("run-1")

    again = prepare_run(history, spec, catalog, base_url=BASE_URL + "/")
    assert again.resumed is True
    assert again.summary is None
    assert again.run == history.require_run("run-1")
    assert [r.send_key for r in history.rows("run-1")] == keys


def test_a_changed_file_does_not_resume(
    tmp_path: Path, catalog: list[Gift], history: Ledger
) -> None:
    """Resuming a run id with a file that changed since it was planned is refused."""
    path = write_csv(tmp_path / "in.csv", [person(1)])
    spec = BatchSpec(path=str(path), run_id="run-1")
    prepare_run(history, spec, catalog, base_url=BASE_URL)
    history.confirm("run-1")
    write_csv(path, [person(1), person(2)])
    with pytest.raises(LedgerError, match="different version of this file"):
        prepare_run(history, spec, catalog, base_url=BASE_URL)
    assert history.counts("run-1") == {S.PLANNED: 1}


def test_a_run_is_only_resumed_for_its_own_host(
    tmp_path: Path, catalog: list[Gift], history: Ledger
) -> None:
    """A run planned for one API host is never resumed against another."""
    path = write_csv(tmp_path / "in.csv", [person(1)])
    spec = BatchSpec(path=str(path), run_id="run-1")
    prepared = prepare_run(history, spec, catalog, base_url=BASE_URL)
    history.confirm("run-1")
    with pytest.raises(LedgerError, match=r"sends to http://127.0.0.1:8000, not https://api"):
        prepare_run(history, spec, catalog, base_url="https://api.sendoso.com")
    check_host(prepared.run, BASE_URL + "/")
    with pytest.raises(LedgerError, match="base_url"):
        check_host(prepared.run, "http://127.0.0.1:9000")


@pytest.mark.parametrize("run_id", ["   ", "x" * 121, "tab\there"])
def test_a_bad_run_id_is_refused(tmp_path: Path, catalog: list[Gift], run_id: str) -> None:
    """--run-id must be 1 to 120 printable characters."""
    path = write_csv(tmp_path / "in.csv", [person(1)])
    with Ledger(f"sqlite:///{tmp_path}/ledger.db") as ledger:
        with pytest.raises(ValidationError, match="run_id"):
            prepare_run(
                ledger, BatchSpec(path=str(path), run_id=run_id), catalog, base_url=BASE_URL
            )
        assert ledger.runs() == []


def test_bad_plan_options_fail_before_anything_is_written(
    tmp_path: Path, catalog: list[Gift]
) -> None:
    """A negative cool-down or a template with an unknown placeholder plans nothing."""
    path = write_csv(tmp_path / "in.csv", [person(1)])
    with Ledger(f"sqlite:///{tmp_path}/ledger.db") as ledger:
        with pytest.raises(ValidationError, match="cooldown_days"):
            prepare_run(
                ledger,
                BatchSpec(path=str(path), run_id="r", cooldown_days=-1),
                catalog,
                base_url=BASE_URL,
            )
        with pytest.raises(TemplateError, match="first_nmae"):
            prepare_run(
                ledger,
                BatchSpec(path=str(path), run_id="r", message_template="Hi {first_nmae}"),
                catalog,
                base_url=BASE_URL,
            )
        assert ledger.runs() == []


def test_prepare_run_applies_the_cool_down_from_its_own_ledger(
    tmp_path: Path, catalog: list[Gift], ledger_url: str
) -> None:
    """A real run with --cooldown skips recipients an earlier run of the ledger sent to
    (on SQLite too, where the planning transaction holds the write lock)."""
    with Ledger(ledger_url, busy_timeout=2) as ledger:
        submitted_earlier(ledger, "earlier", ["ada1@example.com"])
        path = write_csv(tmp_path / "in.csv", [person(1), person(2)])
        spec = BatchSpec(path=str(path), run_id="run-1", cooldown_days=7, allow_resend=True)
        prepared = prepare_run(ledger, spec, catalog, base_url=BASE_URL)
        assert prepared.summary is not None
        assert prepared.summary.skipped == {"cooldown": 1}
        assert ledger.skip_counts("run-1") == {"cooldown": 1}
        assert [r.skip_kind for r in ledger.rows("run-1")] == ["cooldown", None]


def test_summary_matches_the_ledger(tmp_path: Path, catalog: list[Gift]) -> None:
    """The plan summary's counts agree with what was written."""
    records = [person(n, gift_id=g) for n, g in enumerate([VISA_50, COFFEE, VISA_50, COFFEE])]
    records += [person(0), person(9, email="")]
    path = write_csv(tmp_path / "in.csv", records)
    summary, rows = plan(path, catalog, budget=Budget.parse(["200"]))
    states = [r.state for r in rows.values()]
    assert summary.rows == len(rows) == 6
    assert summary.planned == states.count(S.PLANNED)
    assert sum(summary.skipped.values()) == states.count(S.SKIPPED)
    assert summary.per_gift == {
        g: sum(1 for r in rows.values() if r.state is S.PLANNED and r.gift_id == g)
        for g in {r.gift_id for r in rows.values() if r.state is S.PLANNED}
    }
    low = sum((r.estimate["USD"][0] for r in rows.values() if r.state is S.PLANNED), Decimal(0))  # type: ignore[index]
    assert summary.estimate["USD"] == [
        low,
        sum((high(r) for r in rows.values() if r.state is S.PLANNED), Decimal(0)),
    ]


def test_an_egift_needs_only_the_country_of_an_incomplete_address(
    tmp_path: Path, catalog: list[Gift]
) -> None:
    """An export's partial address does not sink an eGift, but its country still decides
    whether the gift can go there (a US-only card to a GB recipient is refused)."""
    path = write_csv(
        tmp_path / "in.csv",
        [
            person(1, **{"address.postal_code": "", "address.line1": ""}),
            person(2, **{**NO_ADDRESS, "address.country": "United Kingdom"}),
            person(3, gift_id=AMAZON_UK_25, **{**NO_ADDRESS, "address.country": "GB"}),
        ],
    )
    _, rows = plan(path, catalog)
    assert rows[2].state is S.PLANNED
    assert rows[2].request is not None
    assert "address" not in rows[2].request
    assert rows[3].state is S.SKIPPED
    assert rows[3].error is not None
    assert "not available in GB" in rows[3].error
    assert "(row 3)" in rows[3].error
    assert rows[4].state is S.PLANNED


def test_a_multi_line_street_cell_becomes_line1_and_line2(
    tmp_path: Path, catalog: list[Gift]
) -> None:
    """Salesforce puts every street line in one "Mailing Street" cell."""
    street = {"address.line1": "1 Main St\nSuite 200\nFloor 3"}
    path = write_csv(tmp_path / "in.csv", [person(1, gift_id=COFFEE, **street)])
    _, rows = plan(path, catalog)
    assert rows[2].state is S.PLANNED, rows[2].error
    assert rows[2].request is not None
    address = rows[2].request["address"]
    assert (address["line1"], address["line2"]) == ("1 Main St", "Suite 200, Floor 3")


def test_a_plan_never_approved_is_planned_again_with_the_new_options(
    tmp_path: Path, catalog: list[Gift], history: Ledger
) -> None:
    """A plan saved at a declined prompt blocks nothing: the corrected command re-plans it."""
    path = write_csv(tmp_path / "in.csv", [person(1), person(2)])
    prepare_run(history, BatchSpec(path=str(path), run_id="r", max_spend=["50"]), catalog,
                base_url=BASE_URL)  # fmt: skip
    assert history.counts("r") == {S.PLANNED: 1, S.SKIPPED: 1}
    again = prepare_run(
        history, BatchSpec(path=str(path), run_id="r", max_spend=["500"]), catalog,
        base_url=BASE_URL,
    )  # fmt: skip
    assert again.resumed is False
    assert history.counts("r") == {S.PLANNED: 2}


def test_recipients_sent_the_same_gift_by_an_earlier_run_are_skipped(
    tmp_path: Path, catalog: list[Gift], history: Ledger
) -> None:
    """Fix a file and run it again: the rows an earlier run already sent are duplicates
    (naming that run), unless --allow-resend; other hosts' runs do not count."""
    submitted_earlier(history, "earlier", ["ada1@example.com"])
    path = write_csv(tmp_path / "in.csv", [person(1), person(2)])
    summary, rows = plan(path, catalog, history=history, base_url=BASE_URL)
    assert summary.skipped == {"duplicate": 1}
    assert rows[2].error is not None
    assert "in run earlier" in rows[2].error
    assert "allow_resend sends it again" in rows[2].error
    resend, _ = plan(path, catalog, history=history, base_url=BASE_URL, allow_resend=True)
    assert resend.planned == 2
    elsewhere, _ = plan(path, catalog, history=history, base_url="https://api.sendoso.com")
    assert elsewhere.planned == 2


def plan_source_rows(rows: Sequence[SourceRow], catalog: Sequence[Gift]) -> dict[int, LedgerRow]:
    """Plan rows a library caller built by hand into a throwaway ledger."""
    with Ledger("sqlite://") as scratch:
        with scratch.new_run(RunInfo("run-1", BASE_URL)) as writer:
            plan_rows(rows, catalog, PlanOptions(run_id="run-1"), writer)
        return {row.number: row for row in scratch.rows("run-1")}


def test_an_egift_rows_address_with_an_unknown_part_is_still_reported(
    catalog: list[Gift],
) -> None:
    """Dropping an eGift's address early (to save building it) must not hide a part the
    request would refuse, as rows built by a library caller may have."""
    fields = {k: v for k, v in person(1).items() if not k.startswith("address.")}
    rows = [
        SourceRow(2, {**fields, "address.zip": "62701", "address.country": "US"}, {}),
        SourceRow(3, {**fields, "email": "b@example.com", "address.country": "US"}, {}),
    ]
    planned = plan_source_rows(rows, catalog)
    assert planned[2].state is S.SKIPPED
    assert planned[2].error is not None
    assert "address.zip is not a known field" in planned[2].error
    assert planned[3].state is S.PLANNED


def test_a_catalog_listing_an_id_twice_is_read_as_check_against_reads_it(
    catalog: list[Gift],
) -> None:
    """The first item of an id wins, for the eGift rule as for the checks and the price."""
    card = next(g for g in catalog if g.id == VISA_50)
    physical = card.model_copy(update={"category": "physical", "requires_address": True})
    for first, state in ((card, S.PLANNED), (physical, S.SKIPPED)):
        other = physical if first is card else card
        fields = {**person(1), **NO_ADDRESS, "address.country": "US"}
        fields = {k: v for k, v in fields.items() if v}
        planned = plan_source_rows([SourceRow(2, fields, {})], [first, other])
        assert planned[2].state is state, planned[2].error


class _KeepRows(PlanWriter):
    """A plan writer that keeps what it is given, in memory instead of in a ledger."""

    def __init__(self) -> None:  # no connection: nothing is written
        self.rows: list[PlannedRow] = []

    def first_rows(self, dedupe_keys: Iterable[str]) -> dict[str, int]:
        return {}

    def add(self, rows: Sequence[PlannedRow]) -> None:
        self.rows += rows


def test_estimates_priced_once_per_run_follow_a_changed_catalog(
    tmp_path: Path, catalog: list[Gift]
) -> None:
    """Estimates are worked out once per gift and country of a run: every row still gets
    its own, and the next run with a changed catalog is priced from that catalog."""
    records = [person(n, gift_id=COFFEE) for n in range(3)] + [person(9, **CA_ADDRESS)]
    records[-1]["gift_id"] = COFFEE
    path = write_csv(tmp_path / "in.csv", records)
    _, rows = plan(path, catalog)
    assert [rows[n].estimate for n in (2, 3, 4)] == [
        {"USD": (Decimal("63.50"), Decimal("68.50"))}
    ] * 3
    abroad = rows[5].estimate
    assert abroad is not None
    assert abroad != rows[2].estimate
    dearer = [
        g.model_copy(update={"price": g.price + 10}) if g.id == COFFEE else g for g in catalog
    ]
    _, again = plan(path, dearer)
    assert again[2].estimate == {"USD": (Decimal("73.50"), Decimal("78.50"))}
    writer = _KeepRows()
    plan_rows(Source(path).rows(), catalog, PlanOptions(run_id="r"), writer)
    first, second = writer.rows[:2]
    assert first.estimate == second.estimate
    assert first.estimate is not second.estimate


def test_planning_leaves_the_garbage_collector_as_it_found_it(
    tmp_path: Path, catalog: list[Gift]
) -> None:
    path = write_csv(tmp_path / "in.csv", [person(n) for n in range(3)])

    def broken_rows() -> Iterator[SourceRow]:
        yield from Source(path).rows()
        raise OSError("disk gone")

    assert gc.isenabled()
    plan_rows(Source(path).rows(), catalog, PlanOptions(run_id="r"), _KeepRows())
    assert gc.isenabled()
    with pytest.raises(OSError, match="disk gone"):
        plan_rows(broken_rows(), catalog, PlanOptions(run_id="r"), _KeepRows())
    assert gc.isenabled()
    gc.disable()
    try:
        plan_rows(Source(path).rows(), catalog, PlanOptions(run_id="r"), _KeepRows())
        assert not gc.isenabled()
    finally:
        gc.enable()
