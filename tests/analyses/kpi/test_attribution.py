"""Attribution: hand-worked paths for every model, exact Markov removal effects, an independent
brute-force reference, ChannelAttribution's own results on its shipped data, and the store path."""

from __future__ import annotations

import contextlib
import io
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loudou.analyses.kpi.attribution import (
    Paths,
    conversion_probability,
    heuristic_credit,
    markov_credit,
    removal_effects,
    run_attribution,
    transition_counts,
    transition_matrix,
)
from loudou.analyses.kpi.common import date_range

from journeys import make_store

H = 3600
D = 86400


def credit_of(paths: Paths, model: str, **kw: float) -> dict[str, float]:
    conv, _ = heuristic_credit(paths, model, **kw)
    return {n: pytest.approx(float(c)) for n, c in zip(paths.names, conv, strict=True)}


# ---- rule-based models, by hand ---------------------------------------------------------------------


def test_heuristic_models_by_hand():
    p = Paths.from_lists([["a", "b", "c", "d"], ["b"], ["c", "a"]], values=[100, 10, 50])
    assert credit_of(p, "first_touch") == {"a": 1, "b": 1, "c": 1, "d": 0}
    assert credit_of(p, "last_touch") == {"a": 1, "b": 1, "c": 0, "d": 1}
    assert credit_of(p, "linear") == {"a": 0.25 + 0.5, "b": 0.25 + 1, "c": 0.25 + 0.5, "d": 0.25}
    # position: 40/20/40 on four touches (middle 10% each); one touch 100%; two touches 50/50
    assert credit_of(p, "position") == {"a": 0.4 + 0.5, "b": 0.1 + 1, "c": 0.1 + 0.5, "d": 0.4}
    _, value = heuristic_credit(p, "position")
    assert dict(zip(p.names, value, strict=True)) == pytest.approx(
        {"a": 40 + 25, "b": 10 + 10, "c": 10 + 25, "d": 40}
    )


def test_time_decay_halves_per_half_life():
    # touches 2 days, 1 day and 0 days before the conversion, half-life 1 day: weights 1/4, 1/2, 1
    p = Paths.from_lists([["a", "b", "c"]], ages=[[2 * D, D, 0]])
    total = 0.25 + 0.5 + 1
    assert credit_of(p, "time_decay", half_life_seconds=D) == {
        "a": 0.25 / total,
        "b": 0.5 / total,
        "c": 1 / total,
    }
    # Far-away touches do not underflow: only relative ages matter.
    far = Paths.from_lists([["a", "b"]], ages=[[10_000 * D + D, 10_000 * D]])
    assert credit_of(far, "time_decay", half_life_seconds=D) == {"a": 1 / 3, "b": 2 / 3}


# ---- Markov, exact --------------------------------------------------------------------------------


def test_markov_three_channel_example():
    """start→c1 2/3, start→c2 1/3; c1→c2 1/2, c1→null 1/2; c2→c3 1; c3→conv 1/2, c3→null 1/2.
    P(conv) = 2/3·1/2·1/2 + 1/3·1/2 = 1/3. Without c1: 1/3·1/2 = 1/6 (effect 1/2); without c2 or
    c3: 0 (effect 1). Shares 0.5/2.5, 1/2.5, 1/2.5."""
    p = Paths.from_lists(
        [["c1", "c2", "c3"], ["c1"], ["c2", "c3"]],
        conversions=[1, 0, 0],
        values=[90, 0, 0],
        nulls=[0, 1, 1],
    )
    matrix = transition_matrix(transition_counts(p))
    assert conversion_probability(matrix) == pytest.approx(1 / 3)
    base, effects = removal_effects(p)
    assert base == pytest.approx(1 / 3)
    assert dict(zip(p.names, effects, strict=True)) == pytest.approx({"c1": 0.5, "c2": 1, "c3": 1})
    conv, value, _, _ = markov_credit(p)
    assert dict(zip(p.names, conv, strict=True)) == pytest.approx({"c1": 0.2, "c2": 0.4, "c3": 0.4})
    assert dict(zip(p.names, value, strict=True)) == pytest.approx({"c1": 18, "c2": 36, "c3": 36})


def test_markov_with_a_loop():
    """a>b>a converts, b does not. a→b 1/2, a→conv 1/2, b→a 1/2, b→null 1/2, start→a/b 1/2.
    x_a = x_b/2 + 1/2, x_b = x_a/2 → x_a = 2/3, x_b = 1/3, P = 1/2. Without a: 0 (effect 1);
    without b: x_a = 1/2, P = 1/4 (effect 1/2). Shares 2/3 and 1/3."""
    p = Paths.from_lists([["a", "b", "a"], ["b"]], conversions=[1, 0], nulls=[0, 1])
    base, effects = removal_effects(p)
    assert base == pytest.approx(0.5)
    assert dict(zip(p.names, effects, strict=True)) == pytest.approx({"a": 1, "b": 0.5})
    conv, _, _, _ = markov_credit(p)
    assert dict(zip(p.names, conv, strict=True)) == pytest.approx({"a": 2 / 3, "b": 1 / 3})


