"""How a send's status moves on the virtual clock, and the magic inputs that steer it.

Magic inputs (also served at ``GET /_sandbox/magic``):

- an email whose local part ends in ``+fail`` (``ann+fail@example.com``): accepted with 201,
  then ``failed`` ("insufficient funds") when it would leave ``pending``;
- ``+returned``: a physical or swag send goes ``shipped`` then ``returned`` ("address
  undeliverable") instead of ``delivered``; eGifts and donations are unaffected;
- ``+undeliverable``, or a domain ending in ``.invalid``: 422 ``invalid_email`` on ``email`` at
  create time;
- postal code ``00000``: 400 ``invalid`` on ``address.postal_code`` ("address verification
  failed").

Timeline, by the age of the send on the virtual clock: physical and swag are ``pending`` for an
hour, ``processing`` until 24 h, ``shipped`` (with a tracking number) until 72 h, then
``delivered``; eGifts and donations are ``pending`` for 5 minutes, then ``delivered``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from sendoso.errors import FieldProblem
from sendoso.models import ADDRESSED_CATEGORIES, SendRequest

__all__ = ["LIFECYCLE", "MAGIC", "Stage", "create_time_problems", "stage_at", "tracking_number"]

HOUR = 3600.0
_ADDRESSED_TIMELINE = (("pending", 0.0), ("processing", HOUR), ("shipped", 24 * HOUR))
_ADDRESSED_DELIVERED_AT = 72 * HOUR
_EMAILED_DELIVERED_AT = 5 * 60.0

FAILED_REASON = "insufficient funds"
RETURNED_REASON = "address undeliverable"
ADDRESS_VERIFICATION_FAILED = "address verification failed"

#: Rank of each status, so a stored status is never replaced by an earlier one.
STATUS_RANK = {
    "pending": 0,
    "processing": 1,
    "shipped": 2,
    "delivered": 3,
    "failed": 3,
    "returned": 3,
}

MAGIC: list[dict[str, str]] = [
    {
        "field": "email",
        "match": "local part ends in +fail",
        "example": "ann+fail@example.com",
        "effect": (
            "201 Created, then status 'failed' with status_reason 'insufficient funds' when the"
            " send would leave 'pending' (1 h for physical/swag, 5 min for egift/donation)"
        ),
    },
    {
        "field": "email",
        "match": "local part ends in +returned",
        "example": "ann+returned@example.com",
        "effect": (
            "physical/swag: shipped as usual, then status 'returned' with status_reason"
            " 'address undeliverable' at 72 h instead of 'delivered'; egift/donation unaffected"
        ),
    },
    {
        "field": "email",
        "match": "local part ends in +undeliverable, or the domain ends in .invalid",
        "example": "ann+undeliverable@example.com",
        "effect": "422 unprocessable_entity, detail code 'invalid_email' on field 'email'",
    },
    {
        "field": "address.postal_code",
        "match": "00000",
        "example": "00000",
        "effect": (
            "400 invalid_request, detail code 'invalid' on field 'address.postal_code'"
            " ('address verification failed')"
        ),
    },
    {
        "field": "variant_id",
        "match": "a variant with in_stock false (e.g. var_hoodie_xxl_heathergrey)",
        "example": "var_hoodie_xxl_heathergrey",
        "effect": "422 unprocessable_entity, detail code 'out_of_stock' on field 'variant_id'",
    },
]

LIFECYCLE: dict[str, Any] = {
    "clock": "status is computed from the send's age on the virtual clock (POST /_sandbox/clock)",
    "physical_and_swag": [
        {"status": "pending", "from_seconds": 0},
        {"status": "processing", "from_seconds": int(HOUR)},
        {"status": "shipped", "from_seconds": int(24 * HOUR)},
        {"status": "delivered", "from_seconds": int(_ADDRESSED_DELIVERED_AT)},
    ],
    "egift_and_donation": [
        {"status": "pending", "from_seconds": 0},
        {"status": "delivered", "from_seconds": int(_EMAILED_DELIVERED_AT)},
    ],
}


def _local_part(email: str | None) -> str:
    if not email or "@" not in email:
        return ""
    return email.rsplit("@", 1)[0].lower()


def _domain(email: str | None) -> str:
    if not email or "@" not in email:
        return ""
    return email.rsplit("@", 1)[1].lower().rstrip(".")


def create_time_problems(request: SendRequest) -> list[FieldProblem]:
    """The problems the magic inputs add to an otherwise valid request."""
    problems = []
    if _local_part(request.email).endswith("+undeliverable") or _domain(request.email).endswith(
        ".invalid"
    ):
        problems.append(
            FieldProblem(
                field="email",
                code="invalid_email",
                message=f"email {request.email!r} is undeliverable",
            )
        )
    if request.address is not None and request.address.postal_code == "00000":
        problems.append(
            FieldProblem(
                field="address.postal_code",
                code="invalid",
                message=f"address.postal_code '00000': {ADDRESS_VERIFICATION_FAILED}",
            )
        )
    return problems


@dataclass(frozen=True)
class Stage:
    """Where a send is: its status, since how many seconds after creation, and why."""

    status: str
    since: float
    reason: str | None = None


def stage_at(category: str, email: str | None, age: float) -> Stage:
    """The stage a send of ``category`` to ``email`` has reached ``age`` seconds after creation."""
    local = _local_part(email)
    fails = local.endswith("+fail")
    addressed = category in ADDRESSED_CATEGORIES
    if not addressed:
        if age < _EMAILED_DELIVERED_AT:
            return Stage("pending", 0.0)
        if fails:
            return Stage("failed", _EMAILED_DELIVERED_AT, FAILED_REASON)
        return Stage("delivered", _EMAILED_DELIVERED_AT)
    if fails and age >= HOUR:
        return Stage("failed", HOUR, FAILED_REASON)
    if age >= _ADDRESSED_DELIVERED_AT:
        if local.endswith("+returned"):
            return Stage("returned", _ADDRESSED_DELIVERED_AT, RETURNED_REASON)
        return Stage("delivered", _ADDRESSED_DELIVERED_AT)
    status, since = next((s, t) for s, t in reversed(_ADDRESSED_TIMELINE) if age >= t)
    return Stage(status, since)


def tracking_number(send_id: str) -> str:
    # Derived from the id so every read of a send reports the same number.
    return "1ZSBX" + hashlib.sha256(send_id.encode()).hexdigest()[:13].upper()
