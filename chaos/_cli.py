"""`python -m chaos` (`make chaos`): options, the figures table, the exit code."""

from __future__ import annotations

import argparse
import json
import secrets
import sys
from collections.abc import Sequence

from chaos._harness import ALL_MODES, ChaosConfig, ModeResult, iter_failures, run_chaos

__all__ = ["main", "render_table", "replay_command"]


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {value}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m chaos",
        description=(
            "Send a batch through `sendoso batch run` against a faulty sandbox, SIGKILL the "
            "runner at seeded moments and resume it, then check from the sandbox's own record "
            "that no recipient got two sends and no valid row was lost. Exits 1 on any "
            "duplicate, lost row or broken promise."
        ),
    )
    parser.add_argument("--rows", type=_positive, default=2000, help="rows in the file (2000)")
    parser.add_argument("--kills", type=_non_negative, default=10, help="SIGKILLs per mode (10)")
    parser.add_argument(
        "--seed", type=int, default=None, help="replay a run (default: random, always printed)"
    )
    parser.add_argument(
        "--mode",
        action="append",
        choices=ALL_MODES,
        help=(
            "trusted, untrusted, postgres (killed runs); token5xx (the token endpoint failing"
            " mid-run), prices (prices rising between plan and send); diskfull, pgdown (the"
            " ledger fails mid-run); repeatable (default: all seven)"
        ),
    )
    parser.add_argument(
        "--concurrency", type=_positive, default=8, help="sends in flight per runner (8)"
    )
    parser.add_argument(
        "--settle",
        type=_non_negative,
        default=12,
        help="untrusted mode: unknown rows to settle from the server's record, then resume (12)",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    return parser


def replay_command(config: ChaosConfig) -> str:
    modes = "" if config.modes == ALL_MODES else "".join(f" --mode {m}" for m in config.modes)
    return (
        f".venv/bin/python -m chaos --rows {config.rows} --kills {config.kills}"
        f" --seed {config.seed}{modes}"
        + (f" --concurrency {config.concurrency}" if config.concurrency != 8 else "")
        + (f" --settle {config.settle}" if config.settle != 12 else "")
    )


_COLUMNS = (
    "mode", "rows", "kills", "5xx", "dropped", "429", "tokens", "sends",
    "duplicates", "lost", "unknown", "unrecorded", "spent/budget", "wall", "seed",
)  # fmt: skip


def _cells(result: ModeResult) -> list[str]:
    if result.skipped is not None:
        return [result.mode, "skipped", *([""] * (len(_COLUMNS) - 3)), str(result.seed)]
    faults = result.faults
    return [
        result.mode,
        f"{result.rows} ({result.invalid} invalid, {result.budget_skipped} over budget)",
        str(result.kills),
        *(str(faults.get(kind, 0)) for kind in ("5xx", "dropped", "429", "tokens")),
        str(result.sends),
        str(result.duplicates),
        str(result.lost),
        f"{result.unknown} ({result.unknown_sent} sent)" if result.unknown else "0",
        str(result.unrecorded)
        + (f" ({result.reported_unrecorded} reported)" if result.reported_unrecorded else ""),
        f"{result.spent_high.split(' ')[0]}/{result.budget}",
        f"{result.wall_seconds:.1f} s",
        str(result.seed),
    ]


def render_table(results: Sequence[ModeResult]) -> str:
    """The figures as a Markdown table (it reads as well in a terminal as in the README)."""
    rows = [list(_COLUMNS), *(_cells(r) for r in results)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(rows[0]), rule, *(line(r) for r in rows[1:])])


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    seed = args.seed if args.seed is not None else secrets.randbits(32)
    modes = tuple(dict.fromkeys(args.mode)) if args.mode else ALL_MODES
    config = ChaosConfig(
        rows=args.rows,
        kills=args.kills,
        seed=seed,
        modes=modes,
        concurrency=args.concurrency,
        settle=args.settle,
    )
    if not args.json:
        print(f"chaos: seed {seed}; replay with: {replay_command(config)}", flush=True)
    results = run_chaos(config)
    failures = list(iter_failures(results))
    ok = all(r.ok for r in results)
    if args.json:
        document = {
            "seed": seed,
            "replay": replay_command(config),
            "ok": ok,
            "modes": [r.as_json() for r in results],
        }
        print(json.dumps(document, indent=2))
    else:
        print(render_table(results))
        for result in results:
            if result.skipped:
                print(f"{result.mode}: skipped: {result.skipped}")
        for failure in failures:
            print(f"FAIL {failure}", file=sys.stderr)
        skipped = [r.mode for r in results if r.skipped is not None]
        note = f" (skipped: {', '.join(skipped)})" if skipped else ""
        print(
            f"chaos: OK: no duplicates, no lost rows, no unrecorded send ids{note}"
            if ok
            else f"chaos: FAILED (seed {seed}); replay with: {replay_command(config)}"
        )
    return 0 if ok else 1
