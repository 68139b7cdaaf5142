"""Correlation: which events, or event property values, seen before a step go with converting to
the next step more or less often.

For customers who reached step k, each feature splits them into those who had it before their
step-k time and those who did not. The odds ratio of reaching step k+1 comes with a Woolf 95%
interval (0.5 added to every cell when one is empty), a two-proportion p-value and a
Benjamini–Hochberg q-value over all features tested. The funnel's own step and exclusion events,
and properties its conditions use, are trivially related and skipped. Correlation, not cause.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from loudou.analyses.funnel.rows import filter_segment, funnel_rows
from loudou.analyses.stats import Z95, bh_qvalues, two_proportion_test
from loudou.backends.base import Store
from loudou.errors import LoudouError
from loudou.model.spec import FunnelSpec


@dataclass
class Feature:
    name: str
    exposed: int
    exposed_converted: int
    unexposed: int
    unexposed_converted: int
    odds_ratio: float
    ci95: tuple[float, float]
    p_value: float
    q_value: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "feature": self.name,
            "customers_with": self.exposed,
            "conversion_with": self.exposed_converted / self.exposed,
            "customers_without": self.unexposed,
            "conversion_without": self.unexposed_converted / self.unexposed,
            "odds_ratio": self.odds_ratio,
            "ci95": list(self.ci95),
            "p_value": self.p_value,
            "q_value": self.q_value,
        }


@dataclass
class CorrelationResult:
    from_step: str
    to_step: str
    customers: int
    features: list[Feature] = field(default_factory=list)
    top: int = 10

    def raises(self) -> list[Feature]:
        up = [f for f in self.features if f.odds_ratio > 1]
        return sorted(up, key=lambda f: (-f.odds_ratio, f.name))[: self.top]

    def lowers(self) -> list[Feature]:
        down = [f for f in self.features if f.odds_ratio < 1]
        return sorted(down, key=lambda f: (f.odds_ratio, f.name))[: self.top]

    def to_dict(self) -> dict[str, Any]:
        """The ``loudou correlate --json`` document."""
        return {
            "from_step": self.from_step,
            "to_step": self.to_step,
            "customers": self.customers,
            "raises": [f.to_dict() for f in self.raises()],
            "lowers": [f.to_dict() for f in self.lowers()],
        }


def odds_ratio(a: int, b: int, c: int, d: int) -> tuple[float, tuple[float, float]]:
    """Odds ratio (a·d)/(b·c) of a 2×2 table [[a, b], [c, d]] with its Woolf 95% interval;
    0.5 is added to every cell when one is zero (Haldane–Anscombe)."""
    cells = [float(v) for v in (a, b, c, d)]
    if min(cells) == 0:
        cells = [v + 0.5 for v in cells]
    a_, b_, c_, d_ = cells
    ratio = a_ * d_ / (b_ * c_)
    se = math.sqrt(1 / a_ + 1 / b_ + 1 / c_ + 1 / d_)
    return ratio, (ratio * math.exp(-Z95 * se), ratio * math.exp(Z95 * se))


def _trivial(spec: FunnelSpec) -> tuple[set[str], set[str]]:
    events = {e for s in spec.steps for e in s.events} | {
        e for x in spec.exclusions for e in x.events
    }
    props = {c.field_name for s in spec.steps for c in s.where if not c.on_customer}
    return events, props


def correlate(
    store: Store,
    spec: FunnelSpec,
    step: int = 1,
    *,
    properties: Sequence[str] = (),
    top: int = 10,
    min_customers: int = 30,
    segment: str | None = None,
) -> CorrelationResult:
    """Features seen before step ``step`` (1-based) against converting to step ``step + 1``."""
    n = len(spec.steps)
    if not 1 <= step < n:
        raise LoudouError(f"step must be between 1 and {n - 1}", "step")
    trivial_events, trivial_props = _trivial(spec)
    props = [p for p in properties if p not in trivial_props]
    rows = filter_segment(store, funnel_rows(store, spec), segment)
    at = rows.levels >= step
    pop = pd.DataFrame(
        {
            "unit": np.flatnonzero(at),
            "customer_id": rows.customer_id[at],
            "t_step": rows.times[at, step - 1].astype("datetime64[us]"),
            "converted": rows.levels[at] >= step + 1,
        }
    )
    names = [s.label("en") for s in spec.steps]
    result = CorrelationResult(names[step - 1], names[step], len(pop), top=top)
    if pop.empty:
        return result
    ev = store.read_events(columns=("customer_id", "event", "ts"), properties=props).to_pandas()
    ev = ev[~ev["event"].isin(trivial_events)]
    seen = ev.merge(pop[["unit", "customer_id", "t_step"]], on="customer_id")
    seen = seen[seen["ts"] < seen["t_step"]]
    parts = [seen[["unit"]].assign(feature="event:" + seen["event"])]
    for p in props:
        has = seen[seen[p].notna()]
        parts.append(has[["unit"]].assign(feature=f"{p}=" + has[p].astype(str)))
    pairs = pd.concat(parts).drop_duplicates()
    conv = pop.set_index("unit")["converted"]
    pairs["converted"] = conv.reindex(pairs["unit"]).to_numpy()
    per = pairs.groupby("feature")["converted"].agg(["size", "sum"])
    total, total_x = len(pop), int(pop["converted"].sum())
    for name, (n_with, x_with) in per.iterrows():
        n_with, x_with = int(n_with), int(x_with)
        n_without, x_without = total - n_with, total_x - x_with
        if n_with < min_customers or n_without < min_customers:
            continue
        ratio, ci = odds_ratio(x_with, n_with - x_with, x_without, n_without - x_without)
        p_value = two_proportion_test(x_with, n_with, x_without, n_without)[1]
        result.features.append(
            Feature(str(name), n_with, x_with, n_without, x_without, ratio, ci, p_value)
        )
    for f, q in zip(result.features, bh_qvalues([f.p_value for f in result.features]), strict=True):
        f.q_value = q
    return result
