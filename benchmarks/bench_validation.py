"""Validation and templating: what planning a batch costs per row, before any request is sent.

What is measured is the planner, `sendoso.batch.plan_rows`, the path every `batch run` takes:
each row of a CSV streamed from disk is mapped to a send request, its `--message-template`
rendered, normalised and validated (fields, email, address, country, the catalog item's rules),
its cost estimated against the catalog, its dedupe key and idempotency key derived. The input
is a generated 200,000-row Salesforce-style export (mixed eGift and physical gifts, US and CA
addresses, 2,000 email domains, 1 % non-ASCII addresses, 2 % invalid rows, 1 % duplicates).
Throughput is rows per CPU-second of this process (one core; CPU time rather than wall time,
since the machine is shared).

- Without the ledger (a writer that keeps nothing): validation and templating alone; the
  target is judged on this figure.
- With the ledger: `prepare_run` into a fresh SQLite ledger, exactly as `sendoso batch run`
  plans (dedupe queries and row inserts in one transaction); reported for context.

Baselines, same run, same file: reading it with the `csv` module and nothing else (the floor
under any per-row work), and the same planning with every email checked by email_validator
(how every address was checked before the fast path; it still decides anything unusual).

Peak memory: the RSS high-water mark of a child process that plans 100,000 rows, and of
another that plans 1,000,000, without and then with the ledger. Flat means the million needs
no more memory than the hundred thousand: judged on the planner (without the ledger), and the
150 MB bound on both.
"""

from __future__ import annotations

import csv
import gc
import random
import subprocess
import sys
import tempfile
import textwrap
import time
import unicodedata
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from benchmarks._figures import Figure

TITLE = "3. Validation and templating"
NAME = "validation"
TARGET_ROWS_PER_S = 50_000
TARGET_MB = 150
TEMPLATE = "Hi {first_name}, thank you for a great year at {account_name}!"
HEADER = [
    "First Name",
    "Last Name",
    "Email",
    "Account Name",
    "Title",
    "Mailing Street",
    "Mailing City",
    "Mailing State/Province Code",
    "Mailing Zip/Postal Code",
    "Mailing Country",
    "Gift",
    "Record ID",
]
GIFTS = (
    "gft_egift_visa_50",
    "gft_egift_starbucks_10",
    "gft_phys_coffee_sampler",
    "gft_egift_doordash_25",
)
# The eGift cards above are US-only; these also go to Canada.
CA_GIFTS = ("gft_phys_coffee_sampler", "gft_egift_global_choice_100")
FIRST = ("Ada", "Grace", "Alan", "Katherine", "Edsger", "Barbara", "Donald", "Zoë", "José", "Li")
LAST = ("Lovelace", "Hopper", "Turing", "Johnson", "Dijkstra", "Liskov", "Knuth", "Müller")
US = (("Springfield", "IL", "62701"), ("Austin", "TX", "78701"), ("Boston", "MA", "02110"))
CA = (("Toronto", "ON", "M5V 2T6"), ("Vancouver", "BC", "V6B 1A1"))


def _ascii(name: str) -> str:
    # Names keep their accents; addresses, as most mail systems hand them out, do not.
    return unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()


