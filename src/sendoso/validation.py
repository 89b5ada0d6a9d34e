"""Client-side checks of a send request: pure functions over plain data, no I/O.

The sandbox applies the very same rules, so a request that passes here is one the sandbox
accepts (bar its documented magic inputs), and the HTTP status each problem maps to is the one
the seed's error table gives: 400 for a missing field or an invalid address, 404 for an unknown
gift or variant, 422 for an undeliverable email or a gift not eligible for the country.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable, Iterable
from typing import Any

import email_validator
import pycountry
from email_validator import EmailNotValidError, validate_email

from sendoso.errors import FieldProblem
from sendoso.models import Address, Gift, SendRequest

__all__ = [
    "MAX_FIELD_LENGTHS",
    "MAX_MESSAGE_LENGTH",
    "MAX_METADATA_KEYS",
    "STATES_REQUIRED",
    "check_country",
    "clean_text",
    "country_only_problems",
    "http_status_for",
    "normalize",
    "validate",
]

#: Longest personalised note, in characters; a note card holds about this much.
MAX_MESSAGE_LENGTH = 1000
MAX_METADATA_KEYS = 50
MAX_METADATA_KEY_LENGTH = 40
MAX_METADATA_VALUE_LENGTH = 500
MAX_FIELD_LENGTHS: dict[str, int] = {
    "gift_id": 100,
    "variant_id": 100,
    "team_id": 100,
    "first_name": 100,
    "last_name": 100,
    "email": 254,
    "company": 200,
    "title": 200,
    "address.line1": 200,
    "address.line2": 200,
    "address.city": 100,
    "address.state": 100,
    "address.postal_code": 20,
    "address.country": 2,
}

#: Countries whose postal addresses are not deliverable without a state or province.
STATES_REQUIRED = frozenset({"US", "CA", "AU", "MX", "BR", "IN"})

_POSTAL_CODE_PATTERNS: dict[str, re.Pattern[str]] = {
    "US": re.compile(r"\d{5}(-\d{4})?"),
    "CA": re.compile(r"[ABCEGHJ-NPRSTVXY]\d[ABCEGHJ-NPRSTV-Z] ?\d[ABCEGHJ-NPRSTV-Z]\d"),
    "GB": re.compile(r"(GIR ?0AA|[A-Z]{1,2}\d[A-Z\d]? ?\d[ABD-HJLNP-UW-Z]{2})"),
    "AU": re.compile(r"\d{4}"),
    "DE": re.compile(r"\d{5}"),
    "FR": re.compile(r"\d{5}"),
    "NL": re.compile(r"\d{4} ?[A-Z]{2}"),
    "IN": re.compile(r"\d{6}"),
    "JP": re.compile(r"\d{3}-?\d{4}"),
}

# Problem codes, and the status the seed's error table gives each.
MISSING = "missing"
INVALID = "invalid"
TOO_LONG = "too_long"
INVALID_EMAIL = "invalid_email"
NOT_ELIGIBLE = "not_eligible"
UNKNOWN_GIFT = "unknown_gift"
UNKNOWN_VARIANT = "unknown_variant"
OUT_OF_STOCK = "out_of_stock"

_Add = Callable[[str, str, str], None]

_STATUS_BY_CODE = {
    MISSING: 400,
    INVALID: 400,
    TOO_LONG: 400,
    UNKNOWN_GIFT: 404,
    UNKNOWN_VARIANT: 404,
    INVALID_EMAIL: 422,
    NOT_ELIGIBLE: 422,
    OUT_OF_STOCK: 422,
}


def http_status_for(problems: Iterable[FieldProblem]) -> int:
    """The status the API answers a request having these problems with.

    Shape problems win over lookups, lookups over deliverability, as a server that checks in
    that order would report them.
    """
    statuses = {_STATUS_BY_CODE.get(p.code, 400) for p in problems}
    for status in (400, 404, 422):
        if status in statuses:
            return status
    return 400


def _clean(value: str | None) -> str | None:
    if value is None:
        return None
    value = unicodedata.normalize("NFC", value).strip()
    return value or None


_TEXT_FIELDS = (
    "gift_id",
    "first_name",
    "last_name",
    "email",
    "company",
    "title",
    "variant_id",
    "team_id",
)
# The fields whose length and characters validate() checks, in the order it reports them.
_CHECKED_TEXT = (
    "gift_id",
    "variant_id",
    "team_id",
    "first_name",
    "last_name",
    "email",
    "company",
    "title",
)
_CHECKED_TEXT_AND_ADDRESS = (
    *_CHECKED_TEXT,
    "address.line1",
    "address.line2",
    "address.city",
    "address.state",
    "address.postal_code",
)


def clean_text(value: str | None) -> str | None:
    """A text field as :func:`normalize` leaves it: NFC, stripped, ``None`` when empty."""
    return _clean(value)


def _clean_code(value: str | None) -> str | None:
    return (_clean(value) or "").upper() or None


def _plainly_normal(a: Address) -> bool:
    """True when normalising ``a`` certainly changes nothing; False means "work it out"."""
    texts = (a.line1, a.line2, a.city)
    codes = (a.state, a.postal_code, a.country)
    # What _clean and _clean_code return unchanged: non-empty, stripped ASCII (ASCII is
    # NFC), upper case for the codes, and not every part missing.
    if texts == (None, None, None) and codes == (None, None, None):
        return False
    for value in texts:
        if value is not None and not (value and value.isascii() and value.strip() == value):
            return False
    for value in codes:
        if value is not None and not (
            value and value.isascii() and value.strip() == value and value.upper() == value
        ):
            return False
    return True


def normalize(request: SendRequest) -> SendRequest:
    """Trim whitespace, NFC-normalise text and upper-case codes, without judging anything.

    Only what changes is rebuilt, so the result shares the parts that were normal already
    with ``request``, and is ``request`` itself when nothing changes (a row of a big file
    usually is normal, and rebuilding the models would cost more than checking them).
    """
    changes: dict[str, Any] = {}
    for name in _TEXT_FIELDS:
        value = getattr(request, name)
        # Non-empty stripped ASCII is its own _clean (ASCII is NFC): no call for it.
        if value is not None and not (value and value.isascii() and value.strip() == value):
            cleaned = _clean(value)
            if cleaned != value:
                changes[name] = cleaned
    message = request.message
    if message is not None:
        # Line breaks are meaningful in a note; only the ends are trimmed.
        cleaned = unicodedata.normalize("NFC", message).strip() or None
        if cleaned != message:
            changes["message"] = cleaned
    a = request.address
    if a is not None and not _plainly_normal(a):
        parts = {
            "line1": _clean(a.line1),
            "line2": _clean(a.line2),
            "city": _clean(a.city),
            "state": _clean_code(a.state),
            "postal_code": _clean_code(a.postal_code),
            "country": _clean_code(a.country),
        }
        if not any(parts.values()):
            changes["address"] = None
        elif (
            parts["line1"] != a.line1
            or parts["line2"] != a.line2
            or parts["city"] != a.city
            or parts["state"] != a.state
            or parts["postal_code"] != a.postal_code
            or parts["country"] != a.country
        ):
            changes["address"] = Address(**parts)
    if any(key != key.strip() for key in request.metadata):
        changes["metadata"] = {k.strip(): v for k, v in request.metadata.items()}
    return request.model_copy(update=changes) if changes else request


# Unicode's control characters (category Cc, fixed since Unicode 1.1: U+0000-U+001F and
# U+007F-U+009F), and the bidirectional overrides and isolates, which can make a name or an
# address display as something else. One regular expression instead of a category lookup per
# character: planning checks a dozen fields on every row of a file.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
# The same, but line breaks and tabs are allowed (in a note).
_CONTROL_IN_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _has_control_characters(value: str, *, allow_newlines: bool = False) -> bool:
    # Printable text has none of them (Cc and the overrides, Cf, are not printable), and
    # str.isprintable is several times quicker than the search.
    if value.isprintable():
        return False
    pattern = _CONTROL_IN_TEXT if allow_newlines else _CONTROL
    return pattern.search(value) is not None


# An address email_validator accepts whatever its settings, recognised without calling it
# (which costs ~40 us, most of a row's planning): ASCII only, an unquoted local part of RFC
# 5322 atext (at most 64 characters, as its strict mode wants), a host name of letters,
# digits and inner hyphens (no "--", which rules out Punycode and the labels RFC 5890
# reserves), each label 1-63 characters, at least one dot, a top-level label ending in a
# letter, 253 characters at most, and not a special-use name. email_validator accepts every
# such address (tests/test_validation_fast.py checks it against email_validator); anything
# else is left to email_validator, so every verdict and message is its own.
_ATEXT = "A-Za-z0-9!#$%&'*+/=?^_`{|}~-"
_PLAIN_LOCAL = re.compile(f"[{_ATEXT}]+(?:\\.[{_ATEXT}]+)*")
_LABEL = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_PLAIN_DOMAIN = re.compile(f"(?:{_LABEL}\\.)+{_LABEL}")


def _plainly_valid_email(email: str) -> bool:
    """True when ``email`` is certainly valid; False means "ask email_validator"."""
    if len(email) > 254 or not email.isascii():
        return False
    local, _, domain = email.partition("@")
    if (
        len(local) > 64
        or len(domain) > 253
        or "--" in domain
        or not domain[-1:].isalpha()
        or _PLAIN_LOCAL.fullmatch(local) is None
        or _PLAIN_DOMAIN.fullmatch(domain) is None
    ):
        return False
    # The list is public and an application may change it: read it at every call.
    special = _dotted(tuple(email_validator.SPECIAL_USE_DOMAIN_NAMES))
    return not ("." + domain.lower()).endswith(special)


@functools.lru_cache(maxsize=4)
def _dotted(names: tuple[str, ...]) -> tuple[str, ...]:
    """``".name"`` for each name: a host is ``name`` or under it when ``"." + host`` ends
    with one of them."""
    return tuple("." + name for name in names)


def validate(request: SendRequest, gift: Gift | None = None) -> list[FieldProblem]:
    """Every problem with ``request``, or an empty list if it can be sent.

    ``gift``, when known, adds the catalog-aware checks: an address for physical items, a
    country the item ships to, a valid variant. Pass the request through :func:`normalize`
    first if it comes from user input.
    """
    problems: list[FieldProblem] = []

    def add(field: str, code: str, message: str) -> None:
        problems.append(FieldProblem(field=field, code=code, message=message))

    for field in ("gift_id", "first_name", "last_name", "email"):
        if not getattr(request, field):
            add(field, MISSING, f"{field} is required")
    if not request.message:
        add("message", MISSING, "message is required (the personalised note sent with the gift)")
    elif len(request.message) > MAX_MESSAGE_LENGTH:
        add(
            "message",
            TOO_LONG,
            f"message is {len(request.message)} characters; the limit is {MAX_MESSAGE_LENGTH}",
        )
    elif _has_control_characters(request.message, allow_newlines=True):
        add("message", INVALID, "message contains control or direction-override characters")

    names: tuple[str, ...] = _CHECKED_TEXT
    values = [
        request.gift_id,
        request.variant_id,
        request.team_id,
        request.first_name,
        request.last_name,
        request.email,
        request.company,
        request.title,
    ]
    address = request.address
    if address is not None:
        names = _CHECKED_TEXT_AND_ADDRESS
        values += [
            address.line1,
            address.line2,
            address.city,
            address.state,
            address.postal_code,
        ]
    # One search over every field finds the rare request that has a control character.
    suspect = _has_control_characters("".join(filter(None, values)))
    for field, value in zip(names, values, strict=True):
        if value is None:
            continue
        limit = MAX_FIELD_LENGTHS[field]
        if len(value) > limit:
            add(field, TOO_LONG, f"{field} is longer than {limit} characters")
        elif suspect and _has_control_characters(value):
            add(field, INVALID, f"{field} contains control or direction-override characters")

    if (
        request.email
        and len(request.email) <= MAX_FIELD_LENGTHS["email"]
        and not _plainly_valid_email(request.email)
    ):
        try:
            validate_email(request.email, check_deliverability=False)
        except EmailNotValidError as exc:
            add("email", INVALID_EMAIL, f"email {request.email!r} is not valid: {exc}")

    _check_metadata(request, add)
    if request.address is not None:
        _check_address(request.address, add)

    if gift is not None:
        _check_against_gift(request, gift, add)
    return problems


def _check_metadata(request: SendRequest, add: _Add) -> None:
    if len(request.metadata) > MAX_METADATA_KEYS:
        add("metadata", TOO_LONG, f"metadata has more than {MAX_METADATA_KEYS} keys")
        return
    for key, value in request.metadata.items():
        if not key or len(key) > MAX_METADATA_KEY_LENGTH:
            add("metadata", INVALID, f"metadata key {key[:50]!r} must be 1-40 characters")
        elif len(value) > MAX_METADATA_VALUE_LENGTH:
            label = f"metadata.{key}" if key.isprintable() else f"metadata key {key!r}"
            add(
                f"metadata.{key}",
                TOO_LONG,
                f"{label} is longer than {MAX_METADATA_VALUE_LENGTH} characters",
            )


@functools.cache
def _is_country(alpha_2: str) -> bool:
    return pycountry.countries.get(alpha_2=alpha_2) is not None


@functools.cache
def _is_subdivision(code: str) -> bool:
    return pycountry.subdivisions.get(code=code) is not None  # type: ignore[no-untyped-call]


def _check_address(address: Address, add: _Add) -> None:
    for part in ("line1", "city", "postal_code", "country"):
        if not getattr(address, part):
            add(f"address.{part}", MISSING, f"address.{part} is required for physical gifts")
    country = address.country
    if not country:
        return
    if len(country) != 2 or not _is_country(country.upper()):
        add(
            "address.country",
            INVALID,
            f"address.country {country[:20]!r} is not an ISO 3166-1 alpha-2 code (e.g. US, GB)",
        )
        return
    country = country.upper()
    state = address.state
    if country in STATES_REQUIRED and not state:
        add("address.state", MISSING, f"address.state is required for addresses in {country}")
    elif state and country in STATES_REQUIRED and not _is_subdivision(f"{country}-{state.upper()}"):
        add(
            "address.state",
            INVALID,
            f"address.state {state[:20]!r} is not a state or province code of {country}",
        )
    pattern = _POSTAL_CODE_PATTERNS.get(country)
    postal = address.postal_code
    if pattern is not None and postal and not pattern.fullmatch(postal.upper()):
        add(
            "address.postal_code",
            INVALID,
            f"address.postal_code {postal[:20]!r} is not a valid {country} postal code",
        )


def check_country(gift: Gift, country: str | None) -> FieldProblem | None:
    """The problem, if ``gift`` cannot be sent to someone in ``country``."""
    if not country or gift.available_in(country):
        return None
    # Quoted unless plainly printable: the message goes into one-line reports and tables.
    shown = country.upper() if country.isprintable() and len(country) <= 20 else repr(country[:20])
    return FieldProblem(
        "address.country",
        NOT_ELIGIBLE,
        f"{gift.name} is not available in {shown} (ships to {', '.join(gift.ships_to or [])})",
    )


def country_only_problems(gift: Gift | None, country: str | None) -> list[FieldProblem] | None:
    """An eGift or a donation is delivered by email: of an address given with it, only the
    country counts (whether the item is available there), and the address itself is dropped.

    ``None`` when the rule does not apply (``gift`` is unknown or needs the address, which is
    then checked whole); else the problems of ``country`` (normalised by the caller).
    """
    if gift is None or gift.requires_address:
        return None
    problem = check_country(gift, country)
    return [problem] if problem else []


def _check_against_gift(request: SendRequest, gift: Gift, add: _Add) -> None:
    if gift.requires_address and request.address is None:
        add("address", MISSING, f"address is required for physical gifts ({gift.name})")
    country_problem = check_country(gift, request.country)
    if country_problem is not None:
        add(country_problem.field, country_problem.code, country_problem.message)
    if request.variant_id is not None:
        variant = gift.variant(request.variant_id)
        if variant is None:
            choices = ", ".join(v.id for v in gift.variants) or "none"
            add(
                "variant_id",
                UNKNOWN_VARIANT,
                f"variant_id {request.variant_id!r} is not a variant of {gift.id}"
                f" (choose: {choices})",
            )
        elif not variant.in_stock:
            add(
                "variant_id", OUT_OF_STOCK, f"variant {variant.name} of {gift.name} is out of stock"
            )
    elif gift.variants:
        choices = ", ".join(f"{v.id} ({v.name})" for v in gift.variants)
        add("variant_id", MISSING, f"variant_id is required for {gift.name} (choose: {choices})")
