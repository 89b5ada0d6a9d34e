"""Recipient files and planned runs for the benchmarks that go through the batch engine."""

from __future__ import annotations

import csv
from pathlib import Path

from benchmarks._sandbox import RemoteSandbox
from sendoso.batch import BatchSpec, Ledger, prepare_run

EGIFT = "gft_egift_amazon_us_25"
PHYSICAL = "gft_phys_coffee_sampler"
HEADERS = [
    "First Name",
    "Last Name",
    "Email",
    "Mailing Street",
    "Mailing City",
    "Mailing State/Province",
    "Mailing Zip/Postal Code",
    "Mailing Country",
    "Gift",
]
MESSAGE = "Hi {first_name}, thank you for a great year!"


def recipients_csv(path: Path, rows: int, *, physical_every: int = 0) -> Path:
    """``rows`` valid recipients: eGifts, and a physical gift on every ``physical_every``-th
    row if set. Emails are distinct, also from other files' (named after the file), since
    the ledger never sends one recipient the same gift twice across runs."""
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(HEADERS)
        for i in range(rows):
            physical = physical_every > 0 and i % physical_every == physical_every - 1
            address = (
                ["1 Main St", "Austin", "TX", "78701", "US"] if physical else [""] * 4 + ["US"]
            )
            gift = PHYSICAL if physical else EGIFT
            writer.writerow(
                ["Pat", f"Person{i}", f"pat.{path.stem}.{i}@example.com", *address, gift]
            )
    return path


def plan(ledger: Ledger, sandbox: RemoteSandbox, path: Path, run_id: str) -> int:
    """Plan ``path`` into ``ledger`` as `sendoso batch run --yes` does; returns planned rows."""
    with sandbox.client() as client:
        catalog = client.gifts.list()
    spec = BatchSpec(path=str(path), run_id=run_id, message_template=MESSAGE)
    prepared = prepare_run(ledger, spec, catalog, base_url=sandbox.url)
    ledger.confirm(prepared.run.run_id)
    assert prepared.summary is not None
    return prepared.summary.planned
