"""Net Promoter Score and advocacy.

Every survey answer (score 0–10) counts: promoters 9–10, passives 7–8, detractors 0–6;
NPS = 100 × (promoters − detractors) / answers. Answers outside 0–10 or not numbers are skipped
and counted as ``invalid``.

Interval: NPS is a difference of two proportions of one multinomial sample, so
``Var(p̂ − d̂) = (p + d − (p − d)²) / n``. We use an *adjusted Wald* interval on that variance:
one pseudo-answer is added to each of the three categories (n + 3), which keeps the interval
from collapsing to a point when every answer is a promoter (or detractor), much as Agresti–Coull
does for one proportion; the centre stays close to the raw NPS, which is reported as is. The
interval is clipped to [−100, 100].

Advocacy (the journey funnel's last stage): customers whose latest answer is a promoter's, and
customers who sent a referral, in the range; advocates are either.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from loudou.analyses.kpi.common import (
    DEFAULT_EVENTS,
    DateRange,
    KpiEvents,
    group_labels,
    ts_us,
)
from loudou.analyses.stats import Z95

if TYPE_CHECKING:
    from loudou.backends.base import Store

INTERVAL_METHOD = (
    "adjusted Wald on Var(p-d) = (p + d - (p - d)^2) / n, one pseudo-answer per category"
)

# ---- pure kernels ----------------------------------------------------------------------------------


def nps_interval(
    promoters: int, passives: int, detractors: int, z: float = Z95
) -> tuple[float, float]:
    """95% interval of NPS (−100..100), see the module doc; (−100, 100) without answers."""
    n = promoters + passives + detractors + 3
    p = (promoters + 1) / n
    d = (detractors + 1) / n
    centre = p - d
    half = z * math.sqrt(max(p + d - centre * centre, 0.0) / n)
    return (max(-100.0, 100 * (centre - half)), min(100.0, 100 * (centre + half)))


def nps_summary(scores: np.ndarray) -> dict[str, Any]:
    """Counts, shares, NPS and its interval from scores (invalid ones already removed)."""
    s = np.asarray(scores, dtype=float)
    n = int(s.size)
    promoters = int((s >= 9).sum())
    detractors = int((s <= 6).sum())
    passives = n - promoters - detractors
    lo, hi = nps_interval(promoters, passives, detractors)
    return {
        "responses": n,
        "promoters": promoters,
        "passives": passives,
        "detractors": detractors,
        "promoter_share": promoters / n if n else None,
        "passive_share": passives / n if n else None,
        "detractor_share": detractors / n if n else None,
        "nps": 100 * (promoters - detractors) / n if n else None,
        "ci95": [lo, hi],
        "mean_score": float(s.mean()) if n else None,
    }


def parse_scores(values: list[Any]) -> tuple[np.ndarray, np.ndarray]:
    """Scores as floats and a validity mask (numbers in 0..10)."""
    num = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").to_numpy(float)
    ok = np.isfinite(num) & (num >= 0) & (num <= 10)
    return num, ok


# ---- from the store --------------------------------------------------------------------------------


@dataclass
class NpsResult:
    range: DateRange
    overall: dict[str, Any]
    invalid: int
    by: str | None
    groups: list[dict[str, Any]]
    period: str
    over_time: list[dict[str, Any]]
    advocacy: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.range.to_dict(),
            **self.overall,
            "invalid_answers": self.invalid,
            "interval_method": INTERVAL_METHOD,
            "by": self.by,
            "groups": self.groups,
            "period": self.period,
            "over_time": self.over_time,
            "advocacy": self.advocacy,
        }


def run_nps(
    store: Store,
    rng: DateRange = DateRange(),
    by: str | None = None,
    period: str = "month",
    events: KpiEvents = DEFAULT_EVENTS,
) -> NpsResult:
    """NPS overall, by segment (``by``: a trait or ``channel``) and per month or week."""
    from loudou.analyses.kpi.retention import period_index

    table = store.read_events(
        [events.nps],
        since=rng.since,
        until=rng.until,
        columns=("customer_id", "ts"),
        properties=(events.nps_score,),
    )
    customers = np.asarray(table.column("customer_id").to_pylist(), dtype=object)
    t = ts_us(table)
    scores, ok = parse_scores(table.column(events.nps_score).to_pylist())
    invalid = int((~ok).sum())
    customers, t, scores = customers[ok], t[ok], scores[ok]

    groups = []
    labels = group_labels(store, by, list(customers))
    if labels is not None:
        lab = np.asarray(labels, dtype=object)
        for value in sorted(set(labels)):
            groups.append({"group": value, **nps_summary(scores[lab == value])})
    over_time = []
    if t.size:
        periods = np.asarray([str(p) for p in period_index(t, period)], dtype=object)
        for value in sorted(set(periods)):
            over_time.append({"period": value, **nps_summary(scores[periods == value])})

    # advocacy: latest answer per customer, and referrals
    latest = (
        pd.DataFrame({"c": customers, "t": t, "s": scores})
        .sort_values(["c", "t"])
        .drop_duplicates("c", keep="last")
    )
    promoters = set(latest.loc[latest["s"] >= 9, "c"])
    ref = store.read_events(
        [events.referral], since=rng.since, until=rng.until, columns=("customer_id",)
    )
    referrers = set(ref.column("customer_id").to_pylist())
    return NpsResult(
        range=rng,
        overall=nps_summary(scores),
        invalid=invalid,
        by=by,
        groups=groups,
        period=period,
        over_time=over_time,
        advocacy={
            "promoter_customers": len(promoters),
            "referrers": len(referrers),
            "advocates": len(promoters | referrers),
        },
    )
