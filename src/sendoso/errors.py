"""Every error the SDK raises. Each one says what to do next.

``SendosoError``
├── ``ConfigurationError``        bad or missing settings; nothing was sent
├── ``ValidationError``           the request is invalid; ``.problems`` lists every one
└── ``APIError``                  something happened talking to the API
    ├── ``APIConnectionError``    no usable answer (``APITimeoutError`` for timeouts)
    ├── ``AmbiguousSendError``    a send may or may not have been created; carries the key
    ├── ``ResponseParseError``    the API answered with something we could not read
    └── ``APIStatusError``        the API answered with an error status
        ├── ``BadRequestError`` 400, ``AuthenticationError`` 401, ``PermissionDeniedError`` 403,
        ├── ``NotFoundError`` 404, ``ConflictError`` 409, ``UnprocessableEntityError`` 422,
        └── ``RateLimitError`` 429, ``InternalServerError`` 5xx
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "AmbiguousSendError",
    "AuthenticationError",
    "BadRequestError",
    "ConfigurationError",
    "ConflictError",
    "FieldProblem",
    "InputError",
    "InternalServerError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "ResponseParseError",
    "SendosoError",
    "UnprocessableEntityError",
    "ValidationError",
]


@dataclass(frozen=True)
class FieldProblem:
    """One thing wrong with one field, e.g. ``address.postal_code``: ``missing``."""

    field: str
    code: str
    message: str

    def __str__(self) -> str:
        return self.message


class SendosoError(Exception):
    """Base class of every error raised by this package."""


class ConfigurationError(SendosoError):
    """Settings are missing, contradictory or unsafe. Nothing was sent."""


class InputError(SendosoError):
    """An input is unusable as a whole (a file, a template, a ledger URL, a run id); nothing
    was sent because of it."""


class ValidationError(SendosoError):
    """The request would be rejected; nothing was sent. ``problems`` lists every issue."""

    def __init__(self, problems: list[FieldProblem], *, row: int | None = None) -> None:
        self.problems = list(problems)
        self.row = row
        where = f" (row {row})" if row is not None else ""
        super().__init__("; ".join(p.message for p in self.problems) + where)


class APIError(SendosoError):
    """A request to the API failed."""

    def __init__(self, message: str, *, request_id: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.request_id = request_id


class APIConnectionError(APIError):
    """No response could be obtained (refused, reset, timed out) and retrying did not help."""


class APITimeoutError(APIConnectionError):
    """The request timed out."""


class AmbiguousSendError(APIError):
    """A send request reached the API but its outcome is unknown.

    The gift may or may not have been created. Retrying blindly could send it twice, so the
    SDK does not, unless the server is trusted to deduplicate on ``idempotency_key``. When
    ``retry_safe`` is true (it is, and retries were exhausted) a later retry with the same key is
    safe; otherwise confirm with Sendoso whether the send exists before sending again.
    """

    def __init__(
        self,
        message: str,
        *,
        idempotency_key: str,
        request_id: str | None = None,
        retry_safe: bool = False,
    ) -> None:
        super().__init__(message, request_id=request_id)
        self.idempotency_key = idempotency_key
        #: True when the server deduplicates on the key, so a retry with it cannot double-send.
        self.retry_safe = retry_safe


class ResponseParseError(APIError):
    """The API answered, but not with something this SDK could read.

    ``status_code`` is the HTTP status; for a successful send, the gift *was* created and
    ``idempotency_key`` identifies it.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        request_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> None:
        super().__init__(message, request_id=request_id)
        self.status_code = status_code
        self.idempotency_key = idempotency_key


class APIStatusError(APIError):
    """The API answered with an error status.

    ``error_type`` is the API's machine-readable type, ``details`` its per-field problems.
    """

    status_code: int = 0

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        error_type: str | None = None,
        details: list[FieldProblem] | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(message, request_id=request_id)
        self.status_code = status_code
        self.error_type = error_type
        self.details = list(details or [])
        self.retry_after = retry_after
        self.body = body

    def __str__(self) -> str:
        parts = [f"{self.status_code}: {self.message}"]
        parts.extend(f"  - {d.field}: {d.message}" for d in self.details)
        if self.request_id:
            parts.append(f"  (request id {self.request_id})")
        return "\n".join(parts)


class BadRequestError(APIStatusError):
    """400: a required field is missing or the address is invalid. Fix the request."""


class AuthenticationError(APIStatusError):
    """401: the credentials or token were refused, even after one token refresh."""


class PermissionDeniedError(APIStatusError):
    """403: the account may not do this."""


class NotFoundError(APIStatusError):
    """404: the gift, variant or send does not exist. Re-fetch the catalog."""


class ConflictError(APIStatusError):
    """409: the request conflicts with another (e.g. one with the same idempotency key)."""


class UnprocessableEntityError(APIStatusError):
    """422: well-formed but not deliverable (bad email, gift not eligible for the country)."""


class RateLimitError(APIStatusError):
    """429: still rate limited after waiting as long as allowed."""


class InternalServerError(APIStatusError):
    """5xx: the API failed."""


_STATUS_ERRORS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}


def status_error_class(status_code: int) -> type[APIStatusError]:
    if status_code >= 500:
        return InternalServerError
    return _STATUS_ERRORS.get(status_code, APIStatusError)
