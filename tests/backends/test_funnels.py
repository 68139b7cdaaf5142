"""Funnels through the public API give the hand-worked numbers, and the same whole result as the
default backend, on every backend.

The journeys are in conftest.py. Funnel view → signup → purchase, window 1h; each customer's
level by mode (README "Funnel semantics"), worked out by hand:

    customer  ordered strict_order strict_increase any_order  why
    a         3       3            3               3          view, signup, purchase 10 min apart
    b         2       2            2               2          purchase 90 min after the view
    c         1       1            1               1          no signup
    d         1       1            1               3          signup before the view
    e         3       1            3               3          'help' between view and signup
    f         3       3            1               3          view and signup at the same time
    g         2       2            2               2          10:00 view expires; 12:00 view, signup
    h         3       1            3               3          'bounce' between view and signup
    i         1       1            1               1          view, bounce
    j         3       2            3               3          'bounce' between signup and purchase
    k         3       3            3               3          (signup, purchase in a 2nd session)
    m         2       2            2               2          view 23:50, signup next day 00:10
"""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import Any

import pytest

import loudou
from loudou import FunnelResult
from loudou.backends import Store

from batches import traits_rows
from journeys import events_table

STEPS = ["view", "signup", "purchase"]


def spec(steps: list[Any] | None = None, **options: Any) -> loudou.FunnelSpec:
    return loudou.FunnelSpec.parse({"steps": steps or STEPS, "window": "1h", **options})


def counts(result: FunnelResult) -> list[int]:
    return [s.count for s in result.steps]


def by_value(result: FunnelResult) -> dict[str, list[int]]:
    return {b.value: [s.count for s in b.steps] for b in result.breakdown}


def wilson(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """The Wilson score interval, from its textbook formula."""
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


def same_as_reference(store: Store, reference: Store, s: loudou.FunnelSpec) -> FunnelResult:
    """The funnel on ``store``, checked to be the very result the default backend gives."""
    result = loudou.run_funnel(store, s)
    assert result.to_dict() == loudou.run_funnel(reference, s).to_dict()
    return result


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("ordered", [12, 9, 6]),
        ("strict_order", [12, 7, 3]),
        ("strict_increase", [12, 8, 5]),
        ("any_order", [12, 10, 7]),
    ],
)
def test_modes(journeys_store: Store, reference: Store, mode: str, expected: list[int]) -> None:
    result = same_as_reference(journeys_store, reference, spec(mode=mode))
    assert counts(result) == expected
    assert result.mode == mode and result.count_by == "customers"


def test_funnel_builder_runs_on_the_store(journeys_store: Store) -> None:
    result = loudou.Funnel(STEPS, window="1h").run(journeys_store)
    assert counts(result) == [12, 9, 6]


def test_rates_and_times(journeys_store: Store) -> None:
    """Step 2 took 0 s (f), 600 s (a, e, g, h, j, k), 1200 s (m) and 1800 s (b); step 3 took
    300 s (e, h), 600 s (a, k), 1200 s (j) and 1800 s (f). p90 interpolates linearly."""
    view, signup, purchase = loudou.run_funnel(journeys_store, spec()).steps
    assert (signup.conversion_from_previous, signup.conversion_from_start) == (0.75, 0.75)
    assert purchase.conversion_from_previous == pytest.approx(6 / 9)
    assert purchase.conversion_from_start == 0.5
    assert (view.dropoff, signup.dropoff, purchase.dropoff) == (0, 3, 3)
    assert signup.ci95 == pytest.approx(wilson(9, 12))
    assert purchase.ci95_from_start == pytest.approx(wilson(6, 12))
    assert view.median_seconds_from_previous is None
    assert (signup.median_seconds_from_previous, signup.p90_seconds_from_previous) == (600, 1320)
    assert (purchase.median_seconds_from_previous, purchase.p90_seconds_from_previous) == (
        600,
        1500,
    )


def test_count_sessions(journeys_store: Store, reference: Store) -> None:
    """Units are sessions: a2 (view, purchase) and j2 (view) enter with level 1, g's two sessions
    count apart (1 and 2), k's view is alone in s-k1 (1) and s-k2 has no view (not entered)."""
    result = same_as_reference(journeys_store, reference, spec(count="sessions"))
    assert counts(result) == [15, 8, 5]


def test_count_totals(journeys_store: Store, reference: Store) -> None:
    """Every attempt counts: a's February view (1), g's expired 10:00 attempt (1) and j's March
    view (1) add three entries to the twelve customers' best ones."""
    result = same_as_reference(journeys_store, reference, spec(count="totals"))
    assert counts(result) == [15, 9, 6]


def test_exclusion(journeys_store: Store, reference: Store) -> None:
    """A bounce between view and signup drops h (09:05, between 09:00 and 09:10) and i (never
    signed up, bounce within the hour); j's bounce comes after its signup."""
    s = spec(exclusions=[{"event": "bounce", "after_step": 1, "before_step": 2}])
    assert counts(same_as_reference(journeys_store, reference, s)) == [10, 8, 5]


def test_trait_condition_in_a_step(journeys_store: Store, reference: Store) -> None:
    """Only northern and southern customers' signups count: a, e, j (north) and b, g, m (south)
    reach step 2; f has no region and signs up in vain."""
    s = spec(["view", "signup where customer.region in (north, south)", "purchase"])
    assert counts(same_as_reference(journeys_store, reference, s)) == [12, 6, 3]


