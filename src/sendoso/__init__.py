"""Send corporate gifts through the Sendoso REST API, without sending anything twice.

>>> from sendoso import Sendoso
>>> with Sendoso() as client:                      # SENDOSO_CLIENT_ID / _SECRET / _BASE_URL
...     gift = client.gifts.list(category="egift", max_price=50)[0]
...     send = client.sends.create(gift_id=gift.id, first_name="Ada", last_name="Lovelace",
...                                email="ada@example.com", message="Thank you!")
"""

import importlib
from typing import TYPE_CHECKING, Any

from sendoso._version import __version__ as __version__

# Every name the package exports, and the module that defines it: the one list. Each is
# imported on first use, so that `sendoso --help` does not pay for httpx, pydantic and the
# validation tables before it prints anything.
_LAZY: dict[str, str] = {
    "APIConnectionError": "sendoso.errors",
    "APIError": "sendoso.errors",
    "APIStatusError": "sendoso.errors",
    "APITimeoutError": "sendoso.errors",
    "TokenUnavailableError": "sendoso.errors",
    "Address": "sendoso.models",
    "AmbiguousSendError": "sendoso.errors",
    "AsyncSendoso": "sendoso._client",
    "AuthenticationError": "sendoso.errors",
    "BadRequestError": "sendoso.errors",
    "Call": "sendoso.errors",
    "ConfigurationError": "sendoso.errors",
    "ConflictError": "sendoso.errors",
    "CostEstimate": "sendoso.models",
    "CostRange": "sendoso.models",
    "DEFAULT_BASE_URL": "sendoso._profile",
    "FieldProblem": "sendoso.errors",
    "FileTokenCache": "sendoso._auth",
    "Gift": "sendoso.models",
    "GiftCategory": "sendoso.models",
    "GiftVariant": "sendoso.models",
    "HostProfile": "sendoso._profile",
    "InputError": "sendoso.errors",
    "worded": "sendoso.errors",
    "library_wording": "sendoso.errors",
    "Wording": "sendoso.errors",
    "Text": "sendoso.errors",
    "Step": "sendoso.errors",
    "Param": "sendoso.errors",
    "InternalServerError": "sendoso.errors",
    "NotFoundError": "sendoso.errors",
    "OverCapError": "sendoso.errors",
    "PermissionDeniedError": "sendoso.errors",
    "RateLimitError": "sendoso.errors",
    "ResponseParseError": "sendoso.errors",
    "Send": "sendoso.models",
    "SendCheck": "sendoso.resources",
    "SendRequest": "sendoso.models",
    "SendStatus": "sendoso.models",
    "Sendoso": "sendoso._client",
    "SendosoError": "sendoso.errors",
    "ShippingEstimate": "sendoso.models",
    "TokenCache": "sendoso._auth",
    "TokenInfo": "sendoso._auth",
    "UnprocessableEntityError": "sendoso.errors",
    "ValidationError": "sendoso.errors",
    "estimate_cost": "sendoso.pricing",
    "new_idempotency_key": "sendoso.resources",
    "normalize": "sendoso.validation",
    "validate": "sendoso.validation",
}

__all__ = sorted([*_LAZY, "__version__"])

if TYPE_CHECKING:
    # The same names for type checkers, which cannot read `_LAZY`: `X as X` marks each as
    # re-exported under mypy --strict. tests/test_packaging.py checks that the two agree.
    from sendoso._auth import FileTokenCache as FileTokenCache
    from sendoso._auth import TokenCache as TokenCache
    from sendoso._auth import TokenInfo as TokenInfo
    from sendoso._client import AsyncSendoso as AsyncSendoso
    from sendoso._client import Sendoso as Sendoso
    from sendoso._profile import DEFAULT_BASE_URL as DEFAULT_BASE_URL
    from sendoso._profile import HostProfile as HostProfile
    from sendoso.errors import AmbiguousSendError as AmbiguousSendError
    from sendoso.errors import APIConnectionError as APIConnectionError
    from sendoso.errors import APIError as APIError
    from sendoso.errors import APIStatusError as APIStatusError
    from sendoso.errors import APITimeoutError as APITimeoutError
    from sendoso.errors import AuthenticationError as AuthenticationError
    from sendoso.errors import BadRequestError as BadRequestError
    from sendoso.errors import Call as Call
    from sendoso.errors import ConfigurationError as ConfigurationError
    from sendoso.errors import ConflictError as ConflictError
    from sendoso.errors import FieldProblem as FieldProblem
    from sendoso.errors import InputError as InputError
    from sendoso.errors import InternalServerError as InternalServerError
    from sendoso.errors import NotFoundError as NotFoundError
    from sendoso.errors import OverCapError as OverCapError
    from sendoso.errors import Param as Param
    from sendoso.errors import PermissionDeniedError as PermissionDeniedError
    from sendoso.errors import RateLimitError as RateLimitError
    from sendoso.errors import ResponseParseError as ResponseParseError
    from sendoso.errors import SendosoError as SendosoError
    from sendoso.errors import Step as Step
    from sendoso.errors import Text as Text
    from sendoso.errors import TokenUnavailableError as TokenUnavailableError
    from sendoso.errors import UnprocessableEntityError as UnprocessableEntityError
    from sendoso.errors import ValidationError as ValidationError
    from sendoso.errors import Wording as Wording
    from sendoso.errors import library_wording as library_wording
    from sendoso.errors import worded as worded
    from sendoso.models import Address as Address
    from sendoso.models import CostEstimate as CostEstimate
    from sendoso.models import CostRange as CostRange
    from sendoso.models import Gift as Gift
    from sendoso.models import GiftCategory as GiftCategory
    from sendoso.models import GiftVariant as GiftVariant
    from sendoso.models import Send as Send
    from sendoso.models import SendRequest as SendRequest
    from sendoso.models import SendStatus as SendStatus
    from sendoso.models import ShippingEstimate as ShippingEstimate
    from sendoso.pricing import estimate_cost as estimate_cost
    from sendoso.resources import SendCheck as SendCheck
    from sendoso.resources import new_idempotency_key as new_idempotency_key
    from sendoso.validation import normalize as normalize
    from sendoso.validation import validate as validate


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'sendoso' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
