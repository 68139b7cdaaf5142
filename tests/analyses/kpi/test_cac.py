"""CAC, blended CAC, LTV:CAC and payback on a hand-worked shop."""

from __future__ import annotations

from datetime import date

import numpy as np
import pyarrow as pa
import pytest

from loudou.analyses.kpi.cac import payback_months, run_cac
from loudou.analyses.kpi.common import date_range
from loudou.backends.base import SPEND_SCHEMA

from journeys import make_store

D = 86400


@pytest.fixture
def shop():
    store = make_store(
        {
            "ann": [
                ("ad_click", 0, {"channel": "search", "campaign": "brand"}),
                ("page_view", D, {"channel": "email"}),
                ("order_completed", 2 * D, {"revenue": 100}),
                ("order_completed", 40 * D, {"revenue": 50}),
            ],
            "bob": [
                ("page_view", 0, {"channel": "social"}),
                ("order_completed", D, {"revenue": 40}),
            ],
            "cat": [("order_completed", 3 * D, {"revenue": 10})],  # no touch to credit
            "dan": [("page_view", 0, {"channel": "search"})],  # never buys
        }
    )
    store.insert_spend(
        pa.table(
            {
                "day": [date(2025, 1, 1), date(2025, 1, 2), date(2025, 1, 1), date(2025, 2, 1)],
                "channel": ["search", "search", "email", "display"],
                "campaign": ["brand", "generic", "", ""],
                "amount": [100.0, 50.0, 30.0, 20.0],
                "currency": ["CNY"] * 4,
            },
            schema=SPEND_SCHEMA,
        )
    )
    return store


def test_first_touch_cac_by_hand(shop):
    res = run_cac(shop, rng=date_range(None, "2025-03-31"), ltv="historical")
    rows = {r.channel: r for r in res.channels}
    assert rows["search"].spend == 150 and rows["search"].new_customers == 1
    assert rows["search"].cac == 150
    assert rows["email"].cac is None and rows["email"].note == "spend without customers"
    assert rows["display"].cac is None and rows["display"].new_customers == 0
    assert rows["social"].cac == 0 and rows["social"].note == "customers without spend"
    doc = res.to_dict()
    assert doc["blended"] == {
        "spend": 200,
        "new_customers": 3,
        "attributed_customers": 2,
        "unattributed_customers": 1,
        "cac": pytest.approx(200 / 3),
    }
    # LTV = revenue to date of the credited customers: ann 150 (search), bob 40 (social)
    assert rows["search"].ltv == 150 and rows["search"].ltv_cac == 1
    assert rows["social"].ltv == 40 and rows["social"].ltv_cac is None
    # ann: 100 in her first 30 days (< 150), 150 within 60 days -> pays back in month 2
    assert rows["search"].payback_months == 2
    assert rows["social"].payback_months == 1


def test_linear_cac_and_months(shop):
    res = run_cac(shop, model="linear", ltv="historical", margin=0.5)
    rows = {r.channel: r for r in res.channels}
    assert rows["search"].new_customers == 0.5 and rows["search"].cac == 300
    assert rows["email"].new_customers == 0.5 and rows["email"].cac == 60
    assert rows["email"].ltv == pytest.approx(75)  # ann's 150 at 50% margin
    months = {(m["month"], m["channel"]): m for m in res.to_dict()["months"]}
    assert months[("2025-01", "search")]["cac"] == 300
    assert months[("2025-02", "display")]["new_customers"] == 0
    assert months[("2025-02", "display")]["cac"] is None


def test_by_campaign(shop):
    res = run_cac(shop, by="campaign", ltv="historical")
    got = {(r.channel, r.campaign): (r.spend, r.new_customers) for r in res.channels}
    assert got == {
        ("search", "brand"): (100, 1),
        ("search", "generic"): (50, 0),
        ("email", "(none)"): (30, 0),
        ("display", "(none)"): (20, 0),
        ("social", "(none)"): (0, 1),
    }


def test_range_counts_only_customers_new_in_it(shop):
    # from Jan 4: ann (first order Jan 3) and bob (Jan 2) are not new; cat (Jan 4) is
    res = run_cac(shop, rng=date_range("2025-01-04", None), ltv="historical")
    assert res.new_customers == 1 and res.attributed_customers == 0
    assert {r.channel: r.spend for r in res.channels} == {"display": 20}


def test_payback_kernel():
    acquired = np.array([0, 0])
    weights = np.array([1.0, 1.0])
    month = 30 * D * 1_000_000
    # customer 0 spends 10 then 30 in month 2; customer 1 spends 20 at once
    cust = np.array([0, 0, 1])
    t = np.array([0, month + 1, 0])
    rev = np.array([10.0, 30.0, 20.0])
    assert payback_months(acquired, weights, cust, t, rev, 15.0, 3 * month) == 1  # mean 15
    assert payback_months(acquired, weights, cust, t, rev, 30.0, 3 * month) == 2  # mean 30
    assert payback_months(acquired, weights, cust, t, rev, 31.0, 3 * month) is None
