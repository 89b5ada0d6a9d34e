"""Chaos runs: the batch engine's promises checked under faults and SIGKILLs (`make chaos`).

`run_chaos(ChaosConfig(...))` runs the modes and returns one :class:`ModeResult` each;
`python -m chaos --help` lists the options. See `chaos._harness` for what is checked.
"""

from chaos._cli import main, render_table, replay_command
from chaos._harness import (
    ALL_MODES,
    LEDGER_MODES,
    MODES,
    ChaosConfig,
    FaultPlan,
    ModeResult,
    run_chaos,
)

__all__ = [
    "ALL_MODES",
    "LEDGER_MODES",
    "MODES",
    "ChaosConfig",
    "FaultPlan",
    "ModeResult",
    "main",
    "render_table",
    "replay_command",
    "run_chaos",
]