def test_markov_self_loops_do_not_change_absorption():
    plain = Paths.from_lists([["a", "b"], ["a"]], conversions=[3, 1], nulls=[1, 2])
    looped = Paths.from_lists([["a", "a", "b", "b"], ["a", "a"]], conversions=[3, 1], nulls=[1, 2])
    assert removal_effects(plain)[0] == pytest.approx(removal_effects(looped)[0])
    np.testing.assert_allclose(removal_effects(plain)[1], removal_effects(looped)[1])


def _absorb_by_iteration(matrix: np.ndarray, removed: int | None) -> float:
    """Independent reference: push probability mass through the chain until it is absorbed."""
    m = matrix.copy()
    size = m.shape[0]
    null = size - 1
    if removed is not None:
        s = removed + 1
        m[s, :] = 0
        m[s, null] = 1  # reaching a removed channel ends the journey
    for s in (size - 2, size - 1):
        m[s, :] = 0
        m[s, s] = 1
    mass = np.zeros(size)
    mass[0] = 1
    for _ in range(20_000):
        nxt = mass @ m
        if np.abs(nxt - mass).max() < 1e-15:
            break
        mass = nxt
    return float(mass[size - 2])


path_lists = st.lists(
    st.tuples(
        st.lists(st.sampled_from("abcde"), min_size=1, max_size=6),
        st.integers(0, 3),
        st.integers(0, 3),
    ),
    min_size=1,
    max_size=12,
).filter(lambda rows: sum(c for _, c, _ in rows) > 0)


@settings(max_examples=60, deadline=None)
@given(path_lists)
def test_markov_exact_solve_equals_iterated_chain(rows):
    p = Paths.from_lists(
        [r[0] for r in rows], conversions=[r[1] for r in rows], nulls=[r[2] for r in rows]
    )
    matrix = transition_matrix(transition_counts(p))
    for removed in [None, *range(len(p.names))]:
        assert conversion_probability(matrix, removed) == pytest.approx(
            _absorb_by_iteration(matrix, removed), abs=1e-9
        )


def _brute_heuristic(rows, model):
    """Straight from the definitions, one path at a time."""
    out: dict[str, float] = defaultdict(float)
    for path, conv, _ in rows:
        n = len(path)
        for i, ch in enumerate(path):
            if model == "first_touch":
                w = 1.0 if i == 0 else 0.0
            elif model == "last_touch":
                w = 1.0 if i == n - 1 else 0.0
            elif model == "linear":
                w = 1 / n
            else:  # position
                if n == 1:
                    w = 1.0
                elif n == 2:
                    w = 0.5
                else:
                    w = 0.4 if i in (0, n - 1) else 0.2 / (n - 2)
            out[ch] += w * conv
    return out


@settings(max_examples=60, deadline=None)
@given(path_lists)
def test_heuristics_equal_brute_force(rows):
    p = Paths.from_lists(
        [r[0] for r in rows], conversions=[r[1] for r in rows], nulls=[r[2] for r in rows]
    )
    for model in ("first_touch", "last_touch", "linear", "position"):
        conv, _ = heuristic_credit(p, model)
        ref = _brute_heuristic(rows, model)
        assert dict(zip(p.names, conv, strict=True)) == pytest.approx(
            {n: ref.get(n, 0.0) for n in p.names}
        )


# ---- ChannelAttribution's own results on the data it ships -----------------------------------------


def _ca_data() -> tuple[object, pd.DataFrame]:
    ca = pytest.importorskip("ChannelAttribution")
    import cypack  # the ChannelAttribution wheel ships its example data in this folder

    path = Path(cypack.__file__).parent / "data" / "Data.csv"
    return ca, pd.read_csv(path, sep=";")


@pytest.fixture(scope="module")
def ca_results():
    ca, data = _ca_data()
    with contextlib.redirect_stdout(io.StringIO()):
        heuristic = ca.heuristic_models(  # type: ignore[attr-defined]
            data, "path", "total_conversions", var_value="total_conversion_value"
        )
        markov = ca.markov_model(  # type: ignore[attr-defined]
            data,
            "path",
            "total_conversions",
            var_value="total_conversion_value",
            var_null="total_null",
            order=1,
            verbose=0,
        )
    paths = Paths.from_lists(
        [s.split(" > ") for s in data["path"]],
        data["total_conversions"],
        data["total_conversion_value"],
        data["total_null"],
    )
    return paths, heuristic.set_index("channel_name"), markov.set_index("channel_name")


