"""Resource operations written once, as generators of API calls.

An operation yields each :class:`~sendoso._http.Call` it needs and is resumed with the
response; the sync client runs it with plain calls, the async client with awaits. So paging,
checking and parsing exist once, and each resource method is a one-line twin.
"""

from __future__ import annotations

from collections.abc import Awaitable, Generator
from typing import Protocol, TypeVar

import httpx

from sendoso._http import Call

__all__ = ["AsyncRunner", "Runner", "Steps"]

T = TypeVar("T")

#: An operation: yields calls, receives their responses, returns its result.
Steps = Generator[Call, httpx.Response, T]


class Runner(Protocol):
    def __call__(self, steps: Steps[T], /) -> T: ...


class AsyncRunner(Protocol):
    def __call__(self, steps: Steps[T], /) -> Awaitable[T]: ...
