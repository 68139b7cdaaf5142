"""From units to step results: counts, conversions with Wilson intervals, drop-off and step times,
overall and per breakdown value; ``plain_funnel`` is a whole funnel without saved-segment
breakdowns (those go through ``loudou.analyses.funnel.rows``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from loudou.analyses.funnel.engine import units_in_use
from loudou.analyses.funnel.units import Units
from loudou.analyses.stats import wilson_interval
from loudou.backends.base import Store
from loudou.kernels.quantiles import entered_by_code, step_time_quantiles
from loudou.kernels.scratch import Scratch
from loudou.model.results import BreakdownResult, FunnelResult, StepResult
from loudou.model.spec import FunnelSpec, Step

OTHER = "other"
NONE_VALUE = "(none)"


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


def plain_funnel(store: Store, spec: FunnelSpec, engine: str = "auto") -> FunnelResult:
    """A funnel whose breakdown, if any, is a property or trait (not saved segments)."""
    with units_in_use(store, spec, engine) as (units, scratch):
        if spec.breakdown:
            steps, breakdown = _with_breakdown(units, spec, scratch)
        else:
            steps, breakdown = summarize(units, spec.steps, scratch), []
    return funnel_result(spec, steps, spec.breakdown, breakdown)


def funnel_result(
    spec: FunnelSpec,
    steps: list[StepResult],
    breakdown_by: str | None,
    breakdown: list[BreakdownResult],
) -> FunnelResult:
    """A funnel's result: the spec's name and options with its steps and breakdown."""
    return FunnelResult(
        funnel=spec.name,
        funnel_zh=spec.name_zh,
        mode=spec.mode,
        window_seconds=spec.window_seconds,
        count_by=spec.count,
        steps=steps,
        breakdown_by=breakdown_by,
        breakdown=breakdown,
    )
