"""Time to convert between any two steps: percentiles and histogram data.

Times come from the chain that gave each unit its level (the funnel's own times), so the
median here equals the funnel's median between consecutive steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from loudou.analyses.funnel.rows import filter_segment, funnel_rows
from loudou.backends.base import Store
from loudou.errors import LoudouError
from loudou.model.spec import FunnelSpec

PERCENTILES = (10, 25, 50, 75, 90, 95, 99)


@dataclass
class TimeToConvert:
    from_step: str
    to_step: str
    count: int
    mean_seconds: float | None
    percentiles: dict[int, float]
    bin_edges: list[float]  # seconds; len = len(counts) + 1
    counts: list[int]

    def to_dict(self) -> dict[str, Any]:
        """The ``loudou time-to-convert --json`` document."""
        return {
            "from_step": self.from_step,
            "to_step": self.to_step,
            "count": self.count,
            "mean_seconds": self.mean_seconds,
            "percentiles": {f"p{q}": v for q, v in self.percentiles.items()},
            "histogram": {"bin_edges_seconds": self.bin_edges, "counts": self.counts},
        }


def check_steps(spec: FunnelSpec, from_step: int, to_step: int) -> None:
    n = len(spec.steps)
    if not 1 <= from_step < to_step <= n:
        raise LoudouError(
            f"need 1 <= from < to <= {n}, got {from_step} and {to_step}", "--from-step"
        )


def time_to_convert(
    store: Store,
    spec: FunnelSpec,
    from_step: int = 1,
    to_step: int | None = None,
    *,
    bins: int = 20,
    segment: str | None = None,
) -> TimeToConvert:
    """Seconds from ``from_step`` to ``to_step`` (1-based; default first to last) of every unit
    that reached ``to_step``; linear percentiles and ``bins`` equal-width histogram bins."""
    to = len(spec.steps) if to_step is None else to_step
    check_steps(spec, from_step, to)
    if bins < 1:
        raise LoudouError("bins must be at least 1", "bins")
    rows = filter_segment(store, funnel_rows(store, spec), segment)
    reached = rows.levels >= to
    deltas = (rows.times[reached, to - 1] - rows.times[reached, from_step - 1]) / 1e6
    names = rows.step_names()
    if deltas.size == 0:
        return TimeToConvert(names[from_step - 1], names[to - 1], 0, None, {}, [], [])
    counts, edges = np.histogram(deltas, bins=bins)
    return TimeToConvert(
        names[from_step - 1],
        names[to - 1],
        int(deltas.size),
        float(deltas.mean()),
        {q: float(np.percentile(deltas, q)) for q in PERCENTILES},
        [float(e) for e in edges],
        [int(c) for c in counts],
    )
