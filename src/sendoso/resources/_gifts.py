"""``/api/v3/gifts``: the catalog, every page of it."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

import httpx
from pydantic import ValidationError as PydanticValidationError

from sendoso._http import Call, response_json
from sendoso.errors import FieldProblem, NotFoundError, ResponseParseError
from sendoso.filters import GiftFilters
from sendoso.models import Gift
from sendoso.resources._steps import AsyncRunner, Runner, Steps

if TYPE_CHECKING:
    from sendoso._profile import HostProfile

__all__ = ["AsyncGifts", "Gifts"]

#: A catalog with more pages than this is treated as a server bug rather than followed forever.
_MAX_PAGES = 1000
PER_PAGE = 100


def page_call(profile: HostProfile, filters: GiftFilters, page: int) -> Call:
    params = {**filters.params(), "page": str(page), "per_page": str(PER_PAGE)}
    return Call("GET", profile.gifts_path, params=params)


def parse_page(response: httpx.Response, page: int) -> tuple[list[Gift], int | None]:
    """The gifts on one page and the number of the next page, if any."""
    try:
        body: Any = response_json(response)
    except ValueError as exc:
        raise ResponseParseError(
            f"catalog response is not JSON ({_why(exc)})", status_code=response.status_code
        ) from None
    meta: dict[str, Any] = {}
    items: list[Any] | None
    if isinstance(body, list):
        items = body
    elif isinstance(body, dict):
        items = next(
            (body[k] for k in ("gifts", "data", "items") if isinstance(body.get(k), list)), None
        )
        meta = body.get("meta") if isinstance(body.get("meta"), dict) else {}  # type: ignore[assignment]
        if items is None:
            raise ResponseParseError(
                "catalog response has no list of gifts", status_code=response.status_code
            )
    else:
        raise ResponseParseError("catalog response is not a list", status_code=response.status_code)
    gifts = []
    for index, item in enumerate(items):
        try:
            gifts.append(Gift.model_validate(item))
        except PydanticValidationError as exc:
            raise ResponseParseError(
                f"catalog item {index} on page {page} could not be read: {_first_error(exc)}",
                status_code=response.status_code,
            ) from None
    next_page = meta.get("next_page")
    if not isinstance(next_page, int) or next_page <= page:
        total_pages = meta.get("total_pages")
        next_page = page + 1 if isinstance(total_pages, int) and total_pages > page else None
    if not items or page >= _MAX_PAGES:
        next_page = None
    return gifts, next_page


def _why(exc: ValueError) -> str:
    # json and the UTF-8 decoder name a position, never the body's text; the size and depth
    # reasons come from response_json.
    text = str(exc)
    return text if text.startswith("the body") else f"invalid JSON: {text[:80]}"


def _first_error(exc: PydanticValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(p) for p in error["loc"])
    return f"{where}: {error['msg']}"


def find(gifts: list[Gift], gift_id: str) -> Gift:
    for gift in gifts:
        if gift.id == gift_id:
            return gift
    raise NotFoundError(
        f"gift {gift_id!r} is not in the catalog; list gifts to see what is available",
        status_code=404,
        error_type="not_found",
        details=[FieldProblem("gift_id", "unknown_gift", f"gift {gift_id!r} not found")],
    )


def list_gifts(profile: HostProfile, filters: GiftFilters) -> Steps[list[Gift]]:
    """Every page of the catalog, filtered."""
    found: list[Gift] = []
    page: int | None = 1
    while page is not None:
        response = yield page_call(profile, filters, page)
        gifts, page = parse_page(response, page)
        found.extend(gifts)
    return [g for g in found if filters.matches(g)]


def get_gift(profile: HostProfile, gift_id: str) -> Steps[Gift]:
    return find((yield from list_gifts(profile, GiftFilters())), gift_id)


class Gifts:
    def __init__(self, run: Runner, profile: HostProfile) -> None:
        self._run = run
        self._profile = profile

    def list(
        self,
        *,
        category: str | None = None,
        min_price: Decimal | float | str | None = None,
        max_price: Decimal | float | str | None = None,
    ) -> list[Gift]:
        """Every catalog item matching the filters, from every page. The filters are sent to
        the server and re-applied to what it returns."""
        filters = GiftFilters.of(category, min_price, max_price)
        return self._run(list_gifts(self._profile, filters))

    def get(self, gift_id: str) -> Gift:
        """One catalog item (the API has no per-item endpoint, so this reads the catalog)."""
        return self._run(get_gift(self._profile, gift_id))


class AsyncGifts:
    def __init__(self, run: AsyncRunner, profile: HostProfile) -> None:
        self._run = run
        self._profile = profile

    async def list(
        self,
        *,
        category: str | None = None,
        min_price: Decimal | float | str | None = None,
        max_price: Decimal | float | str | None = None,
    ) -> list[Gift]:
        """Every catalog item matching the filters, from every page; see :meth:`Gifts.list`."""
        filters = GiftFilters.of(category, min_price, max_price)
        return await self._run(list_gifts(self._profile, filters))

    async def get(self, gift_id: str) -> Gift:
        """One catalog item (the API has no per-item endpoint, so this reads the catalog)."""
        return await self._run(get_gift(self._profile, gift_id))
