"""Customer lifetime value: historical (revenue to date, order value, frequency) and predictive.

Predictive CLV follows the BTYD literature and the ``lifetimes`` package:

- per customer, purchases are counted per time unit (day, week or month) with at least one
  purchase; ``frequency`` is the number of such units after the first (repeat purchases),
  ``recency`` the units from the first to the last, ``T`` the units from the first to the
  observation end, and ``monetary_value`` the mean revenue of the repeat units (0 without any);
- BG/NBD (Fader, Hardie & Lee 2005) gives the expected number of future purchases and P(alive);
- Gamma-Gamma (Fader & Hardie 2013) gives the expected revenue per purchase;
- both are fitted by maximum likelihood (scipy, parameters on the log scale);
- CLV sums, month by month over the horizon, expected purchases in that month times expected
  revenue per purchase, discounted by ``(1 + discount) ** month`` (monthly rate), exactly as
  ``lifetimes``' ``customer_lifetime_value`` does.

The kernels in the first half are pure numpy/scipy; :func:`run_clv` reads the store.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import expit, gammaln, hyp2f1

from loudou.analyses.kpi.common import (
    DEFAULT_EVENTS,
    KpiError,
    KpiEvents,
    clean,
    group_labels,
    read_purchases,
)

if TYPE_CHECKING:
    from loudou.backends.base import Store

TIME_UNITS = {"day": "D", "week": "W", "month": "M"}
# Time units per month, as lifetimes' customer_lifetime_value uses them.
UNITS_PER_MONTH = {"day": 30.0, "week": 4.345, "month": 1.0}

# ---- RFM summary -----------------------------------------------------------------------------------


def period_ordinals(t_us: np.ndarray, time_unit: str) -> np.ndarray:
    """The number of the day, week (Monday–Sunday, pandas 'W') or month of each timestamp."""
    if time_unit not in TIME_UNITS:
        raise KpiError(f"unknown time unit {time_unit!r}; use day, week or month", "--time-unit")
    stamps = pd.to_datetime(np.asarray(t_us, dtype=np.int64), unit="us")
    return np.asarray(stamps.to_period(TIME_UNITS[time_unit]).asi8, dtype=np.int64)


def rfm_summary(
    customer_id: np.ndarray | list[str],
    t_us: np.ndarray,
    revenue: np.ndarray,
    time_unit: str,
    observation_end: datetime,
) -> pd.DataFrame:
    """frequency, recency, T and monetary_value per customer (index ``customer_id``), as lifetimes'
    ``summary_data_from_transaction_data``; purchases in units after the observation end's unit
    are left out. Also ``orders`` and ``revenue`` (historical, same purchases)."""
    from loudou.model.times import to_us

    end = int(period_ordinals(np.array([to_us(observation_end)]), time_unit)[0])
    df = pd.DataFrame(
        {
            "customer_id": np.asarray(customer_id, dtype=object),
            "unit": period_ordinals(t_us, time_unit),
            "revenue": np.asarray(revenue, dtype=float),
        }
    )
    df = df[df["unit"] <= end]
    if df.empty:
        return pd.DataFrame(
            columns=["frequency", "recency", "T", "monetary_value", "orders", "revenue"]
        )
    orders = df.groupby("customer_id", sort=True).agg(
        orders=("revenue", "size"), revenue=("revenue", "sum")
    )
    units = df.groupby(["customer_id", "unit"], sort=True)["revenue"].sum().reset_index()
    g = units.groupby("customer_id", sort=True)
    first = g["unit"].transform("min")
    repeat = units[units["unit"] != first]
    out = pd.DataFrame(
        {
            "frequency": g.size() - 1,
            "recency": g["unit"].max() - g["unit"].min(),
            "T": end - g["unit"].min(),
        }
    ).astype(float)
    out["monetary_value"] = repeat.groupby("customer_id")["revenue"].mean()
    out["monetary_value"] = out["monetary_value"].fillna(0.0)
    out = out.join(orders)
    out.index.name = "customer_id"
    return out


# ---- BG/NBD -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BgNbd:
    r: float
    alpha: float
    a: float
    b: float

    def to_dict(self) -> dict[str, float]:
        return {"r": self.r, "alpha": self.alpha, "a": self.a, "b": self.b}


def bgnbd_log_likelihood(
    params: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray
) -> np.ndarray:
    """Per-customer log-likelihood of BG/NBD (Fader, Hardie & Lee 2005, eq. 6)."""
    r, alpha, a, b = params
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    a2 = gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
    a3 = -(r + x) * np.log(alpha + T)
    with np.errstate(divide="ignore", invalid="ignore"):
        a4 = np.where(
            x > 0,
            np.log(a) - np.log(np.maximum(b + x - 1, 1e-300)) - (r + x) * np.log(alpha + t_x),
            -np.inf,
        )
    return a1 + a2 + np.logaddexp(a3, a4)


POLISH_EVALS = 2000  # Nelder-Mead evaluations at most; CDNOW's fits need about 300


def _fit(nll: Any, n_params: int) -> np.ndarray:
    """Minimise a negative log-likelihood over log-parameters, robustly: BFGS from 0, then
    Nelder-Mead polishing from the best point (the surfaces are flat in some directions).

    The polish gets a bounded budget: where the optimum lies at infinity (BG/NBD on buyers who
    never drop out sends a and b off along a ridge) it would otherwise crawl for tens of seconds
    to gain nothing visible; well-posed fits (CDNOW) finish in a few hundred evaluations."""
    best = None
    for method in ("BFGS", "Nelder-Mead"):
        x0 = np.zeros(n_params) if best is None else best.x
        options = (
            {"gtol": 1e-10, "maxiter": 5000}
            if method == "BFGS"
            else {"xatol": 1e-10, "fatol": 1e-14, "maxiter": POLISH_EVALS, "maxfev": POLISH_EVALS}
        )
        res = minimize(nll, x0, method=method, options=options)
        if best is None or res.fun <= best.fun:
            best = res
    assert best is not None
    if not np.all(np.isfinite(best.x)):
        raise KpiError("the model could not be fitted to this data", "data")
    return np.exp(best.x)


def fit_bgnbd(x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> BgNbd:
    """Maximum-likelihood BG/NBD parameters."""
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    if x.size == 0 or np.all(x == 0):
        raise KpiError("BG/NBD needs customers with repeat purchases", "data")

    def nll(log_params: np.ndarray) -> float:
        ll = bgnbd_log_likelihood(np.exp(log_params), x, t_x, T)
        v = -float(np.mean(ll))
        return v if np.isfinite(v) else 1e300

    r, alpha, a, b = _fit(nll, 4)
    return BgNbd(float(r), float(alpha), float(a), float(b))


def bgnbd_expected_purchases(
    m: BgNbd, t: float, x: np.ndarray, t_x: np.ndarray, T: np.ndarray
) -> np.ndarray:
    """E[purchases in (T, T+t] | x, t_x, T] (FHL 2005 eq. 10), via the Gauss hypergeometric
    function, with its Euler transform where the direct series overflows (as lifetimes)."""
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    r, alpha, a, b = m.r, m.alpha, m.a, m.b
    if t <= 0:
        return np.zeros_like(x)
    _a, _b, _c = r + x, b + x, a + b + x - 1
    z = t / (alpha + T + t)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        ln_hyp = np.log(hyp2f1(_a, _b, _c, z))
        alt = np.log(hyp2f1(_c - _a, _c - _b, _c, z)) + (_c - _a - _b) * np.log(1 - z)
        ln_hyp = np.where(np.isfinite(ln_hyp), ln_hyp, alt)
        first = (a + b + x - 1) / (a - 1)
        second = 1 - np.exp(ln_hyp + (r + x) * np.log((alpha + T) / (alpha + t + T)))
        numerator = first * second
        denominator = 1 + (x > 0) * (a / (b + x - 1)) * ((alpha + T) / (alpha + t_x)) ** (r + x)
    return numerator / denominator


def bgnbd_p_alive(m: BgNbd, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
    """P(customer is still active at T | x, t_x, T); 1 for customers with no repeat purchase."""
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    log_div = (m.r + x) * np.log((m.alpha + T) / (m.alpha + t_x)) + np.log(
        m.a / (m.b + np.maximum(x, 1) - 1)
    )
    return np.where(x == 0, 1.0, expit(-log_div))


# ---- Gamma-Gamma ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class GammaGamma:
    p: float
    q: float
    v: float

    def to_dict(self) -> dict[str, float]:
        return {"p": self.p, "q": self.q, "v": self.v}


def gamma_gamma_log_likelihood(params: np.ndarray, x: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Per-customer log-likelihood of the mean spend ``m`` over ``x`` purchases (x > 0)."""
    p, q, v = params
    return (
        gammaln(p * x + q)
        - gammaln(p * x)
        - gammaln(q)
        + q * np.log(v)
        + (p * x - 1) * np.log(m)
        + (p * x) * np.log(x)
        - (p * x + q) * np.log(x * m + v)
    )