def test_property_condition_on_a_promoted_column(journeys_store: Store, reference: Store) -> None:
    s = spec(["view", "signup", "purchase where revenue > 100"])  # a (120.5) and e (200)
    assert counts(same_as_reference(journeys_store, reference, s)) == [12, 9, 2]


def test_breakdown_by_property(journeys_store: Store, reference: Store) -> None:
    """The device of the step-1 view of the chain that gave the level: g's is the 12:00 view
    (mobile), d's the 10:10 one (desktop); f, i and k's views have none."""
    result = same_as_reference(journeys_store, reference, spec(breakdown="device"))
    assert counts(result) == [12, 9, 6]
    assert by_value(result) == {
        "mobile": [5, 4, 3],  # a, c, e, g, h
        "desktop": [4, 3, 1],  # b, d, j, m
        "(none)": [3, 2, 2],  # f, i, k
    }
    assert result.breakdown[0].value == "mobile"  # the largest first
    top = same_as_reference(journeys_store, reference, spec(breakdown="device", breakdown_limit=1))
    assert by_value(top) == {"mobile": [5, 4, 3], "other": [7, 5, 3]}


def test_breakdown_by_trait(journeys_store: Store, reference: Store) -> None:
    result = same_as_reference(journeys_store, reference, spec(breakdown="customer.region"))
    assert by_value(result) == {
        "north": [4, 3, 3],  # a, c, e, j
        "south": [4, 3, 0],  # b, d, g, m
        "west": [2, 1, 1],  # h, i
        "east": [1, 1, 1],  # k
        "(none)": [1, 1, 1],  # f
    }
    # a bare name is a property first, then a trait
    assert by_value(loudou.run_funnel(journeys_store, spec(breakdown="region"))) == by_value(result)


@pytest.mark.parametrize(
    ("bounds", "expected"),
    [
        # step 1 on 2 January or later: h, i, j, and a's February view (level 1); not m (23:50)
        ({"date_from": date(2025, 1, 2)}, [4, 2, 2]),
        # date_to covers its whole day; later steps may fall after it (m's signup on 2 January)
        ({"date_to": date(2025, 1, 1)}, [9, 7, 4]),
        ({"date_from": date(2025, 1, 1), "date_to": date(2025, 1, 1)}, [9, 7, 4]),
        # datetimes bound step 1 inclusively: g's 12:00 view, k at 14:00, m at 23:50
        (
            {"date_from": datetime(2025, 1, 1, 12), "date_to": datetime(2025, 1, 1, 23, 50)},
            [3, 3, 1],
        ),
    ],
)
def test_date_range(
    journeys_store: Store, reference: Store, bounds: dict[str, Any], expected: list[int]
) -> None:
    assert counts(same_as_reference(journeys_store, reference, spec(**bounds))) == expected


def test_no_matching_events(journeys_store: Store, reference: Store) -> None:
    result = same_as_reference(journeys_store, reference, spec(["nothing", "purchase"]))
    assert counts(result) == [0, 0]


@pytest.mark.parametrize(
    ("condition", "reached"),
    [
        # view → purchase within 1h: a, c, d, e, f, h, j, k buy in time (b's comes at 90 min)
        ("", 8),
        ("sku = a", 1),  # text compares exactly: c's 'a', not a's 'A'
        ("sku = A", 1),
        ("sku contains a", 2),  # ignoring case: a, c
        ("sku is set", 3),  # a, c, e
        ("sku is not set", 5),  # d, f, h, j, k
        ("sku != B", 2),  # a missing property satisfies only 'is not set': a, c
        ("qty = 2", 1),  # a JSON number compares as a number
        ("qty = 2.0", 1),
        ("qty = '2'", 1),  # and as text
        ("revenue in (10, 200)", 2),  # c, e
        ("revenue not in (10, 200)", 6),  # a, d, f, h, j, k
        ("revenue >= 60", 4),  # a, e, h, j
        ("revenue < 30", 2),  # c (10), k (15)
        ("customer.age > 25", 2),  # a (30), e (35); c is 22, the rest have no age
        ("customer.plan != pro", 0),  # only b (free), too late
        ("customer.region contains OR", 4),  # north: a, c, e, j
    ],
)
def test_step_conditions(
    journeys_store: Store, reference: Store, condition: str, reached: int
) -> None:
    step = f"purchase where {condition}" if condition else "purchase"
    result = same_as_reference(journeys_store, reference, spec(["view", step]))
    assert counts(result) == [12, reached]


def test_funnels_follow_writes(scratch: Store, ns: str) -> None:
    """A funnel sees events and traits written after an earlier funnel on the same store."""
    view, buy = f"{ns}view", f"{ns}buy"
    x, y = f"{ns}x", f"{ns}y"
    s = spec([view, {"event": buy, "where": [{"trait": "tier", "value": "gold"}]}])
    scratch.insert_events(events_table({x: [(view, 0), (buy, 60)], y: [(view, 0)]}))
    assert counts(loudou.run_funnel(scratch, s)) == [2, 0]
    scratch.upsert_customers(traits_rows([(x, {"tier": "gold"})]))
    assert counts(loudou.run_funnel(scratch, s)) == [2, 1]
    scratch.insert_events(events_table({y: [(view, 0), (buy, 120)]}))  # y's view: stored already
    scratch.upsert_customers(traits_rows([(y, {"tier": "gold"})]))
    assert counts(loudou.run_funnel(scratch, s)) == [2, 2]
    scratch.upsert_customers(traits_rows([(x, {"tier": "silver"})]))
    assert counts(loudou.run_funnel(scratch, s)) == [2, 1]
