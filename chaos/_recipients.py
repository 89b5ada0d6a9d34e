"""The CRM export a chaos run sends: N recipients, a known, seeded set of them invalid.

Its columns, gifts and row shape are also those of the batch tests' and the benchmarks'
recipient files (tests/batch/_files.py, benchmarks/_batch.py), which import them from here.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "ADDRESS",
    "EGIFT",
    "HEADERS",
    "PHYSICAL",
    "Recipients",
    "address_for",
    "recipient_row",
    "write_csv",
    "write_recipients",
]

# The synthetic CRM export (a Salesforce contact report's columns) of the chaos runs, the
# batch tests and the benchmarks: one shape, so that all three exercise the same planning.
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
#: Gifts of the sandbox's catalog: one sent by email, one shipped (it needs an address).
EGIFT = "gft_egift_amazon_us_25"
PHYSICAL = "gft_phys_coffee_sampler"
#: The "Mailing ..." cells of a shipped gift, in HEADERS' order.
ADDRESS = ("1 Main St", "Austin", "TX", "78701", "US")
_NO_ADDRESS = ("", "", "", "", "")
#: One invalid row in this many (2,000 rows: 50 invalid).
INVALID_ONE_IN = 40


@dataclass(frozen=True)
class Recipients:
    path: Path
    rows: int
    #: Row numbers as the report gives them (the header is row 1) -> the row's email.
    emails: dict[int, str]
    #: Row numbers that planning must skip as invalid, and never send.
    invalid: frozenset[int]

    @property
    def valid(self) -> int:
        return self.rows - len(self.invalid)


def write_recipients(path: Path, rows: int, rng: random.Random) -> Recipients:
    """Alternate eGifts and physical gifts; break ``rows // 40`` rows (at least one) at
    seeded positions, each in one of three ways planning must catch: a malformed email, a
    physical gift without a postal code, a gift that is not in the catalog."""
    broken = max(1, rows // INVALID_ONE_IN) if rows >= 2 else 0
    invalid = set(rng.sample(range(rows), broken))
    emails: dict[int, str] = {}
    lines: list[list[str]] = []
    for i in range(rows):
        gift = EGIFT if i % 2 == 0 else PHYSICAL
        email = f"chaos{i}@example.com"
        address = address_for(gift)
        if i in invalid:
            flaw = rng.randrange(3)
            if flaw == 0:
                email = f"chaos{i}@@broken"
            elif flaw == 1:
                gift, address = PHYSICAL, (*ADDRESS[:3], "", ADDRESS[4])
            else:
                gift = "gft_no_such_gift"
        emails[i + 2] = email
        lines.append(recipient_row(f"Chaos{i}", email, gift, f"Thanks {i}!", address))
    write_csv(path, lines)
    return Recipients(path, rows, emails, frozenset(n + 2 for n in invalid))


def address_for(gift: str) -> Sequence[str]:
    """The "Mailing ..." cells for ``gift``: none for the eGift, :data:`ADDRESS` otherwise."""
    return _NO_ADDRESS if gift == EGIFT else ADDRESS


def recipient_row(
    last_name: str, email: str, gift: str, message: str, address: Sequence[str]
) -> list[str]:
    """One row under :data:`HEADERS`: Pat ``last_name`` of Acme."""
    return ["Pat", last_name, email, "Acme", *address, gift, message]


def write_csv(path: Path, rows: Iterable[Sequence[str]], headers: Sequence[str] = HEADERS) -> Path:
    """``headers``, then ``rows``, as a UTF-8 CSV file at ``path``; returns ``path``."""
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(headers)
        writer.writerows(rows)
    return path
