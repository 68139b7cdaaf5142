"""Per-unit funnel rows as numpy arrays, and the groups ("by") that compare and diagnose split on.

Built on :func:`loudou.analyses.funnel.engine.funnel_customers`: a funnel is per customer, so filtering its
rows by segment membership afterwards equals running the funnel on the segment alone.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from loudou.analyses.funnel.engine import funnel_customers
from loudou.analyses.funnel.steps import NONE_VALUE, OTHER, funnel_result, plain_funnel, summarize
from loudou.analyses.funnel.units import Units
from loudou.backends.base import Store
from loudou.model.results import BreakdownResult, FunnelResult
from loudou.model.spec import FunnelSpec

SEGMENT_PREFIX = "segment:"


@dataclass
class FunnelRows:
    """One entry per counted unit that entered the funnel."""

    spec: FunnelSpec
    customer_id: np.ndarray  # object
    levels: np.ndarray  # int64, 1..n
    times: np.ndarray  # int64 [units, steps], µs UTC, -1 where not reached
    breakdown: np.ndarray | None = None  # object, value at step 1 ('(none)' when missing)

    def __len__(self) -> int:
        return int(self.levels.size)

    def subset(self, keep: np.ndarray) -> FunnelRows:
        bd = None if self.breakdown is None else self.breakdown[keep]
        return FunnelRows(
            self.spec, self.customer_id[keep], self.levels[keep], self.times[keep], bd
        )

    def to_units(self) -> Units:
        """Anonymous units for :func:`summarize` (which reads only levels and times)."""
        make = getattr(Units, "from_levels", None)
        if make is not None:
            units: Units = make(self.levels, self.times)
            return units
        n = len(self)  # Units before from_levels existed
        args: list[Any] = [self.levels, self.times, np.zeros(n, np.int64), np.zeros(n, np.int64)]
        return Units(*args)

    def counts(self, k: int, keep: np.ndarray | None = None) -> tuple[int, int]:
        """(entered, converted) of transition k -> k+1 (k 1-based) among ``keep``."""
        lv = self.levels if keep is None else self.levels[keep]
        return int(np.count_nonzero(lv >= k)), int(np.count_nonzero(lv >= k + 1))

    def step_names(self, lang: str = "en") -> list[str]:
        return [s.label(lang) for s in self.spec.steps]


def funnel_rows(store: Store, spec: FunnelSpec, breakdown: str | None = None) -> FunnelRows:
    """Run the funnel once; with ``breakdown`` each unit carries that property at its step 1."""
    if breakdown is not None:
        spec = spec.with_breakdown(breakdown, "by")
    table = funnel_customers(store, spec)
    n = len(spec.steps)
    times = np.full((table.num_rows, n), -1, dtype=np.int64)
    for k in range(n):
        col = pc.fill_null(table.column(f"step_{k + 1}").cast(pa.int64()), -1)
        times[:, k] = col.to_numpy()
    bd = None
    if spec.breakdown:
        values = table.column("breakdown").to_pylist()
        bd = np.array([NONE_VALUE if v is None else str(v) for v in values], dtype=object)
    return FunnelRows(
        spec,
        np.asarray(table.column("customer_id").to_pylist(), dtype=object),
        table.column("level").to_numpy().astype(np.int64),
        times,
        bd,
    )


def is_segment_by(by: str) -> bool:
    return by == "segments" or by.startswith(SEGMENT_PREFIX) or by == "rfm"


@dataclass
class Group:
    """A set of units compared with all the others (``rest`` = the complement)."""

    property: str
    value: str
    mask: np.ndarray


def property_groups(rows: FunnelRows, by: str, limit: int = 10) -> list[Group]:
    """One group per value of the breakdown property: top ``limit`` by size, the rest 'other'."""
    assert rows.breakdown is not None
    sizes = Counter(rows.breakdown.tolist())
    order = sorted(sizes, key=lambda v: (-sizes[v], v))
    groups = [Group(by, v, rows.breakdown == v) for v in order[:limit]]
    if len(order) > limit:
        groups.append(Group(by, OTHER, np.isin(rows.breakdown, order[limit:])))
    return groups


def segment_groups(
    store: Store, rows: FunnelRows, by: str, as_of: datetime | None = None
) -> list[Group]:
    """``segments`` (all saved), ``segment:a,b`` (those) or ``rfm`` (the RFM named groups)."""
    from loudou.analyses.segments import list_segments, load_segment, members, rfm_scores

    if by == "rfm":
        scores = rfm_scores(store, as_of=as_of)
        group_of = dict(zip(scores["customer_id"], scores["group"], strict=True))
        labels = np.array([group_of.get(c, "no_purchase") for c in rows.customer_id], dtype=object)
        sizes = Counter(labels.tolist())
        return [Group("rfm", v, labels == v) for v in sorted(sizes, key=lambda v: (-sizes[v], v))]
    if by == "segments":
        segs = list_segments(store)
    else:
        names = [n.strip() for n in by.removeprefix(SEGMENT_PREFIX).split(",") if n.strip()]
        if not names:
            from loudou.model.segment import SegmentError

            raise SegmentError("name saved segments after 'segment:', e.g. segment:vip,new", "by")
        segs = [load_segment(store, n) for n in names]
    return [
        Group("segment", s.name, np.isin(rows.customer_id, members(store, s, as_of))) for s in segs
    ]


def filter_segment(store: Store, rows: FunnelRows, name: str | None) -> FunnelRows:
    """Keep only the units of customers in the named saved segment (a funnel filter)."""
    if not name:
        return rows
    from loudou.analyses.segments import load_segment, members

    return rows.subset(np.isin(rows.customer_id, members(store, load_segment(store, name))))


def segment_funnel(
    store: Store, spec: FunnelSpec, segment: str | None = None, by: str | None = None
) -> FunnelResult:
    """A funnel restricted to a saved segment and/or broken down by saved segments (``by`` as in
    :func:`segment_groups`); each customer may fall in several segments. ``by`` replaces the
    spec's own breakdown; without it, that breakdown (a property) is kept, top
    ``breakdown_limit`` values plus 'other' as :func:`loudou.analyses.funnel.steps.plain_funnel` gives them,
    within the segment."""
    from loudou.model.segment import SegmentError

    if by and not is_segment_by(by):
        raise SegmentError("use 'segments', 'segment:a,b' or 'rfm'", "by")
    rows = filter_segment(store, funnel_rows(store, spec), segment)
    if by:
        groups = segment_groups(store, rows, by)
    elif spec.breakdown:
        groups = property_groups(rows, spec.breakdown, spec.breakdown_limit)
    else:
        groups = []
    return funnel_result(
        spec,
        summarize(rows.to_units(), spec.steps),
        by or spec.breakdown,
        [
            BreakdownResult(
                value=g.value, steps=summarize(rows.subset(g.mask).to_units(), spec.steps)
            )
            for g in groups
        ],
    )


_BANDS_RE = re.compile(r"^(?P<name>[^:]+):(?P<edges>-?\d+(?:\.\d+)?(?:,-?\d+(?:\.\d+)?)*)$")


def any_funnel(
    store: Store, spec: FunnelSpec, segment: str | None = None, by: str | None = None
) -> FunnelResult:
    """The funnel a user asked for, wherever the breakdown came from: a breakdown naming saved
    segments ('segments', 'segment:a,b', 'rfm') — given as ``by`` or as the spec's own, e.g. in a
    spec file — and a ``segment`` filter go through :func:`segment_funnel`; anything else is
    :func:`loudou.analyses.funnel.steps.plain_funnel`."""
    if by is None and spec.breakdown and is_segment_by(spec.breakdown):
        by = spec.breakdown
    if by is not None:
        spec = spec.model_copy(update={"breakdown": None})
    if segment or by:
        return segment_funnel(store, spec, segment=segment, by=by)
    return plain_funnel(store, spec)


def band_labels(values: np.ndarray, edges: Sequence[float]) -> tuple[np.ndarray, list[str]]:
    """Numeric values to band labels ('<18', '18-24', ..., '55+'; '(none)' if not a number)
    with integer edges read as whole years or counts; and the labels in order."""
    whole = all(float(e).is_integer() for e in edges)

    def text(x: float) -> str:
        return str(int(x)) if whole else f"{x:g}"

    names = [f"<{text(edges[0])}"]
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        names.append(f"{text(lo)}-{text(hi - 1) if whole else text(hi)}")
    names.append(f"{text(edges[-1])}+")
    nums = np.array([_float(v) for v in values], dtype=float)
    idx = np.searchsorted(np.asarray(edges, dtype=float), nums, side="right")
    labels = np.where(
        np.isnan(nums), NONE_VALUE, np.array(names, dtype=object)[np.minimum(idx, len(names) - 1)]
    )
    return labels.astype(object), [*names, NONE_VALUE]


def _float(value: object) -> float:
    try:
        return float(str(value))
    except ValueError:
        return float("nan")


def _ordered_groups(prop: str, labels: np.ndarray, order: Sequence[str]) -> list[Group]:
    return [Group(prop, v, labels == v) for v in order if (labels == v).any()]


def cohort_groups(store: Store, rows: FunnelRows, by: str) -> list[Group]:
    """``cohort`` (month first seen) or ``cohort:TRAIT`` (month of a date trait)."""
    trait = by.partition(":")[2] or None
    table = store.read_customers([trait] if trait else [])
    raw = table.column(trait if trait else "first_seen").to_pylist()
    month = {
        c: NONE_VALUE if v is None else str(v)[:7]
        for c, v in zip(table.column("customer_id").to_pylist(), raw, strict=True)
    }
    labels = np.array([month.get(c, NONE_VALUE) for c in rows.customer_id], dtype=object)
    order = sorted(set(labels.tolist()) - {NONE_VALUE}) + [NONE_VALUE]
    return _ordered_groups(by, labels, order)


def groups_for(
    store: Store, spec: FunnelSpec, by: str, segment: str | None = None, limit: int = 10
) -> tuple[FunnelRows, list[Group]]:
    """Funnel rows (filtered to ``segment``) and the groups of ``by``: a property or trait at
    step 1, ``NAME:18,25,35`` (numeric bands of it), ``cohort[:TRAIT]``, or saved segments."""
    if is_segment_by(by) or by == "cohort" or by.startswith("cohort:"):
        rows = filter_segment(store, funnel_rows(store, spec), segment)
        if is_segment_by(by):
            return rows, segment_groups(store, rows, by)
        return rows, cohort_groups(store, rows, by)
    bands = _BANDS_RE.match(by)
    if bands:
        edges = sorted({float(e) for e in bands.group("edges").split(",")})
        rows = filter_segment(store, funnel_rows(store, spec, bands.group("name")), segment)
        assert rows.breakdown is not None
        labels, order = band_labels(rows.breakdown, edges)
        return rows, _ordered_groups(bands.group("name"), labels, order)
    rows = filter_segment(store, funnel_rows(store, spec, by), segment)
    return rows, property_groups(rows, by, limit)
