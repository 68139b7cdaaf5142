"""Small journeys worked out by hand, one behaviour each."""

from __future__ import annotations

import pytest

import loudou

from journeys import counts, levels_by_customer, make_store, spec_of

H = 3600
D = 86400


def test_basic_ordered_counts_and_rates():
    store = make_store(
        {
            "ann": [("view", 0), ("signup", H), ("purchase", 2 * H, {"revenue": 150})],
            "bob": [("view", 0), ("signup", 3 * H)],
            "cat": [("view", 0)],
            "dan": [("signup", 0), ("purchase", H)],  # never viewed: not in the funnel
        }
    )
    res = loudou.run_funnel(store, spec_of(["view", "signup", "purchase"], window="1d"))
    assert [s.count for s in res.steps] == [3, 2, 1]
    assert [s.dropoff for s in res.steps] == [0, 1, 1]
    assert res.steps[1].conversion_from_previous == pytest.approx(2 / 3)
    assert res.steps[2].conversion_from_previous == pytest.approx(1 / 2)
    assert res.steps[2].conversion_from_start == pytest.approx(1 / 3)
    # time from previous step: ann 1h and bob 3h -> median 2h, p90 = 1h + 0.9 * 2h
    assert res.steps[1].median_seconds_from_previous == 2 * H
    assert res.steps[1].p90_seconds_from_previous == pytest.approx(H + 0.9 * 2 * H)
    assert res.steps[2].median_seconds_from_previous == H
    assert res.steps[0].median_seconds_from_previous is None
    assert res.weakest_step() == 2


def test_wilson_interval_matches_scipy():
    from scipy.stats import binomtest

    from loudou.analyses.stats import wilson_interval

    for k, n in [(0, 5), (1, 3), (7, 9), (50, 1000), (999, 1000), (10, 10)]:
        ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
        assert wilson_interval(k, n) == pytest.approx((ci.low, ci.high), abs=1e-12)


def test_window_edge_is_inclusive():
    store = make_store(
        {
            "edge": [("view", 0), ("buy", D)],  # exactly one window later: counts
            "late": [("view", 0), ("buy", D + 1)],  # one second late: does not
        }
    )
    assert levels_by_customer(store, spec_of(["view", "buy"], window="1d")) == {
        "edge": 2,
        "late": 1,
    }


def test_ties_count_in_order_and_one_event_can_match_two_steps():
    store = make_store(
        {
            "tie": [("view", 10), ("buy", 10)],  # same second: buy may follow view
            "rev": [("buy", 10), ("view", 10)],  # inserted in reverse: same result
            "one": [("buy", 10)],  # one event matching both steps 'buy|view' and 'buy'
        }
    )
    assert levels_by_customer(store, spec_of(["view", "buy"], window=60)) == {"tie": 2, "rev": 2}
    assert levels_by_customer(store, spec_of(["buy|view", "buy"], window=60))["one"] == 2
    # strict_increase needs strictly later timestamps
    assert levels_by_customer(
        store, spec_of(["view", "buy"], window=60, mode="strict_increase")
    ) == {
        "tie": 1,
        "rev": 1,
    }


def test_repeated_step_one_restarts_the_window():
    # the first view is too old for the purchase, the second one is not
    store = make_store({"r": [("view", 0), ("view", 5 * D), ("buy", 6 * D)]})
    assert levels_by_customer(store, spec_of(["view", "buy"], window="2d")) == {"r": 2}
    res = loudou.run_funnel(store, spec_of(["view", "buy"], window="2d"))
    assert res.steps[1].median_seconds_from_previous == D  # measured on the chain that converted


def test_out_of_order_arrival_is_sorted_by_time():
    store = make_store({"o": [("buy", 2 * H), ("signup", H), ("view", 0)]})
    assert levels_by_customer(store, spec_of(["view", "signup", "buy"], window="1d")) == {"o": 3}


