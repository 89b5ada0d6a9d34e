"""A column the run needs is found by its header in any common phrasing, or by its values;
one that is missing for every row is reported once, before planning, not once per row."""

from __future__ import annotations

import tracemalloc
from decimal import Decimal
from pathlib import Path

import pytest

from sendoso.batch import (
    BatchSpec,
    ColumnMapping,
    Ledger,
    Source,
    SourceError,
    dry_run,
    prepare_run,
)
from sendoso.cli._words import CLI_WORDING
from sendoso.models import Gift

BASE_URL = "http://127.0.0.1:8000"
EGIFT = Gift(id="gft_card", name="Gift Card", category="egift", price=Decimal("25"))
MUG = Gift(id="gft_mug", name="Mug", category="physical", price=Decimal("20"))
CATALOG = [EGIFT, MUG]


def write(tmp_path: Path, content: str, name: str = "people.csv") -> Path:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    return path


def mapped(headers: list[str]) -> dict[str, str]:
    return ColumnMapping.resolve(headers).columns


def plan(path: Path, **spec: object) -> tuple[int, int]:
    """(rows, planned) of a dry run of ``path``."""
    summary, scratch, _ = dry_run(
        BatchSpec(path=str(path), **spec),  # type: ignore[arg-type]
        CATALOG,
        history=None,
        base_url=BASE_URL,
    )
    scratch.close()
    return summary.rows, summary.planned


def refused(path: Path, **spec: object) -> SourceError:
    with pytest.raises(SourceError) as caught:
        plan(path, **spec)
    assert caught.value.field == "mapping"
    return caught.value


# --- headers in any common phrasing ---------------------------------------------------


@pytest.mark.parametrize(
    ("header", "field"),
    [
        ("Work E-mail", "email"),
        ("E_MAIL", "email"),
        ("Recipient Email Address", "email"),
        ("Business Mail", "email"),
        ("Shipping Zip", "address.postal_code"),
        ("Post Code", "address.postal_code"),
        ("Shipping Postal Code", "address.postal_code"),
        ("Street Line 1", "address.line1"),
        ("Shipping Address", "address.line1"),
        ("Addr", "address.line1"),
        ("Mailing Address", "address.line1"),
        ("Address Line 2", "address.line2"),
        ("Contact First Name", "first_name"),
        ("given", "first_name"),
        ("Contact Last Name", "last_name"),
        ("SURNAME", "last_name"),
        ("family_name", "last_name"),
        ("Shipping Country", "address.country"),
        ("State / Province", "address.state"),
        ("Billing Province", "address.state"),
        ("Town", "address.city"),
        ("Shipping City", "address.city"),
        ("Company", "company"),
        ("Employer", "company"),
        ("Notes", "message"),
        ("Personal Message", "message"),
    ],
)
def test_headers_in_any_common_phrasing_map_to_their_field(header: str, field: str) -> None:
    assert mapped(["Other", header]) == {field: header}


@pytest.mark.parametrize(
    "header",
    [
        "Mobile Phone",  # not a field of a send
        "Phone Number",
        "Last Activity Date",  # "last", but a date
        "First Touch Time",
        "Primary Associated Company ID",  # an identifier, not a company name
        "Account Owner Email",  # the owner's address, not the recipient's
        "Mailing List",
    ],
)
def test_headers_that_only_contain_a_word_of_a_field_are_not_taken_for_it(header: str) -> None:
    assert mapped(["Other", header]) == {}


def test_an_exact_header_wins_over_one_that_only_contains_the_word() -> None:
    headers = ["Last Name", "Last Name (Kana)", "Work E-mail", "Email"]
    assert mapped(headers) == {"last_name": "Last Name", "email": "Email"}


def test_two_headers_that_contain_the_word_are_not_guessed_between() -> None:
    mapping = ColumnMapping.resolve(["Name", "Office E-mail", "Home E-mail"])
    assert mapping.columns == {}
    assert mapping.lookalikes == {"email": ("Office E-mail", "Home E-mail")}


