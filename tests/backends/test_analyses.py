"""Analyses built on the generic reads (segments, retention, repeat purchase, churn) give the
same answers on every backend as on the default one, and the hand-worked numbers."""

from __future__ import annotations

from typing import Any

import pytest

from loudou import kpi
from loudou.analyses.segments import members
from loudou.backends import Store
from loudou.model.segment import Segment

PURCHASE = kpi.KpiEvents(purchase="purchase")


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        # northern buyers
        ([{"trait": "region", "value": "north"}, {"did": "purchase"}], ["a", "c", "e", "j"]),
        ([{"did_not": "signup"}], ["c", "i"]),
        # two sessions or more
        ([{"visits": [2, None]}], ["a", "g", "j", "k"]),
        # numbers compare as numbers; a missing trait passes nothing
        ([{"trait": "age", "op": ">=", "value": 30}], ["a", "b", "e"]),
        ([{"trait": "plan", "op": "is not set"}], ["c", "d", "f", "g", "h", "i", "j", "k", "m"]),
        # events whose sku is 'a' in any case: a's 'A' and c's 'a'
        ([{"interest": "a", "interest_property": "sku"}], ["a", "c"]),
        ([{"cohort": "2025-01"}], list("abcdefghijkm")),
    ],
)
def test_segment_members(
    journeys_store: Store, reference: Store, rules: list[dict[str, Any]], expected: list[str]
) -> None:
    segment = Segment.parse({"name": "s", "rules": rules})
    got = list(members(journeys_store, segment))
    assert got == expected
    assert got == list(members(reference, segment))


def test_retention(journeys_store: Store, reference: Store) -> None:
    """Everyone is first active in January 2025; a comes back in February (week of 3 February,
    five weeks on), j in March (week of 3 March, nine weeks on)."""
    monthly = kpi.retention(journeys_store, period="month")
    assert monthly.to_dict() == kpi.retention(reference, period="month").to_dict()
    (cohort,) = monthly.cohorts
    assert (cohort["cohort"], cohort["size"], cohort["active"]) == ("2025-01", 12, [12, 1, 1])
    assert cohort["retention"] == [1.0, 1 / 12, 1 / 12]
    weekly = kpi.retention(journeys_store, period="week")
    assert weekly.to_dict() == kpi.retention(reference, period="week").to_dict()
    assert weekly.cohorts[0]["active"] == [12, 0, 0, 0, 0, 1, 0, 0, 0, 1]
    bought = kpi.retention(journeys_store, basis="purchase", events=PURCHASE)
    assert bought.to_dict() == kpi.retention(reference, basis="purchase", events=PURCHASE).to_dict()
    assert [c["active"] for c in bought.cohorts] == [[9, 1]]  # a buys again in February


def test_repeat_purchase(journeys_store: Store, reference: Store) -> None:
    """Nine buyers; only a buys twice, 32 days 23 h 45 min apart."""
    result = kpi.repeat(journeys_store, events=PURCHASE)
    assert result.to_dict() == kpi.repeat(reference, events=PURCHASE).to_dict()
    assert (result.buyers, result.repeat_buyers) == (9, 1)
    assert result.repeat_rate == pytest.approx(1 / 9)
    assert result.days_between_purchases["median"] == pytest.approx(32 + (23 * 60 + 45) / 1440)
    by_region = kpi.repeat(journeys_store, by="region", events=PURCHASE)
    assert by_region.to_dict() == kpi.repeat(reference, by="region", events=PURCHASE).to_dict()


def test_churn(journeys_store: Store, reference: Store) -> None:
    """Active customers by month: all twelve in January, a in February, j in March."""
    rows = kpi.churn(journeys_store, basis="activity")
    assert rows == kpi.churn(reference, basis="activity")
    assert [(r["period"], r["active_before"], r["retained"], r["churned"]) for r in rows] == [
        ("2025-02", 12, 1, 11),
        ("2025-03", 1, 0, 1),
    ]
