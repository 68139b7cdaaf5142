"""The funnel analysis: store rows -> kernel levels -> per-step counts, rates, intervals and times.

Semantics are in DESIGN §4 and the README; the kernels replay ClickHouse ``windowFunnel``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from loudou.kernels import funnel as kern
from loudou.kernels.quantiles import entered_by_code, step_time_quantiles
from loudou.kernels.scratch import Scratch
from loudou.model.results import BreakdownResult, FunnelResult, StepResult
from loudou.model.spec import FunnelSpec, Step, parse_step
from loudou.query.stats import wilson_interval
from loudou.store.base import CachedStore, Store

OTHER = "other"
NONE_VALUE = "(none)"


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
    if spec.breakdown is not None:
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


def summarize(
    units: Units, steps: Sequence[Step], scratch: Scratch | None = None
) -> list[StepResult]:
    """Per-step counts, conversions with Wilson intervals, drop-off and time from previous step
    (``scratch``: reusable work buffers, see ``step_time_quantiles``)."""
    times = np.ascontiguousarray(units.times.T)  # [steps, units]: one contiguous row per step
    reached, median, p90 = step_time_quantiles(units.levels, times, scratch=scratch)
    return _step_results(steps, reached[0], median[0], p90[0])


def _seconds(value: float) -> float | None:
    return None if np.isnan(value) else float(value)


def _step_results(
    steps: Sequence[Step], reached: np.ndarray, median: np.ndarray, p90: np.ndarray
) -> list[StepResult]:
    """Step results from the kernel's per-step reached counts and median/p90 seconds (NaN: none;
    the kernel matches ``np.percentile(durations, [50, 90])`` bit for bit)."""
    out: list[StepResult] = []
    counts = reached.tolist()
    medians, p90s = median.tolist(), p90.tolist()
    for k, step in enumerate(steps):
        prev = counts[k - 1] if k else counts[0]
        start = counts[0]
        count = counts[k]
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
                median_seconds_from_previous=_seconds(medians[k]) if k else None,
                p90_seconds_from_previous=_seconds(p90s[k]) if k else None,
            )
        )
    return out


def _with_breakdown(
    units: Units, spec: FunnelSpec, scratch: Scratch | None = None
) -> tuple[list[StepResult], list[BreakdownResult]]:
    """All units' steps, and the units split by the breakdown value at their chain's step-1
    event: top N values by entered units, plus 'other'. One kernel call counts and times all of
    them (units that did not enter count nowhere, whatever their value)."""
    assert units.breakdown is not None and units.breakdown_labels is not None
    labels = [*units.breakdown_labels, NONE_VALUE]  # code -1 (no value) reads as the last label
    codes = np.asarray(units.breakdown, np.int64)
    entered = entered_by_code(units.levels, codes, len(labels) - 1).tolist()
    sizes: Counter[str] = Counter()
    for label, n in zip(labels, entered, strict=True):
        if n:
            sizes[str(label)] += n
    order = sorted(sizes, key=lambda v: (-sizes[v], v))
    top = order[: spec.breakdown_limit]
    bucket_of = {v: i for i, v in enumerate(top)}
    names = top + ([OTHER] if len(order) > len(top) else [])
    rest = len(top) if len(names) > len(top) else -1  # without 'other': units that never entered
    lut = np.array([bucket_of.get(str(v), rest) for v in labels], np.int64)
    times = np.ascontiguousarray(units.times.T)  # [steps, units]
    reached, median, p90 = step_time_quantiles(
        units.levels, times, codes, lut, len(names), scratch=scratch
    )
    results = [
        _step_results(spec.steps, reached[i], median[i], p90[i]) for i in range(len(names) + 1)
    ]
    return results[-1], [
        BreakdownResult(value=name, steps=steps)
        for name, steps in zip(names, results, strict=False)
    ]


def run_funnel(store: Store, spec: FunnelSpec, engine: str = "auto") -> FunnelResult:
    """Compute a funnel on a store (``engine``: see :func:`funnel_units`). A breakdown naming
    saved segments ('segments', 'segment:a,b', 'rfm') splits by those segments instead of a
    property (see :func:`loudou.query.rows.any_funnel`)."""
    from loudou.query.rows import any_funnel, is_segment_by

    if spec.breakdown and is_segment_by(spec.breakdown):
        return any_funnel(store, spec)
    with _units_in_use(store, spec, engine) as (units, scratch):
        if spec.breakdown:
            steps, breakdown = _with_breakdown(units, spec, scratch)
        else:
            steps, breakdown = summarize(units, spec.steps, scratch), []
    return FunnelResult(
        funnel=spec.name,
        funnel_zh=spec.name_zh,
        mode=spec.mode,
        window_seconds=spec.window_seconds,
        count_by=spec.count,
        steps=steps,
        breakdown_by=spec.breakdown,
        breakdown=breakdown,
    )


def funnel_units(store: Store, spec: FunnelSpec, engine: str = "auto") -> Units:
    """The funnel's units, from the columnar cache (``"cache"``; ``"auto"`` when the store has one
    and judges it worth using, see ``use_event_cache``) or from SQL rows (``"sql"``). Both give
    identical results; the tests check it."""
    with _units_in_use(store, spec, engine) as (units, scratch):
        return units if scratch is None else units.copy()  # borrowed: the caller's own arrays


def _cache_store(store: Store, engine: str) -> CachedStore | None:
    """The store when the funnel should run on its cache (see :func:`funnel_units`), else None."""
    if engine not in ("auto", "cache", "sql"):
        raise ValueError(f"unknown engine {engine!r}")
    if engine == "cache" and not isinstance(store, CachedStore):
        raise ValueError(f"engine='cache': a {type(store).__name__} has no event cache")
    if isinstance(store, CachedStore) and (
        engine == "cache" or (engine == "auto" and store.use_event_cache())
    ):
        return store
    return None


@contextmanager
def _units_in_use(
    store: Store, spec: FunnelSpec, engine: str
) -> Iterator[tuple[Units, Scratch | None]]:
    """:func:`funnel_units` for summarising on the spot: from the cache, the units are views of
    its reusable work buffers (valid inside the block only) and come with the query's scratch,
    so a funnel on a large cache allocates no fresh arrays as long as its customers."""
    cached = _cache_store(store, engine)
    if cached is not None:
        from loudou.query.cached import borrowed_units

        with borrowed_units(cached, spec) as (units, scratch):
            if units is not None:
                yield units, scratch
                return
        if engine == "cache":
            raise ValueError("this funnel cannot run on the cache")
    yield compute_units(store.funnel_events(spec), spec), None


def funnel_customers(store: Store, spec: FunnelSpec) -> pa.Table:
    """One row per counted unit that entered the funnel: who reached which step, and when.

    Columns: ``customer_id``, ``unit_key`` (session id for count=sessions, else ''), ``level``
    (last step reached), ``step_1`` .. ``step_n`` (UTC times of the chain's steps, null when not
    reached), and ``breakdown`` when the spec has one. Excluded customers are left out. This is
    what segment comparisons and converted/dropped exports start from.
    """
    units = funnel_units(store, spec)
    entered = units.levels > 0
    picked = units.select(entered)
    ids = units.ids()
    cols: dict[str, pa.Array | pa.ChunkedArray] = {
        "customer_id": ids.take(pa.array(picked.customer, pa.int64()))
        if len(picked.customer)
        else pa.array([], pa.string()),
        "unit_key": picked.unit_key,
        "level": pa.array(picked.levels, pa.int64()),
    }
    for k in range(len(spec.steps)):
        times = picked.times[:, k]
        cols[f"step_{k + 1}"] = pa.array(times, pa.int64(), mask=times < 0).cast(pa.timestamp("us"))
    if spec.breakdown and picked.breakdown is not None:
        cols["breakdown"] = pa.array(picked.breakdown_values(), pa.string())
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
