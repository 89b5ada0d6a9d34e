"""Send corporate gifts through the Sendoso REST API, without sending anything twice.

>>> from sendoso import Sendoso
>>> with Sendoso() as client:                      # SENDOSO_CLIENT_ID / _SECRET / _BASE_URL
...     gift = client.gifts.list(category="egift", max_price=50)[0]
...     send = client.sends.create(gift_id=gift.id, first_name="Ada", last_name="Lovelace",
...                                email="ada@example.com", message="Thank you!")
"""

from sendoso._auth import FileTokenCache, TokenCache, TokenInfo
from sendoso._client import AsyncSendoso, Sendoso
from sendoso._profile import DEFAULT_BASE_URL, HostProfile
from sendoso._version import __version__
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
    Gift,
    GiftCategory,
    GiftVariant,
    Send,
    SendRequest,
    SendStatus,
    ShippingEstimate,
)
from sendoso.pricing import estimate_cost
from sendoso.validation import normalize, validate

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
    "FieldProblem",
    "FileTokenCache",
    "Gift",
    "GiftCategory",
    "GiftVariant",
    "HostProfile",
    "InternalServerError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "ResponseParseError",
    "Send",
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
    "normalize",
    "validate",
]