# --- columns by their values ----------------------------------------------------------


def test_a_column_of_email_addresses_is_the_email_column(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "Name,Contact,Company\nAda,ada@example.com,Acme\nBob,,Acme\nCy,cy@example.org,Acme\n",
    )
    source = Source(path)
    assert source.mapping.columns["email"] == "Contact"
    assert [r.fields.get("email") for r in source.rows()] == [
        "ada@example.com",
        None,
        "cy@example.org",
    ]


def test_a_header_that_says_email_over_values_that_do_not_is_not_taken(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "Email Opt Out,Contact\nfalse,ada@example.com\ntrue,bob@example.com\n",
    )
    assert Source(path).mapping.columns == {"email": "Contact"}


def test_values_settle_which_of_two_email_headers_holds_addresses(tmp_path: Path) -> None:
    path = write(tmp_path, "Office E-mail,E-mail Bounced\nada@example.com,no\nbob@example.com,no\n")
    assert Source(path).mapping.columns == {"email": "Office E-mail"}


def test_two_columns_of_email_addresses_are_reported_not_guessed(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "First,Last,Primary,Secondary,Gift\n"
        "Ada,Lovelace,ada@example.com,ada@home.example,gft_card\n",
    )
    error = refused(path, message_template="Thanks")
    message = str(error)
    assert "no column maps to email" in message
    assert "'Primary', 'Secondary'" in message
    assert "mapping email=Primary" in message
    assert "--map email=Primary" in error.worded(CLI_WORDING)
    assert plan(path, message_template="Thanks", mapping={"email": "Secondary"}) == (1, 1)


def test_values_are_sampled_from_the_head_of_a_large_file_without_reading_it_all(
    tmp_path: Path,
) -> None:
    body = "".join(f"Ada{i},Lovelace,ada{i}@example.com,gft_card\n" for i in range(200_000))
    path = write(tmp_path, "First,Last,Contact,Gift\n" + body)
    with path.open("ab") as f:
        f.write(b"Bad,Row,\xff\xfe@example.com,gft_card\n")  # not UTF-8, far below the head
    tracemalloc.start()
    try:
        source = Source(path)
        assert source.mapping.columns["email"] == "Contact"
        source.check_columns({"message": "Thanks"}, catalog=CATALOG)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2 * 1024 * 1024


# --- a missing column, once -----------------------------------------------------------


def test_no_email_column_is_one_error_before_planning(tmp_path: Path) -> None:
    rows = "".join(f"Ada{i},Lovelace,Acme,gft_card\n" for i in range(50))
    path = write(tmp_path, "First Name,Last Name,Company,Gift\n" + rows)
    error = refused(path, message_template="Thanks")
    message = str(error)
    assert message.count("no column maps to") == 1
    assert "(row" not in message
    assert "people.csv: no column maps to email" in message
    assert "the columns are: First Name, Last Name, Company, Gift" in message
    assert "--map email=COLUMN" in error.worded(CLI_WORDING)


def test_a_look_alike_header_is_named_with_the_mapping_that_takes_it(tmp_path: Path) -> None:
    path = write(tmp_path, "First Name,Last Name,Office E-mail,Home E-mail,Gift\n")
    error = refused(path, message_template="Thanks")
    assert str(error) == (
        f"{path}: no column maps to email; columns that look like email: "
        "'Office E-mail', 'Home E-mail' (use mapping email='Office E-mail')"
    )
    assert error.worded(CLI_WORDING).endswith("(use --map email='Office E-mail')")


def test_no_message_column_and_no_template_is_one_error(tmp_path: Path) -> None:
    path = write(tmp_path, "First Name,Last Name,Email,Gift\nAda,L,ada@example.com,gft_card\n")
    error = refused(path)
    assert "no column maps to message" in str(error)
    assert "--message-template" in error.worded(CLI_WORDING)
    assert plan(path, message_template="Thanks") == (1, 1)