def fit_gamma_gamma(x: np.ndarray, m: np.ndarray) -> GammaGamma:
    """Maximum-likelihood Gamma-Gamma parameters from customers with repeat purchases and spend."""
    x, m = np.asarray(x, dtype=float), np.asarray(m, dtype=float)
    keep = (x > 0) & (m > 0)
    x, m = x[keep], m[keep]
    if x.size < 2:
        raise KpiError("Gamma-Gamma needs customers with repeat purchases and revenue", "data")

    def nll(log_params: np.ndarray) -> float:
        value = -float(np.mean(gamma_gamma_log_likelihood(np.exp(log_params), x, m)))
        return value if np.isfinite(value) else 1e300

    p, q, v = _fit(nll, 3)
    return GammaGamma(float(p), float(q), float(v))


def gamma_gamma_expected_spend(gg: GammaGamma, x: np.ndarray, m: np.ndarray) -> np.ndarray:
    """E[revenue per purchase | x, m]: a weighted mean of the population mean and the customer's
    own mean (the population mean for customers without repeat purchases)."""
    x, m = np.asarray(x, dtype=float), np.asarray(m, dtype=float)
    weight = gg.p * x / (gg.p * x + gg.q - 1)
    population = gg.v * gg.p / (gg.q - 1)
    return (1 - weight) * population + weight * m


