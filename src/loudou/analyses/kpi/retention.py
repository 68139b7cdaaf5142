"""Retention, repeat purchase and churn.

- Cohort retention: a customer's cohort is the calendar month (or week, Monday–Sunday) of their
  first activity (any event) or first purchase; cell *k* is the share of the cohort active (or
  buying) in the *k*-th period after it (period 0 is 100% by definition).
- Repeat purchase rate: buyers with two or more purchases / buyers.
- Time between purchases: days between consecutive purchases of the same customer.
- Churn rate of period *p*: customers active in *p−1* and not in *p*, over those active in *p−1*.
- Churn risk (流失预警): buyers whose BG/NBD P(alive) is below a threshold, or whose days since
  their last purchase exceed a limit (default: twice the median time between purchases), ranked
  by value at risk = (1 − P(alive)) × CLV if still alive (CLV / P(alive)), then by revenue.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from loudou.analyses.kpi.common import (
    DEFAULT_EVENTS,
    US_PER_DAY,
    DateRange,
    KpiError,
    KpiEvents,
    clean,
    group_labels,
    quantiles,
    read_purchases,
    ts_us,
)

if TYPE_CHECKING:
    from loudou.backends.base import Store

PERIODS = {"month": "M", "week": "W"}

# ---- pure kernels ----------------------------------------------------------------------------------


def period_index(t_us: np.ndarray, period: str) -> pd.PeriodIndex:
    if period not in PERIODS:
        raise KpiError(f"unknown period {period!r}; use month or week", "--period")
    return pd.to_datetime(np.asarray(t_us, dtype=np.int64), unit="us").to_period(PERIODS[period])


def cohort_matrix(customer: np.ndarray, t_us: np.ndarray, period: str) -> list[dict[str, Any]]:
    """One dict per cohort (first period of each customer): its size, the customers active in
    each period since (0, 1, ... up to the last period with data) and the retention rates."""
    p = period_index(t_us, period)
    df = pd.DataFrame({"customer": np.asarray(customer, dtype=object), "p": p.asi8})
    df = df.drop_duplicates()
    if df.empty:
        return []
    last = int(df["p"].max())
    df["cohort"] = df.groupby("customer")["p"].transform("min")
    df["k"] = df["p"] - df["cohort"]
    counts = df.groupby(["cohort", "k"]).size()
    out = []
    for cohort in sorted(df["cohort"].unique()):
        n = last - int(cohort) + 1
        active = [int(counts.get((cohort, k), 0)) for k in range(n)]
        size = active[0]
        out.append(
            {
                "cohort": str(pd.Period(ordinal=int(cohort), freq=PERIODS[period])),
                "size": size,
                "active": active,
                "retention": [a / size for a in active],
            }
        )
    return out


def repeat_rate(customer: np.ndarray) -> tuple[int, int, float | None]:
    """(buyers, buyers with 2+ purchases, rate) from one customer id per purchase."""
    counts = pd.Series(np.asarray(customer, dtype=object)).value_counts()
    buyers, repeaters = int(counts.size), int((counts >= 2).sum())
    return buyers, repeaters, (repeaters / buyers if buyers else None)


def purchase_gaps_days(customer: np.ndarray, t_us: np.ndarray) -> np.ndarray:
    """Days between consecutive purchases of each customer."""
    df = pd.DataFrame({"c": np.asarray(customer, dtype=object), "t": np.asarray(t_us, np.int64)})
    df = df.sort_values(["c", "t"], kind="stable")
    same = df["c"].to_numpy()[1:] == df["c"].to_numpy()[:-1]
    gaps = np.diff(df["t"].to_numpy())[same]
    return gaps / US_PER_DAY


def churn_by_period(customer: np.ndarray, t_us: np.ndarray, period: str) -> list[dict[str, Any]]:
    """Per period after the first: active at the start (in the previous period), retained,
    churned and churn rate."""
    p = period_index(t_us, period)
    df = pd.DataFrame({"c": np.asarray(customer, dtype=object), "p": p.asi8}).drop_duplicates()
    if df.empty:
        return []
    active = df.groupby("p")["c"].agg(set)
    lo, hi = int(df["p"].min()), int(df["p"].max())
    rows = []
    for o in range(lo + 1, hi + 1):
        before = active.get(o - 1, set())
        now = active.get(o, set())
        retained = len(before & now)
        rows.append(
            {
                "period": str(pd.Period(ordinal=o, freq=PERIODS[period])),
                "active_before": len(before),
                "retained": retained,
                "churned": len(before) - retained,
                "churn_rate": (len(before) - retained) / len(before) if before else None,
                "active": len(now),
            }
        )
    return rows


def value_at_risk(p_alive: np.ndarray, clv: np.ndarray) -> np.ndarray:
    """(1 − P(alive)) × CLV if alive; BG/NBD predictions are P(alive) × the alive value."""
    p = np.clip(np.asarray(p_alive, dtype=float), 1e-9, 1.0)
    return (1 - p) * np.asarray(clv, dtype=float) / p


# ---- from the store --------------------------------------------------------------------------------


def _activity(store: Store, basis: str, rng: DateRange, events: KpiEvents) -> pd.DataFrame:
    if basis == "purchase":
        df = read_purchases(store, events, rng.until)
        return df[["customer_id", "t"]]
    if basis != "activity":
        raise KpiError(f"unknown basis {basis!r}; use activity or purchase", "--basis")
    table = store.read_events(None, until=rng.until, columns=("customer_id", "ts"))
    return pd.DataFrame({"customer_id": table.column("customer_id").to_pylist(), "t": ts_us(table)})


@dataclass
class RetentionResult:
    period: str
    basis: str
    range: DateRange
    cohorts: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "period": self.period,
            "basis": self.basis,
            **self.range.to_dict(),
            "cohorts": self.cohorts,
        }

    def to_pandas(self) -> pd.DataFrame:
        return pd.DataFrame(
            [c["retention"] for c in self.cohorts], index=[c["cohort"] for c in self.cohorts]
        )


def run_retention(
    store: Store,
    period: str = "month",
    basis: str = "activity",
    rng: DateRange = DateRange(),
    events: KpiEvents = DEFAULT_EVENTS,
) -> RetentionResult:
    """Cohort retention matrix; cohorts whose first period starts in the range (all history is used
    to find who is new)."""
    df = _activity(store, basis, rng, events)
    cohorts = cohort_matrix(df["customer_id"].to_numpy(object), df["t"].to_numpy(np.int64), period)
    if rng.since is not None:
        first = str(pd.Timestamp(rng.since).to_period(PERIODS[period]))
        cohorts = [c for c in cohorts if c["cohort"] >= first]
    return RetentionResult(period, basis, rng, cohorts)


@dataclass
class RepeatResult:
    buyers: int
    repeat_buyers: int
    repeat_rate: float | None
    days_between_purchases: dict[str, Any]
    by: str | None
    groups: list[dict[str, Any]]
    range: DateRange

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.range.to_dict(),
            "buyers": self.buyers,
            "repeat_buyers": self.repeat_buyers,
            "repeat_rate": self.repeat_rate,
            "days_between_purchases": self.days_between_purchases,
            "by": self.by,
            "groups": self.groups,
        }


def _repeat_stats(customer: np.ndarray, t: np.ndarray) -> dict[str, Any]:
    buyers, repeaters, rate = repeat_rate(customer)
    return {
        "buyers": buyers,
        "repeat_buyers": repeaters,
        "repeat_rate": rate,
        "days_between_purchases": quantiles(purchase_gaps_days(customer, t)),
    }


def run_repeat(
    store: Store,
    rng: DateRange = DateRange(),
    by: str | None = None,
    events: KpiEvents = DEFAULT_EVENTS,
) -> RepeatResult:
    """Repeat purchase rate and time between purchases, over purchases in the range."""
    df = read_purchases(store, events, rng.until)
    if rng.since is not None:
        df = df[df["t"] >= rng.since_us()]
    c, t = df["customer_id"].to_numpy(object), df["t"].to_numpy(np.int64)
    overall = _repeat_stats(c, t)
    groups = []
    labels = group_labels(store, by, list(c))
    if labels is not None:
        lab = np.asarray(labels, dtype=object)
        for value in sorted(set(labels)):
            mask = lab == value
            groups.append({"group": value, **_repeat_stats(c[mask], t[mask])})
    return RepeatResult(
        overall["buyers"],
        overall["repeat_buyers"],
        overall["repeat_rate"],
        overall["days_between_purchases"],
        by,
        groups,
        rng,
    )


def run_churn(
    store: Store,
    period: str = "month",
    basis: str = "purchase",
    rng: DateRange = DateRange(),
    events: KpiEvents = DEFAULT_EVENTS,
) -> list[dict[str, Any]]:
    """Churn rate per period (see the module doc), for periods starting in the range."""
    df = _activity(store, basis, rng, events)
    rows = churn_by_period(df["customer_id"].to_numpy(object), df["t"].to_numpy(np.int64), period)
    if rng.since is not None:
        first = str(pd.Timestamp(rng.since).to_period(PERIODS[period]))
        rows = [r for r in rows if r["period"] >= first]
    return rows


@dataclass
class ChurnRiskResult:
    observation_end: date
    p_alive_below: float
    inactive_days: float
    customers: pd.DataFrame

    def to_dict(self, limit: int | None = None) -> dict[str, Any]:
        part = self.customers if limit is None else self.customers.head(limit)
        return {
            "observation_end": self.observation_end.isoformat(),
            "p_alive_below": self.p_alive_below,
            "inactive_days": self.inactive_days,
            "total_customers": len(self.customers),
            "total_value_at_risk": clean(self.customers["value_at_risk"].sum()),
            "customers": [
                {k: (clean(v) if isinstance(v, float) else v) for k, v in row.items()}
                for row in part.to_dict(orient="records")
            ],
        }

    def to_csv(self, path_or_buf: Any = None) -> str | None:
        return self.customers.to_csv(path_or_buf, index=False)


def run_churn_risk(
    store: Store,
    observation_end: date | datetime | str | None = None,
    p_alive_below: float = 0.5,
    inactive_days: float | None = None,
    time_unit: str = "day",
    horizon_months: int = 12,
    discount_rate: float = 0.01,
    by: str | None = None,
    events: KpiEvents = DEFAULT_EVENTS,
) -> ChurnRiskResult:
    """The churn-risk list (流失预警): slipping buyers ranked by value at risk."""
    from loudou.analyses.kpi.clv import run_clv
    from loudou.model.times import to_us

    if not 0 < p_alive_below <= 1:
        raise KpiError("P(alive) threshold must be in (0, 1]", "--p-alive-below")
    res = run_clv(store, time_unit, observation_end, horizon_months, discount_rate, by, events)
    end_us = to_us(datetime.combine(res.observation_end, datetime.min.time())) + US_PER_DAY
    purchases = read_purchases(store, events)
    purchases = purchases[purchases["t"] < end_us]
    last = purchases.groupby("customer_id")["t"].max()
    if inactive_days is None:
        gaps = purchase_gaps_days(
            purchases["customer_id"].to_numpy(object), purchases["t"].to_numpy(np.int64)
        )
        inactive_days = float(2 * np.median(gaps)) if gaps.size else 90.0
    c = res.customers.copy()
    c["days_since_last_purchase"] = (
        end_us - last.reindex(c["customer_id"]).to_numpy(np.int64)
    ) / US_PER_DAY
    c["value_at_risk"] = value_at_risk(c["p_alive"].to_numpy(), c["clv"].to_numpy())
    reasons = np.select(
        [
            (c["p_alive"] < p_alive_below) & (c["days_since_last_purchase"] > inactive_days),
            c["p_alive"] < p_alive_below,
            c["days_since_last_purchase"] > inactive_days,
        ],
        ["p_alive and inactive", "p_alive", "inactive"],
        "",
    )
    c["reason"] = reasons
    c = c[c["reason"] != ""]
    c = c.sort_values(
        ["value_at_risk", "revenue", "customer_id"],
        ascending=[False, False, True],
        ignore_index=True,
    )
    cols = [
        "customer_id",
        "group",
        "reason",
        "p_alive",
        "days_since_last_purchase",
        "orders",
        "revenue",
        "clv",
        "value_at_risk",
    ]
    return ChurnRiskResult(res.observation_end, p_alive_below, inactive_days, c[cols])
