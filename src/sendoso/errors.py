"""Every error the SDK raises. Each one says what to do next.

``SendosoError``
├── ``ConfigurationError``        bad or missing settings; nothing was sent
├── ``InputError``                an input is unusable as a whole; ``.field``, ``.row``
├── ``OverCapError``              a cost does not fit under a cap; ``.field``, ``.currency``,
│                                 ``.limit``, ``.spent``, ``.needed``
├── ``ValidationError``           the request is invalid; ``.problems`` lists every one
└── ``APIError``                  something happened talking to the API
    ├── ``APIConnectionError``    no usable answer (``APITimeoutError`` for timeouts;
    │                             ``TokenUnavailableError``: no access token, nothing sent)
    ├── ``AmbiguousSendError``    a send may or may not have been created; carries the key
    ├── ``ResponseParseError``    the API answered with something we could not read
    └── ``APIStatusError``        the API answered with an error status
        ├── ``BadRequestError`` 400, ``AuthenticationError`` 401, ``PermissionDeniedError`` 403,
        ├── ``NotFoundError`` 404, ``ConflictError`` 409, ``UnprocessableEntityError`` 422,
        └── ``RateLimitError`` 429, ``InternalServerError`` 5xx

How an error names what went wrong, and how a front end words it
-----------------------------------------------------------------

The library speaks the library's vocabulary: the parameter an SDK user passes
(``max_spend``, ``message_template``, ``mapping``, ``run_id``, ``encoding``, ``delimiter``,
``format``, ``base_url``...), never a command-line flag or a command. What went wrong
is in fields a program can act on: :class:`FieldProblem` and :class:`InputError` carry
``field`` (that parameter's name) and ``row``; errors a front end must react to differently
are their own classes with their own fields (e.g. ``sendoso.batch.RunOptionsChangedError``
carries ``run_id`` and ``changed``, the option fields that differ; :class:`OverCapError` the
cap's parameter, currency, limit and amounts).

A message that names a parameter or a next step is a :class:`Text`: a ``str`` (so ``str(exc)``
and ``problem.message`` read as before, in the library's words) that also keeps its parts,
where :class:`Param` marks a parameter, :class:`Step` an action the user can take next
(``resume``, ``settle``, ...) and :class:`Call` a call an agent can make next (one of the MCP
server's tools, whose names the MCP desk's refusals speak). A front end re-words the same
parts with its own
:class:`Wording`: the CLI's (``sendoso.cli._words``) spells ``Param("max_spend")`` as
``--max-spend`` and ``Step("resume")`` as ``sendoso batch resume``; the MCP server's
(``sendoso.mcp._server``) spells a setting as the server's flag and a step as the command the
person running the server runs. So each front end keeps one table of its words and never
edits the library's sentences. A text kept for later (a ledger row's error, shown by
``batch show`` and the report) is stored with :meth:`Text.stored` and read back with
:meth:`Text.from_stored`, so that it is still worded by whoever shows it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "AmbiguousSendError",
    "AuthenticationError",
    "BadRequestError",
    "Call",
    "ConfigurationError",
    "ConflictError",
    "FieldProblem",
    "InputError",
    "InternalServerError",
    "NotFoundError",
    "OverCapError",
    "Param",
    "PermissionDeniedError",
    "RateLimitError",
    "ResponseParseError",
    "SendosoError",
    "Step",
    "Text",
    "TokenUnavailableError",
    "UnprocessableEntityError",
    "ValidationError",
    "Wording",
    "library_wording",
    "worded",
]


@dataclass(frozen=True)
class Param:
    """A library parameter named in a message: ``Param("max_spend")``."""

    name: str


@dataclass(frozen=True)
class Step:
    """Something the user can do next, named in a message: ``Step("resume", ("r1",))`` is
    "resume run r1". Actions: ``resume``, ``settle``, ``show``, ``runs``, ``approvals``,
    ``approve``, ``front_end`` (args: its name); a front end words the ones it knows."""

    action: str
    args: tuple[str, ...] = ()


@dataclass(frozen=True)
class Call:
    """A call an agent can make next, named in a message: ``Call("get_send_status",
    (("request_id", "'r1'"),))`` (each argument's value as the message shows it). The MCP
    server words it as its tool of that name; the library as the :class:`SendDesk` method
    behind that tool; a front end with no ``call`` in its :class:`Wording` as the tool."""

    tool: str
    args: tuple[tuple[str, str], ...] = ()

    def as_tool(self) -> str:
        """``get_send_status request_id='r1'``: the tool, then each argument."""
        return " ".join((self.tool, *(f"{name}={value}" for name, value in self.args)))


class Wording(Protocol):
    """How a front end spells the parameters and steps a :class:`Text` names."""

    def param(self, name: str) -> str: ...

    def step(self, action: str, args: tuple[str, ...]) -> str: ...


# What the SDK user calls for each step ({0}: the step's first argument). Most leave the
# arguments out: the message around a step already names the run and row it is about.
_LIBRARY_STEPS = {
    "resume": "`BatchRunner(ledger, client, run_id).run()`",
    "settle": "`settle_row(ledger, run_id, row, send_id=...)`",
    "show": "`Ledger.row(run_id, row)`",
    "runs": "`Ledger.runs()`",
    "approvals": "`Ledger.approvals()`",
    "approve": "`SendDesk.approve(approval_id)`",
    "front_end": "the {0} front end",
}


# The SendDesk method behind each MCP tool a message names.
_LIBRARY_CALLS = {
    "list_gifts": "SendDesk.list_gifts",
    "estimate_cost": "SendDesk.estimate",
    "validate_recipient": "SendDesk.check",
    "send_gift": "SendDesk.send",
    "get_send_status": "SendDesk.status",
    "list_sends": "SendDesk.list_sends",
}


class _LibraryWording:
    def param(self, name: str) -> str:
        return name

    def step(self, action: str, args: tuple[str, ...]) -> str:
        template = _LIBRARY_STEPS.get(action)
        return template.format(*args) if template else " ".join((action, *args))

    def call(self, tool: str, args: tuple[tuple[str, str], ...]) -> str:
        method = _LIBRARY_CALLS.get(tool)
        if method is None:
            return Call(tool, args).as_tool()
        return f"`{method}({', '.join(f'{name}={value}' for name, value in args)})`"


#: The library's own words: a parameter is its name, a step the call that does it.
library_wording: Wording = _LibraryWording()

Part = str | Param | Step | Call


def _word(part: Part, wording: Wording) -> str:
    if isinstance(part, Param):
        return wording.param(part.name)
    if isinstance(part, Step):
        return wording.step(part.action, part.args)
    if isinstance(part, Call):
        # Optional in a Wording: a front end without tools shows the tool as an agent calls it.
        call = getattr(wording, "call", None)
        return str(call(part.tool, part.args)) if call is not None else part.as_tool()
    return part


def _encoded(part: Part) -> str | dict[str, Any]:
    if isinstance(part, Param):
        return {"param": part.name}
    if isinstance(part, Step):
        return {"step": part.action, "args": list(part.args)}
    if isinstance(part, Call):
        return {"call": part.tool, "args": [list(arg) for arg in part.args]}
    return part


# Marks a stored Text (JSON of its parts): a control character no message starts with, and one
# PostgreSQL's text type accepts (it refuses NUL).
_STORED = "\x1ftext:"


class Text(str):
    """A message in parts, some of them a :class:`Param` or a :class:`Step`.

    As a ``str`` it is the library's wording; :meth:`worded` spells it a front end's way.
    ``Text("unknown ", Param("encoding"), " 'x'")`` is ``"unknown encoding 'x'"`` to the
    library and ``"unknown --encoding 'x'"`` to the CLI. A :class:`Text` among the parts is
    spliced in, so that a message that wraps another keeps the other's parameters.
    """

    parts: tuple[Part, ...]

    def __new__(cls, *parts: Part) -> Text:
        flat: list[Part] = []
        for part in parts:
            flat.extend(part.parts if isinstance(part, Text) else (part,))
        self = super().__new__(cls, "".join(_word(p, library_wording) for p in flat))
        self.parts = tuple(flat)
        return self

    def worded(self, wording: Wording) -> str:
        return "".join(_word(p, wording) for p in self.parts)

    def stored(self) -> str:
        """This text as a string to store (a ledger row's error), parts and all; plain text
        when it names nothing. :meth:`from_stored` reads it back."""
        if all(isinstance(p, str) for p in self.parts):
            return str(self)
        return _STORED + json.dumps(
            [_encoded(p) for p in self.parts], ensure_ascii=False, separators=(",", ":")
        )

    @classmethod
    def from_stored(cls, stored: str) -> str:
        """What :meth:`stored` wrote: a :class:`Text`, or ``stored`` itself if it is plain."""
        if not stored.startswith(_STORED):
            return stored
        parts: list[Part] = []
        for item in json.loads(stored[len(_STORED) :]):
            if isinstance(item, str):
                parts.append(item)
            elif "param" in item:
                parts.append(Param(item["param"]))
            elif "call" in item:
                parts.append(Call(item["call"], tuple((k, v) for k, v in item["args"])))
            else:
                parts.append(Step(item["step"], tuple(item["args"])))
        return cls(*parts)

    @classmethod
    def joining(cls, separator: str, texts: Iterable[str]) -> Text:
        """``separator.join(texts)``, keeping the parts of each text."""
        parts: list[Part] = []
        for number, text in enumerate(texts):
            if number:
                parts.append(separator)
            parts.append(text)
        return cls(*parts)


def worded(message: object, wording: Wording) -> str:
    """``message`` in ``wording``'s words if it is a :class:`Text`, else as it is."""
    return message.worded(wording) if isinstance(message, Text) else str(message)


@dataclass(frozen=True)
class FieldProblem:
    """One thing wrong with one field, e.g. ``address.postal_code``: ``missing``.

    ``field`` is the request field or the library parameter (``max_spend``); ``message`` may
    be a :class:`Text`, which a front end re-words."""

    field: str
    code: str
    message: str

    def __str__(self) -> str:
        return self.message


class SendosoError(Exception):
    """Base class of every error raised by this package."""

    def worded(self, wording: Wording) -> str:
        """The message in ``wording``'s words (``str(exc)`` is the library's)."""
        if len(self.args) == 1 and type(self).__str__ is BaseException.__str__:
            return worded(self.args[0], wording)
        return str(self)


class ConfigurationError(SendosoError):
    """Settings are missing, contradictory or unsafe. Nothing was sent."""


class InputError(SendosoError):
    """An input is unusable as a whole (a file, a template, a ledger URL, a run id); nothing
    was sent because of it. ``field`` names the parameter at fault when one is (``encoding``,
    ``mapping``, ``message_template``...), ``row`` the input row."""

    def __init__(self, message: str, *, field: str | None = None, row: int | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.row = row


class OverCapError(SendosoError):
    """A cost does not fit under a spending cap, so it was not planned, sent or admitted.

    ``field``: the parameter that sets the cap (``max_spend``; the MCP guardrails'
    ``max_price``, ``daily_cap``, ``total_cap``). ``currency``: the currency it does not fit
    in, ``None`` when the cost has no upper bound (it ships, and no shipping rate is
    published). ``limit``: the cap in that currency, ``None`` when none is set in it
    (currencies are never converted). ``spent``: what already counts against the cap (spent,
    in flight or reserved); ``needed``: the high end of this cost, ``None`` if unbounded.
    The message names ``field`` as a :class:`Param`, so each front end words it."""

    def __init__(
        self,
        message: str,
        *,
        field: str,
        currency: str | None,
        limit: Decimal | None,
        spent: Decimal = Decimal(0),
        needed: Decimal | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.currency = currency
        self.limit = limit
        self.spent = spent
        self.needed = needed

    @property
    def left(self) -> Decimal | None:
        """What the cap still holds in ``currency`` (never below 0); ``None`` with no cap."""
        return None if self.limit is None else max(self.limit - self.spent, Decimal(0))


class ValidationError(SendosoError):
    """The request would be rejected; nothing was sent. ``problems`` lists every issue."""

    def __init__(self, problems: list[FieldProblem], *, row: int | None = None) -> None:
        self.problems = list(problems)
        self.row = row
        where = f" (row {row})" if row is not None else ""
        super().__init__(Text(Text.joining("; ", (p.message for p in self.problems)), where))

    def worded(self, wording: Wording) -> str:
        return worded(self.args[0], wording)


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


class TokenUnavailableError(APIConnectionError):
    """No access token could be obtained (the token endpoint failed, answered something
    unreadable, or could not be reached), so the request it was for was never transmitted:
    a send is certainly not created, and the same call later is safe. ``status_code`` is the
    token endpoint's answer, if it gave one. Refused credentials are not this error but
    :class:`AuthenticationError`: waiting does not fix them."""

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


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
