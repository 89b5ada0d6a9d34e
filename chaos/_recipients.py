"""The CRM export a chaos run sends: N recipients, a known, seeded set of them invalid."""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Recipients", "write_recipients"]

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
_ADDRESS = ["1 Main St", "Austin", "TX", "78701", "US"]
_NO_ADDRESS = ["", "", "", "", ""]
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
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(HEADERS)
        for i in range(rows):
            gift = EGIFT if i % 2 == 0 else PHYSICAL
            email = f"chaos{i}@example.com"
            address = list(_ADDRESS if gift == PHYSICAL else _NO_ADDRESS)
            if i in invalid:
                flaw = rng.randrange(3)
                if flaw == 0:
                    email = f"chaos{i}@@broken"
                elif flaw == 1:
                    gift, address = PHYSICAL, [*_ADDRESS[:3], "", _ADDRESS[4]]
                else:
                    gift = "gft_no_such_gift"
            emails[i + 2] = email
            writer.writerow(["Pat", f"Chaos{i}", email, "Acme", *address, gift, f"Thanks {i}!"])
    return Recipients(path, rows, emails, frozenset(n + 2 for n in invalid))
