"""Send corporate gifts through the Sendoso REST API, without sending anything twice.

>>> from sendoso import Sendoso
>>> with Sendoso() as client:                      # SENDOSO_CLIENT_ID / _SECRET / _BASE_URL
...     gift = client.gifts.list(category="egift", max_price=50)[0]
...     send = client.sends.create(gift_id=gift.id, first_name="Ada", last_name="Lovelace",
...                                email="ada@example.com", message="Thank you!")
"""

import importlib
from typing import TYPE_CHECKING, Any

from sendoso._version import __version__

if TYPE_CHECKING:
    from sendoso._auth import FileTokenCache, TokenCache, TokenInfo
    from sendoso._client import AsyncSendoso, Sendoso
    from sendoso._profile import DEFAULT_BASE_URL, HostProfile
    from sendoso.errors import (
        AmbiguousSendError,
        APIConnectionError,
        APIError,
        APIStatusError,
        APITimeoutError,
        AuthenticationError,
        BadRequestError,
        ConfigurationError,
        ConflictError,
        FieldProblem,
        InternalServerError,
        NotFoundError,
        PermissionDeniedError,
        RateLimitError,
        ResponseParseError,
        SendosoError,
        UnprocessableEntityError,
        ValidationError,
    )
    from sendoso.models import (
        Address,
        CostEstimate,
        CostRange,
        Gift,
        GiftCategory,
        GiftVariant,
        Send,
        SendRequest,
        SendStatus,
        ShippingEstimate,
    )
    from sendoso.pricing import estimate_cost
    from sendoso.resources import SendCheck, new_idempotency_key
    from sendoso.validation import normalize, validate

# Imported on first use, so that `sendoso --help` does not pay for httpx, pydantic and the
# validation tables before it prints anything.
_LAZY: dict[str, str] = {
    "APIConnectionError": "sendoso.errors",
    "APIError": "sendoso.errors",
    "APIStatusError": "sendoso.errors",
    "APITimeoutError": "sendoso.errors",
    "Address": "sendoso.models",
    "AmbiguousSendError": "sendoso.errors",
    "AsyncSendoso": "sendoso._client",
    "AuthenticationError": "sendoso.errors",
    "BadRequestError": "sendoso.errors",
    "ConfigurationError": "sendoso.errors",
    "ConflictError": "sendoso.errors",
    "CostEstimate": "sendoso.models",
    "DEFAULT_BASE_URL": "sendoso._profile",
    "FieldProblem": "sendoso.errors",
    "FileTokenCache": "sendoso._auth",
    "Gift": "sendoso.models",
    "GiftCategory": "sendoso.models",
    "GiftVariant": "sendoso.models",
    "HostProfile": "sendoso._profile",
    "InternalServerError": "sendoso.errors",
    "NotFoundError": "sendoso.errors",
    "PermissionDeniedError": "sendoso.errors",
    "RateLimitError": "sendoso.errors",
    "ResponseParseError": "sendoso.errors",
    "Send": "sendoso.models",
    "SendCheck": "sendoso.resources",
    "CostRange": "sendoso.models",
    "SendRequest": "sendoso.models",
    "SendStatus": "sendoso.models",
    "Sendoso": "sendoso._client",
    "SendosoError": "sendoso.errors",
    "ShippingEstimate": "sendoso.models",
    "TokenCache": "sendoso._auth",
    "TokenInfo": "sendoso._auth",
    "UnprocessableEntityError": "sendoso.errors",
    "ValidationError": "sendoso.errors",
    "InputError": "sendoso.errors",
    "estimate_cost": "sendoso.pricing",
    "new_idempotency_key": "sendoso.resources",
    "normalize": "sendoso.validation",
    "validate": "sendoso.validation",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'sendoso' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "DEFAULT_BASE_URL",
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "Address",
    "AmbiguousSendError",
    "AsyncSendoso",
    "AuthenticationError",
    "BadRequestError",
    "ConfigurationError",
    "ConflictError",
    "CostEstimate",
    "CostRange",
    "FieldProblem",
    "FileTokenCache",
    "Gift",
    "GiftCategory",
    "GiftVariant",
    "HostProfile",
    "InputError",
    "InternalServerError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "ResponseParseError",
    "Send",
    "SendCheck",
    "SendRequest",
    "SendStatus",
    "Sendoso",
    "SendosoError",
    "ShippingEstimate",
    "TokenCache",
    "TokenInfo",
    "UnprocessableEntityError",
    "ValidationError",
    "__version__",
    "estimate_cost",
    "new_idempotency_key",
    "normalize",
    "validate",
]
