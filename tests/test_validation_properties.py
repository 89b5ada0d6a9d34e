"""Properties of send validation over arbitrary requests: it never raises, every problem
names a known field with a known code and a one-line message, the status is one the seed's
error table uses, normalising twice changes nothing, and every email verdict is
email_validator's own.

Hypothesis runs derandomized (a fixed seed per test) and without an example database.
"""

from __future__ import annotations

from typing import Any

from email_validator import EmailNotValidError, validate_email
from hypothesis import example, given, settings
from hypothesis import strategies as st

from sendoso import Address, SendRequest, normalize, validate
from sendoso.errors import ValidationError
from sendoso.resources._sends import request_from_fields
from sendoso.sandbox._catalog import CATALOG
from sendoso.validation import MAX_FIELD_LENGTHS, MAX_MESSAGE_LENGTH, http_status_for

PROPERTY = settings(max_examples=400, derandomize=True, database=None, deadline=None)

CODES = {
    "missing",
    "invalid",
    "too_long",
    "invalid_email",
    "not_eligible",
    "unknown_gift",
    "unknown_variant",
    "out_of_stock",
}
FIELDS = {
    "gift_id",
    "variant_id",
    "team_id",
    "first_name",
    "last_name",
    "email",
    "company",
    "title",
    "message",
    "address",
    "metadata",
}
FIELDS |= {f"address.{p}" for p in ("line1", "line2", "city", "state", "postal_code", "country")}

# Hostile text: control and bidi characters, look-alikes, combining marks, astral
# characters, lone surrogates, and the occasional text past every length limit.
_NASTY = st.text(
    alphabet=st.characters(codec=None)
    | st.sampled_from("\x00\r\n\t\u202e\u200b\ufeff\u0301\u0430@."),
    max_size=30,
)
_TEXT = st.one_of(
    st.none(), st.just(""), st.just("   "), _NASTY, st.text(min_size=250, max_size=300)
)


def _plausible(*values: str) -> st.SearchStrategy[str | None]:
    return st.one_of(st.sampled_from(values), _TEXT)


_EMAILS = st.one_of(
    st.sampled_from(
        [
            "ada@example.com",
            "ADA@Example.COM",
            "a.b+c@sub.example.co.uk",
            "zoë@example.de",
            "ada@ex\u0430mple.com",
            "ada@@example.com",
            "ada@localhost",
            "ada@example.invalid",
            "ada@xn--exmple-4nf.com",
            "ada@-example.com",
            '"quoted"@example.com',
            "x" * 65 + "@example.com",
        ]
    ),
    st.emails(),
    st.builds(lambda a, b: f"{a}@{b}", _NASTY, _NASTY),
    _TEXT,
)

_ADDRESSES = st.one_of(
    st.none(),
    st.builds(
        Address,
        line1=_plausible("1 Main St", "221B Baker Street"),
        line2=_TEXT,
        city=_plausible("Springfield", "London"),
        state=_plausible("IL", "il", "ON", "ZZ"),
        postal_code=_plausible("62701", "M5V 2T6", "SW1A 1AA", "123"),
        country=_plausible("US", "us", "CA", "GB", "DE", "XX", "USA", "United States"),
    ),
)

_REQUESTS = st.builds(
    SendRequest,
    gift_id=st.one_of(st.sampled_from([g.id for g in CATALOG]), _TEXT),
    first_name=_plausible("Ada", "Zoë"),
    last_name=_plausible("Lovelace"),
    email=_EMAILS,
    company=_TEXT,
    title=_TEXT,
    address=_ADDRESSES,
    message=st.one_of(_plausible("Thank you!"), st.text(min_size=990, max_size=1010)),
    variant_id=st.one_of(st.none(), st.sampled_from(["var_m", "var_xl", "nope"]), _TEXT),
    team_id=_TEXT,
    metadata=st.dictionaries(_NASTY, st.text(max_size=600), max_size=3),
)
_GIFTS = st.one_of(st.none(), st.sampled_from(CATALOG))
_PHYSICAL = next(g for g in CATALOG if g.requires_address and g.ships_to)


# Regressions: a country and a metadata key were echoed raw, line break and all.
_RAW_ECHOES = SendRequest(
    gift_id=_PHYSICAL.id,
    first_name="Ada",
    last_name="Lovelace",
    email="ada@example.com",
    message="Hi",
    address=Address(line1="1 Main St", city="X", postal_code="1", country="U\nS"),
    metadata={"key\nwith\u202ebreak": "v" * 600},
)


@PROPERTY
@example(_RAW_ECHOES, _PHYSICAL)
@given(_REQUESTS, _GIFTS)
def test_validate_never_raises_and_reports_known_problems(request: SendRequest, gift: Any) -> None:
    normal = normalize(request)
    problems = validate(normal, gift)
    for problem in problems:
        assert problem.code in CODES, problem
        assert problem.field in FIELDS or problem.field.startswith("metadata."), problem
        assert problem.message
        # One line: it goes into a ledger cell, a report and a terminal table.
        assert "\n" not in problem.message
        assert "\r" not in problem.message
        # Bounded: an echoed value is cut or escaped, never the whole of a huge input.
        assert len(problem.message) < 2000
    assert http_status_for(problems) in {400, 404, 422}
    # Required fields are always reported when absent.
    for name in ("gift_id", "first_name", "last_name", "email", "message"):
        if not getattr(normal, name):
            assert any(p.field == name and p.code == "missing" for p in problems), name
    for name in ("first_name", "last_name", "email", "company", "title"):
        value = getattr(normal, name)
        if value is not None and len(value) > MAX_FIELD_LENGTHS[name]:
            assert any(p.field == name and p.code == "too_long" for p in problems), name
    if normal.message and len(normal.message) > MAX_MESSAGE_LENGTH:
        assert any(p.field == "message" and p.code == "too_long" for p in problems)


@PROPERTY
@given(_REQUESTS)
def test_normalize_is_idempotent(request: SendRequest) -> None:
    once = normalize(request)
    assert normalize(once) == once
    assert validate(normalize(once)) == validate(once)


@PROPERTY
@given(_EMAILS)
def test_the_email_verdict_is_email_validators(email: str | None) -> None:
    request = normalize(
        SendRequest(gift_id="g", first_name="A", last_name="B", email=email, message="m")
    )
    address = request.email
    if not address or len(address) > MAX_FIELD_LENGTHS["email"]:
        return
    flagged = any(p.field == "email" and p.code == "invalid_email" for p in validate(request))
    try:
        validate_email(address, check_deliverability=False)
    except EmailNotValidError:
        accepted = False
    else:
        accepted = True
    assert flagged is not accepted, address


_LOOSE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | _NASTY,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_NASTY, inner, max_size=3),
    max_leaves=8,
)


@PROPERTY
@given(
    st.dictionaries(
        st.sampled_from(["gift_id", "email", "address", "metadata", "message", "bogus"]) | _NASTY,
        _LOOSE,
        max_size=5,
    )
)
def test_loose_data_becomes_a_request_or_a_validation_error(fields: dict[str, Any]) -> None:
    """Whatever a JSON Lines record or an MCP call hands over: a request, or a
    ValidationError naming the fields, never a pydantic or type error."""
    try:
        request = request_from_fields(fields)
    except ValidationError as exc:
        problems = exc.problems
        assert problems
        assert all(p.field and p.message for p in problems)
        return
    validate(normalize(request))
