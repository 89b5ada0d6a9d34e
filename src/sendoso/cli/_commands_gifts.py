"""``sendoso gifts list``: the catalog as a table or JSON."""

from __future__ import annotations

from typing import Annotated

import typer

from sendoso.cli._exit import guard
from sendoso.cli._output import JsonFlag, console, gifts_table, print_json, usage_error
from sendoso.cli._state import state_of

__all__ = ["gifts_app"]

gifts_app = typer.Typer(
    help="Browse the gift catalog.", no_args_is_help=True, rich_markup_mode=None
)


@gifts_app.command("list")
def list_gifts(
    ctx: typer.Context,
    category: Annotated[
        str | None,
        typer.Option(help="physical, egift, swag or donation.", metavar="CATEGORY"),
    ] = None,
    min_price: Annotated[
        str | None, typer.Option("--min-price", help="Lowest price, e.g. 20.", metavar="AMOUNT")
    ] = None,
    max_price: Annotated[
        str | None, typer.Option("--max-price", help="Highest price, e.g. 50.", metavar="AMOUNT")
    ] = None,
    json_output: JsonFlag = False,
) -> None:
    """List catalog items, with a cost estimate (item + fulfilment + shipping) for each."""
    if category is not None:
        _check_category(category, json_output=json_output)
    state = state_of(ctx)
    with guard(json_output=json_output), state.client() as client:
        gifts = client.gifts.list(category=category, min_price=min_price, max_price=max_price)
    if json_output:
        print_json([gift.model_dump(mode="json") for gift in gifts])
        return
    out = console()
    if not gifts:
        out.print("No gifts match these filters.")
        return
    out.print(gifts_table(gifts, width=out.width))
    out.print(f"{len(gifts)} gift{'s' if len(gifts) != 1 else ''}.")


def _check_category(category: str, *, json_output: bool) -> None:
    """A category the catalog has, checked here: a typo is worth a hint, not a request the
    API refuses."""
    from difflib import get_close_matches

    from sendoso.models import GiftCategory

    names = [c.value for c in GiftCategory]
    if category.strip().lower() in names:
        return
    close = get_close_matches(category.strip().lower(), names, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise usage_error(
        f"--category {category!r} is not a category{hint} (one of {', '.join(names)})",
        json_output=json_output,
    )
