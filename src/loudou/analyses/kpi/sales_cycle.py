"""Sales cycle: how long it takes to win a customer.

- First touch → first purchase: for customers whose first purchase ever is in the range, the days
  from their first touch (any event with a channel) before it; customers with no touch before
  their first purchase are counted as ``without_touch`` and left out of the statistics.
- Lead → won: per deal (the ``deal_id`` property of the stage-change events, else the customer),
  the days from the first change to the lead stage to the first change to the won stage after it,
  for deals won in the range.

Statistics: median, p25/p75 (linear interpolation), mean, and a distribution over fixed buckets,
overall and per group (``by``: ``channel`` = first-touch channel, or a customer trait).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from loudou.analyses.kpi.common import (
    DEFAULT_EVENTS,
    US_PER_DAY,
    DateRange,
    KpiEvents,
    group_labels,
    quantiles,
    read_purchases,
    read_touches,
    ts_us,
)

if TYPE_CHECKING:
    from loudou.backends.base import Store

BUCKET_EDGES_DAYS = (0, 1, 7, 14, 30, 60, 90, 180)

# ---- pure kernels ----------------------------------------------------------------------------------


def distribution(days: np.ndarray) -> list[dict[str, Any]]:
    """Counts per bucket [0,1), [1,7), ... [180, ∞) days."""
    d = np.asarray(days, dtype=float)
    edges = np.asarray(BUCKET_EDGES_DAYS, dtype=float)
    idx = np.searchsorted(edges, d, side="right") - 1
    counts = np.bincount(np.clip(idx, 0, None), minlength=edges.size)
    labels = [f"{a}-{b}d" for a, b in zip(BUCKET_EDGES_DAYS, BUCKET_EDGES_DAYS[1:], strict=False)]
    labels.append(f"{BUCKET_EDGES_DAYS[-1]}d+")
    return [{"bucket": lab, "count": int(c)} for lab, c in zip(labels, counts, strict=True)]


def cycle_stats(days: np.ndarray) -> dict[str, Any]:
    return {**quantiles(days), "distribution": distribution(days)}


def first_touch_to_purchase(
    touch_customer: np.ndarray,
    touch_t: np.ndarray,
    buyer: np.ndarray,
    first_purchase_t: np.ndarray,
) -> np.ndarray:
    """Days from each buyer's first touch to their first purchase (NaN without a touch before)."""
    first_touch = (
        pd.DataFrame({"c": np.asarray(touch_customer, dtype=object), "t": touch_t})
        .groupby("c")["t"]
        .min()
    )
    ft = first_touch.reindex(np.asarray(buyer, dtype=object)).to_numpy(float)
    days = (np.asarray(first_purchase_t, dtype=float) - ft) / US_PER_DAY
    return np.where(ft <= first_purchase_t, days, np.nan)


def lead_to_won(
    deal: np.ndarray, t: np.ndarray, stage: np.ndarray, lead: str, won: str
) -> pd.DataFrame:
    """Per deal that reached ``won`` after ``lead``: lead time, won time and days between."""
    df = pd.DataFrame({"deal": np.asarray(deal, dtype=object), "t": t, "stage": stage})
    leads = df[df["stage"] == lead].groupby("deal", as_index=False)["t"].min()
    wins = df[df["stage"] == won].merge(leads.rename(columns={"t": "lead_t"}), on="deal")
    wins = (
        wins[wins["t"] >= wins["lead_t"]]
        .groupby("deal")
        .agg(lead_t=("lead_t", "first"), won_t=("t", "min"))
    )
    wins["days"] = (wins["won_t"] - wins["lead_t"]) / US_PER_DAY
    return wins


# ---- from the store --------------------------------------------------------------------------------


@dataclass
class SalesCycleResult:
    range: DateRange
    by: str | None
    first_touch_to_purchase: dict[str, Any]
    lead_to_won: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.range.to_dict(),
            "by": self.by,
            "first_touch_to_purchase": self.first_touch_to_purchase,
            "lead_to_won": self.lead_to_won,
        }


def _grouped(days: np.ndarray, labels: list[str] | None) -> list[dict[str, Any]]:
    if labels is None:
        return []
    lab = np.asarray(labels, dtype=object)
    return [{"group": value, **cycle_stats(days[lab == value])} for value in sorted(set(labels))]


def run_sales_cycle(
    store: Store,
    rng: DateRange = DateRange(),
    by: str | None = None,
    events: KpiEvents = DEFAULT_EVENTS,
) -> SalesCycleResult:
    """Both cycles, overall and per group."""
    purchases = read_purchases(store, events, rng.until)
    first = purchases.sort_values(["customer_id", "t"]).drop_duplicates("customer_id")
    since, until = rng.since_us(), rng.until_us()
    if since is not None:
        first = first[first["t"] >= since]
    touches = read_touches(store, until=rng.until)
    days = first_touch_to_purchase(
        touches["customer_id"].to_numpy(object) if len(touches) else np.zeros(0, object),
        touches["t"].to_numpy(np.int64) if len(touches) else np.zeros(0, np.int64),
        first["customer_id"].to_numpy(object),
        first["t"].to_numpy(np.int64),
    )
    has = np.isfinite(days)
    buyers = first["customer_id"].to_numpy(object)[has]
    labels = group_labels(store, by, list(buyers), touches)
    ftp = {
        **cycle_stats(days[has]),
        "without_touch": int((~has).sum()),
        "groups": _grouped(days[has], labels),
    }

    table = store.read_events(
        [events.deal_stage],
        until=rng.until,
        columns=("customer_id", "ts"),
        properties=("deal_id", events.stage_property),
    )
    customers = np.asarray(table.column("customer_id").to_pylist(), dtype=object)
    deal_ids = table.column("deal_id").to_pylist()
    deal = np.asarray(
        [d if d is not None else c for d, c in zip(deal_ids, customers, strict=True)], dtype=object
    )
    owner = dict(zip(deal, customers, strict=True))
    stage = np.asarray(table.column(events.stage_property).to_pylist(), dtype=object)
    wins = lead_to_won(deal, ts_us(table), stage, events.lead_stage, events.won_stage)
    if since is not None:
        wins = wins[wins["won_t"] >= since]
    if until is not None:
        wins = wins[wins["won_t"] < until]
    deal_days = wins["days"].to_numpy(float)
    deal_labels = group_labels(store, by, [owner[d] for d in wins.index], touches)
    ltw = {**cycle_stats(deal_days), "groups": _grouped(deal_days, deal_labels)}
    return SalesCycleResult(rng, by, ftp, ltw)
