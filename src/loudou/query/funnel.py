"""The funnel analysis: store rows -> kernel levels -> per-step counts, rates, intervals and times.

Semantics are in DESIGN §4 and the README; the kernels replay ClickHouse ``windowFunnel``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from loudou.kernels import funnel as kern
from loudou.model.results import BreakdownResult, FunnelResult, StepResult
from loudou.model.spec import FunnelSpec, Step, parse_step
from loudou.query.stats import wilson_interval
from loudou.store.base import Store

OTHER = "other"
NONE_VALUE = "(none)"


@dataclass
class Units:
    """One row per counted unit (customer, session or attempt) that was not excluded."""

    levels: np.ndarray  # int64, 0..n_steps
    times: np.ndarray  # int64 [units, n_steps], microseconds; -1 where not reached
    first_idx: np.ndarray  # int64: row of the chain's step-1 event, -1 if none
    start_row: (
        np.ndarray
    )  # int64: first row of the unit's group, to name its customer (and session)


def _boundaries(table: pa.Table, columns: Sequence[str]) -> np.ndarray:
    """Start offsets of runs of equal values over ``columns`` (plus the end offset)."""
    n = table.num_rows
    if n == 0:
        return np.zeros(1, np.int64)
    change = np.zeros(n - 1, dtype=bool)
    for name in columns:
        col = table.column(name)
        diff = pc.not_equal(col.slice(1), col.slice(0, n - 1))
        change |= diff.to_numpy(zero_copy_only=False).astype(bool)
    return np.concatenate(([0], np.flatnonzero(change) + 1, [n])).astype(np.int64)


def compute_units(table: pa.Table, spec: FunnelSpec) -> Units:
    """Run the kernel for the spec's mode and counting unit over rows from ``Store.funnel_events``."""
    n_steps = len(spec.steps)
    window = np.int64(spec.window_seconds) * 1_000_000
    t = (
        table.column("t").to_numpy().astype(np.int64, copy=False)
        if table.num_rows
        else np.zeros(0, np.int64)
    )
    mask = (
        table.column("mask").to_numpy().astype(np.uint64, copy=False)
        if table.num_rows
        else np.zeros(0, np.uint64)
    )
    ex_after = np.array([x.after_step for x in spec.exclusions], dtype=np.int64)
    ex_before = np.array([x.before_step for x in spec.exclusions], dtype=np.int64)
    mode = kern.MODES[spec.mode]
    group_starts = _boundaries(table, ["customer_id", "unit_key", "group_key"])

    if spec.count == "totals":
        levels, times, first_idx, excluded, group = kern.funnel_attempts(
            t, mask, group_starts, n_steps, window, mode, ex_after, ex_before
        )
        start_row = group_starts[group]
    else:
        levels, times, first_idx, excluded = kern.funnel_groups(
            t, mask, group_starts, n_steps, window, mode, ex_after, ex_before
        )
        start_row = group_starts[:-1]
        if spec.hold_constant:
            # several groups (held values) per unit: the unit's best group speaks for it
            unit_rows = _boundaries(table, ["customer_id", "unit_key"])
            unit_of_row_start = np.searchsorted(group_starts, unit_rows)
            best = kern.best_group_per_unit(levels, unit_of_row_start.astype(np.int64))
            levels, times, first_idx, excluded = (
                levels[best],
                times[best],
                first_idx[best],
                excluded[best],
            )
            start_row = start_row[best]
    keep = ~excluded
    return Units(levels[keep], times[keep], first_idx[keep], start_row[keep])


def _percentile(values: np.ndarray, q: float) -> float | None:
    return None if values.size == 0 else float(np.percentile(values, q))


def summarize(units: Units, steps: Sequence[Step]) -> list[StepResult]:
    """Per-step counts, conversions with Wilson intervals, drop-off and time from previous step."""
    out: list[StepResult] = []
    counts = [int(np.count_nonzero(units.levels >= k + 1)) for k in range(len(steps))]
    for k, step in enumerate(steps):
        prev = counts[k - 1] if k else counts[0]
        start = counts[0]
        count = counts[k]
        if k:
            reached = units.levels >= k + 1
            deltas = (units.times[reached, k] - units.times[reached, k - 1]) / 1e6
            median, p90 = _percentile(deltas, 50), _percentile(deltas, 90)
        else:
            median = p90 = None
        out.append(
            StepResult(
                name=step.label("en"),
                name_zh=step.name_zh or step.label("en"),
                count=count,
                conversion_from_previous=count / prev if prev else 0.0,
                conversion_from_start=count / start if start else 0.0,
                ci95=wilson_interval(count, prev),
                ci95_from_start=wilson_interval(count, start),
                dropoff=prev - count,
                median_seconds_from_previous=median,
                p90_seconds_from_previous=p90,
            )
        )
    return out


