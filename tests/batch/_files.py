"""Recipient files for batch tests: N rows of which a known set is invalid."""

from __future__ import annotations

import csv
from pathlib import Path

HEADERS = [
    "First Name",
    "Last Name",
    "Email",
    "Account Name",
    "Mailing Street",
    "Mailing City",
    "Mailing State/Province",
    "Mailing Zip/Postal Code",
    "Mailing Country",
    "Gift",
    "Message",
]
EGIFT = "gft_egift_amazon_us_25"
PHYSICAL = "gft_phys_coffee_sampler"


def recipients_csv(
    path: Path, rows: int, *, invalid_every: int | None = None, gift: str | None = None
) -> tuple[Path, set[int]]:
    """Write ``rows`` recipients (alternating eGift and physical gift unless ``gift``);
    every ``invalid_every``-th one has a broken email. Returns the path and the row numbers
    (as reported: header is row 1) that are invalid."""
    invalid: set[int] = set()
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(HEADERS)
        for i in range(rows):
            number = i + 2
            email = f"person{i}@example.com"
            if invalid_every and i % invalid_every == invalid_every - 1:
                email = f"person{i}@@broken"
                invalid.add(number)
            chosen = gift or (EGIFT if i % 2 == 0 else PHYSICAL)
            address = (
                ["1 Main St", "Austin", "TX", "78701", "US"]
                if chosen != EGIFT
                else ["", "", "", "", ""]
            )
            writer.writerow(
                ["Pat", f"Person{i}", email, "Acme", *address, chosen, f"Thanks, Pat {i}!"]
            )
    return path, invalid
