"""Retention cohorts, repeat purchase, time between purchases and churn, worked by hand."""

from __future__ import annotations

import numpy as np
import pytest

from loudou.analyses.kpi.common import date_range
from loudou.analyses.kpi.retention import (
    cohort_matrix,
    run_churn,
    run_repeat,
    run_retention,
    value_at_risk,
)

from journeys import make_store


def buy(day: str, revenue: float = 10.0):
    return ("order_completed", f"2025-{day} 12:00", {"revenue": revenue})


@pytest.fixture(scope="module")
def shop():
    return make_store(
        {
            "ann": [buy("01-05"), buy("01-20"), buy("03-03")],
            "bob": [buy("01-10")],
            "cat": [buy("02-02"), buy("03-15")],
            "dan": [("page_view", "2025-01-01 08:00"), ("page_view", "2025-02-01 08:00")],
        },
        traits={"ann": {"tier": "gold"}, "bob": {"tier": "gold"}, "cat": {"tier": "basic"}},
    )


def test_purchase_cohorts_by_month(shop):
    res = run_retention(shop, "month", "purchase")
    assert res.cohorts == [
        {"cohort": "2025-01", "size": 2, "active": [2, 0, 1], "retention": [1, 0, 0.5]},
        {"cohort": "2025-02", "size": 1, "active": [1, 1], "retention": [1, 1]},
    ]


def test_activity_cohorts_and_range(shop):
    res = run_retention(shop, "month", "activity")
    assert res.cohorts[0]["active"] == [3, 1, 1]  # ann, bob, dan; dan in Feb; ann in Mar
    only_feb = run_retention(shop, "month", "activity", date_range("2025-02-01", None))
    assert [c["cohort"] for c in only_feb.cohorts] == ["2025-02"]


def test_weekly_cohorts_kernel():
    day = 86400 * 1_000_000
    monday = np.datetime64("2025-01-06", "us").astype(np.int64)
    rows = cohort_matrix(
        np.array(["a", "a", "b", "a"], dtype=object),
        np.array([monday, monday + 6 * day, monday + 7 * day, monday + 14 * day]),
        "week",
    )
    # a: weeks 0 and 2 (Sunday is still week 0); b starts in week 1
    assert rows[0]["cohort"].startswith("2025-01-06") and rows[0]["active"] == [1, 0, 1]
    assert rows[1]["active"] == [1, 0]


def test_repeat_rate_and_gaps(shop):
    res = run_repeat(shop)
    assert (res.buyers, res.repeat_buyers) == (3, 2)
    assert res.repeat_rate == pytest.approx(2 / 3)
    gaps = res.days_between_purchases  # ann 15 and 42 days, cat 41 days
    assert gaps["n"] == 3 and gaps["median"] == 41
    assert gaps["p25"] == pytest.approx(28) and gaps["p75"] == pytest.approx(41.5)
    assert gaps["mean"] == pytest.approx(98 / 3)


def test_repeat_by_trait(shop):
    res = run_repeat(shop, by="tier")
    groups = {g["group"]: g for g in res.groups}
    assert groups["gold"]["buyers"] == 2 and groups["gold"]["repeat_rate"] == 0.5
    assert groups["basic"]["repeat_rate"] == 1


def test_churn_per_month(shop):
    rows = run_churn(shop, "month", "purchase")
    assert rows == [
        {
            "period": "2025-02",
            "active_before": 2,
            "retained": 0,
            "churned": 2,
            "churn_rate": 1.0,
            "active": 1,
        },
        {
            "period": "2025-03",
            "active_before": 1,
            "retained": 1,
            "churned": 0,
            "churn_rate": 0.0,
            "active": 2,
        },
    ]


def test_value_at_risk():
    # alive value = clv / p_alive; at risk = (1 - p) of it
    assert value_at_risk(np.array([0.5, 1.0, 0.2]), np.array([10.0, 7.0, 4.0])) == pytest.approx(
        [10.0, 0.0, 16.0]
    )