def customer_lifetime_value(
    m: BgNbd,
    gg: GammaGamma,
    x: np.ndarray,
    t_x: np.ndarray,
    T: np.ndarray,
    monetary_value: np.ndarray,
    time_unit: str,
    horizon_months: int = 12,
    discount_rate: float = 0.01,
) -> np.ndarray:
    """Discounted expected revenue over the next ``horizon_months`` months (monthly discount)."""
    spend = gamma_gamma_expected_spend(gg, x, monetary_value)
    factor = UNITS_PER_MONTH[time_unit]
    clv = np.zeros(np.shape(x), dtype=float)
    previous = np.zeros(np.shape(x), dtype=float)
    for month in range(1, horizon_months + 1):
        cumulative = bgnbd_expected_purchases(m, month * factor, x, t_x, T)
        clv += spend * (cumulative - previous) / (1 + discount_rate) ** month
        previous = cumulative
    return clv


# ---- from the store ------------------------------------------------------------------------------


@dataclass
class ClvResult:
    """Fitted models, per-customer values (``customers``) and summaries. ``to_dict`` is the
    stable ``loudou kpi clv --json`` document; customers are paged there."""

    time_unit: str
    observation_end: date
    horizon_months: int
    discount_rate: float
    bgnbd: BgNbd
    gamma_gamma: GammaGamma
    customers: pd.DataFrame  # one row per buyer, see COLUMNS
    by: str | None = None

    COLUMNS = (
        "customer_id",
        "group",
        "orders",
        "revenue",
        "aov",
        "frequency",
        "recency",
        "T",
        "monetary_value",
        "p_alive",
        "expected_purchases",
        "expected_spend",
        "clv",
    )

    def historical(self) -> dict[str, Any]:
        return historical_summary(self.customers)

    def groups(self) -> list[dict[str, Any]]:
        if self.by is None:
            return []
        rows = []
        for value, part in self.customers.groupby("group", sort=True):
            rows.append(
                {
                    "group": value,
                    **historical_summary(part),
                    "mean_clv": clean(part["clv"].mean()),
                    "total_clv": clean(part["clv"].sum()),
                    "mean_p_alive": clean(part["p_alive"].mean()),
                }
            )
        return rows

    def page(self, page: int = 1, page_size: int = 100) -> list[dict[str, Any]]:
        part = self.customers.iloc[(page - 1) * page_size : page * page_size]
        return [
            {k: (clean(v) if isinstance(v, float) else v) for k, v in row.items()}
            for row in part.to_dict(orient="records")
        ]

    def to_dict(self, page: int = 1, page_size: int = 100) -> dict[str, Any]:
        c = self.customers
        return {
            "time_unit": self.time_unit,
            "observation_end": self.observation_end.isoformat(),
            "horizon_months": self.horizon_months,
            "discount_rate": self.discount_rate,
            "bgnbd": self.bgnbd.to_dict(),
            "gamma_gamma": self.gamma_gamma.to_dict(),
            "historical": self.historical(),
            "predicted": {
                "expected_purchases": clean(c["expected_purchases"].sum()),
                "total_clv": clean(c["clv"].sum()),
                "mean_clv": clean(c["clv"].mean()) if len(c) else None,
                "mean_p_alive": clean(c["p_alive"].mean()) if len(c) else None,
            },
            "by": self.by,
            "groups": self.groups(),
            "total_customers": len(c),
            "page": page,
            "page_size": page_size,
            "customers": self.page(page, page_size),
        }

    def to_csv(self, path: str) -> None:
        self.customers.to_csv(path, index=False)


