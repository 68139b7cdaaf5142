"""CLV: BG/NBD and Gamma-Gamma against the ``lifetimes`` package on the CDNOW data it ships
(parameters, per-customer expected purchases, P(alive) and CLV to 1%), the RFM summary against
lifetimes' own, and hand-worked historical values."""

from __future__ import annotations

import json
import os
from datetime import datetime

import numpy as np
import pandas as pd
import pytest

import loudou
from loudou.analyses.kpi import clv
from loudou.backends.base import EVENT_SCHEMA

lifetimes = pytest.importorskip("lifetimes")
from lifetimes import BetaGeoFitter, GammaGammaFitter  # noqa: E402
from lifetimes.datasets import load_cdnow_summary_data_with_monetary_value  # noqa: E402
from lifetimes.utils import summary_data_from_transaction_data  # noqa: E402

RTOL = 0.01  # the bar; the fits agree far better (about 1e-6)


@pytest.fixture(scope="module")
def cdnow():
    data = load_cdnow_summary_data_with_monetary_value()
    bgf = BetaGeoFitter(penalizer_coef=0.0).fit(data["frequency"], data["recency"], data["T"])
    repeat = data[data["frequency"] > 0]
    ggf = GammaGammaFitter(penalizer_coef=0.0).fit(repeat["frequency"], repeat["monetary_value"])
    return data, bgf, ggf


def test_bgnbd_parameters_match_lifetimes(cdnow):
    data, bgf, _ = cdnow
    m = clv.fit_bgnbd(data["frequency"], data["recency"], data["T"])
    for name in ("r", "alpha", "a", "b"):
        assert getattr(m, name) == pytest.approx(bgf.params_[name], rel=RTOL)
    # and the published values (DESIGN §5)
    assert m.to_dict() == pytest.approx(
        {"r": 0.2426, "alpha": 4.4135, "a": 0.7929, "b": 2.4258}, abs=1e-4
    )


def test_gamma_gamma_parameters_match_lifetimes(cdnow):
    data, _, ggf = cdnow
    gg = clv.fit_gamma_gamma(data["frequency"], data["monetary_value"])
    for name in ("p", "q", "v"):
        assert getattr(gg, name) == pytest.approx(ggf.params_[name], rel=RTOL)


def test_per_customer_predictions_match_lifetimes(cdnow):
    data, bgf, ggf = cdnow
    x, t_x, T, mv = (data[c] for c in ("frequency", "recency", "T", "monetary_value"))
    m = clv.fit_bgnbd(x, t_x, T)
    gg = clv.fit_gamma_gamma(x, mv)
    for t in (1, 10, 52):
        np.testing.assert_allclose(
            clv.bgnbd_expected_purchases(m, t, x, t_x, T),
            bgf.conditional_expected_number_of_purchases_up_to_time(t, x, t_x, T),
            rtol=RTOL,
        )
    np.testing.assert_allclose(
        clv.bgnbd_p_alive(m, x, t_x, T), bgf.conditional_probability_alive(x, t_x, T), rtol=RTOL
    )
    np.testing.assert_allclose(
        clv.gamma_gamma_expected_spend(gg, x, mv),
        ggf.conditional_expected_average_profit(x, mv),
        rtol=RTOL,
    )
    ours = clv.customer_lifetime_value(m, gg, x, t_x, T, mv, "week", 12, 0.01)
    theirs = ggf.customer_lifetime_value(bgf, x, t_x, T, mv, time=12, discount_rate=0.01, freq="W")
    np.testing.assert_allclose(ours, theirs, rtol=RTOL)


# ---- from transactions, through the store -----------------------------------------------------------


@pytest.fixture(scope="module")
def cdnow_transactions() -> pd.DataFrame:
    path = os.path.join(os.path.dirname(lifetimes.__file__), "datasets", "CDNOW_sample.txt")
    t = pd.read_csv(
        path, sep=r"\s+", header=None, names=["customer_id", "index", "date", "quantity", "amount"]
    )
    t["date"] = pd.to_datetime(t["date"].astype(str), format="%Y%m%d")
    return t