def test_strict_order_breaks_on_any_other_event():
    store = make_store(
        {
            "clean": [("view", 0), ("cart", 10), ("buy", 20)],
            "other": [("view", 0), ("cart", 10), ("help", 15), ("buy", 20)],
            "skip": [("view", 0), ("buy", 10), ("cart", 20)],
        }
    )
    got = levels_by_customer(store, spec_of(["view", "cart", "buy"], window=H, mode="strict_order"))
    assert got == {"clean": 3, "other": 2, "skip": 1}
    got = levels_by_customer(store, spec_of(["view", "cart", "buy"], window=H))
    assert got == {"clean": 3, "other": 3, "skip": 2}


def test_any_order():
    store = make_store(
        {
            "rev": [("buy", 0), ("cart", 10), ("view", 20)],
            "gap": [("view", 0), ("buy", 10), ("cart", 2 * H)],
            "no_start": [("cart", 0), ("buy", 5)],
        }
    )
    got = levels_by_customer(store, spec_of(["view", "cart", "buy"], window=H, mode="any_order"))
    assert got == {"rev": 3, "gap": 1}  # 'gap' has view+buy in a window but no cart: prefix is 1
    res = loudou.run_funnel(store, spec_of(["view", "cart", "buy"], window=H, mode="any_order"))
    # rev: {view, cart} complete at 20s (after 'buy' 0 and 'cart' 10), +0 s for buy
    assert res.steps[1].median_seconds_from_previous == 0.0


def test_date_range_applies_to_step_one_only():
    store = make_store(
        {
            "in": [("view", "2025-01-31T23:00:00"), ("buy", "2025-02-01T01:00:00")],
            "before": [("view", "2025-01-01T00:00:00"), ("buy", "2025-01-05T01:00:00")],
            "after": [("view", "2025-02-01T00:00:00"), ("buy", "2025-02-01T01:00:00")],
        }
    )
    spec = spec_of(["view", "buy"], window="1d", date_from="2025-01-05", date_to="2025-01-31")
    assert levels_by_customer(store, spec) == {"in": 2}


def test_exclusion_between_steps_drops_the_customer():
    store = make_store(
        {
            "clean": [("view", 0), ("cart", 10), ("buy", 20)],
            "refund_between": [("view", 0), ("refund", 5), ("cart", 10), ("buy", 20)],
            "refund_after": [("view", 0), ("cart", 10), ("buy", 20), ("refund", 30)],
            "refund_no_cart": [("view", 0), ("refund", 5)],
            "refund_at_step_time": [("view", 0), ("refund", 0), ("cart", 10)],
        }
    )
    spec = spec_of(
        ["view", "cart", "buy"],
        window=H,
        exclusions=[{"event": "refund", "after_step": 1, "before_step": 2}],
    )
    got = levels_by_customer(store, spec)
    assert got == {"clean": 3, "refund_after": 3, "refund_at_step_time": 2}
    assert counts(store, spec) == [3, 3, 2]


def test_breakdown_attributed_at_step_one_with_top_n_and_other():
    store = make_store(
        {
            "a1": [("view", 0, {"src": "ads"}), ("buy", 10, {"src": "mail"})],
            "a2": [("view", 0, {"src": "ads"})],
            "m1": [("view", 0, {"src": "mail"}), ("buy", 10)],
            "s1": [("view", 0, {"src": "seo"})],
            "n1": [("view", 0), ("buy", 5)],
        }
    )
    res = loudou.run_funnel(
        store, spec_of(["view", "buy"], window=H, breakdown="src", breakdown_limit=2)
    )
    got = {b.value: [s.count for s in b.steps] for b in res.breakdown}
    # 'ads' is largest; 'mail','seo','(none)' tie at 1 and sort by name: '(none)' then 'mail'
    assert got == {"ads": [2, 1], "(none)": [1, 1], "other": [2, 1]}
    assert sum(v[0] for v in got.values()) == res.steps[0].count


