"""A funnel's counted units (customers, sessions or attempts) with their levels and step times,
and the kernel pass that computes them from the rows of ``Store.funnel_events``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from loudou.kernels import funnel as kern
from loudou.model.plan import FunnelPlan


@dataclass
class Units:
    """One row per counted unit (customer, session or attempt) that was not excluded."""

    levels: np.ndarray  # int64, 0..n_steps
    times: np.ndarray  # int64 [units, n_steps], microseconds; -1 where not reached (any layout)
    customer: np.ndarray  # int64 index into ``customer_ids``
    customer_ids: pa.Array | pa.ChunkedArray | list[str]  # customer id by index
    unit_key: pa.Array | pa.ChunkedArray  # session id per unit ('' unless count=sessions)
    breakdown: np.ndarray | None = None  # int64 code of the value at the chain's step 1; -1 none
    breakdown_labels: list[str] | None = None  # value of each code (several codes may share one)

    def ids(self) -> pa.Array | pa.ChunkedArray:
        """Customer ids by index as Arrow (built on demand: the cache keeps a plain list)."""
        ids = self.customer_ids
        return pa.array(ids, pa.string()) if isinstance(ids, list) else ids

    def breakdown_values(self) -> list[str | None]:
        assert self.breakdown is not None and self.breakdown_labels is not None
        labels = self.breakdown_labels
        return [None if c < 0 else labels[c] for c in self.breakdown.tolist()]

    @classmethod
    def from_levels(cls, levels: np.ndarray, times: np.ndarray) -> Units:
        """Anonymous units (for summarising rows that were filtered elsewhere)."""
        n = levels.shape[0]
        return cls(
            levels, times, np.zeros(n, np.int64), pa.array([], pa.string()), pa.array([""] * n)
        )

    def copy(self) -> Units:
        """The same units on arrays of their own (borrowed units live in reusable buffers)."""
        return Units(
            self.levels.copy(),
            np.copy(self.times, order="K"),
            self.customer.copy(),
            self.customer_ids,
            self.unit_key,
            None if self.breakdown is None else self.breakdown.copy(),
            self.breakdown_labels,
        )

    def select(self, keep: np.ndarray) -> Units:
        return Units(
            self.levels[keep],
            self.times[keep],
            self.customer[keep],
            self.customer_ids,
            self.unit_key.filter(pa.array(keep)),
            None if self.breakdown is None else self.breakdown[keep],
            self.breakdown_labels,
        )


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


def compute_units(table: pa.Table, plan: FunnelPlan) -> Units:
    """Run the kernel for the plan's mode and counting unit over rows from ``Store.funnel_events``."""
    n_steps = len(plan.steps)
    window = np.int64(plan.window_us)
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
    ex_after = np.array(plan.after_step, dtype=np.int64)
    ex_before = np.array(plan.before_step, dtype=np.int64)
    mode = kern.MODES[plan.mode]
    group_starts = _boundaries(table, ["customer_id", "unit_key", "group_key"])

    if plan.count == "totals":
        levels, times, first_idx, excluded, group = kern.funnel_attempts(
            t, mask, group_starts, n_steps, window, mode, ex_after, ex_before
        )
        start_row = group_starts[group]
    else:
        levels, times, first_idx, excluded = kern.funnel_groups(
            t, mask, group_starts, n_steps, window, mode, ex_after, ex_before
        )
        start_row = group_starts[:-1]
        if plan.hold:
            # several groups (held values) per unit: the unit's best group speaks for it
            unit_rows = _boundaries(table, ["customer_id", "unit_key"])
            unit_starts = np.searchsorted(group_starts, unit_rows).astype(np.int64)
            best = kern.best_group_per_unit(levels, unit_starts)
            levels, times, first_idx = levels[best], times[best], first_idx[best]
            excluded, start_row = excluded[best], start_row[best]
    keep = ~excluded
    levels, times, first_idx, start_row = (
        levels[keep],
        times[keep],
        first_idx[keep],
        start_row[keep],
    )
    breakdown = labels = None
    if plan.breakdown is not None:
        breakdown = np.full(levels.shape[0], -1, np.int64)
        entered = first_idx >= 0
        labels = []
        if entered.any():
            picked = table.column("breakdown").take(pa.array(first_idx[entered])).combine_chunks()
            enc = pc.dictionary_encode(picked)
            labels = enc.dictionary.to_pylist()
            breakdown[entered] = enc.indices.fill_null(-1).to_numpy(zero_copy_only=False)
    rows = pa.array(start_row, pa.int64())
    unit_key = table.column("unit_key").take(rows) if table.num_rows else pa.array([], pa.string())
    return Units(levels, times, start_row, table.column("customer_id"), unit_key, breakdown, labels)