@pytest.fixture(scope="module")
def cdnow_store(cdnow_transactions, tmp_path_factory):
    """The CDNOW sample as ``order_completed`` events with revenue, in a database file."""
    t = cdnow_transactions
    path = tmp_path_factory.mktemp("cdnow") / "cdnow.duckdb"
    store = loudou.connect(path)
    n = len(t)
    table = {
        "event_id": [f"o{i}" for i in range(n)],
        "customer_id": [str(c) for c in t["customer_id"]],
        "event": ["order_completed"] * n,
        "ts": t["date"].dt.to_pydatetime().tolist(),
        "session_id": [None] * n,
        "channel": [None] * n,
        "campaign": [None] * n,
        "revenue": t["amount"].astype(float).tolist(),
        "properties": ["{}"] * n,
    }
    import pyarrow as pa

    store.insert_events(pa.table(table, schema=EVENT_SCHEMA))
    store.close()
    return str(path)


@pytest.mark.parametrize("unit,freq", [("day", "D"), ("week", "W")])
def test_rfm_summary_matches_lifetimes(cdnow_transactions, unit, freq):
    t = cdnow_transactions
    theirs = summary_data_from_transaction_data(
        t,
        "customer_id",
        "date",
        monetary_value_col="amount",
        observation_period_end="1997-09-30",
        freq=freq,
    )
    theirs.index = theirs.index.astype(str)
    t_us = t["date"].to_numpy("datetime64[us]").astype(np.int64)
    ours = clv.rfm_summary(
        t["customer_id"].astype(str).to_numpy(object),
        t_us,
        t["amount"].to_numpy(float),
        unit,
        datetime(1997, 9, 30),
    )
    ours = ours.loc[theirs.index]
    for col in ("frequency", "recency", "T", "monetary_value"):
        np.testing.assert_allclose(ours[col], theirs[col], rtol=1e-12, err_msg=col)


def test_store_clv_matches_lifetimes_pipeline(cdnow_transactions, cdnow_store):
    t = cdnow_transactions
    summary = summary_data_from_transaction_data(
        t,
        "customer_id",
        "date",
        monetary_value_col="amount",
        observation_period_end="1998-06-30",
        freq="W",
    )
    bgf = BetaGeoFitter().fit(summary["frequency"], summary["recency"], summary["T"])
    rep = summary[summary["frequency"] > 0]
    ggf = GammaGammaFitter().fit(rep["frequency"], rep["monetary_value"])
    theirs = ggf.customer_lifetime_value(
        bgf,
        summary["frequency"],
        summary["recency"],
        summary["T"],
        summary["monetary_value"],
        time=6,
        discount_rate=0.02,
        freq="W",
    )
    theirs.index = theirs.index.astype(str)
    expected = bgf.conditional_expected_number_of_purchases_up_to_time(
        6 * 4.345, summary["frequency"], summary["recency"], summary["T"]
    )
    expected.index = expected.index.astype(str)

    store = loudou.connect(cdnow_store, read_only=True)
    res = clv.run_clv(store, "week", "1998-06-30", horizon_months=6, discount_rate=0.02)
    store.close()
    for name in ("r", "alpha", "a", "b"):
        assert getattr(res.bgnbd, name) == pytest.approx(bgf.params_[name], rel=RTOL)
    for name in ("p", "q", "v"):
        assert getattr(res.gamma_gamma, name) == pytest.approx(ggf.params_[name], rel=RTOL)
    ours = res.customers.set_index("customer_id")
    np.testing.assert_allclose(ours["clv"].loc[theirs.index], theirs, rtol=RTOL)
    np.testing.assert_allclose(ours["expected_purchases"].loc[expected.index], expected, rtol=RTOL)
    # historical: revenue to date and orders are plain sums of the file
    assert ours["revenue"].sum() == pytest.approx(t["amount"].sum())
    assert int(ours["orders"].sum()) == len(t)
    assert res.customers["clv"].is_monotonic_decreasing


def test_cli_clv_json_contract(cdnow_store):
    from cli_process import run

    r = run(
        "kpi",
        "clv",
        "--time-unit",
        "week",
        "--observation-end",
        "1998-06-30",
        "--horizon",
        "12",
        "--discount",
        "0.01",
        "--json",
        "--page-size",
        "5",
        "--db",
        cdnow_store,
    )
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert set(doc["bgnbd"]) == {"r", "alpha", "a", "b"}
    assert set(doc["gamma_gamma"]) == {"p", "q", "v"}
    assert len(doc["customers"]) == 5 and doc["total_customers"] == 2357
    first = doc["customers"][0]
    assert {"customer_id", "frequency", "recency", "T", "p_alive", "clv"} <= set(first)


