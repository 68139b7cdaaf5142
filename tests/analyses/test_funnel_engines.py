"""The columnar-cache engine and the SQL engine give identical funnels for every mode and option,
also after appends land in the cache's delta segment and after it is compacted."""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import loudou

from journeys import events_table, spec_of

event_st = st.tuples(
    st.sampled_from(["a", "b", "c", "d", "x"]),
    st.integers(min_value=0, max_value=40),
    st.sampled_from([0, 1, 2, 2.5, "2", "z", None]),  # property v, sometimes missing
    st.sampled_from(["s1", "s2", None]),
    st.sampled_from(["p", "q", None]),
)
journeys_st = st.dictionaries(
    st.sampled_from([f"c{i}" for i in range(10)]),
    st.lists(event_st, min_size=1, max_size=12),
    min_size=1,
)
options_st = st.fixed_dictionaries(
    {
        "mode": st.sampled_from(["ordered", "strict_order", "strict_increase", "any_order"]),
        "count": st.sampled_from(["customers", "sessions", "totals"]),
        "window": st.integers(min_value=60, max_value=1800),
    },
    optional={
        "hold_constant": st.just(["prod"]),
        "breakdown": st.sampled_from(["v", "customer.tier", "tier", "event.prod"]),
        "exclusions": st.just([{"event": "x", "after_step": 1, "before_step": 2}]),
        "date_from": st.just("2025-01-01T00:05:00"),
        "date_to": st.just("2025-01-01T00:30:00"),
    },
)
STEP_SETS = [
    ["a", "b|c", "c", "d"],
    ["a where v >= 1", "b where v in (2, z)", "c where customer.tier = gold"],
    ["a|b where v is set", "c where v != 2", "d where customer.tier is not set"],
    ["b", "a where v contains Z", "d where v < 2.5"],
]


def to_journeys(data: dict[str, list[tuple[Any, ...]]]) -> dict[str, list[tuple[Any, ...]]]:
    out = {}
    for cid, evs in data.items():
        rows = []
        for e, t, v, s, h in evs:
            props = {
                k: val for k, val in (("v", v), ("session_id", s), ("prod", h)) if val is not None
            }
            rows.append((e, t * 60, props))
        out[cid] = rows
    return out


def traits_for(data: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {cid: {"tier": "gold"} for i, cid in enumerate(sorted(data)) if i % 2 == 0}


def same(store: Any, spec: Any) -> None:
    cached = loudou.run_funnel(store, spec, engine="cache").to_dict()
    sql = loudou.run_funnel(store, spec, engine="sql").to_dict()
    assert json.dumps(cached, sort_keys=True) == json.dumps(sql, sort_keys=True)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=journeys_st,
    steps=st.sampled_from(STEP_SETS),
    options=options_st,
    n_steps=st.integers(1, 4),
    warm=st.booleans(),
)
def test_engines_agree(data, steps, options, n_steps, warm):
    store = loudou.connect(":memory:")
    store.insert_events(events_table(to_journeys(data)))
    traits = traits_for(data)
    if traits:
        store.upsert_customers(
            pa.table(
                {"customer_id": list(traits), "traits": [json.dumps(v) for v in traits.values()]}
            )
        )
    spec = (
        spec_of(steps[:n_steps], **options)
        if n_steps > 1 or not options.get("exclusions")
        else spec_of(steps[:1])
    )
    if warm:  # an earlier funnel cached other properties first: columns sit at other rows
        same(store, spec_of(["b", "a"], breakdown="event.prod", hold_constant=["session_id"]))
    same(store, spec)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    first=journeys_st,
    more=journeys_st,
    options=options_st,
    steps=st.sampled_from(STEP_SETS),
    compact=st.booleans(),
)
def test_engines_agree_after_appends(first, more, options, steps, compact):
    store = loudou.connect(":memory:")
    store.insert_events(events_table(to_journeys(first)))
    spec = spec_of(steps, **options)
    same(store, spec)  # builds the cache
    cache = store.event_cache()
    cache.compact_fraction = 0.0 if compact else float("inf")
    later = {f"{cid}": [(e, t + 20, v, s, h) for e, t, v, s, h in evs] for cid, evs in more.items()}
    batch = events_table(to_journeys(later))
    batch = batch.set_column(0, "event_id", pa.array([f"late-{i}" for i in range(batch.num_rows)]))
    store.insert_events(batch)  # lands in the delta (or triggers a compaction)
    same(store, spec)
    assert (cache.delta.size == 0) == compact or batch.num_rows == 0
    spec2 = spec_of(steps, **{**options, "breakdown": "prod"})  # a property cached after the append
    same(store, spec2)


def test_auto_engine_builds_the_cache_from_the_second_funnel_on_large_tables(monkeypatch):
    """A one-off funnel on a large table runs in SQL (sorting every event costs more); the next
    one builds the cache, and from then on every funnel uses it. Both answer the same."""
    import loudou.backends.duckdb_cache as dc

    data = {"c1": [("a", 0, 1, "s1", "p"), ("b", 3, 2, "s1", "p")], "c2": [("a", 5, 1, None, None)]}
    store = loudou.connect(":memory:")
    store.insert_events(events_table(to_journeys(data)))
    spec = spec_of(["a", "b"])
    monkeypatch.setattr(dc, "EAGER_CACHE_ROWS", 2)  # this table (3 events) counts as large
    first = loudou.run_funnel(store, spec).to_dict()
    assert store._cache is None
    second = loudou.run_funnel(store, spec).to_dict()
    assert store._cache is not None
    assert first == second and [s["count"] for s in first["steps"]] == [2, 1]
    small = loudou.connect(":memory:")
    small.insert_events(events_table(to_journeys(data)))
    monkeypatch.setattr(dc, "EAGER_CACHE_ROWS", 3)
    loudou.run_funnel(small, spec)
    assert small._cache is not None  # small tables: the cache from the first funnel on


def test_cache_engine_on_a_store_without_a_cache_is_an_error():
    """engine='cache' must not quietly fall back to SQL on a store that has no cache."""
    from journeys import make_store, spec_of

    inner = make_store({"a": [("view", 0), ("buy", 60)], "b": [("view", 0)]})

    class NoCache:  # only what a plain Store needs for a funnel
        def funnel_events(self, spec: Any) -> Any:
            return inner.funnel_events(spec)

    spec = spec_of(["view", "buy"])
    with pytest.raises(ValueError, match="has no event cache"):
        loudou.run_funnel(NoCache(), spec, engine="cache")  # type: ignore[arg-type]
    assert [s.count for s in loudou.run_funnel(NoCache(), spec, engine="sql").steps] == [2, 1]  # type: ignore[arg-type]
