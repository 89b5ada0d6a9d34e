"""Recipient files for batch tests: N rows of which a known set is invalid."""

from __future__ import annotations

from pathlib import Path

from chaos._recipients import EGIFT, PHYSICAL, address_for, recipient_row, write_csv

__all__ = ["EGIFT", "recipients_csv"]


def recipients_csv(
    path: Path, rows: int, *, invalid_every: int | None = None, gift: str | None = None
) -> tuple[Path, set[int]]:
    """Write ``rows`` recipients (alternating eGift and physical gift unless ``gift``);
    every ``invalid_every``-th one has a broken email. Returns the path and the row numbers
    (as reported: header is row 1) that are invalid."""
    invalid: set[int] = set()
    lines: list[list[str]] = []
    for i in range(rows):
        email = f"person{i}@example.com"
        if invalid_every and i % invalid_every == invalid_every - 1:
            email = f"person{i}@@broken"
            invalid.add(i + 2)
        chosen = gift or (EGIFT if i % 2 == 0 else PHYSICAL)
        lines.append(
            recipient_row(f"Person{i}", email, chosen, f"Thanks, Pat {i}!", address_for(chosen))
        )
    return write_csv(path, lines), invalid
