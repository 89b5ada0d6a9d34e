"""API resources. Each module holds the pure request/response rules once, and a thin sync
and async class over them."""

from sendoso.resources._gifts import AsyncGifts, Gifts
from sendoso.resources._sends import (
    AsyncSends,
    SendCheck,
    Sends,
    check_against,
    new_idempotency_key,
    request_from_fields,
)
from sendoso.resources._steps import Steps

__all__ = [
    "AsyncGifts",
    "AsyncSends",
    "Gifts",
    "SendCheck",
    "Sends",
    "Steps",
    "check_against",
    "new_idempotency_key",
    "request_from_fields",
]
