"""Journey views on hand-made journeys: trends, time to convert, converted/dropped customers,
the stage transition matrix, top paths and correlation (odds ratios against statsmodels)."""

from __future__ import annotations

import numpy as np
import pytest
from statsmodels.stats.contingency_tables import Table2x2
from statsmodels.stats.proportion import proportion_confint

from loudou.analyses.correlation import correlate, odds_ratio
from loudou.analyses.outcomes import step_outcomes
from loudou.analyses.paths import END, MORE, customer_path, top_paths
from loudou.analyses.timing import time_to_convert
from loudou.analyses.transitions import transition_matrix
from loudou.analyses.trends import period_ordinals, period_span, trends
from loudou.errors import LoudouError

from journeys import make_store, spec_of

H, D = 3600, 86400
# week of 2025-01-06 (Mon) = day 5; week of 2025-01-13 = day 12
JOURNEYS = {
    "a": [("view", 5 * D), ("cart", 5 * D + H), ("buy", 5 * D + 5 * H)],
    "b": [("view", 6 * D), ("cart", 6 * D + 2 * H), ("cart", 6 * D + 4 * H)],
    "c": [("view", 7 * D), ("help", 7 * D + 60), ("buy", 7 * D + 120)],
    "d": [
        ("view", 12 * D),
        ("cart", 12 * D + 5 * H),
        ("view", 12 * D + 6 * H),
        ("cart", 12 * D + 7 * H),
        ("buy", 12 * D + 9 * H),
    ],
    "e": [("help", 12 * D), ("view", 13 * D), ("help", 13 * D + 1)],
    "f": [("view", 40 * D)],  # the newest event: day 40
}


@pytest.fixture(scope="module")
def store():
    return make_store(JOURNEYS)


SPEC = spec_of(["view", "cart", "buy"], window="2d")


def test_trends_by_week(store):
    result = trends(store, SPEC, "week")
    first = result.transitions[0]
    # view -> cart: week of Jan 6: a, b, c (2 of 3); week of Jan 13: d, e (1 of 2); Feb 10: f (0 of 1)
    assert [(p.start.isoformat(), p.entered, p.converted) for p in first.points] == [
        ("2025-01-06", 3, 2),
        ("2025-01-13", 2, 1),
        ("2025-02-10", 1, 0),
    ]
    assert first.points[0].ci95 == pytest.approx(proportion_confint(2, 3, method="wilson"))
    assert [p.complete for p in first.points] == [True, True, False]
    second = result.transitions[1]
    assert [(p.entered, p.converted) for p in second.points] == [(2, 1), (1, 1)]
    with pytest.raises(LoudouError):
        trends(store, SPEC, "year")


def test_period_helpers():
    us = np.array(
        [np.datetime64("2025-01-05T23:00", "us"), np.datetime64("2025-01-06T00:00", "us")]
    ).astype(np.int64)
    w = period_ordinals(us, "week")
    assert w[1] == w[0] + 1
    assert [d.isoformat() for d in period_span(int(w[1]), int(w[1]), "week")] == [
        "2025-01-06",
        "2025-01-12",
    ]
    m = period_ordinals(us, "month")
    assert [d.isoformat() for d in period_span(int(m[0]), int(m[0]), "month")] == [
        "2025-01-01",
        "2025-01-31",
    ]


def test_time_to_convert(store):
    result = time_to_convert(store, SPEC, 1, 3, bins=4)
    # view -> buy: a 5 h; d 3 h: as in windowFunnel, its second view restarts the chain at 6 h
    # (cart 7 h, buy 9 h); c never reached cart
    deltas = np.array([5 * H, 3 * H])
    assert result.count == 2 and result.mean_seconds == pytest.approx(deltas.mean())
    assert result.percentiles[50] == pytest.approx(np.percentile(deltas, 50))
    assert result.percentiles[90] == pytest.approx(np.percentile(deltas, 90))
    assert result.counts == [1, 0, 0, 1] and result.bin_edges == [
        3 * H,
        3.5 * H,
        4 * H,
        4.5 * H,
        5 * H,
    ]
    with pytest.raises(LoudouError):
        time_to_convert(store, SPEC, 3, 1)


def test_converted_and_dropped_customers(store):
    dropped = step_outcomes(store, SPEC, 1, "dropped")
    assert sorted(dropped.column("customer_id").to_pylist()) == ["c", "e", "f"]
    converted = step_outcomes(store, SPEC, 2, "converted")
    assert sorted(converted.column("customer_id").to_pylist()) == ["a", "d"]
    assert converted.column("next_at").null_count == 0
    assert step_outcomes(store, SPEC, 2, "dropped").column("next_at").null_count == 1
    with pytest.raises(LoudouError):
        step_outcomes(store, SPEC, 3, "dropped")


def test_transition_matrix_counts_backward_moves_and_repeats(store):
    m = transition_matrix(store, SPEC)
    # a: v c b; b: v c c; c: v b; d: v c v c b; e: v; f: v
    expected = np.zeros((3, 3), int)
    for seq in ([0, 1, 2], [0, 1, 1], [0, 2], [0, 1, 0, 1, 2]):
        for x, y in zip(seq[:-1], seq[1:], strict=True):
            expected[x, y] += 1
    assert m.moves.tolist() == expected.tolist()
    doc = m.to_dict()
    assert (doc["backward_moves"], doc["repeat_moves"]) == (1, 1)
    assert doc["customers"][0][1] == 3  # a, b, d (d twice, counted once)


