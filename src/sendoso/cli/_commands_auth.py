"""``sendoso auth check``: are the credentials good, and for how long is the token?"""

from __future__ import annotations

from typing import Any

import typer

from sendoso.cli._exit import guard
from sendoso.cli._output import JsonFlag, console, kv_table, print_json
from sendoso.cli._state import state_of

__all__ = ["auth_app", "human_duration"]

auth_app = typer.Typer(help="Check credentials.", no_args_is_help=True, rich_markup_mode=None)


def human_duration(seconds: float) -> str:
    """``5400`` -> ``"1 h 30 min"``; negative means already expired."""
    if seconds <= 0:
        return "expired"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    parts = [
        f"{days} d" if days else "",
        f"{hours} h" if hours else "",
        f"{minutes} min" if minutes else "",
    ]
    shown = " ".join(p for p in parts if p)
    return shown or f"{secs} s"


@auth_app.command("check")
def check(
    ctx: typer.Context,
    json_output: JsonFlag = False,
) -> None:
    """Obtain a fresh access token (proving the credentials work now) and show its expiry.

    Prints the base URL, client id, token type and expiry; never the token itself.
    """
    from datetime import UTC, datetime

    state = state_of(ctx)
    with guard(json_output=json_output), state.client() as client:
        info = client.authenticate(refresh=True)
        settings = state.settings()
        base_url = client.base_url
    expires_at = info.expires_at.astimezone(UTC)
    remaining = (expires_at - datetime.now(UTC)).total_seconds()
    data: dict[str, Any] = {
        "ok": True,
        "base_url": base_url,
        "client_id": settings.client_id,
        "profile": settings.profile,
        "token_type": info.token_type,
        "expires_at": expires_at.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "expires_in_seconds": max(0, int(remaining)),
    }
    if json_output:
        print_json(data)
        return
    out = console()
    out.print(
        kv_table(
            {
                "Base URL": data["base_url"],
                "Client ID": data["client_id"],
                "Profile": data["profile"],
                "Token type": data["token_type"],
                "Expires at (UTC)": data["expires_at"],
                "Valid for": human_duration(remaining),
            },
            title="Authenticated",
        )
    )