@pytest.mark.parametrize(
    "model,column",
    [("first_touch", "first_touch"), ("last_touch", "last_touch"), ("linear", "linear_touch")],
)
def test_heuristics_match_channelattribution(ca_results, model, column):
    paths, heuristic, _ = ca_results
    conv, value = heuristic_credit(paths, model)
    ours = pd.DataFrame({"conv": conv, "value": value}, index=paths.names).loc[heuristic.index]
    np.testing.assert_allclose(ours["conv"], heuristic[f"{column}_conversions"], rtol=1e-9)
    np.testing.assert_allclose(ours["value"], heuristic[f"{column}_value"], rtol=1e-9)


def test_markov_close_to_channelattribution_simulation(ca_results):
    """ChannelAttribution estimates removal effects by simulating the chain; our exact solution
    must agree within its sampling noise on the channels with many conversions."""
    paths, _, markov = ca_results
    conv, _, _, _ = markov_credit(paths)
    ours = pd.Series(conv, index=paths.names).loc[markov.index]
    big = markov["total_conversions"] > 1000
    np.testing.assert_allclose(ours[big], markov["total_conversions"][big], rtol=0.04)
    assert ours.sum() == pytest.approx(markov["total_conversions"].sum())


# ---- from the store -----------------------------------------------------------------------------------


def touch(t, channel, campaign=None, session=None):
    props = {"channel": channel}
    if campaign:
        props["campaign"] = campaign
    if session:
        props["session_id"] = session
    return ("page_view", t, props)


def order(t, revenue):
    return ("order_completed", t, {"revenue": revenue})


SHOP = {
    # search ad click and its landing page in one session count once; then an e-mail
    "ann": [
        ("ad_click", 0, {"channel": "search", "campaign": "brand", "session_id": "s1"}),
        touch(10, "search", "brand", "s1"),
        touch(D, "email", "news"),
        order(2 * D, 100),
        touch(3 * D, "social"),  # after her only order: a non-converting journey
    ],
    # the social touch is 40 days before the order: outside a 30-day lookback
    "bob": [touch(0, "social"), touch(40 * D, "search", "generic"), order(41 * D, 50)],
    # two orders: the second one's path starts after the first order
    "cat": [
        touch(0, "email"),
        order(H, 10),
        touch(2 * H, "social"),
        order(3 * H, 30),
    ],
    "dan": [order(5 * D, 70)],  # no touch: unattributed
    "eve": [touch(0, "search")],  # never converts
}


@pytest.fixture
def shop():
    return make_store(SHOP)


def test_store_paths_and_models(shop):
    res = run_attribution(shop, model="first_touch")
    got = {r.channel: (r.conversions, r.revenue) for r in res.channels}
    # ann→search (100); bob→search (50, social is outside the lookback); cat→email (10), social (30)
    assert got == {"search": (2, 150), "email": (1, 10), "social": (1, 30)}
    assert res.conversions == 5 and res.unattributed_conversions == 1
    assert res.unattributed_revenue == 70 and res.revenue == 260
    assert sum(r.share for r in res.channels) == pytest.approx(1)

    res = run_attribution(shop, model="linear")
    got = {r.channel: (r.conversions, r.revenue) for r in res.channels}
    assert got == {
        "search": (pytest.approx(1.5), pytest.approx(100)),
        "email": (pytest.approx(1.5), pytest.approx(60)),
        "social": (pytest.approx(1), pytest.approx(30)),
    }

    res = run_attribution(shop, model="last_touch", lookback="45d")
    got = {r.channel: r.conversions for r in res.channels}
    assert got == {"email": 2, "search": 1, "social": 1}


def test_store_by_campaign_and_date_range(shop):
    res = run_attribution(
        shop, model="first_touch", by="campaign", rng=date_range(None, "2025-01-05")
    )
    got = {(r.channel, r.campaign): r.conversions for r in res.channels}
    # bob's order (day 41) is outside the range; a campaign on a path with no credit shows as 0
    assert got == {
        ("search", "brand"): 1,
        ("email", "(none)"): 1,
        ("social", "(none)"): 1,
        ("email", "news"): 0,
    }
    assert res.to_dict()["channels"][0]["campaign"] is not None


def test_store_markov_uses_non_converting_journeys(shop):
    res = run_attribution(shop, model="markov")
    assert res.markov is not None
    assert sum(r.conversions for r in res.channels) == pytest.approx(4)
    # Paths: [search,email]→conv, [social]→null (ann after her order), [search]→conv (bob),
    # [email]→conv, [social]→conv (cat), [search]→null (eve).
    p = Paths.from_lists(
        [["search", "email"], ["social"], ["search"], ["email"], ["social"], ["search"]],
        conversions=[1, 0, 1, 1, 1, 0],
        nulls=[0, 1, 0, 0, 0, 1],
    )
    base, effects = removal_effects(p)
    assert res.markov["conversion_probability"] == pytest.approx(base)
    assert res.markov["removal_effects"] == pytest.approx(dict(zip(p.names, effects, strict=True)))


