"""Segment comparison: each segment's step-to-step conversion against the rest of the funnel.

Per segment and transition: the rate with a Wilson 95% interval, the difference from the rest in
points, a pooled two-proportion z-test (equal to chi-square without continuity correction), a
Benjamini–Hochberg q-value over every comparison shown, and the customers the segment would win
back if it converted like the rest. Cells with fewer than ``min_customers`` on either side give no
numbers: they say "too few customers".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from loudou.analyses.funnel.rows import FunnelRows, Group, groups_for
from loudou.analyses.stats import bh_qvalues, two_proportion_test, wilson_interval
from loudou.backends.base import Store
from loudou.model.spec import FunnelSpec

MIN_CUSTOMERS = 30


@dataclass
class Cell:
    """One segment at one transition (``step`` → ``step + 1``, 1-based), against the rest."""

    step: int
    from_step: str
    to_step: str
    entered: int
    converted: int
    rest_entered: int
    rest_converted: int
    too_few: bool
    rate: float | None = None
    ci95: tuple[float, float] | None = None
    rest_rate: float | None = None
    difference_points: float | None = None
    p_value: float | None = None
    q_value: float | None = None
    won_back: float | None = None  # entered × (rest rate − rate); negative when doing better

    def to_dict(self) -> dict[str, Any]:
        return {
            "from_step": self.from_step,
            "to_step": self.to_step,
            "entered": self.entered,
            "converted": self.converted,
            "rate": self.rate,
            "ci95": None if self.ci95 is None else list(self.ci95),
            "rest_rate": self.rest_rate,
            "difference_points": self.difference_points,
            "p_value": self.p_value,
            "q_value": self.q_value,
            "won_back": self.won_back,
            "too_few": self.too_few,
        }


def compare_cell(
    rows: FunnelRows, group: Group, k: int, min_customers: int = MIN_CUSTOMERS
) -> Cell:
    """Test transition k of one group against the rest (p-value only; q-values come later)."""
    n, x = rows.counts(k, group.mask)
    rn, rx = rows.counts(k, ~group.mask)
    names = rows.step_names()
    cell = Cell(k, names[k - 1], names[k], n, x, rn, rx, n < min_customers or rn < min_customers)
    if cell.too_few:
        return cell
    rate, rest = x / n, rx / rn
    cell.rate, cell.ci95, cell.rest_rate = rate, wilson_interval(x, n), rest
    cell.difference_points = 100 * (rate - rest)
    cell.p_value = two_proportion_test(x, n, rx, rn)[1]
    cell.won_back = n * (rest - rate)
    return cell


@dataclass
class SegmentComparison:
    property: str
    value: str
    customers: int
    transitions: list[Cell]

    def to_dict(self) -> dict[str, Any]:
        return {
            "property": self.property,
            "value": self.value,
            "customers": self.customers,
            "transitions": [c.to_dict() for c in self.transitions],
        }


@dataclass
class CompareResult:
    funnel: str
    by: list[str]
    steps: list[str]
    steps_zh: list[str]
    min_customers: int
    segments: list[SegmentComparison] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The ``loudou compare --json`` document (see README)."""
        return {
            "funnel": self.funnel,
            "by": self.by,
            "steps": self.steps,
            "min_customers": self.min_customers,
            "segments": [s.to_dict() for s in self.segments],
        }

    def cells(self) -> list[Cell]:
        return [c for s in self.segments for c in s.transitions]

    def to_pandas(self) -> Any:
        import pandas as pd

        return pd.DataFrame(
            [
                {"property": s.property, "value": s.value, **c.to_dict()}
                for s in self.segments
                for c in s.transitions
            ]
        )


def add_qvalues(cells: Sequence[Cell]) -> None:
    """Benjamini–Hochberg over every cell with a p-value, in place."""
    for cell, q in zip(cells, bh_qvalues([c.p_value for c in cells]), strict=True):
        cell.q_value = q


def compare(
    store: Store,
    spec: FunnelSpec,
    by: str | Sequence[str],
    *,
    segment: str | None = None,
    min_customers: int = MIN_CUSTOMERS,
    limit: int = 10,
) -> CompareResult:
    """Compare the funnel per group of each ``by`` (a property/trait, ``segments``,
    ``segment:a,b`` or ``rfm``), optionally within the saved segment ``segment``."""
    bys = [by] if isinstance(by, str) else list(by)
    result = CompareResult(
        spec.name,
        bys,
        [s.label("en") for s in spec.steps],
        [s.label("zh") for s in spec.steps],
        min_customers,
    )
    for b in bys:
        rows, groups = groups_for(store, spec, b, segment, limit)
        for g in groups:
            cells = [compare_cell(rows, g, k, min_customers) for k in range(1, len(spec.steps))]
            result.segments.append(SegmentComparison(g.property, g.value, int(g.mask.sum()), cells))
    add_qvalues(result.cells())
    return result