def _breakdown(table: pa.Table, units: Units, spec: FunnelSpec) -> list[BreakdownResult]:
    """Split units by the breakdown value at their chain's step-1 event; top N plus 'other'."""
    entered = units.first_idx >= 0
    values = np.full(units.levels.shape[0], NONE_VALUE, dtype=object)
    if entered.any():
        picked = table.column("breakdown").take(pa.array(units.first_idx[entered]))
        values[entered] = [NONE_VALUE if v is None else v for v in picked.to_pylist()]
    sizes = Counter(str(v) for v in values[entered])
    order = sorted(sizes, key=lambda v: (-sizes[v], v))
    top, rest = order[: spec.breakdown_limit], order[spec.breakdown_limit :]
    result = []
    for label, members in [(v, [v]) for v in top] + ([(OTHER, rest)] if rest else []):
        sel = np.isin(values, members) & entered
        sub = Units(units.levels[sel], units.times[sel], units.first_idx[sel], units.start_row[sel])
        result.append(BreakdownResult(value=label, steps=summarize(sub, spec.steps)))
    return result


def run_funnel(store: Store, spec: FunnelSpec) -> FunnelResult:
    """Compute a funnel on a store."""
    table = store.funnel_events(spec)
    units = compute_units(table, spec)
    return FunnelResult(
        funnel=spec.name,
        funnel_zh=spec.name_zh,
        mode=spec.mode,
        window_seconds=spec.window_seconds,
        count_by=spec.count,
        steps=summarize(units, spec.steps),
        breakdown_by=spec.breakdown,
        breakdown=_breakdown(table, units, spec) if spec.breakdown else [],
    )


def funnel_customers(store: Store, spec: FunnelSpec) -> pa.Table:
    """One row per counted unit that entered the funnel: who reached which step, and when.

    Columns: ``customer_id``, ``unit_key`` (session id for count=sessions, else ''), ``level``
    (last step reached), ``step_1`` .. ``step_n`` (UTC times of the chain's steps, null when not
    reached), and ``breakdown`` when the spec has one. Excluded customers are left out. This is
    what segment comparisons and converted/dropped exports start from.
    """
    table = store.funnel_events(spec)
    units = compute_units(table, spec)
    entered = units.levels > 0
    rows = pa.array(units.start_row[entered])
    cols: dict[str, pa.Array] = {
        "customer_id": table.column("customer_id").take(rows)
        if len(rows)
        else pa.array([], pa.string()),
        "unit_key": table.column("unit_key").take(rows) if len(rows) else pa.array([], pa.string()),
        "level": pa.array(units.levels[entered], pa.int64()),
    }
    for k in range(len(spec.steps)):
        times = units.times[entered, k]
        cols[f"step_{k + 1}"] = pa.array(times, pa.int64(), mask=times < 0).cast(pa.timestamp("us"))
    if spec.breakdown:
        first = pa.array(units.first_idx[entered])
        cols["breakdown"] = (
            table.column("breakdown").take(first) if len(first) else pa.array([], pa.string())
        )
    return pa.table(cols)


class Funnel:
    """Notebook-friendly builder: ``Funnel(["signup", "purchase where revenue > 100"], window="7d")``.

    Steps may be inline strings, dicts as in YAML, or :class:`Step` objects; other keyword
    arguments are FunnelSpec fields (mode, count, breakdown, exclusions, hold_constant, ...).
    """

    def __init__(
        self,
        steps: Sequence[str | dict[str, Any] | Step],
        window: str | int = "14d",
        **options: Any,
    ) -> None:
        raw = [
            parse_step(s) if isinstance(s, str) else s.model_dump() if isinstance(s, Step) else s
            for s in steps
        ]
        self.spec = FunnelSpec.parse({"steps": raw, "window": window, **options})

    @classmethod
    def from_spec(cls, spec: FunnelSpec) -> Funnel:
        obj = cls.__new__(cls)
        obj.spec = spec
        return obj

    def run(self, store: Store) -> FunnelResult:
        return run_funnel(store, self.spec)
