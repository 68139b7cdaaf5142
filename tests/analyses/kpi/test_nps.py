"""NPS: categories, score, the interval (by hand and against the multinomial covariance), segments,
periods and advocacy."""

from __future__ import annotations

import math

import numpy as np
import pytest

from loudou.analyses.kpi.common import date_range
from loudou.analyses.kpi.nps import nps_interval, nps_summary, run_nps
from loudou.analyses.stats import Z95

from journeys import make_store


def test_summary_by_hand():
    s = nps_summary(np.array([10, 9, 9, 8, 7, 6, 0, 3, 10, 10]))
    assert (s["promoters"], s["passives"], s["detractors"]) == (5, 2, 3)
    assert s["nps"] == pytest.approx(20.0)
    assert s["promoter_share"] == 0.5 and s["detractor_share"] == 0.3


def test_interval_by_hand():
    # 5 promoters, 2 passives, 3 detractors -> with one pseudo-answer each: 6/13 and 4/13
    lo, hi = nps_interval(5, 2, 3)
    p, d = 6 / 13, 4 / 13
    half = Z95 * math.sqrt((p + d - (p - d) ** 2) / 13)
    assert (lo, hi) == pytest.approx((100 * (p - d - half), 100 * (p - d + half)))


def test_variance_is_that_of_a_multinomial_difference():
    # Var(p - d) = Var(p) + Var(d) - 2 Cov(p, d) with multinomial moments
    n, p, d = 200, 0.55, 0.2
    multinomial = (p * (1 - p) + d * (1 - d) + 2 * p * d) / n
    assert multinomial == pytest.approx((p + d - (p - d) ** 2) / n)
    lo, hi = nps_interval(110, 50, 40)
    pa, da = 111 / 203, 41 / 203
    assert (hi - lo) / 2 == pytest.approx(100 * Z95 * math.sqrt((pa + da - (pa - da) ** 2) / 203))


def test_interval_never_collapses_and_stays_in_range():
    lo, hi = nps_interval(4, 0, 0)  # all promoters: NPS 100, interval still has width
    assert lo < 100 and hi == 100
    half = 100 * Z95 * math.sqrt(2 / 9)  # no answers: p = d = 1/3 from the pseudo-answers
    assert nps_interval(0, 0, 0) == pytest.approx((-half, half))


def nps(t, score):
    return ("nps_submitted", t, {"score": score})


@pytest.fixture(scope="module")
def shop():
    return make_store(
        {
            "ann": [nps("2025-01-05", 10), nps("2025-02-05", 6)],  # latest answer: detractor
            "bob": [nps("2025-01-10", 9), ("referral_sent", "2025-01-11")],
            "cat": [
                nps("2025-02-02", 7),
                nps("2025-02-03", "n/a"),
                ("referral_sent", "2025-02-04"),
            ],
            "dan": [nps("2025-02-20", 2), nps("2025-02-21", 11)],
        },
        traits={"ann": {"segment": "b2b"}, "bob": {"segment": "b2c"}, "cat": {"segment": "b2c"}},
    )


def test_store_overall_segments_periods_advocacy(shop):
    res = run_nps(shop, by="segment")
    doc = res.to_dict()
    # answers: 10, 6, 9, 7, 2 (n/a and 11 are invalid)
    assert doc["responses"] == 5 and doc["invalid_answers"] == 2
    assert doc["nps"] == pytest.approx(100 * (2 - 2) / 5)
    groups = {g["group"]: g for g in doc["groups"]}
    assert groups["b2b"]["nps"] == 0  # 10 and 6
    assert groups["b2c"]["nps"] == 50  # 9 and 7
    assert groups["(none)"]["nps"] == -100  # dan: 2
    months = {m["period"]: m["nps"] for m in doc["over_time"]}
    assert months == {"2025-01": 100, "2025-02": pytest.approx(-200 / 3)}
    # promoters by latest answer: bob only (ann turned detractor); referrers bob and cat
    assert doc["advocacy"] == {"promoter_customers": 1, "referrers": 2, "advocates": 2}


def test_store_range(shop):
    res = run_nps(shop, rng=date_range("2025-02-01", "2025-02-28"))
    assert res.overall["responses"] == 3 and res.advocacy["referrers"] == 1