def test_json_document_shape(shop):
    doc = run_attribution(shop, model="position").to_dict()
    assert set(doc["channels"][0]) == {"channel", "conversions", "revenue", "share"}
    assert doc["model"] == "position" and doc["lookback_seconds"] == 30 * D


def test_unknown_model_is_an_input_error(shop):
    from loudou.errors import LoudouError

    with pytest.raises(LoudouError, match="model"):
        run_attribution(shop, model="shapley")


# ---- paths from the store against a slow reference ---------------------------------------------------

event_strategy = st.tuples(
    st.integers(0, 40),  # time in hours
    st.sampled_from(["touch", "touch", "order", "other"]),
    st.sampled_from(["search", "email", "social"]),
    st.sampled_from([None, "s1", "s2"]),
    st.integers(1, 5),  # revenue
)


def _reference_paths(journeys, lookback_h, since_h=None):
    """Conversion paths straight from the definitions, customer by customer."""
    out = []
    for cid, evs in journeys.items():
        # the store's order: by time, then event_id (string order of f"{cid}#{i}")
        order = sorted(range(len(evs)), key=lambda i: (evs[i][1], f"{cid}#{i}"))
        touches, prev = [], None
        rows = [evs[i] for i in order]
        for ev in rows:
            name, t, props = ev
            if props.get("channel") is not None and name != "order_completed":
                last = touches[-1] if touches else None
                same = (
                    last is not None
                    and props.get("session_id") is not None
                    and last[2] == props.get("session_id")
                    and last[1] == props["channel"]
                )
                if not same:
                    touches.append((t, props["channel"], props.get("session_id")))
            if name == "order_completed":
                if since_h is None or t >= since_h * 3600:
                    path = [
                        ch
                        for (tt, ch, _) in touches
                        if tt < t and tt >= t - lookback_h * 3600 and (prev is None or tt > prev)
                    ]
                    out.append((path, props["revenue"]))
                prev = t
    return out


@settings(max_examples=25, deadline=None)
@given(st.dictionaries(st.sampled_from("abcd"), st.lists(event_strategy, max_size=8), min_size=1))
def test_store_paths_equal_reference(data):
    journeys = {}
    for cid, evs in data.items():
        rows = []
        for hour, kind, channel, session, revenue in evs:
            if kind == "touch":
                props = {"channel": channel}
                if session:
                    props["session_id"] = session
                rows.append(("page_view", hour * 3600, props))
            elif kind == "order":
                rows.append(("order_completed", hour * 3600, {"revenue": revenue}))
            else:
                rows.append(("signup", hour * 3600, {}))
        journeys[cid] = rows
    store = make_store(journeys)
    for lookback_h, since_h in ((10, None), (100, 5)):
        ref = _reference_paths(journeys, lookback_h, since_h)
        rng = date_range(None, None) if since_h is None else date_range("2025-01-01T05:00:00", None)
        for model in ("first_touch", "last_touch", "linear"):
            res = run_attribution(store, model=model, lookback=f"{lookback_h}h", rng=rng)
            expected: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
            for path, revenue in ref:
                for i, ch in enumerate(path):
                    w = {
                        "first_touch": float(i == 0),
                        "last_touch": float(i == len(path) - 1),
                        "linear": 1 / len(path),
                    }[model]
                    expected[ch][0] += w
                    expected[ch][1] += w * revenue
            got = {r.channel: (r.conversions, r.revenue) for r in res.channels}
            assert set(got) == set(expected)
            for ch, (conv, revenue) in expected.items():
                assert got[ch] == pytest.approx((conv, revenue)), (model, ch)
            assert res.conversions == len(ref)
            assert res.unattributed_conversions == sum(1 for p, _ in ref if not p)


def test_store_attribution_within_segments():
    store = make_store(
        SHOP, traits={"ann": {"tier": "x"}, "bob": {"tier": "x"}, "cat": {"tier": "y"}}
    )
    res = run_attribution(store, model="first_touch", segment="tier")
    segs = {s["segment"]: s for s in res.segments}
    assert {r.channel: r.conversions for r in segs["x"]["channels"]} == {"search": 2, "email": 0}
    assert {r.channel: r.conversions for r in segs["y"]["channels"]} == {"email": 1, "social": 1}
    assert segs["(none)"]["unattributed_conversions"] == 1  # dan has no trait and no touch
    doc = res.to_dict()
    assert doc["segment_by"] == "tier"
    assert [s["segment"] for s in doc["segments"]] == ["(none)", "x", "y"]
    assert doc["segments"][1]["channels"][0] == {
        "channel": "search",
        "conversions": 2,
        "revenue": 150,
        "share": 1,
    }
