"""Batch input files as CRMs and spreadsheets really export them."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import pytest

from sendoso.batch import ColumnMapping, Source, SourceError, SourceRow
from sendoso.batch._columns import FIELDS, placeholder_name
from sendoso.batch._records import MAX_CELL_CHARS
from sendoso.errors import SendosoError


def write(tmp_path: Path, name: str, content: str | bytes, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode(encoding))
    return path


def rows(path: Path, **options: object) -> list[SourceRow]:
    return list(Source(path, **options).rows())  # type: ignore[arg-type]


def mapped(headers: list[str]) -> dict[str, str]:
    return ColumnMapping.resolve(headers).columns


# --- column mapping -------------------------------------------------------------------


def test_salesforce_report_headers_are_mapped() -> None:
    headers = [
        "Contact ID",
        "First Name",
        "Last Name",
        "Title",
        "Account Name",
        "Email",
        "Mailing Street",
        "Mailing City",
        "Mailing State/Province",
        "Mailing Zip/Postal Code",
        "Mailing Country",
        "Lead Source",
    ]
    assert mapped(headers) == {
        "first_name": "First Name",
        "last_name": "Last Name",
        "email": "Email",
        "company": "Account Name",
        "title": "Title",
        "contact_id": "Contact ID",
        "address.line1": "Mailing Street",
        "address.city": "Mailing City",
        "address.state": "Mailing State/Province",
        "address.postal_code": "Mailing Zip/Postal Code",
        "address.country": "Mailing Country",
    }


def test_salesforce_api_names_prefer_the_iso_codes() -> None:
    headers = ["Id", "FirstName", "LastName", "MailingState", "MailingStateCode"]
    headers += ["MailingCountry", "MailingCountryCode", "MailingPostalCode"]
    assert mapped(headers) == {
        "first_name": "FirstName",
        "last_name": "LastName",
        "contact_id": "Id",
        "address.state": "MailingStateCode",
        "address.postal_code": "MailingPostalCode",
        "address.country": "MailingCountryCode",
    }


def test_hubspot_export_headers_are_mapped() -> None:
    headers = [
        "Record ID",
        "First Name",
        "Last Name",
        "Email",
        "Phone Number",
        "Company Name",
        "Job Title",
        "Street Address",
        "City",
        "State/Region",
        "Postal Code",
        "Country/Region",
        "Contact owner",
    ]
    assert mapped(headers) == {
        "first_name": "First Name",
        "last_name": "Last Name",
        "email": "Email",
        "company": "Company Name",
        "title": "Job Title",
        "contact_id": "Record ID",
        "address.line1": "Street Address",
        "address.city": "City",
        "address.state": "State/Region",
        "address.postal_code": "Postal Code",
        "address.country": "Country/Region",
    }


@pytest.mark.parametrize(
    ("header", "field"),
    [
        ("First Name", "first_name"),
        ("FirstName", "first_name"),
        ("first_name", "first_name"),
        ("  GIVEN name ", "first_name"),
        ("Surname", "last_name"),
        ("Family Name", "last_name"),
        ("E-mail", "email"),
        ("Email Address", "email"),
        ("Work Email", "email"),
        ("Organization", "company"),
        ("Job Title", "title"),
        ("Address", "address.line1"),
        ("Address Line 1", "address.line1"),
        ("Address 2", "address.line2"),
        ("Mailing Street 2", "address.line2"),
        ("Province", "address.state"),
        ("Region", "address.state"),
        ("ZIP Code", "address.postal_code"),
        ("Zip", "address.postal_code"),
        ("Postcode", "address.postal_code"),
        ("Zip/Postal Code", "address.postal_code"),
        ("Country Code", "address.country"),
        ("Gift", "gift_id"),
        ("Gift ID", "gift_id"),
        ("Size", "variant_id"),
        ("Variant ID", "variant_id"),
        ("Note", "message"),
        ("Gift Message", "message"),
        ("address.city", "address.city"),
        ("address_postal_code", "address.postal_code"),
        ("team_id", "team_id"),
    ],
)
def test_common_spellings_map_to_their_field(header: str, field: str) -> None:
    assert mapped(["Other", header]) == {field: header}


def test_the_most_specific_of_two_candidate_headers_wins() -> None:
    assert mapped(["Work Email", "Email"])["email"] == "Email"
    assert mapped(["E-mail", "Email"])["email"] == "E-mail"  # same spelling: the first
    assert mapped(["Address", "Street Address"])["address.line1"] == "Street Address"


def test_explicit_mapping_wins_and_takes_its_column_out_of_auto_mapping() -> None:
    mapping = ColumnMapping.resolve(
        ["Email", "Personal Email", "Title", "Town"],
        {"email": "Personal Email", "company": "Title", "city": "town"},
    )
    assert mapping.columns == {
        "email": "Personal Email",
        "company": "Title",
        "address.city": "Town",
    }
    assert mapping.describe() == [
        ("email", "Personal Email"),
        ("company", "Title"),
        ("address.city", "Town"),
    ]


def test_unknown_field_in_map_lists_the_fields() -> None:
    with pytest.raises(SourceError, match="unknown field 'zipcode'") as caught:
        ColumnMapping.resolve(["Zip"], {"zipcode": "Zip"})
    assert "address.postal_code" in str(caught.value)
    assert isinstance(caught.value, SendosoError)


def test_map_to_a_missing_column_names_it_and_lists_the_headers() -> None:
    with pytest.raises(SourceError) as caught:
        ColumnMapping.resolve(["First Name", "Email"], {"email": "Work Email"})
    assert str(caught.value) == (
        "mapping email=Work Email: there is no column 'Work Email'; "
        "the columns are: First Name, Email"
    )


def test_two_explicit_mappings_to_one_field_are_refused() -> None:
    with pytest.raises(SourceError, match=r"address\.city is mapped twice"):
        ColumnMapping.resolve(["A", "B"], {"city": "A", "address_city": "B"})


def test_duplicate_headers_are_fine_unless_mapped(tmp_path: Path) -> None:
    path = write(tmp_path, "dupes.csv", "Email,Notes,Notes\na@example.com,x,y\n")
    (row,) = rows(path)
    assert row.fields == {"email": "a@example.com"}
    assert row.columns == {"email": "a@example.com", "notes": "x"}

    path = write(tmp_path, "dupes2.csv", "Email,Name,Email\na@example.com,x,b@example.com\n")
    with pytest.raises(SourceError, match="the header has 'Email' more than once") as caught:
        Source(path).open()
    assert caught.value.row == 1
    # Choosing another column resolves it.
    mapping = Source(path, mapping={"email": "Name"}).mapping
    assert mapping.columns == {"email": "Name"}


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("Account Name", "account_name"),
        ("Mailing Zip/Postal Code", "mailing_zip_postal_code"),
        ("  -- Lead  Source -- ", "lead_source"),
        ("first__name", "first_name"),
        ("Prénom", "prénom"),
        ("!!!", ""),
    ],
)
def test_placeholder_name(header: str, name: str) -> None:
    assert placeholder_name(header) == name


# --- CSV as exported ------------------------------------------------------------------


def test_excel_export_with_bom_crlf_semicolons_and_a_multiline_cell(tmp_path: Path) -> None:
    content = (
        "\ufeffFirst Name;Last Name;Email;Message;;\r\n"
        'Zoë;Müller;zoe@example.de;"Danke!\r\nSee you in ""Berlin""";;\r\n'
        "Ada;Lovelace;ada@example.com;Thanks;;\r\n"
        "\r\n"
    )
    path = write(tmp_path, "excel.csv", content)
    source = Source(path)
    assert source.headers == ["First Name", "Last Name", "Email", "Message", "", ""]
    assert [r.number for r in source.rows()] == [2, 3]
    first, second = source.rows()
    assert first.fields == {
        "first_name": "Zoë",
        "last_name": "Müller",
        "email": "zoe@example.de",
        "message": 'Danke!\r\nSee you in "Berlin"',
    }
    assert first.problems == ()
    assert second.fields["first_name"] == "Ada"