@pytest.mark.parametrize(
    "events,after,before,path",
    [
        (["x", "a", "b", "b", "c"], "a", None, ["a", "b", "c", END]),
        (["a", "b", "c", "d", "e", "f"], "a", None, ["a", "b", "c", "d"]),
        (["x", "y", "z", "b"], None, "b", [MORE, "y", "z", "b"]),
        (["a", "x", "y", "z", "w", "b"], "a", "b", ["a", "x", "y", MORE, "b"]),
        (["b", "a"], "a", "b", None),
        (["q"], "a", None, None),
    ],
)
def test_customer_path(events, after, before, path):
    assert customer_path(events, after, before, 3 if before is None else 2, True) == path


def test_top_paths_after_view(store):
    result = top_paths(store, after="view", depth=2)
    doc = result.to_dict()
    # a: view cart buy; b: view cart(x2 collapsed) end; c: view help buy; d: view cart view;
    # e: view help end; f: view end
    assert result.customers == 6
    assert {tuple(p["path"]): p["customers"] for p in doc["paths"]} == {
        ("view", "cart", "buy"): 1,
        ("view", "cart", END): 1,
        ("view", "help", "buy"): 1,
        ("view", "cart", "view"): 1,
        ("view", "help", END): 1,
        ("view", END): 1,
    }
    names = [(n["position"], n["name"]) for n in doc["sankey"]["nodes"]]
    link = {(names[x["source"]], names[x["target"]]): x["value"] for x in doc["sankey"]["links"]}
    assert link[((0, "view"), (1, "cart"))] == 3 and link[((0, "view"), (1, END))] == 1
    with pytest.raises(LoudouError):
        top_paths(store)


def test_odds_ratio_matches_statsmodels():
    for table in ([[12, 5], [7, 30]], [[40, 60], [20, 80]]):
        ref = Table2x2(np.array(table))
        ratio, ci = odds_ratio(table[0][0], table[0][1], table[1][0], table[1][1])
        assert ratio == pytest.approx(ref.oddsratio)
        assert ci == pytest.approx(ref.oddsratio_confint(method="normal"))
    # an empty cell: 0.5 added to every cell (Haldane-Anscombe), worked by hand
    ratio, ci = odds_ratio(0, 9, 4, 11)
    assert ratio == pytest.approx(0.5 * 11.5 / (9.5 * 4.5))
    se = (1 / 0.5 + 1 / 9.5 + 1 / 4.5 + 1 / 11.5) ** 0.5
    assert ci == pytest.approx((ratio * np.exp(-1.959964 * se), ratio * np.exp(1.959964 * se)))


def test_correlation_finds_the_helpful_event():
    rng = np.random.default_rng(4)
    journeys = {}
    truth = []
    for i in range(400):
        helped = rng.random() < 0.5
        ev = [("noise", 0), ("view", 10)] if rng.random() < 0.5 else [("view", 10)]
        if helped:
            ev.insert(0, ("webinar", 5, {"topic": "pricing"}))
        buys = rng.random() < (0.7 if helped else 0.3)
        if buys:
            ev.append(("buy", 20))
        journeys[f"u{i}"] = ev
        truth.append((helped, buys))
    store = make_store(journeys)
    result = correlate(store, spec_of(["view", "buy"]), 1, properties=["topic"], min_customers=20)
    names = {f.name for f in result.features}
    assert "event:view" not in names and "event:buy" not in names  # step events are trivial
    web = next(f for f in result.features if f.name == "event:webinar")
    a = sum(h and b for h, b in truth)
    b = sum(h and not b for h, b in truth)
    c = sum(not h and b for h, b in truth)
    d = sum(not h and not b for h, b in truth)
    ref = Table2x2(np.array([[a, b], [c, d]]))
    assert web.odds_ratio == pytest.approx(ref.oddsratio)
    assert web.ci95 == pytest.approx(ref.oddsratio_confint(method="normal"))
    assert result.raises()[0].name in ("event:webinar", "topic=pricing") and web.q_value < 0.001
    noise = next(f for f in result.features if f.name == "event:noise")
    assert noise.ci95[0] < 1 < noise.ci95[1]


def test_matrix_and_paths_against_brute_force_on_random_journeys():
    from collections import Counter

    from planted import STEPS, Plant, build

    plant = Plant(customers=300, loop_stage=3, back_p=0.2, seed=21)
    store, spec = build(plant)
    moves = np.zeros((4, 4), int)
    paths: Counter[tuple[str, ...]] = Counter()
    for events in plant.journeys.values():
        names = [e for e, _ in events]  # already in time order
        for a, b in zip(names[:-1], names[1:], strict=True):
            moves[STEPS.index(a), STEPS.index(b)] += 1
        collapsed = [e for i, e in enumerate(names) if i == 0 or e != names[i - 1]]
        paths[tuple(collapsed[:4]) + (("(end)",) if len(collapsed) <= 3 else ())] += 1
    assert transition_matrix(store, spec).moves.tolist() == moves.tolist()
    result = top_paths(store, after="view", depth=3, limit=1000)
    assert dict(result.paths) == dict(paths)
