"""How the ledger knows a recipient, and a recipient-and-gift pair, across runs."""

from __future__ import annotations

__all__ = ["dedupe_key", "recipient_key"]


def recipient_key(email: str | None) -> str | None:
    """The recipient as the ledger records them (cool-downs and duplicates compare these):
    their email in lower case, so that one person is one key however it is capitalised."""
    return email.lower() if email else None


def dedupe_key(recipient: str | None, gift_id: str | None) -> str:
    """The key that makes a second send of one gift to one recipient a duplicate."""
    return f"{recipient}|{gift_id}"
