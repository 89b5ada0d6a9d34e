"""The shortcuts in validation give the verdicts of the slow paths they spare.

A plain ASCII address is accepted without asking email_validator, control characters are
found with one regular expression, and normalize() rebuilds only what changes: each is
checked here against the definition it stands for.
"""

from __future__ import annotations

import string
import sys
import unicodedata

import email_validator
import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import example, given, settings
from hypothesis import strategies as st

from sendoso import Address, SendRequest, normalize, validate
from sendoso.validation import MAX_FIELD_LENGTHS, _has_control_characters, _plainly_valid_email

BIDI = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def accepted(email: str, *, strict: bool = False) -> bool:
    try:
        validate_email(email, check_deliverability=False, strict=strict)
    except EmailNotValidError:
        return False
    return True


def test_control_characters_are_unicodes_cc_and_the_direction_overrides() -> None:
    for code in range(sys.maxunicode + 1):
        ch = chr(code)
        control = unicodedata.category(ch) == "Cc"
        assert _has_control_characters(ch) == (control or ch in BIDI), hex(code)
        in_text = (control and ch not in "\n\r\t") or ch in BIDI
        assert _has_control_characters(ch, allow_newlines=True) == in_text, hex(code)


ATEXT = string.ascii_letters + string.digits + "!#$%&'*+/=?^_`{|}~-"
LOCAL = st.text(ATEXT + '.." @é\\', min_size=0, max_size=70)
LABEL = st.one_of(
    st.text(string.ascii_letters + string.digits + "-", min_size=0, max_size=66),
    st.sampled_from(["xn--bcher-kva", "ab--cd", "-a", "a-", "a_b", "ü", "test", "local", "1"]),
)
TLD = st.one_of(
    st.sampled_from(["com", "COM", "de", "io", "test", "invalid", "localhost", "onion", "arpa"]),
    st.sampled_from(["local", "example", "c0m", "123", "a", "co", "xn--p1ai"]),
    LABEL,
)


@st.composite
def addresses(draw: st.DrawFn) -> str:
    labels = draw(st.lists(LABEL, min_size=0, max_size=4))
    domain = ".".join([*labels, draw(TLD)])
    separator = draw(st.sampled_from(["@", "@", "@", "@@", "", "<"]))
    return f"{draw(LOCAL)}{separator}{domain}"


@settings(max_examples=3000, deadline=None)
@given(st.one_of(addresses(), st.emails(), st.text(max_size=80)))
@example("ada.lovelace@example.com")
@example("Ada+gifts@Mail.Example.CO.UK")
@example("a@b.test")
@example("a@xn--bcher-kva.de")
@example("a" * 65 + "@example.com")
@example("a@" + "b" * 63 + ".com")
@example("a@" + "b" * 64 + ".com")
def test_an_address_taken_without_email_validator_is_one_it_accepts(email: str) -> None:
    if _plainly_valid_email(email):
        # Accepted whatever email_validator is asked: its defaults and its strict mode.
        assert accepted(email), email
        assert accepted(email, strict=True), email


@settings(max_examples=1000, deadline=None)
@given(st.one_of(addresses(), st.emails()))
def test_validate_gives_the_same_problems_as_with_email_validator_alone(
    email: str,
) -> None:
    request = SendRequest(
        gift_id="gft_card", first_name="Ada", last_name="Lovelace", email=email, message="Hi"
    )
    fast = validate(request)
    with pytest.MonkeyPatch.context() as patched:
        patched.setattr("sendoso.validation._plainly_valid_email", lambda email: False)
        slow = validate(request)
    assert fast == slow


@pytest.mark.parametrize(
    "email",
    [
        "ada.lovelace@example.com",
        "Ada.Lovelace+q4@Sub.Example-Corp.co.uk",
        "o'brien@example.ie",
        "x@a1.io",
    ],
)
def test_plain_addresses_take_the_shortcut(email: str) -> None:
    assert _plainly_valid_email(email)