def test_google_sheets_export(tmp_path: Path) -> None:
    content = (
        "Gift ID,First Name,Last Name,Email,Company,Street Address,City,State,Zip,Country\r\n"
        'gft_mug,Ada,Lovelace,ada@example.com,"Engines, Inc.",1 Main St,Springfield,IL,'
        "62701,US\r\n"
        ",,,,,,,,,\r\n"
        "gft_card,Grace,Hopper,grace@example.com,Navy,,,,,"
    )
    path = write(tmp_path, "sheets.csv", content)
    first, second = rows(path)
    assert first.number == 2
    assert first.fields["company"] == "Engines, Inc."
    assert first.fields["address.postal_code"] == "62701"
    assert second.number == 4  # the blank row is skipped but still counted
    assert second.fields == {
        "gift_id": "gft_card",
        "first_name": "Grace",
        "last_name": "Hopper",
        "email": "grace@example.com",
        "company": "Navy",
    }


def test_excel_unicode_text_is_utf16_tab_separated(tmp_path: Path) -> None:
    content = "First Name\tLast Name\tEmail\tCity\r\nZoë\tMüller\tzoe@example.de\tKöln\r\n"
    path = write(tmp_path, "unicode.txt", content, encoding="utf-16")
    source = Source(path)
    (row,) = source.rows()
    assert source.format == "csv"
    assert row.fields == {
        "first_name": "Zoë",
        "last_name": "Müller",
        "email": "zoe@example.de",
        "address.city": "Köln",
    }
    big_endian = write(tmp_path, "be.txt", b"\xfe\xff" + content.encode("utf-16-be"))
    assert rows(big_endian)[0].fields == row.fields


