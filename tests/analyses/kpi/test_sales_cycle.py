"""Sales cycle, worked by hand: first touch to first purchase, lead to won, buckets and groups."""

from __future__ import annotations

import numpy as np
import pytest

from loudou.analyses.kpi.common import date_range
from loudou.analyses.kpi.sales_cycle import distribution, run_sales_cycle

from journeys import make_store

D = 86400


def stage(t, to, deal=None):
    props = {"to_stage": to}
    if deal:
        props["deal_id"] = deal
    return ("deal_stage_changed", t, props)


@pytest.fixture(scope="module")
def shop():
    return make_store(
        {
            "ann": [
                ("ad_click", 0, {"channel": "search"}),
                ("page_view", D, {"channel": "email"}),
                ("order_completed", 3 * D, {"revenue": 1}),
                ("order_completed", 50 * D, {"revenue": 1}),  # only the first purchase counts
                stage(0, "lead", "d1"),
                stage(D, "qualified", "d1"),
                stage(10 * D, "won", "d1"),
                stage(20 * D, "lead", "d2"),  # second deal of ann, never won
            ],
            "bob": [
                ("page_view", 0, {"channel": "social"}),
                ("order_completed", 10 * D, {"revenue": 1}),
                stage(2 * D, "lead"),  # no deal_id: the customer is the deal
                stage(4 * D, "won"),
            ],
            "cat": [
                ("order_completed", 5 * D, {"revenue": 1}),
                ("page_view", 6 * D, {"channel": "email"}),
            ],
            "dan": [
                ("page_view", 0, {"channel": "search"}),
                ("order_completed", 40 * D, {"revenue": 1}),
            ],
            "eve": [
                stage(0, "won"),
                stage(D, "lead"),
            ],  # won before any lead: not a lead->won cycle
        },
        traits={"ann": {"segment": "b2b"}, "bob": {"segment": "b2c"}, "dan": {"segment": "b2c"}},
    )


def test_first_touch_to_purchase(shop):
    res = run_sales_cycle(shop, by="channel").to_dict()
    ftp = res["first_touch_to_purchase"]
    # ann 3 days, bob 10, dan 40; cat's only touch comes after her purchase
    assert ftp["n"] == 3 and ftp["without_touch"] == 1
    assert ftp["median"] == 10 and ftp["mean"] == pytest.approx(53 / 3)
    assert ftp["p25"] == pytest.approx(6.5) and ftp["p75"] == pytest.approx(25)
    groups = {g["group"]: g for g in ftp["groups"]}
    assert groups["search"]["n"] == 2 and groups["search"]["median"] == pytest.approx(21.5)
    assert groups["social"]["median"] == 10
    buckets = {b["bucket"]: b["count"] for b in ftp["distribution"]}
    assert buckets["1-7d"] == 1 and buckets["7-14d"] == 1 and buckets["30-60d"] == 1


def test_lead_to_won(shop):
    res = run_sales_cycle(shop, by="segment").to_dict()
    ltw = res["lead_to_won"]
    assert ltw["n"] == 2 and sorted([ltw["p25"], ltw["p75"]]) == pytest.approx([4, 8])
    assert ltw["median"] == 6  # d1: 10 days, bob: 2 days
    groups = {g["group"]: g["median"] for g in ltw["groups"]}
    assert groups == {"b2b": 10, "b2c": 2}


def test_range_filters_by_purchase_and_win(shop):
    res = run_sales_cycle(shop, rng=date_range("2025-01-06", "2025-01-31")).to_dict()
    assert res["first_touch_to_purchase"]["n"] == 1  # bob (day 10); cat has no touch before
    assert res["lead_to_won"]["n"] == 1  # ann's d1 won on day 10


def test_distribution_edges():
    got = distribution(np.array([0.0, 0.99, 1.0, 179.9, 180.0, 500.0]))
    counts = {b["bucket"]: b["count"] for b in got}
    assert counts["0-1d"] == 2 and counts["1-7d"] == 1 and counts["90-180d"] == 1
    assert counts["180d+"] == 2 and sum(counts.values()) == 6
