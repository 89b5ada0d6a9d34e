"""--message-template: plain named placeholders only, filled without running anything."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sendoso.batch import Source, SourceRow
from sendoso.batch._template import MessageTemplate, TemplateError, template_values
from sendoso.errors import SendosoError


def test_render_fills_placeholders() -> None:
    template = MessageTemplate("Hi {first_name}, thanks from all of us at {company}!")
    assert template.placeholders == {"first_name", "company"}
    assert template.text == "Hi {first_name}, thanks from all of us at {company}!"
    assert (
        template.render({"first_name": "Ada", "company": "Acme"})
        == "Hi Ada, thanks from all of us at Acme!"
    )


def test_missing_or_empty_values_render_empty() -> None:
    template = MessageTemplate("Hi {first_name} {last_name}!")
    assert template.render({"first_name": ""}) == "Hi  !"


def test_values_are_not_expanded_again() -> None:
    template = MessageTemplate("{message}")
    assert template.render({"message": "{first_name.__class__} {0} {{"}) == (
        "{first_name.__class__} {0} {{"
    )


def test_literal_braces() -> None:
    template = MessageTemplate("{{not a placeholder}} for {first_name} }}{{")
    assert template.placeholders == {"first_name"}
    assert template.render({"first_name": "Ada"}) == "{not a placeholder} for Ada }{"


def test_template_without_placeholders() -> None:
    assert MessageTemplate("Thanks!").render({}) == "Thanks!"
    assert MessageTemplate("").render({"a": "b"}) == ""


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Hi {}", "{} in message_template has no name"),
        ("Hi {0}", "{0} in message_template has no name"),
        ("Hi {first_name.__class__}", "is not a plain name"),
        ("Hi {first_name.upper}", "is not a plain name"),
        ("Hi {a[0]}", "is not a plain name"),
        ("Hi {first name}", "is not a plain name"),
        ("Hi {a!r}", "{a!r} in message_template: conversions and format specs"),
        ("Hi {a:>999999}", "{a:>999999} in message_template: conversions and format specs"),
        ("Hi {a:{b}}", "conversions and format specs"),
        ("Hi {first_name", "message_template is not valid"),
        ("Hi }", "message_template is not valid"),
        ("Hi {", "message_template is not valid"),
    ],
)
def test_rejected_forms(text: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message.replace("{", r"\{").replace("[", r"\[")):
        MessageTemplate(text)


def test_template_error_is_a_sendoso_error() -> None:
    assert issubclass(TemplateError, SendosoError)


def test_unknown_placeholder_names_it_and_lists_the_choices() -> None:
    template = MessageTemplate("Hi {foo}")
    with pytest.raises(TemplateError) as caught:
        template.check(["last_name", "first_name", "account_name"])
    assert str(caught.value) == (
        "unknown placeholder {foo} in message_template; "
        "use one of: first_name, last_name, account_name"
    )


def test_unknown_placeholder_suggests_a_close_name() -> None:
    template = MessageTemplate("Hi {frist_name} {nope}")
    with pytest.raises(TemplateError, match=r"placeholders \{frist_name\}, \{nope\}") as caught:
        template.check(["first_name", "email"])
    assert "(did you mean {first_name}?)" in str(caught.value)


def test_check_against_a_file(tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    path.write_text("First Name,Account Name,Mailing City\nAda,Acme,Paris\n")
    source = Source(path)
    template = MessageTemplate("Hi {first_name} of {account_name} in {address_city}")
    template.check(source.placeholders())
    (row,) = source.rows()
    assert template.render(template_values(row)) == "Hi Ada of Acme in Paris"
    with pytest.raises(TemplateError, match=r"unknown placeholder \{lead_source\}"):
        MessageTemplate("{lead_source}").check(source.placeholders())


def test_template_values_send_fields_win_over_columns() -> None:
    row = SourceRow(
        number=2,
        fields={"email": "work@example.com", "address.city": "Paris"},
        columns={"email": "home@example.com", "work_email": "work@example.com", "x": "y"},
        problems=(),
    )
    values = template_values(row)
    assert values["email"] == "work@example.com"
    assert values["address_city"] == "Paris"
    assert values["first_name"] == ""
    assert values["x"] == "y"
    assert values["work_email"] == "work@example.com"


@given(st.text(max_size=200), st.dictionaries(st.text(max_size=10), st.text(max_size=50)))
def test_render_never_raises(text: str, values: dict[str, str]) -> None:
    try:
        template = MessageTemplate(text)
    except TemplateError:
        return
    rendered = template.render(values)
    # Each placeholder adds at most one value: no recursion, no padding.
    longest = max((len(v) for v in values.values()), default=0)
    assert len(rendered) <= len(text) + text.count("{") * longest


NAMES = st.sampled_from(["first_name", "email", "address_city", "account_name", "x", "work_email"])


@given(
    st.lists(st.tuples(st.text(max_size=5), NAMES), max_size=5),
    st.dictionaries(st.sampled_from(["first_name", "email", "address.city"]), st.text(max_size=5)),
    st.dictionaries(NAMES, st.text(max_size=5)),
)
def test_render_row_is_render_of_the_rows_values(
    parts: list[tuple[str, str]], fields: dict[str, str], columns: dict[str, str]
) -> None:
    text = "".join(
        literal.replace("{", "{{").replace("}", "}}") + "{" + name + "}" for literal, name in parts
    )
    template = MessageTemplate(text)
    row = SourceRow(number=2, fields=fields, columns=columns, problems=())
    assert template.render_row(row) == template.render(template_values(row))