def test_pipe_delimiter_and_delimiter_override(tmp_path: Path) -> None:
    path = write(tmp_path, "pipes.csv", "Email|Company\na@example.com|Acme, Inc.\n")
    assert rows(path)[0].fields == {"email": "a@example.com", "company": "Acme, Inc."}
    path = write(tmp_path, "tabs.csv", "Email\tNotes, misc\na@example.com\tAcme\n")
    assert rows(path, delimiter="\\t")[0].fields == {"email": "a@example.com"}
    with pytest.raises(SourceError, match="one character"):
        Source(path, delimiter=";;")


def test_delimiter_in_the_data_does_not_fool_the_sniffer(tmp_path: Path) -> None:
    body = "".join(f"Ada{i},a{i}@example.com,see; you; there; soon\n" for i in range(50))
    path = write(tmp_path, "mixed.csv", "First Name,Email,Note\n" + body)
    assert rows(path)[0].fields == {
        "first_name": "Ada0",
        "email": "a0@example.com",
        "message": "see; you; there; soon",
    }


def test_single_column_file(tmp_path: Path) -> None:
    path = write(tmp_path, "one.csv", "email\na@example.com\nb@example.com\n")
    assert [r.fields for r in rows(path)] == [
        {"email": "a@example.com"},
        {"email": "b@example.com"},
    ]


def test_values_are_stripped_and_empty_cells_left_out(tmp_path: Path) -> None:
    path = write(tmp_path, "spaces.csv", " First Name , Email \n  Ada  ,   \n")
    (row,) = rows(path)
    assert row.fields == {"first_name": "Ada"}
    assert row.columns == {"first_name": "Ada"}


def test_row_numbers_count_records_not_lines(tmp_path: Path) -> None:
    content = (
        "\n"
        "First Name,Message\n"  # row 2: blank lines before the header count as rows
        'Ada,"line one\nline two\nline three"\n'
        "Bob,hi\n"
        "\n"
        "Cy,yo\n"
    )
    path = write(tmp_path, "numbers.csv", content)
    assert [(r.number, r.fields["first_name"]) for r in rows(path)] == [
        (3, "Ada"),
        (4, "Bob"),
        (6, "Cy"),
    ]


def test_header_only_file_has_no_rows(tmp_path: Path) -> None:
    path = write(tmp_path, "header.csv", "First Name,Email\r\n")
    source = Source(path)
    assert source.mapping.columns == {"first_name": "First Name", "email": "Email"}
    assert list(source.rows()) == []


@pytest.mark.parametrize("content", [b"", b"  \r\n\n", b"\xef\xbb\xbf\r\n"])
def test_empty_file(tmp_path: Path, content: bytes) -> None:
    path = write(tmp_path, "empty.csv", content)
    with pytest.raises(SourceError, match=r"empty\.csv is empty; it has no header row"):
        Source(path).open()


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"cannot read .*nope\.csv"):
        Source(tmp_path / "nope.csv").open()