# ---- by hand ----------------------------------------------------------------------------------------


def _us(s: str) -> int:
    return int((datetime.fromisoformat(s) - datetime(1970, 1, 1)).total_seconds() * 1_000_000)


def test_rfm_by_month_by_hand():
    # ann buys twice in January (one unit), once in March, once in June after the end (left out)
    rows = [
        ("ann", "2025-01-03", 10.0),
        ("ann", "2025-01-20", 5.0),
        ("ann", "2025-03-02", 30.0),
        ("ann", "2025-06-01", 99.0),
        ("bob", "2025-02-10", 7.0),
    ]
    s = clv.rfm_summary(
        np.array([r[0] for r in rows], dtype=object),
        np.array([_us(r[1]) for r in rows]),
        np.array([r[2] for r in rows]),
        "month",
        datetime(2025, 4, 15),
    )
    assert s.loc["ann"].to_dict() == {
        "frequency": 1,
        "recency": 2,
        "T": 3,
        "monetary_value": 30,
        "orders": 3,
        "revenue": 45,
    }
    assert s.loc["bob"].to_dict() == {
        "frequency": 0,
        "recency": 0,
        "T": 2,
        "monetary_value": 0,
        "orders": 1,
        "revenue": 7,
    }
    hist = clv.historical_summary(s)
    assert hist["aov"] == pytest.approx(52 / 4) and hist["purchase_frequency"] == 2
    assert hist["revenue_per_customer"] == 26 and hist["repeat_customers"] == 1


def test_bad_time_unit_is_an_input_error():
    from loudou.errors import LoudouError

    with pytest.raises(LoudouError, match="time-unit"):
        clv.period_ordinals(np.array([0]), "year")


def test_churn_risk_list_on_cdnow(cdnow_store, tmp_path):
    from loudou.analyses.kpi.retention import run_churn_risk

    store = loudou.connect(cdnow_store, read_only=True)
    res = run_churn_risk(
        store, "1998-06-30", p_alive_below=0.3, inactive_days=1e9, time_unit="week"
    )
    everyone = clv.run_clv(store, "week", "1998-06-30")
    store.close()
    listed = res.customers
    # exactly the buyers whose P(alive) is under the threshold, ranked by value at risk
    low = everyone.customers[everyone.customers["p_alive"] < 0.3]
    assert set(listed["customer_id"]) == set(low["customer_id"]) and len(listed) > 0
    assert listed["value_at_risk"].is_monotonic_decreasing
    assert (listed["reason"] == "p_alive").all()
    row = listed.iloc[0]
    assert row["value_at_risk"] == pytest.approx((1 - row["p_alive"]) * row["clv"] / row["p_alive"])
    path = tmp_path / "risk.csv"
    res.to_csv(path)
    back = pd.read_csv(path, dtype={"customer_id": str})
    assert list(back["customer_id"]) == list(listed["customer_id"])


def test_bgnbd_fit_is_bounded_when_nobody_drops_out(monkeypatch):
    """Buyers who never drop out put the BG/NBD optimum at a, b -> infinity; the fit still ends
    after a bounded number of likelihood evaluations (it used to crawl 40,000 of them, ~20 s,
    on the demo data) and recovers the purchase-rate gamma (r, alpha) it was drawn from."""
    rng = np.random.default_rng(0)
    n = 3000  # with this seed the optimum lies off along the ridge (others land on a -> 0)
    T = rng.uniform(30, 180, n)
    k = rng.poisson(rng.gamma(0.5, 1 / 20, n) * T)  # rates ~ Gamma(r=0.5, alpha=20), no dropout
    t_x = np.array([rng.uniform(0, t, m).max() if m else 0.0 for t, m in zip(T, k, strict=True)])
    calls = []
    real = clv.bgnbd_log_likelihood

    def counted(*args):
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(clv, "bgnbd_log_likelihood", counted)
    m = clv.fit_bgnbd(k, t_x, T)
    assert len(calls) < 5_000
    assert m.r == pytest.approx(0.5, rel=0.2) and m.alpha == pytest.approx(20, rel=0.2)
    assert m.a / (m.a + m.b) < 1e-2  # the chance of dropping out after a purchase is nil
