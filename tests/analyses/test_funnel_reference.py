"""Property-based checks: the engine against the slow reference implementations on random data."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from journeys import counts, counts_from_levels, levels_by_customer, make_store, spec_of
from reference import attempt_levels
from reference import level as ref_level

NAMES = ["a", "b", "c", "d", "x"]
# step 2 and 3 overlap on "c", so one event can match two steps, as in ClickHouse
STEPS = ["a", "b|c", "c", "d where v >= 1"]
STEP_NAMES = [{"a"}, {"b", "c"}, {"c"}, {"d"}]

event_st = st.tuples(
    st.sampled_from(NAMES),
    st.integers(min_value=0, max_value=40),  # many ties on purpose
    st.integers(min_value=0, max_value=2),  # property v
    st.sampled_from(["s1", "s2"]),  # session
    st.sampled_from(["p", "q"]),  # held property
)
journeys_st = st.dictionaries(
    st.sampled_from([f"c{i}" for i in range(12)]),
    st.lists(event_st, min_size=1, max_size=14),
    min_size=1,
)
# Building a store costs far more than a funnel on it, so each example checks every mode (and
# step count) on one store: 60 stores give 240-960 checks per property.
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MODES = ["ordered", "strict_order", "strict_increase", "any_order"]


def matches(name: str, v: int, n_steps: int) -> frozenset[int]:
    return frozenset(k for k in range(n_steps) if name in STEP_NAMES[k] and (k != 3 or v >= 1))


def to_journeys(data: dict[str, list[tuple[Any, ...]]]) -> dict[str, list[tuple[Any, ...]]]:
    return {
        cid: [(e, t * 60, {"v": v, "session_id": s, "prod": h}) for e, t, v, s, h in evs]
        for cid, evs in data.items()
    }


def reference_levels(data, n_steps, window, mode, key=None):
    """Customer -> level; with `key`, the best over partitions of the customer's events."""
    out = {}
    for cid, evs in data.items():
        parts = defaultdict(list)
        for e, t, v, s, h in evs:
            parts[key((e, t, v, s, h)) if key else None].append(
                (t * 60 * 1_000_000, matches(e, v, n_steps))
            )
        out[cid] = max(ref_level(p, n_steps, window * 1_000_000, mode) for p in parts.values())
    return {c: lv for c, lv in out.items() if lv > 0}


@SETTINGS
@given(data=journeys_st, window_min=st.integers(min_value=1, max_value=30))
def test_levels_match_reference(data, window_min):
    store = make_store(to_journeys(data))
    for mode in MODES:
        for n_steps in range(1, 5):
            spec = spec_of(STEPS[:n_steps], window=window_min * 60, mode=mode)
            expected = reference_levels(data, n_steps, window_min * 60, mode)
            assert levels_by_customer(store, spec) == expected, (mode, n_steps)
            assert counts(store, spec) == counts_from_levels(list(expected.values()), n_steps)


@SETTINGS
@given(data=journeys_st, window_min=st.integers(min_value=1, max_value=30))
def test_hold_constant_matches_reference(data, window_min):
    store = make_store(to_journeys(data))
    for mode in MODES:
        spec = spec_of(STEPS, window=window_min * 60, mode=mode, hold_constant=["prod"])
        expected = reference_levels(data, 4, window_min * 60, mode, key=lambda ev: ev[4])
        assert levels_by_customer(store, spec) == expected, mode


@SETTINGS
@given(data=journeys_st, window_min=st.integers(min_value=1, max_value=30))
def test_sessions_match_reference(data, window_min):
    store = make_store(to_journeys(data))
    for mode in MODES:
        spec = spec_of(STEPS, window=window_min * 60, mode=mode, count="sessions")
        sessions = {}
        for cid, evs in data.items():
            for sid in {ev[3] for ev in evs}:
                sub = {cid: [ev for ev in evs if ev[3] == sid]}
                sessions[(cid, sid)] = reference_levels(sub, 4, window_min * 60, mode).get(cid, 0)
        assert counts(store, spec) == counts_from_levels(list(sessions.values()), 4), mode


@SETTINGS
@given(data=journeys_st, window_min=st.integers(min_value=1, max_value=30))
def test_exclusions_only_remove_customers_who_did_the_excluded_event(data, window_min):
    store = make_store(to_journeys(data))
    for mode in MODES:
        plain = spec_of(STEPS, window=window_min * 60, mode=mode)
        excl = spec_of(
            STEPS,
            window=window_min * 60,
            mode=mode,
            exclusions=[{"event": "x", "after_step": 1, "before_step": 3}],
        )
        before, after = levels_by_customer(store, plain), levels_by_customer(store, excl)
        for cid, lv in before.items():
            if not any(ev[0] == "x" for ev in data[cid]):
                assert after.get(cid) == lv, mode
            else:
                assert after.get(cid) in (None, lv), mode
        assert set(after) <= set(before)


@SETTINGS
@given(data=journeys_st, window_min=st.integers(min_value=1, max_value=30))
def test_totals_match_reference(data, window_min):
    store = make_store(to_journeys(data))
    for mode in MODES:
        for n_steps in range(1, 5):
            spec = spec_of(STEPS[:n_steps], window=window_min * 60, mode=mode, count="totals")
            expected = []
            for evs in data.values():
                events = [(t * 60 * 1_000_000, matches(e, v, n_steps)) for e, t, v, _, _ in evs]
                expected += attempt_levels(events, n_steps, window_min * 60 * 1_000_000, mode)
            assert counts(store, spec) == counts_from_levels(expected, n_steps), (mode, n_steps)