def test_breakdown_by_customer_trait():
    store = make_store(
        {"a": [("view", 0), ("buy", 5)], "b": [("view", 0)], "c": [("view", 0), ("buy", 1)]},
        traits={"a": {"region": "north"}, "b": {"region": "north"}, "c": {"region": "south"}},
    )
    res = loudou.run_funnel(store, spec_of(["view", "buy"], window=H, breakdown="customer.region"))
    assert {b.value: [s.count for s in b.steps] for b in res.breakdown} == {
        "north": [2, 1],
        "south": [1, 1],
    }


def test_hold_constant_property():
    store = make_store(
        {
            "same": [("view", 0, {"sku": "x"}), ("buy", 10, {"sku": "x"})],
            "diff": [("view", 0, {"sku": "x"}), ("buy", 10, {"sku": "y"})],
        }
    )
    spec = spec_of(["view", "buy"], window=H, hold_constant=["sku"])
    assert levels_by_customer(store, spec) == {"same": 2, "diff": 1}


def test_count_sessions_and_totals():
    store = make_store(
        {
            "u": [
                ("view", 0, {"session_id": "s1"}),
                ("buy", 10, {"session_id": "s2"}),  # different session: no conversion in s1
                ("view", 20, {"session_id": "s2"}),
                ("buy", 30, {"session_id": "s2"}),
                ("view", 5 * H, {"session_id": "s3"}),
                ("buy", 5 * H + 1, {"session_id": "s3"}),
            ]
        }
    )
    assert counts(store, spec_of(["view", "buy"], window=H, count="sessions")) == [3, 2]
    assert counts(store, spec_of(["view", "buy"], window=H, count="customers")) == [1, 1]
    # totals: attempt 1 starts at 0 and completes at 10 (any session); the view at 20 starts
    # attempt 2 which completes at 30; the view at 5h is attempt 3
    assert counts(store, spec_of(["view", "buy"], window=H, count="totals")) == [3, 3]


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("price > 10", {"b"}),
        ("price >= 10", {"a", "b"}),
        ("price < 10", {"c"}),
        ("price <= 10", {"a", "c"}),
        ("price = 10", {"a"}),
        ("price != 10", {"b", "c"}),
        ("plan = pro", {"a"}),
        ("plan in (pro, team)", {"a", "b"}),
        ("plan not in (pro, team)", {"c"}),
        ("plan contains PR", {"a"}),
        ("coupon is set", {"c"}),
        ("coupon is not set", {"a", "b", "d"}),
        ("customer.vip = true", {"a"}),
        ("customer.age >= 30", {"b", "c"}),
    ],
)
def test_conditions(where, expected):
    store = make_store(
        {
            "a": [("buy", 0, {"price": 10, "plan": "pro"})],
            "b": [("buy", 0, {"price": 12.5, "plan": "team"})],
            "c": [("buy", 0, {"price": 3, "plan": "free", "coupon": "X1"})],
            "d": [("buy", 0)],
        },
        traits={"a": {"vip": True, "age": 25}, "b": {"age": 30}, "c": {"age": 41}},
    )
    assert set(levels_by_customer(store, spec_of([f"buy where {where}"], window=H))) == expected


def test_empty_store_gives_zero_counts():
    store = make_store({})
    res = loudou.run_funnel(store, spec_of(["view", "buy"], window=H))
    assert [s.count for s in res.steps] == [0, 0]
    assert res.steps[1].conversion_from_previous == 0.0
    assert res.weakest_step() is None


def test_python_api_result_converts_to_pandas_and_plotly():
    store = make_store({"a": [("view", 0), ("buy", 60)], "b": [("view", 0, {"src": "x"})]})
    res = loudou.Funnel(
        ["view", {"event": "buy", "name": "Buy", "name_zh": "购买"}], window="1h", breakdown="src"
    ).run(store)
    df = res.to_pandas(lang="zh")
    assert list(df.loc[df["breakdown"] == "(all)", "count"]) == [2, 1]
    assert "购买" in set(df["name"])
    fig = res.figure()
    assert len(fig.data) == 2 and list(fig.data[0].x) == [1, 1]
    assert res.to_dict()["breakdown_by"] == "src"