def write_rows(path: Path, rows: int, seed: int = 5) -> Path:
    """A CRM-style export of ``rows`` recipients (deterministic for a seed)."""
    rnd = random.Random(seed)
    # Zipf-like: a few big customers, a long tail of small ones.
    domains = [
        f"{rnd.choice(('acme', 'globex', 'initech', 'umbrella'))}{i}.com" for i in range(2000)
    ]
    weights = [1 / (i + 1) for i in range(len(domains))]
    with path.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(HEADER)
        chosen = rnd.choices(domains, weights, k=rows)
        recent: deque[tuple[str, str]] = deque(maxlen=10)
        for i in range(rows):
            first, last = rnd.choice(FIRST), rnd.choice(LAST)
            domain = chosen[i]
            email = f"{_ascii(first)}.{_ascii(last)}{i}@{domain}"
            gift = rnd.choice(GIFTS)
            roll = rnd.random()
            if roll < 0.01:
                email = f"{first}.{i}@bücher-{i % 50}.de"  # internationalised: email_validator
            elif roll < 0.02:
                email = f"{first}.{i}@@{domain}"  # invalid
            if rnd.random() < 0.85:
                city, state, postal = rnd.choice(US)
                country = rnd.choice(("US", "United States", "USA"))
            else:
                city, state, postal = rnd.choice(CA)
                country = "Canada"
                if gift not in CA_GIFTS:
                    gift = rnd.choice(CA_GIFTS)
            if 0.02 <= roll < 0.03 and recent:
                email, gift = recent[0]  # the same person and gift a few rows up
            recent.append((email, gift))
            if rnd.random() < 0.01:
                postal = ""  # invalid for a physical gift
            out.writerow(
                [
                    first,
                    last,
                    email,
                    f"{domain.split('.')[0].title()} Inc.",
                    rnd.choice(("VP Sales", "CTO", "Account Executive", "")),
                    f"{rnd.randint(1, 9999)} Main St",
                    city,
                    state,
                    postal,
                    country,
                    gift,
                    f"003{i:012d}",
                ]
            )
    return path


def _catalog() -> list[Any]:
    from sendoso.sandbox._catalog import CATALOG

    return list(CATALOG)


def _cpu(work: Callable[[], int]) -> tuple[float, int]:
    """(CPU seconds, rows) for ``work``; a collection first, so no earlier garbage is billed."""
    gc.collect()
    started = time.process_time()
    rows = work()
    return time.process_time() - started, rows


def _plan_without_ledger(path: Path) -> int:
    from sendoso.batch._plan import PlanOptions, plan_rows
    from sendoso.batch._sources import Source
    from sendoso.batch._template import MessageTemplate
    from sendoso.ledger import PlannedRow, PlanWriter

    class _NoLedger(PlanWriter):
        """A plan writer that keeps nothing: what is left is validation and templating."""

        def __init__(self) -> None:  # no connection: nothing is written
            self.rows_written = 0

        def first_rows(self, dedupe_keys: Iterable[str]) -> dict[str, int]:
            return {}

        def add(self, rows: Sequence[PlannedRow]) -> None:
            self.rows_written += len(rows)

    options = PlanOptions(run_id="bench", template=MessageTemplate(TEMPLATE))
    summary = plan_rows(Source(path).rows(), _catalog(), options, _NoLedger())
    return summary.rows


def _plan_into_ledger(path: Path, directory: Path) -> int:
    from sendoso.batch import BatchSpec, Ledger, prepare_run

    with Ledger(f"sqlite:///{directory / f'ledger-{time.monotonic_ns()}.db'}") as ledger:
        spec = BatchSpec(path=str(path), message_template=TEMPLATE)
        prepared = prepare_run(ledger, spec, _catalog(), base_url="http://127.0.0.1:9")
        assert prepared.summary is not None
        return prepared.summary.rows


def _read_csv(path: Path) -> int:
    rows = 0
    with path.open(newline="", encoding="utf-8") as f:
        for _ in csv.reader(f):
            rows += 1
    return rows - 1


def _with_email_validator_only(work: Callable[[], int]) -> Callable[[], int]:
    def run() -> int:
        import sendoso.validation as validation

        fast = validation._plainly_valid_email
        validation._plainly_valid_email = lambda email: False
        try:
            return work()
        finally:
            validation._plainly_valid_email = fast

    return run


_PEAK = textwrap.dedent(
    """
    import resource, sys, tempfile
    from pathlib import Path
    from benchmarks.bench_validation import _plan_into_ledger, _plan_without_ledger
    path = Path(sys.argv[1])
    with tempfile.TemporaryDirectory() as directory:
        if sys.argv[2] == "ledger":
            rows = _plan_into_ledger(path, Path(directory))
        else:
            rows = _plan_without_ledger(path)
    try:
        # This process's own high-water mark. (ru_maxrss on Linux also counts the parent's
        # memory this process had between fork and exec.)
        status = Path("/proc/self/status").read_text().splitlines()
        peak = 1024 * int(next(x for x in status if x.startswith("VmHWM:")).split()[1])
    except (OSError, StopIteration):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        peak *= 1 if sys.platform == "darwin" else 1024
    print(rows, peak)
    """
)


