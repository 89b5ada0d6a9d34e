"""Recipient files and planned runs for the benchmarks that go through the batch engine."""

from __future__ import annotations

from pathlib import Path

from chaos._recipients import ADDRESS, EGIFT, HEADERS, PHYSICAL, write_csv

from benchmarks._sandbox import RemoteSandbox
from sendoso.batch import BatchSpec, Ledger, prepare_run

__all__ = ["EGIFT", "MESSAGE", "plan", "recipients_csv"]

# The run's template writes every message, so no per-row one; no account either.
_HEADERS = [name for name in HEADERS if name not in ("Account Name", "Message")]
# An eGift row has no address but its country.
_EGIFT_ADDRESS = ("", "", "", "", ADDRESS[-1])
MESSAGE = "Hi {first_name}, thank you for a great year!"


def recipients_csv(path: Path, rows: int, *, physical_every: int = 0) -> Path:
    """``rows`` valid recipients: eGifts, and a physical gift on every ``physical_every``-th
    row if set. Emails are distinct, also from other files' (named after the file), since
    the ledger never sends one recipient the same gift twice across runs."""
    lines: list[list[str]] = []
    for i in range(rows):
        physical = physical_every > 0 and i % physical_every == physical_every - 1
        address = ADDRESS if physical else _EGIFT_ADDRESS
        gift = PHYSICAL if physical else EGIFT
        lines.append(["Pat", f"Person{i}", f"pat.{path.stem}.{i}@example.com", *address, gift])
    return write_csv(path, lines, _HEADERS)


def plan(ledger: Ledger, sandbox: RemoteSandbox, path: Path, run_id: str) -> int:
    """Plan ``path`` into ``ledger`` as `sendoso batch run --yes` does; returns planned rows."""
    with sandbox.client() as client:
        catalog = client.gifts.list()
    spec = BatchSpec(path=str(path), run_id=run_id, message_template=MESSAGE)
    prepared = prepare_run(ledger, spec, catalog, base_url=sandbox.url)
    ledger.confirm(prepared.run.run_id)
    assert prepared.summary is not None
    return prepared.summary.planned
