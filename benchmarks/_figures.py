"""What every benchmark returns: a figure measured beside its baseline, in the same run.

Absolute times drift on shared machines, so each figure carries the baseline it was measured
against and the ratio between them; the target is judged on that ratio (or, where the issue sets
an absolute bound such as "exactly 1 token request", on the value itself).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Figure:
    """One line of the results table.

    ``value`` and ``baseline`` are in ``unit``; ``ratio`` is ``value / baseline`` unless the
    benchmark says otherwise in ``name``.  ``met`` is None when the figure has no target
    (it is reported for context only).
    """

    benchmark: str
    name: str
    value: float
    unit: str
    baseline_name: str = ""
    baseline: float | None = None
    ratio: float | None = None
    target: str = ""
    met: bool | None = None
    detail: str = ""