def test_binary_file(tmp_path: Path) -> None:
    png = write(tmp_path, "photo.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64))
    with pytest.raises(SourceError, match=r"photo\.csv is not a text file"):
        Source(png).open()
    xlsx = write(tmp_path, "contacts.xlsx", b"PK\x03\x04\x14\x00\x06\x00" + bytes(64))
    with pytest.raises(SourceError, match="looks like an Excel workbook; save it as 'CSV UTF-8'"):
        Source(xlsx).open()


def test_non_utf8_file_names_the_row(tmp_path: Path) -> None:
    content = "First Name,Last Name\nAda,Lovelace\nBob,Smith\nZoë,Müller\n".encode("cp1252")
    path = write(tmp_path, "latin.csv", content)
    source = Source(path)
    got: list[SourceRow] = []
    with pytest.raises(SourceError) as caught:
        got.extend(source.rows())
    assert str(caught.value) == (
        f"{path} is not UTF-8 text (row 4); save it as 'CSV UTF-8' or pass encoding"
    )
    assert caught.value.row == 4
    assert [r.number for r in got] == [2, 3]
    assert rows(path, encoding="cp1252")[-1].fields["first_name"] == "Zoë"


def test_non_utf8_header(tmp_path: Path) -> None:
    path = write(tmp_path, "latin.csv", "Prénom,Email\nA,a@example.com\n".encode("latin-1"))
    with pytest.raises(SourceError, match=r"not UTF-8 text \(row 1\)"):
        Source(path).open()


def test_unknown_encoding(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", "Email\n")
    with pytest.raises(SourceError, match="unknown encoding 'klingon'"):
        Source(path, encoding="klingon").open()


def test_wrong_number_of_cells_is_a_row_problem(tmp_path: Path) -> None:
    content = (
        "First Name,Last Name,Email\n"
        "Ada,Lovelace,ada@example.com,,\n"  # trailing empty cells: fine
        "Bob,Smith,bob@example.com,extra\n"
        "Cy,cy@example.com\n"
        "Di,Prince,di@example.com\n"
    )
    path = write(tmp_path, "cells.csv", content)
    ok, extra, short, last = rows(path)
    assert ok.problems == ()
    assert last.problems == ()
    assert extra.problems[0].field == "row"
    assert extra.problems[0].code == "cell_count"
    assert extra.problems[0].message.startswith("this row has 4 cells but the header has 3")
    assert short.problems[0].message.startswith("this row has 2 cells but the header has 3")
    # What could be read is still there, for the report.
    assert short.fields == {"first_name": "Cy", "last_name": "cy@example.com"}


def test_huge_cell_is_a_row_problem_and_the_run_goes_on(tmp_path: Path) -> None:
    huge = "x" * 1_048_576
    content = f"Email,Message\na@example.com,{huge}\nb@example.com,hi\n"
    path = write(tmp_path, "huge.csv", content)
    big, small = rows(path)
    (problem,) = big.problems
    assert problem.field == "message"
    assert problem.code == "too_long"
    assert problem.message == "column 'Message' is 1,048,576 characters; the limit is 10,000"
    assert "message" not in big.fields
    assert "message" not in big.columns
    assert small.fields == {"email": "b@example.com", "message": "hi"}
    assert small.problems == ()


def test_cell_at_the_limit_is_kept(tmp_path: Path) -> None:
    path = write(tmp_path, "limit.csv", f"Email,Other\na@example.com,{'y' * MAX_CELL_CHARS}\n")
    (row,) = rows(path)
    assert row.problems == ()
    assert len(row.columns["other"]) == MAX_CELL_CHARS


def test_nul_byte_in_a_cell_is_a_row_problem(tmp_path: Path) -> None:
    filler = "".join(f"Name{i},n{i}@example.com\n" for i in range(500))  # past the first 8 KB
    path = write(tmp_path, "nul.csv", f"First Name,Email\n{filler}Ada\x00,ada@example.com\n")
    last = rows(path)[-1]
    assert last.number == 502
    assert [(p.field, p.code) for p in last.problems] == [("first_name", "invalid")]
    assert last.problems[0].message == "column 'First Name' contains a NUL character"
    assert last.fields == {"email": "ada@example.com"}


def test_nul_bytes_near_the_top_mean_not_text(tmp_path: Path) -> None:
    path = write(tmp_path, "nul.csv", "First Name,Email\nAda\x00,ada@example.com\n")
    with pytest.raises(SourceError, match="not a text file"):
        Source(path).open()


def test_unclosed_quote_is_a_source_error_with_its_row(tmp_path: Path) -> None:
    content = 'First Name,Message\nAda,hi\nBob,"oops\nCy,hello\nDi,bye\n'
    path = write(tmp_path, "quote.csv", content)
    got: list[SourceRow] = []
    with pytest.raises(SourceError, match="row 3 opens a quote") as caught:
        got.extend(Source(path).rows())
    assert caught.value.row == 3
    assert [r.number for r in got] == [2]


def test_unclosed_quote_in_a_big_file_stops_without_reading_it_all(tmp_path: Path) -> None:
    body = "".join(f"Name{i},hello there\n" for i in range(300_000))
    path = write(tmp_path, "quote.csv", f'First Name,Message\nAda,"oops\n{body}')
    tracemalloc.start()
    try:
        with pytest.raises(SourceError, match=r"row 2 is longer than 4,194,304 characters"):
            list(Source(path).rows())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024 * 1024


def test_unclosed_quote_in_the_header(tmp_path: Path) -> None:
    content = '"First Name,Email\n' + "".join(f"a,b{i}\n" for i in range(200))
    path = write(tmp_path, "header.csv", content)
    with pytest.raises(SourceError, match="row 1 opens a quote"):
        Source(path).open()


def test_streaming_keeps_memory_flat(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    line = (
        "Ada,Lovelace,ada{}@example.com,Analytical Engines Ltd,12 Long Street Name,"
        'Springfield,IL,62701,US,"Thanks for everything, Ada! See you soon."\r\n'
    )
    with path.open("w", newline="") as f:
        f.write(
            "First Name,Last Name,Email,Company,Mailing Street,Mailing City,"
            "Mailing State/Province,Mailing Zip/Postal Code,Mailing Country,Message\r\n"
        )
        f.writelines(line.format(i) for i in range(200_000))
    assert path.stat().st_size > 25_000_000
    tracemalloc.start()
    try:
        source = Source(path)
        count = 0
        last = None
        for row in source.rows():
            count += 1
            last = row
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert count == 200_000
    assert last is not None
    assert last.number == 200_001
    assert last.fields["email"] == "ada199999@example.com"
    assert peak < 5 * 1024 * 1024


def test_rows_can_be_read_again_and_fingerprint_follows_the_bytes(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", "Email\na@example.com\n")
    source = Source(path)
    assert [r.fields for r in source.rows()] == [r.fields for r in source.rows()]
    before = source.fingerprint()
    assert before == Source(path).fingerprint()
    assert len(before) == 64
    path.write_text("Email\nb@example.com\n")
    assert source.fingerprint() != before


def test_header_changing_between_reads_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", "Email\na@example.com\n")
    source = Source(path).open()
    path.write_text("Name,Email\nx,a@example.com\n")
    with pytest.raises(SourceError, match="changed while it was being read"):
        list(source.rows())


def test_placeholders(tmp_path: Path) -> None:
    path = write(
        tmp_path, "a.csv", "First Name,Account Name,Mailing Zip/Postal Code,2024\nA,B,C,D\n"
    )
    source = Source(path)
    names = source.placeholders()
    assert {"first_name", "account_name", "mailing_zip_postal_code", "address_city"} <= names
    assert {f.replace(".", "_") for f in FIELDS} <= names
    assert "2024" not in names  # would read as a positional placeholder
    (row,) = source.rows()
    assert row.columns == {
        "first_name": "A",
        "account_name": "B",
        "mailing_zip_postal_code": "C",
        "2024": "D",
    }


def test_format_detection(tmp_path: Path) -> None:
    assert Source(write(tmp_path, "a.tsv", "Email\n")).format == "csv"
    assert Source(write(tmp_path, "a.ndjson", '{"email": "a@example.com"}\n')).format == "jsonl"
    assert Source(write(tmp_path, "noext", '\n  {"email": "a@example.com"}\n')).format == "jsonl"
    assert Source(write(tmp_path, "noext2", "email\na@example.com\n")).format == "csv"
    forced = Source(write(tmp_path, "b.txt", '{"email": "a@example.com"}\n'), format="jsonl")
    assert [r.fields for r in forced.rows()] == [{"email": "a@example.com"}]
    with pytest.raises(SourceError, match="format"):
        Source(tmp_path / "a.tsv", format="xlsx")  # type: ignore[arg-type]


# --- JSON Lines -----------------------------------------------------------------------


def test_jsonl_with_nested_address_bad_lines_and_numbers(tmp_path: Path) -> None:
    lines = [
        json.dumps(
            {
                "first_name": "Ada",
                "Email Address": "ada@example.com",
                "contact_id": 12345678901234567890,
                "address": {"line1": "1 Main St", "zip": "62701", "country": "US"},
                "vip": True,
                "score": 0,
                "company": None,
            }
        ).replace('"score": 0', '"score": 1.50'),
        "",
        "{not json",
        "[1, 2, 3]",
        '{"first_name": "Bob", "tags": ["a"], "email": "bob@example.com"}',
        '{"first_name": "Cy", "contact_id": 7, "size": "XL", "Account Name": " Acme "}',
    ]
    path = write(tmp_path, "people.jsonl", "\n".join(lines) + "\n")
    source = Source(path)
    assert source.headers == [
        "first_name",
        "Email Address",
        "contact_id",
        "address.line1",
        "address.zip",
        "address.country",
        "vip",
        "score",
        "company",
    ]
    ada, bad, not_object, bob, cy = source.rows()
    assert ada.number == 1
    assert ada.problems == ()
    assert ada.fields == {
        "first_name": "Ada",
        "email": "ada@example.com",
        "contact_id": "12345678901234567890",
        "address.line1": "1 Main St",
        "address.postal_code": "62701",
        "address.country": "US",
    }
    assert ada.columns["vip"] == "true"
    assert ada.columns["score"] == "1.50"
    assert "company" not in ada.columns
    assert bad.number == 3
    assert bad.problems[0].code == "invalid_json"
    assert bad.problems[0].message.startswith("this line is not valid JSON: Expecting")
    assert not_object.number == 4
    assert not_object.problems[0].message == (
        "this line is a JSON list, not an object of named fields"
    )
    assert bob.problems[0].message == (
        "key 'tags' holds a JSON list; only text, numbers and true/false are accepted"
    )
    assert bob.fields == {"first_name": "Bob", "email": "bob@example.com"}
    assert cy.fields == {
        "first_name": "Cy",
        "contact_id": "7",
        "variant_id": "XL",
        "company": "Acme",
    }
    assert cy.columns["account_name"] == "Acme"


def test_jsonl_explicit_mapping(tmp_path: Path) -> None:
    content = '{"mail": "a@example.com", "email": "x@example.com"}\n{"email": "y@example.com"}\n'
    path = write(tmp_path, "m.jsonl", content)
    first, second = rows(path, mapping={"email": "Mail"})
    assert first.fields == {"email": "a@example.com"}
    assert second.fields == {}  # the chosen key is missing here; no silent substitute
    with pytest.raises(SourceError, match="no column 'wrong'"):
        Source(path, mapping={"email": "wrong"}).open()


def test_jsonl_nested_value_in_address_and_deep_nesting(tmp_path: Path) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    content = (
        '{"email": "a@example.com", "address": {"city": {"name": "Paris"}}}\n'
        + '{"email": "b@example.com", "x": '
        + deep
        + "}\n"
        + '{"email": "c@example.com", "message": "bad \\ud800 escape"}\n'
        + '{"email": "d@example.com", "address": {"city": "Oslo"}, "address.city": "Rome"}\n'
    )
    path = write(tmp_path, "n.jsonl", content)
    nested, too_deep, surrogate, twice = rows(path)
    assert [(p.field, p.code) for p in nested.problems] == [("address.city", "nested")]
    assert too_deep.problems[0].code == "invalid_json"
    assert surrogate.problems[0].field == "message"
    assert "surrogate" in surrogate.problems[0].message
    assert twice.problems[0].message.startswith("key 'address.city' is given twice")


def test_json_array_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "people.json", '[\n  {"email": "a@example.com"}\n]\n')
    with pytest.raises(SourceError, match="is a JSON array, not JSON Lines"):
        Source(path).open()


def test_jsonl_not_utf8(tmp_path: Path) -> None:
    content = '{"name": "Ada"}\n{"name": "Zoë"}\n'.encode("latin-1")
    path = write(tmp_path, "p.jsonl", content)
    with pytest.raises(SourceError, match=r"not UTF-8 text \(row 2\); save it as UTF-8") as caught:
        list(Source(path).rows())
    assert caught.value.row == 2


def test_jsonl_with_bom_and_crlf(tmp_path: Path) -> None:
    path = write(tmp_path, "p.jsonl", '\ufeff{"email": "a@example.com"}\r\n{"email": 1}\r\n')
    assert [r.fields for r in rows(path)] == [{"email": "a@example.com"}, {"email": "1"}]
