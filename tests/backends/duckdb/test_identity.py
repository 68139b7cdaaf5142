"""Identity linking in the store (no server): first link wins, chains resolve, cycles are dropped,
re-keying moves events and traits, later events under an alias resolve at write time."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pyarrow as pa

import loudou
from loudou.backends.base import CUSTOMER_SCHEMA, EVENT_SCHEMA
from loudou.backends.duckdb_server import resolve_links


def test_resolve_links_rules() -> None:
    assert resolve_links([("a", "u")], {}) == {"a": "u"}
    assert resolve_links([("a", "u"), ("a", "v")], {}) == {"a": "u"}  # first link wins
    assert resolve_links([("a", "u")], {"a": "w"}) == {}  # already linked
    assert resolve_links([("a", "b")], {"b": "c"}) == {"a": "c"}  # targets resolve
    assert resolve_links([("a", "b"), ("b", "c")], {}) == {"a": "c", "b": "c"}  # chain in a batch
    assert resolve_links([("a", "b"), ("b", "a")], {}) == {"a": "b"}  # no cycles
    assert resolve_links([("a", "a")], {}) == {}


def _events(rows: list[tuple[str, str, str, int]]) -> pa.Table:
    cols: dict[str, list[object]] = {k: [None] * len(rows) for k in EVENT_SCHEMA.names}
    for i, (eid, cid, name, sec) in enumerate(rows):
        cols["event_id"][i], cols["customer_id"][i], cols["event"][i] = eid, cid, name
        cols["ts"][i] = datetime(2025, 1, 1) + timedelta(seconds=sec)
        cols["properties"][i] = "{}"
    return pa.table(cols, schema=EVENT_SCHEMA)


def _traits(rows: list[tuple[str, dict[str, object]]]) -> pa.Table:
    return pa.table(
        {"customer_id": [r[0] for r in rows], "traits": [json.dumps(r[1]) for r in rows]},
        schema=CUSTOMER_SCHEMA,
    )


def test_collect_links_and_rekeys() -> None:
    store = loudou.connect(":memory:")
    store.collect(
        _events([("1", "anon", "view", 0), ("1", "anon", "view", 0)]),
        _traits([("anon", {"city": "Paris", "plan": "free"})]),
        [],
    )  # type: ignore[attr-defined]
    store.collect(
        _events([("2", "u", "signup", 5)]), _traits([("u", {"plan": "pro"})]), [("anon", "u")]
    )  # type: ignore[attr-defined]
    store.collect(_events([("3", "anon", "buy", 9)]), _traits([]), [("anon", "someone-else")])  # type: ignore[attr-defined]
    rows = store.read_events(columns=["event_id", "customer_id"]).to_pylist()
    assert rows == [
        {"event_id": "1", "customer_id": "u"},
        {"event_id": "2", "customer_id": "u"},
        {"event_id": "3", "customer_id": "u"},
    ]
    customers = store.read_customers(["city", "plan"]).to_pylist()
    assert [(c["customer_id"], c["city"], c["plan"]) for c in customers] == [("u", "Paris", "pro")]
    assert customers[0]["first_seen"] == datetime(2025, 1, 1)
    assert (
        loudou.run_funnel(store, loudou.FunnelSpec.parse({"steps": ["view", "signup", "buy"]}))
        .steps[2]
        .count
        == 1
    )
    # alias of a customer to another: the map stays flat
    store.collect(_events([]), _traits([]), [("u", "v")])  # type: ignore[attr-defined]
    assert store.get_customer("v")["aliases"] == ["anon", "u"]  # type: ignore[attr-defined]
    assert store.resolve_id("anon") == "v"  # type: ignore[attr-defined]


def test_collect_keeps_the_same_stores_funnel_cache_right() -> None:
    store = loudou.connect(":memory:")
    spec = loudou.FunnelSpec.parse({"steps": ["view", "buy"]})
    store.collect(_events([("1", "anon", "view", 0)]), _traits([]), [])  # type: ignore[attr-defined]
    store.collect(_events([("2", "u", "buy", 5)]), _traits([]), [])  # type: ignore[attr-defined]
    assert loudou.run_funnel(store, spec).steps[1].count == 0  # two different customers (cached)
    cache = store._cache  # type: ignore[attr-defined]
    store.collect(_events([]), _traits([]), [("nobody", "u")])  # type: ignore[attr-defined]
    assert store._cache is cache  # type: ignore[attr-defined]
    store.collect(_events([]), _traits([]), [("anon", "u")])  # type: ignore[attr-defined]
    assert loudou.run_funnel(store, spec).steps[1].count == 1  # re-keyed: the cache saw it
    assert store._cache is cache  # type: ignore[attr-defined]  # patched, not rebuilt


def test_cached_traits_follow_customers_added_by_another_connection_or_a_link() -> None:
    """A reader's cached traits cover the customers it knew; customers appended through another
    connection, or brought in by a link, must not leave them short (it raised IndexError)."""
    writer = loudou.connect(":memory:")
    writer.collect(  # type: ignore[attr-defined]
        _events([("1", "a", "view", 0), ("2", "a", "buy", 5), ("3", "anon", "view", 1)]),
        _traits([("a", {"plan": "pro"}), ("anon", {"plan": "pro"})]),
        [],
    )
    reader = writer.reader()  # type: ignore[attr-defined]
    specs = [
        loudou.FunnelSpec.parse({"steps": ["view", "buy"], "breakdown": "customer.plan"}),
        loudou.FunnelSpec.parse({"steps": ["view where customer.plan = pro", "buy"]}),
    ]

    def same() -> None:
        for spec in specs:
            cached = loudou.run_funnel(reader, spec, engine="cache").to_dict()
            assert cached == loudou.run_funnel(reader, spec, engine="sql").to_dict()

    same()
    writer.insert_events(_events([("4", "zz", "view", 0), ("5", "zz", "buy", 9)]))
    same()
    writer.collect(_events([("6", "anon", "buy", 7)]), _traits([]), [("anon", "newguy")])  # type: ignore[attr-defined]
    same()
