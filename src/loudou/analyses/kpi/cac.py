"""Customer acquisition cost (CAC) per channel, campaign and month; LTV:CAC and payback.

A *new customer* is one whose first purchase ever falls in the range. Each new customer is one
unit of credit, split over the touches before that first purchase by an attribution model
(first touch by default; see :mod:`loudou.analyses.kpi.attribution`, Markov splits each path by the
channels' removal effects). CAC of a channel = its spend in the range / the new customers credited
to it. Channels with spend but no customers (CAC undefined) and with customers but no spend
(CAC 0) are listed and flagged, never hidden. Blended CAC = all spend / all new customers,
including those with no touch to credit.

LTV per new customer is revenue to date plus, with ``ltv="predicted"``, the predicted CLV over
the horizon (BG/NBD + Gamma-Gamma, :mod:`loudou.analyses.kpi.clv`), times the gross ``margin``. Payback is
the first whole month ``m`` (30-day months from the first purchase) in which the average
cumulative revenue × margin of the channel's new customers observed for at least ``m`` months
reaches the channel's CAC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from loudou.analyses.kpi.attribution import (
    DEFAULT_HALF_LIFE,
    DEFAULT_LOOKBACK,
    MODELS,
    build_journeys,
    key_of,
    per_path_weights,
)
from loudou.analyses.kpi.common import (
    DEFAULT_EVENTS,
    US_PER_DAY,
    US_PER_SECOND,
    DateRange,
    KpiError,
    KpiEvents,
    clean,
    duration_option,
    read_purchases,
    read_touches,
)
from loudou.errors import LoudouError
from loudou.model.times import from_us

if TYPE_CHECKING:
    from loudou.backends.base import Store

MONTH_US = 30 * US_PER_DAY

# ---- pure kernels ----------------------------------------------------------------------------------


def cac_table(spend: pd.Series, customers: pd.Series) -> pd.DataFrame:
    """Spend and credited new customers per key (outer join) with CAC and a note.

    CAC is spend / customers; ``None`` (undefined) with spend and no customers."""
    df = pd.DataFrame({"spend": spend, "new_customers": customers}).fillna(0.0)
    df["cac"] = np.where(
        df["new_customers"] > 0,
        df["spend"] / df["new_customers"].where(df["new_customers"] > 0),
        np.nan,
    )
    df["note"] = np.select(
        [
            (df["spend"] > 0) & (df["new_customers"] <= 0),
            (df["spend"] <= 0) & (df["new_customers"] > 0),
        ],
        ["spend without customers", "customers without spend"],
        "",
    )
    return df


def payback_months(
    acquired_us: np.ndarray,
    weights: np.ndarray,
    purchase_customer: np.ndarray,
    purchase_us: np.ndarray,
    purchase_revenue: np.ndarray,
    cac: float,
    data_end_us: int,
    margin: float = 1.0,
    max_months: int = 120,
) -> int | None:
    """First month m ≥ 1 at which the weighted mean cumulative revenue × margin over the first
    ``m`` 30-day months after acquisition, among customers observed for ``m`` months, reaches
    ``cac``. Customers are indexed 0..n-1; ``purchase_customer`` indexes them. None if never."""
    if not np.isfinite(cac):
        return None
    months = (data_end_us - acquired_us) // MONTH_US  # whole months observed per customer
    age = (purchase_us - acquired_us[purchase_customer]) // MONTH_US  # month of each purchase, 0..
    for m in range(1, min(int(months.max(initial=0)), max_months) + 1):
        eligible = months >= m
        if not eligible.any() or weights[eligible].sum() <= 0:
            return None
        in_window = age < m
        cum = np.bincount(
            purchase_customer[in_window],
            weights=purchase_revenue[in_window],
            minlength=acquired_us.size,
        )
        mean = float(np.average(cum[eligible], weights=weights[eligible])) * margin
        if mean >= cac:
            return m
    return None


# ---- from the store --------------------------------------------------------------------------------


@dataclass
class CacRow:
    channel: str
    campaign: str | None
    spend: float
    new_customers: float
    cac: float | None
    ltv: float | None = None
    ltv_cac: float | None = None
    payback_months: int | None = None
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"channel": self.channel}
        if self.campaign is not None:
            d["campaign"] = self.campaign
        d.update(
            spend=self.spend,
            new_customers=self.new_customers,
            cac=clean(self.cac),
            ltv=clean(self.ltv),
            ltv_cac=clean(self.ltv_cac),
            payback_months=self.payback_months,
            note=self.note or None,
        )
        return d


@dataclass
class CacResult:
    model: str
    by: str
    range: DateRange
    lookback_seconds: int
    ltv_basis: str
    margin: float
    spend: float
    new_customers: int
    attributed_customers: float
    channels: list[CacRow]
    months: list[dict[str, Any]]

    @property
    def blended_cac(self) -> float | None:
        return self.spend / self.new_customers if self.new_customers else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "by": self.by,
            **self.range.to_dict(),
            "lookback_seconds": self.lookback_seconds,
            "ltv_basis": self.ltv_basis,
            "margin": self.margin,
            "blended": {
                "spend": self.spend,
                "new_customers": self.new_customers,
                "attributed_customers": self.attributed_customers,
                "unattributed_customers": self.new_customers - self.attributed_customers,
                "cac": clean(self.blended_cac),
            },
            "channels": [r.to_dict() for r in self.channels],
            "months": self.months,
        }

    def to_pandas(self) -> pd.DataFrame:
        return pd.DataFrame([r.to_dict() for r in self.channels])


def _spend_by(store: Store, rng: DateRange, by: str) -> pd.DataFrame:
    since = rng.since.date() if rng.since else None
    until = rng.until.date() if rng.until else None
    if rng.until is not None and rng.until != datetime.combine(
        rng.until.date(), datetime.min.time()
    ):
        until = rng.until.date() + timedelta(days=1)
    table = store.read_spend(since, until)
    df = table.to_pandas()
    if df.empty:
        return pd.DataFrame(columns=["key", "month", "amount"])
    campaigns = df["campaign"].where(df["campaign"].fillna("") != "", None)
    df["key"] = [key_of(ch, cp, by) for ch, cp in zip(df["channel"], campaigns, strict=True)]
    df["month"] = pd.to_datetime(df["day"]).dt.strftime("%Y-%m")
    return df[["key", "month", "amount"]]


def _ltv_per_customer(
    store: Store,
    customers: list[str],
    purchases: pd.DataFrame,
    ltv: str,
    events: KpiEvents,
    horizon_months: int,
    discount_rate: float,
    observation_end: datetime,
) -> tuple[np.ndarray, str]:
    revenue = purchases.groupby("customer_id")["revenue"].sum()
    hist = revenue.reindex(customers).fillna(0.0).to_numpy(float)
    if ltv == "historical":
        return hist, "historical"
    if ltv != "predicted":
        raise KpiError(f"unknown LTV basis {ltv!r}; use historical or predicted", "--ltv")
    from loudou.analyses.kpi.clv import run_clv

    try:
        res = run_clv(store, "day", observation_end, horizon_months, discount_rate, None, events)
    except LoudouError:
        return hist, "historical (too little repeat data to predict)"
    future = res.customers.set_index("customer_id")["clv"].reindex(customers).fillna(0.0)
    return hist + future.to_numpy(float), f"historical + predicted {horizon_months} months"


def run_cac(
    store: Store,
    model: str = "first_touch",
    rng: DateRange = DateRange(),
    by: str = "channel",
    lookback: str | int = DEFAULT_LOOKBACK,
    half_life: str | int = DEFAULT_HALF_LIFE,
    ltv: str = "predicted",
    margin: float = 1.0,
    horizon_months: int = 12,
    discount_rate: float = 0.01,
    events: KpiEvents = DEFAULT_EVENTS,
) -> CacResult:
    """CAC per channel (or campaign) and month, blended CAC, LTV:CAC and payback."""
    if model not in MODELS:
        raise KpiError(f"unknown model {model!r}; use one of {', '.join(MODELS)}", "--model")
    if not 0 < margin <= 1:
        raise KpiError("margin must be in (0, 1]", "--margin")
    lookback_s = duration_option(lookback, "--lookback")
    half_life_s = duration_option(half_life, "--half-life")
    purchases = read_purchases(store, events, rng.until)
    first = purchases.sort_values(["customer_id", "t"]).drop_duplicates("customer_id")
    touches = read_touches(store, until=rng.until)
    journeys = build_journeys(
        touches, first, lookback_s * US_PER_SECOND, rng, by=by, with_nulls=model == "markov"
    )
    paths = journeys.paths
    weights = per_path_weights(paths, model, half_life_s)
    path_of_touch = np.repeat(np.arange(paths.n_paths), np.diff(paths.indptr))
    w = weights * journeys.converted[path_of_touch]
    names = np.asarray(paths.names, dtype=object)
    credit = pd.DataFrame(
        {
            "key": names[paths.key] if paths.key.size else np.zeros(0, dtype=object),
            "customer": np.asarray(journeys.customer, dtype=object)[path_of_touch],
            "month": pd.to_datetime(journeys.t[path_of_touch], unit="us").strftime("%Y-%m"),
            "w": w,
        }
    )
    credit = credit[credit["w"] > 0]

    since, until = rng.since_us(), rng.until_us()
    in_range = np.ones(len(first), dtype=bool)
    if since is not None:
        in_range &= first["t"].to_numpy() >= since
    if until is not None:
        in_range &= first["t"].to_numpy() < until
    new = first[in_range]
    spend = _spend_by(store, rng, by)

    table = cac_table(spend.groupby("key")["amount"].sum(), credit.groupby("key")["w"].sum())
    data_end = until if until is not None else int(purchases["t"].max()) if len(purchases) else 0
    customers = sorted(set(credit["customer"]))
    ltv_values, basis = (
        _ltv_per_customer(
            store,
            customers,
            purchases,
            ltv,
            events,
            horizon_months,
            discount_rate,
            from_us(data_end),
        )
        if customers
        else (np.zeros(0), ltv)
    )
    index = {c: i for i, c in enumerate(customers)}
    acquired = first.set_index("customer_id")["t"].reindex(customers).to_numpy(np.int64)
    known = purchases[purchases["customer_id"].isin(index)]
    p_cust = known["customer_id"].map(index).to_numpy(np.int64)

    rows: list[CacRow] = []
    for key, r in table.iterrows():
        channel, campaign = str(key), None
        if by == "campaign":
            channel, _, campaign = str(key).partition("/")
        part = credit[credit["key"] == key]
        cw = np.zeros(len(customers))
        np.add.at(cw, part["customer"].map(index).to_numpy(np.int64), part["w"].to_numpy())
        ltv_mean = float(np.average(ltv_values, weights=cw)) * margin if cw.sum() > 0 else None
        cac = None if np.isnan(r["cac"]) else float(r["cac"])
        rows.append(
            CacRow(
                channel=channel,
                campaign=campaign,
                spend=float(r["spend"]),
                new_customers=float(r["new_customers"]),
                cac=cac,
                ltv=ltv_mean,
                ltv_cac=(ltv_mean / cac) if ltv_mean is not None and cac else None,
                payback_months=payback_months(
                    acquired,
                    cw,
                    p_cust,
                    known["t"].to_numpy(np.int64),
                    known["revenue"].to_numpy(float),
                    cac,
                    data_end,
                    margin,
                )
                if cac is not None and cw.sum() > 0
                else None,
                note=str(r["note"]),
            )
        )
    rows.sort(key=lambda x: (-x.spend, -x.new_customers, x.channel, x.campaign or ""))

    monthly = cac_table(
        spend.groupby(["month", "key"])["amount"].sum(),
        credit.groupby(["month", "key"])["w"].sum(),
    )
    months = [
        {
            "month": month,
            "channel": key if by == "channel" else str(key).partition("/")[0],
            **({"campaign": str(key).partition("/")[2]} if by == "campaign" else {}),
            "spend": float(r["spend"]),
            "new_customers": float(r["new_customers"]),
            "cac": clean(r["cac"]),
        }
        for (month, key), r in monthly.sort_index().iterrows()
    ]
    return CacResult(
        model=model,
        by=by,
        range=rng,
        lookback_seconds=lookback_s,
        ltv_basis=basis,
        margin=margin,
        spend=float(spend["amount"].sum()),
        new_customers=len(new),
        attributed_customers=float(credit["w"].sum()),
        channels=rows,
        months=months,
    )