def _peak_mb(path: Path, *, ledger: bool) -> tuple[int, float]:
    """(rows, peak RSS in MB) of a fresh process planning ``path`` (into a SQLite ledger)."""
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(  # noqa: S603 - this interpreter, a fixed script
        [sys.executable, "-c", _PEAK, str(path), "ledger" if ledger else "none"],
        capture_output=True,
        text=True,
        check=True,
        cwd=root,
        timeout=3600,
    )
    rows, peak = done.stdout.split()
    return int(rows), int(peak) / 1024 / 1024


def run(quick: bool) -> list[Figure]:
    rows = 3_000 if quick else 200_000
    sample = 3_000 if quick else 50_000
    small, large = (1_000, 5_000) if quick else (100_000, 1_000_000)
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="sendoso-bench-") as tmp:
        directory = Path(tmp)
        path = write_rows(directory / "export.csv", rows)
        sample_path = write_rows(directory / "sample.csv", sample)

        _plan_without_ledger(sample_path)  # warm: imports, catalog, caches
        floor_s, floor_rows = _cpu(lambda: _read_csv(path))
        plan_s, planned = _cpu(lambda: _plan_without_ledger(path))
        slow_s, slow_rows = _cpu(
            _with_email_validator_only(lambda: _plan_without_ledger(sample_path))
        )
        ledger_s, ledger_rows = _cpu(lambda: _plan_into_ledger(path, directory))

        rate = planned / plan_s
        floor = floor_rows / floor_s
        slow = slow_rows / slow_s
        ledger = ledger_rows / ledger_s
        per_row_us = plan_s / planned * 1e6
        figures.append(
            Figure(
                NAME,
                f"validation + templating, {planned:,} rows, no ledger",
                rate,
                "rows/s",
                baseline_name="same, every email through email_validator",
                baseline=slow,
                ratio=rate / slow,
                target=f">= {TARGET_ROWS_PER_S:,} rows/s (one core)",
                met=rate >= TARGET_ROWS_PER_S,
                detail=f"{per_row_us:.1f} us of CPU per row; baseline on {slow_rows:,} rows",
            )
        )
        figures.append(
            Figure(
                NAME,
                "csv module: read the same file, nothing else",
                floor,
                "rows/s",
                detail=f"the floor: reading is {floor_s / plan_s:.0%} of the planning time",
            )
        )
        figures.append(
            Figure(
                NAME,
                f"planning into a SQLite ledger (prepare_run), {ledger_rows:,} rows",
                ledger,
                "rows/s",
                baseline_name="validation + templating, no ledger",
                baseline=rate,
                ratio=ledger / rate,
                detail=f"the ledger adds {(ledger_s / ledger_rows - plan_s / planned) * 1e6:.1f}"
                " us per row (dedupe queries, inserts, one commit)",
            )
        )

        path.unlink()
        small_path = write_rows(directory / "small.csv", small)
        large_path = write_rows(directory / "large.csv", large)
        for ledger in (False, True):
            small_rows, small_mb = _peak_mb(small_path, ledger=ledger)
            large_rows, large_mb = _peak_mb(large_path, ledger=ledger)
            growth = (large_mb - small_mb) * 1024 * 1024 / (large_rows - small_rows)
            where = "into a SQLite ledger" if ledger else "without the ledger"
            figures.append(
                Figure(
                    NAME,
                    f"peak RSS planning {large_rows:,} rows {where}",
                    large_mb,
                    "MB",
                    baseline_name=f"same, {small_rows:,} rows",
                    baseline=small_mb,
                    ratio=large_mb / small_mb,
                    target=f"<= {TARGET_MB} MB"
                    if ledger
                    else f"flat (<= 1.05x), <= {TARGET_MB} MB",
                    met=large_mb <= TARGET_MB and (ledger or large_mb / small_mb <= 1.05),
                    detail=f"{growth:+.0f} bytes per extra row; the child's own RSS high-water "
                    "mark (VmHWM), interpreter and imports included",
                )
            )
    return figures