def test_no_gift_column_and_no_gift_id_is_one_error(tmp_path: Path) -> None:
    path = write(tmp_path, "First Name,Last Name,Email,Note\nAda,L,ada@example.com,Hi\n")
    error = refused(path)
    assert "no column maps to gift_id" in str(error)
    assert "--gift-id" in error.worded(CLI_WORDING)
    assert plan(path, gift_id="gft_card") == (1, 1)


def test_every_missing_field_is_named_in_the_one_error(tmp_path: Path) -> None:
    path = write(tmp_path, "Name,Company\nAda,Acme\n")
    message = str(refused(path))
    assert "no column maps to gift_id (use mapping gift_id=COLUMN, or gift_id" in message
    assert "no column maps to first_name, last_name, email (use mapping FIELD=COLUMN)" in message
    assert "no column maps to message (use mapping message=COLUMN, or message_template" in message


def test_a_physical_gift_for_everyone_needs_the_address_columns(tmp_path: Path) -> None:
    path = write(tmp_path, "First Name,Last Name,Email,Country\nAda,L,ada@example.com,US\n")
    message = str(refused(path, gift_id="gft_mug", message_template="Thanks"))
    assert (
        "no column maps to address.line1, address.city, address.postal_code, which Mug needs"
    ) in message
    assert "address.country" not in message
    # An eGift needs no address (only the country, which decides where it can go).
    assert plan(path, gift_id="gft_card", message_template="Thanks") == (1, 1)


def test_a_gift_column_leaves_the_address_to_each_row(tmp_path: Path) -> None:
    path = write(tmp_path, "First Name,Last Name,Email,Gift\nAda,L,ada@example.com,gft_card\n")
    assert plan(path, message_template="Thanks") == (1, 1)


def test_some_rows_without_a_value_are_still_reported_per_row(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "First Name,Last Name,Email,Gift\nAda,L,ada@example.com,gft_card\nBob,L,,gft_card\n",
    )
    assert plan(path, message_template="Thanks") == (2, 1)


def test_prepare_run_plans_nothing_when_a_column_is_missing(tmp_path: Path) -> None:
    path = write(tmp_path, "First Name,Last Name,Gift\nAda,L,gft_card\n")
    with Ledger(f"sqlite:///{tmp_path}/ledger.db") as ledger:
        with pytest.raises(SourceError, match="no column maps to email"):
            prepare_run(
                ledger,
                BatchSpec(path=str(path), run_id="r1", message_template="Hi"),
                CATALOG,
                base_url=BASE_URL,
            )
        assert ledger.run("r1") is None


def test_json_lines_keys_of_the_first_records_count(tmp_path: Path) -> None:
    lines = [
        '{"first_name": "Ada", "last_name": "L", "email": "ada@example.com",'
        ' "gift_id": "gft_card"}',
        '{"first_name": "Bob", "last_name": "L", "email": "bob@example.com",'
        ' "gift_id": "gft_card", "message": "Hi"}',
    ]
    path = write(tmp_path, "\n".join(lines) + "\n", name="people.jsonl")
    assert plan(path) == (2, 1)
    path = write(tmp_path, lines[0] + "\n", name="none.jsonl")
    assert "no column maps to message" in str(refused(path))


def test_json_lines_tell_the_email_key_by_its_values(tmp_path: Path) -> None:
    lines = [
        '{"first": "Ada", "email_opt_out": false, "contact": "ada@example.com"}',
        '{"first": "Bob", "email_opt_out": true, "contact": "bob@example.com"}',
    ]
    path = write(tmp_path, "\n".join(lines) + "\n", name="people.jsonl")
    source = Source(path)
    assert source.mapping.columns == {"first_name": "first", "email": "contact"}
    assert [r.fields.get("email") for r in source.rows()] == [
        "ada@example.com",
        "bob@example.com",
    ]


def test_json_lines_whose_email_key_holds_no_addresses_leave_email_unmapped(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, '{"email_opt_out": false}\n{"email_opt_out": true}\n', name="a.jsonl")
    source = Source(path)
    assert source.mapping.columns == {}
    assert [r.fields for r in source.rows()] == [{}, {}]
