"""Properties of ``--message-template``: any text either parses or raises TemplateError,
and a parsed template is only ever filled by plain substitution (checked against a
reference renderer written independently here), so no attribute, index, conversion or
format spec is ever evaluated.

Hypothesis runs derandomized (a fixed seed per test) and without an example database.
"""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from sendoso.batch._template import MessageTemplate, TemplateError
from sendoso.errors import InputError

PROPERTY = settings(max_examples=400, derandomize=True, database=None, deadline=None)

# Text dense in the characters that matter to str.format, plus anything at all.
_SYNTAX = st.text(alphabet="{}!:.[]0123_ab rs>^\\'\"", max_size=40)
_TEMPLATES = st.one_of(_SYNTAX, st.text(max_size=120))
_NAMES = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,12}", fullmatch=True)
_VALUES = st.dictionaries(_NAMES, st.text(max_size=40), max_size=6)


def reference_render(text: str, values: dict[str, str]) -> str:
    """``{{``/``}}`` are braces, ``{name}`` is ``values[name]`` or nothing."""
    out: list[str] = []
    i = 0
    while i < len(text):
        if text.startswith(("{{", "}}"), i):
            out.append(text[i])
            i += 2
        elif text[i] == "{":
            end = text.index("}", i)
            out.append(values.get(text[i + 1 : end], ""))
            i = end + 1
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


class Spy(str):
    """A value that records any attribute looked up on it or any formatting of it."""

    touched: list[str] = []

    def __getattribute__(self, name: str) -> object:
        Spy.touched.append(name)
        return super().__getattribute__(name)

    def __format__(self, spec: str) -> str:
        Spy.touched.append(f"format:{spec}")
        return super().__format__(spec)


def parse(text: str) -> MessageTemplate | TemplateError:
    """The template, or the TemplateError it raised (any other exception escapes)."""
    try:
        return MessageTemplate(text)
    except TemplateError as exc:
        return exc


@PROPERTY
@given(_TEMPLATES, _VALUES)
def test_any_text_parses_or_is_a_template_error(text: str, values: dict[str, str]) -> None:
    template = parse(text)
    if isinstance(template, TemplateError):
        assert isinstance(template, InputError)
        assert "message_template" in str(template)
        return
    for name in template.placeholders:
        assert re.fullmatch(r"\w+", name)
        assert not name.isdecimal()
    assert template.render(values) == reference_render(text, values)


@PROPERTY
@given(
    st.text(max_size=20).filter(lambda t: "{" not in t and "}" not in t),
    _NAMES,
    st.sampled_from([".__class__", ".upper", "[0]", "['x']", "!r", "!s", ":>99", ":{x}", ".a.b"]),
)
def test_lookups_conversions_and_specs_are_always_refused(
    prefix: str, name: str, suffix: str
) -> None:
    assert isinstance(parse(prefix + "{" + name + suffix + "}"), TemplateError)


@PROPERTY
@given(st.lists(_NAMES, min_size=1, max_size=4), st.text(max_size=30))
def test_values_are_inserted_without_being_touched(names: list[str], value: str) -> None:
    """No attribute of a value is read and nothing is formatted: a value is only joined."""
    template = MessageTemplate(" ".join("{" + n + "}" for n in names))
    Spy.touched = []
    rendered = template.render(dict.fromkeys(names, Spy(value)))
    assert Spy.touched == []
    assert rendered == " ".join(value for _ in names)


@PROPERTY
@given(_TEMPLATES, st.sets(_NAMES, max_size=6))
def test_check_refuses_exactly_the_unknown_placeholders(text: str, available: set[str]) -> None:
    template = parse(text)
    if isinstance(template, TemplateError):
        return
    unknown = template.placeholders - available
    refusal: TemplateError | None = None
    try:
        template.check(available)
    except TemplateError as exc:
        refusal = exc
    assert (refusal is not None) == bool(unknown)
    assert all("{" + n + "}" in str(refusal) for n in unknown)