def historical_summary(customers: pd.DataFrame) -> dict[str, Any]:
    """Buyers, revenue, orders, average order value and purchase frequency (orders per buyer)."""
    n = len(customers)
    orders = float(customers["orders"].sum()) if n else 0.0
    revenue = float(customers["revenue"].sum()) if n else 0.0
    repeaters = int((customers["orders"] >= 2).sum()) if n else 0
    return {
        "customers": n,
        "orders": int(orders),
        "revenue": revenue,
        "aov": revenue / orders if orders else None,
        "purchase_frequency": orders / n if n else None,
        "revenue_per_customer": revenue / n if n else None,
        "repeat_customers": repeaters,
    }


def clv_table(
    rfm: pd.DataFrame,
    m: BgNbd,
    gg: GammaGamma,
    time_unit: str,
    horizon_months: int,
    discount_rate: float,
) -> pd.DataFrame:
    """Per-customer predictions from an RFM summary and fitted models."""
    x, t_x, T, mv = (
        rfm[c].to_numpy(float) for c in ("frequency", "recency", "T", "monetary_value")
    )
    horizon_units = horizon_months * UNITS_PER_MONTH[time_unit]
    out = rfm.copy()
    out["aov"] = out["revenue"] / out["orders"]
    out["p_alive"] = bgnbd_p_alive(m, x, t_x, T)
    out["expected_purchases"] = bgnbd_expected_purchases(m, horizon_units, x, t_x, T)
    out["expected_spend"] = gamma_gamma_expected_spend(gg, x, mv)
    out["clv"] = customer_lifetime_value(
        m, gg, x, t_x, T, mv, time_unit, horizon_months, discount_rate
    )
    return out


def run_clv(
    store: Store,
    time_unit: str = "day",
    observation_end: date | datetime | str | None = None,
    horizon_months: int = 12,
    discount_rate: float = 0.01,
    by: str | None = None,
    events: KpiEvents = DEFAULT_EVENTS,
) -> ClvResult:
    """Historical and predictive CLV of every buyer up to ``observation_end`` (default: the day of
    the last purchase). Customers are sorted by CLV, highest first."""
    from datetime import timedelta

    from loudou.analyses.kpi.common import _as_datetime
    from loudou.model.times import from_us

    if time_unit not in TIME_UNITS:
        raise KpiError(f"unknown time unit {time_unit!r}; use day, week or month", "--time-unit")
    if horizon_months < 1:
        raise KpiError("horizon must be at least 1 month", "--horizon")
    if not 0 <= discount_rate < 1:
        raise KpiError("discount rate must be in [0, 1)", "--discount")
    end_dt = None
    if observation_end is not None:
        end_dt = _as_datetime(observation_end, "--observation-end")
    purchases = read_purchases(
        store, events, None if end_dt is None else end_dt + timedelta(days=1)
    )
    if purchases.empty:
        raise KpiError(f"no {events.purchase!r} events to fit on", "data")
    if end_dt is None:
        end_dt = from_us(int(purchases["t"].max()))
    rfm = rfm_summary(
        purchases["customer_id"].to_numpy(object),
        purchases["t"].to_numpy(np.int64),
        purchases["revenue"].to_numpy(float),
        time_unit,
        end_dt,
    )
    model = fit_bgnbd(rfm["frequency"], rfm["recency"], rfm["T"])
    gg = fit_gamma_gamma(rfm["frequency"], rfm["monetary_value"])
    table = clv_table(rfm, model, gg, time_unit, horizon_months, discount_rate).reset_index()
    groups = group_labels(store, by, table["customer_id"].tolist())
    table.insert(1, "group", groups if groups is not None else None)
    table = table.sort_values(["clv", "customer_id"], ascending=[False, True], ignore_index=True)
    return ClvResult(
        time_unit=time_unit,
        observation_end=end_dt.date(),
        horizon_months=horizon_months,
        discount_rate=discount_rate,
        bgnbd=model,
        gamma_gamma=gg,
        customers=table[list(ClvResult.COLUMNS)],
        by=by,
    )
