"""Conversion trends: each transition's rate per day, week or month of step-1 time.

Each period says whether it is ``complete``: every customer in it has had the whole conversion
window by the newest event, so a low rate at the right edge is not mistaken for a drop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np

from loudou.analyses.funnel.rows import FunnelRows, filter_segment, funnel_rows
from loudou.analyses.segments import data_end
from loudou.analyses.stats import wilson_interval
from loudou.backends.base import Store
from loudou.errors import LoudouError
from loudou.model.spec import FunnelSpec

PERIODS = ("day", "week", "month")
DAY_US = 86_400_000_000


def check_period(period: str) -> None:
    if period not in PERIODS:
        raise LoudouError(f"unknown period {period!r}; use day, week or month", "period")


def period_ordinals(times_us: np.ndarray, period: str) -> np.ndarray:
    """Calendar ordinal of each time (µs UTC): days, Monday-weeks or months since 1970."""
    days = np.floor_divide(times_us, DAY_US).astype(np.int64)
    if period == "day":
        return days
    if period == "week":
        return (days + 3) // 7  # 1970-01-01 was a Thursday; weeks start on Monday
    return days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)


def period_span(first: int, last: int, period: str) -> tuple[date, date]:
    """First and last day (inclusive) of the periods ``first``..``last``."""
    epoch = date(1970, 1, 1)
    if period == "day":
        return epoch + timedelta(first), epoch + timedelta(last)
    if period == "week":
        return epoch + timedelta(7 * first - 3), epoch + timedelta(7 * last + 3)
    nxt = last + 1
    return (
        date(1970 + first // 12, first % 12 + 1, 1),
        date(1970 + nxt // 12, nxt % 12 + 1, 1) - timedelta(1),
    )


def mature_cutoff(store: Store, spec: FunnelSpec) -> int | None:
    """Latest step-1 time (µs) whose whole window lies before the newest event."""
    end = data_end(store)
    if end is None:
        return None
    return int(np.datetime64(end, "us").astype(np.int64)) - spec.window_seconds * 1_000_000


@dataclass
class TrendPoint:
    start: date
    end: date
    entered: int
    converted: int
    rate: float | None
    ci95: tuple[float, float] | None
    complete: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "entered": self.entered,
            "converted": self.converted,
            "rate": self.rate,
            "ci95": None if self.ci95 is None else list(self.ci95),
            "complete": self.complete,
        }


@dataclass
class TrendSeries:
    from_step: str
    to_step: str
    points: list[TrendPoint] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "from_step": self.from_step,
            "to_step": self.to_step,
            "points": [p.to_dict() for p in self.points],
        }


@dataclass
class TrendResult:
    funnel: str
    period: str
    transitions: list[TrendSeries]

    def to_dict(self) -> dict[str, Any]:
        """The ``loudou trends --json`` document."""
        return {
            "funnel": self.funnel,
            "period": self.period,
            "transitions": [s.to_dict() for s in self.transitions],
        }

    def to_pandas(self) -> Any:
        import pandas as pd

        return pd.DataFrame(self.rows())

    def rows(self) -> list[dict[str, Any]]:
        return [
            {"from_step": s.from_step, "to_step": s.to_step, **p.to_dict()}
            for s in self.transitions
            for p in s.points
        ]


def trend_series(rows: FunnelRows, period: str, cutoff: int | None) -> list[TrendSeries]:
    """Per transition, one point per period with at least one customer at its from-step."""
    ordinals = period_ordinals(rows.times[:, 0], period)
    names = rows.step_names()
    out = []
    for k in range(1, len(names)):
        series = TrendSeries(names[k - 1], names[k])
        at = rows.levels >= k
        for o in np.unique(ordinals[at]):
            sel = at & (ordinals == o)
            n = int(sel.sum())
            x = int((sel & (rows.levels >= k + 1)).sum())
            start, end = period_span(int(o), int(o), period)
            end_us = ((end - date(1970, 1, 1)).days + 1) * DAY_US
            complete = cutoff is not None and end_us <= cutoff
            series.points.append(
                TrendPoint(start, end, n, x, x / n, wilson_interval(x, n), complete)
            )
        out.append(series)
    return out


def trends(
    store: Store, spec: FunnelSpec, period: str = "week", segment: str | None = None
) -> TrendResult:
    """Conversion of every transition per period of step-1 time, with Wilson 95% intervals."""
    check_period(period)
    rows = filter_segment(store, funnel_rows(store, spec), segment)
    return TrendResult(spec.name, period, trend_series(rows, period, mature_cutoff(store, spec)))