@pytest.mark.parametrize(
    "email",
    [
        "josé@example.com",  # non-ASCII: email_validator decides
        "ada@bücher.de",
        "ada@xn--bcher-kva.de",  # Punycode: email_validator decodes it
        '"ada lovelace"@example.com',
        "ada@localhost",
        "ada@mail.test",  # special-use: email_validator refuses (or allows, if told to)
        "ada@example.invalid",
        ".ada@example.com",
        "ada..l@example.com",
        "ada@-example.com",
        "ada@example",
        "ada@example.c0m1",
        "a" * 65 + "@example.com",  # strict mode refuses local parts over 64
    ],
)
def test_unusual_addresses_are_left_to_email_validator(email: str) -> None:
    assert not _plainly_valid_email(email)


def test_a_special_use_name_added_at_run_time_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _plainly_valid_email("ada@mail.internal")
    names = [*email_validator.SPECIAL_USE_DOMAIN_NAMES, "internal"]
    monkeypatch.setattr(email_validator, "SPECIAL_USE_DOMAIN_NAMES", names)
    assert not _plainly_valid_email("ada@mail.internal")
    assert validate(SendRequest(email="ada@mail.internal"))[-1].code == "invalid_email"


def reference_normalize(request: SendRequest) -> SendRequest:
    """normalize() as it was: every field cleaned and both models built anew."""

    def clean(value: str | None) -> str | None:
        if value is None:
            return None
        return unicodedata.normalize("NFC", value).strip() or None

    address = None
    if request.address is not None:
        a = request.address
        address = Address(
            line1=clean(a.line1),
            line2=clean(a.line2),
            city=clean(a.city),
            state=(clean(a.state) or "").upper() or None,
            postal_code=(clean(a.postal_code) or "").upper() or None,
            country=(clean(a.country) or "").upper() or None,
        )
        if not any(address.model_dump().values()):
            address = None
    message = request.message
    if message is not None:
        message = unicodedata.normalize("NFC", message).strip() or None
    return SendRequest(
        gift_id=clean(request.gift_id),
        first_name=clean(request.first_name),
        last_name=clean(request.last_name),
        email=clean(request.email),
        company=clean(request.company),
        title=clean(request.title),
        address=address,
        message=message,
        variant_id=clean(request.variant_id),
        team_id=clean(request.team_id),
        metadata={k.strip(): v for k, v in request.metadata.items()},
    )


# Text that is often normal already, sometimes padded, decomposed or in lower case.
TEXT = st.one_of(
    st.none(),
    st.sampled_from(["Ada", "us", "US", " IL ", "e\u0301", "\u00e9", "", "  ", "a\nb"]),
    st.text(max_size=8),
)


@settings(max_examples=500, deadline=None)
@given(
    st.fixed_dictionaries(
        dict.fromkeys(
            (
                "gift_id",
                "first_name",
                "last_name",
                "email",
                "company",
                "title",
                "message",
                "variant_id",
                "team_id",
            ),
            TEXT,
        )
    ),
    st.one_of(
        st.none(),
        st.fixed_dictionaries(
            dict.fromkeys(("line1", "line2", "city", "state", "postal_code", "country"), TEXT)
        ),
    ),
    st.dictionaries(st.sampled_from(["a", " a", "b ", "c"]), st.text(max_size=4), max_size=3),
)
def test_normalize_gives_what_rebuilding_everything_gave(
    fields: dict[str, str | None], address: dict[str, str | None] | None, metadata: dict[str, str]
) -> None:
    request = SendRequest(
        **fields, address=Address(**address) if address else None, metadata=metadata
    )
    normal = normalize(request)
    assert normal == reference_normalize(request)
    assert normalize(normal) == normal


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["first_name", "company", "title", "email"]),
    st.text(max_size=260),
)
def test_length_and_character_problems_follow_the_rules(field: str, value: str) -> None:
    request = SendRequest.model_validate({field: value})
    codes = {p.code for p in validate(request) if p.field == field}
    if not value:
        return
    if len(value) > MAX_FIELD_LENGTHS[field]:
        assert "too_long" in codes
    elif any(unicodedata.category(c) == "Cc" or c in BIDI for c in value):
        assert "invalid" in codes
    else:
        assert codes <= {"invalid_email"}
