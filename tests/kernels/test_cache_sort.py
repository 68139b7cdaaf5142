"""The funnel cache's layout: the numba counting sort and merge against numpy's lexsort on random
rows, and a cache kept up to date through appends (and properties cached before and after them)
against one built afresh from the same database."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import loudou
from loudou.backends.cache import EventCache, empty_segment
from loudou.kernels.cache_sort import (
    RUN,
    Fill,
    HashCodes,
    find_sorted,
    layout,
    merge,
    string_buffers,
)

from journeys import events_table


@st.composite
def rows_st(draw: Any) -> tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Rows in any order: customer codes, times with many ties, distinct row ids, 2 value columns.
    Some customers get more than RUN rows (runs merged), some arrive already in order."""
    n = draw(st.integers(0, 400))
    n_cust = draw(st.integers(1, 15))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    cust = rng.integers(0, n_cust, n).astype(np.int32)
    ts = rng.integers(0, draw(st.sampled_from([2, 40, 10**12])), n).astype(np.int64)
    rows = rng.permutation(n).astype(np.int64) + draw(st.integers(0, 10**6))
    if draw(st.booleans()):  # in (time, row id) order already, as appended events often are
        order = np.lexsort((rows, ts))
        cust, ts, rows = cust[order], ts[order], rows[order]
    vals = rng.integers(-5, 5, (2, n)).astype(np.int32)
    return n_cust, cust, ts, rows, vals


def expected(
    n_cust: int, cust: np.ndarray, ts: np.ndarray, rows: np.ndarray, vals: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    order = np.lexsort((rows, ts, cust))
    off = np.concatenate([[0], np.cumsum(np.bincount(cust, minlength=n_cust))])
    return off, ts[order], vals[:, order]


def assert_same(got: tuple[np.ndarray, ...], want: tuple[np.ndarray, ...]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)


@settings(max_examples=200, deadline=None)
@given(data=rows_st(), row_dtype=st.sampled_from([np.int32, np.int64]))
def test_layout_sorts_like_lexsort(data, row_dtype):
    n_cust, cust, ts, rows, vals = data
    rows = rows.astype(row_dtype)
    assert_same(layout(n_cust, cust, rows, ts, vals), expected(n_cust, cust, ts, rows, vals))


def test_layout_of_large_customers():
    """Customers with far more than RUN rows: several levels of merging."""
    rng = np.random.default_rng(7)
    n = 50 * RUN
    cust = rng.integers(0, 3, n).astype(np.int32)
    ts = rng.integers(0, 100, n).astype(np.int64)
    rows = rng.permutation(n).astype(np.int64)
    vals = rng.integers(0, 9, (1, n)).astype(np.int32)
    assert_same(layout(3, cust, rows, ts, vals), expected(3, cust, ts, rows, vals))


@settings(max_examples=100, deadline=None)
@given(data=rows_st(), cuts=st.lists(st.integers(0, 400), max_size=5))
def test_fill_batch_by_batch_matches_one_layout(data, cuts):
    n_cust, cust, ts, rows, vals = data
    off, want_ts, want_vals = expected(n_cust, cust, ts, rows, vals)
    fill = Fill(off, 2)
    bounds = sorted({0, cust.size, *(c for c in cuts if c <= cust.size)})
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        fill.add(cust[lo:hi], rows[lo:hi], ts[lo:hi], vals[:, lo:hi])
    assert_same(fill.finish(), (want_ts, want_vals))


def test_fill_refuses_more_or_fewer_rows_than_counted():
    off = np.array([0, 1, 3], np.int64)  # customer 0: one row, customer 1: two (one group)

    def fill_with(custs: list[int]) -> Fill:
        fill = Fill(off, 1)
        n = len(custs)
        fill.add(np.array(custs, np.int32), np.arange(n), np.arange(n), np.zeros((1, n), np.int32))
        return fill

    with pytest.raises(RuntimeError, match="more events"):
        fill_with([0, 0, 1]).finish()  # the group's count is right, a customer's is not
    with pytest.raises(RuntimeError, match="more events"):
        fill_with([0, 1, 1, 1])  # the group overflows
    with pytest.raises(RuntimeError, match="fewer events"):
        fill_with([1, 0]).finish()


@settings(max_examples=100, deadline=None)
@given(data=rows_st(), split=st.floats(0, 1))
def test_merge_of_older_and_newer_rows_sorts_like_lexsort(data, split):
    """Rows with ids below a cut and rows from it on, each laid out, merge into one layout."""
    n_cust, cust, ts, rows, vals = data
    cut = np.quantile(rows, split) if rows.size else 0
    parts = []
    for sel in (rows < cut, rows >= cut):
        off, t, v = layout(n_cust, cust[sel], rows[sel], ts[sel], vals[:, sel])
        parts.append((off, t, v[0], np.ascontiguousarray(v[1:])))
    off, t, code, props = merge(*parts[0], *parts[1])
    want_off, want_ts, want_vals = expected(n_cust, cust, ts, rows, vals)
    assert_same((off, t, code, props), (want_off, want_ts, want_vals[0], want_vals[1:]))


@settings(max_examples=100, deadline=None)
@given(
    known=st.sets(st.text(max_size=4)),  # short: many shared prefixes, the empty id
    asked=st.lists(st.text(max_size=4), max_size=20),
)
def test_customer_codes_find_sorted_ids_then_added_ones(known, asked):
    ids = sorted(known, key=lambda t: t.encode())  # bytewise, as DuckDB and Arrow sort
    arr = pa.array(ids, pa.string())
    got = find_sorted(*string_buffers(arr), len(ids), *string_buffers(pa.array(asked, pa.string())))
    assert got.tolist() == [ids.index(a) if a in known else -1 for a in asked]
    ascending = sorted(asked, key=lambda t: t.encode())  # the galloping case
    found = find_sorted(*string_buffers(arr), len(ids), *string_buffers(pa.array(ascending)))
    assert found.tolist() == [ids.index(a) if a in known else -1 for a in ascending]

    seg = empty_segment(len(ids), 0)
    cache = EventCache(arr, [], seg, seg, 0, 0)
    assert cache.customer_codes(pa.array(asked, pa.string()), add=False).tolist() == got.tolist()
    codes = cache.customer_codes(pa.array(asked, pa.string()))
    everyone = cache.customers.to_pylist()
    assert [everyone[c] for c in codes] == asked  # unseen ids were added, once each
    assert len(everyone) == len(known | set(asked))
    again = cache.customer_codes(pa.array(asked[::-1], pa.string()), add=False)
    assert again.tolist() == codes[::-1].tolist()


def test_find_sorted_among_many_ids():
    """Thousands of ids, queries ascending (long gallops) and not."""
    rng = np.random.default_rng(3)
    ids = sorted({f"c{i}" for i in rng.integers(0, 10**6, 5000)})
    asked = [f"c{i}" for i in rng.integers(0, 10**6, 800)]
    where = {cid: i for i, cid in enumerate(ids)}
    for queries in (asked, sorted(asked)):
        got = find_sorted(
            *string_buffers(pa.array(ids)), len(ids), *string_buffers(pa.array(queries))
        )
        assert got.tolist() == [where.get(q, -1) for q in queries]


@settings(max_examples=100, deadline=None)
@given(keys=st.sets(st.integers(0, 2**64 - 1), max_size=300), seed=st.integers(0, 2**32 - 1))
def test_hash_codes_find_each_key_and_refuse_others(keys, seed):
    hashes = np.array(sorted(keys), np.uint64)
    rng = np.random.default_rng(seed)
    table = HashCodes.build(rng.permutation(hashes))
    assert table is not None
    probe = rng.choice(table.hashes, 50) if keys else np.zeros(0, np.uint64)
    assert (table.hashes[table.codes(probe)] == probe).all()
    if len(keys) < 2**64 - 1:
        absent = next(k for k in range(2**64) if k not in keys)
        with pytest.raises(RuntimeError, match="missing"):
            table.codes(np.array([absent], np.uint64))
    if keys:
        assert HashCodes.build(np.append(hashes, hashes[0])) is None  # a collision


# -- the cache of a store, kept up to date vs built afresh -------------------------------------


def by_customer(cache: EventCache) -> dict[str, list[tuple[Any, ...]]]:
    """Each customer's events in funnel order (base and delta merged, base first on equal
    times), as (time, event name, property values by name) with codes decoded."""
    out = {}
    props = sorted(cache.prop_names)
    for c, cid in enumerate(cache.customers.to_pylist()):
        evs = []
        for seg_no, seg in enumerate((cache.base, cache.delta)):
            for i in range(seg.off[c], seg.off[c + 1]):
                values = []
                for name in props:
                    p = cache.prop_names.index(name)
                    code = int(seg.props[p, i])
                    values.append(None if code == 0 else cache.prop_values[p][code - 1])
                evs.append((int(seg.ts[i]), seg_no, cache.events[seg.code[i]], *values))
        evs.sort(key=lambda e: (e[0], e[1]))  # stable: each segment's own order within
        out[cid] = [(e[0], *e[2:]) for e in evs]
    return out


event_st = st.tuples(
    st.sampled_from(["a", "b", "c"]),
    st.integers(0, 6),  # minutes: many equal times
    st.sampled_from(["x", "y", None]),  # property p
    st.sampled_from(["s1", "s2", None]),  # session_id
)
journeys_st = st.dictionaries(
    st.sampled_from([f"k{i}" for i in range(8)]),
    st.lists(event_st, min_size=1, max_size=10),
    min_size=1,
)


def table_of(journeys: dict[str, list[tuple[Any, ...]]], tag: str) -> pa.Table:
    data = {
        cid: [(e, t * 60, {"p": p, "session_id": s}) for e, t, p, s in evs]
        for cid, evs in journeys.items()
    }
    table = events_table(data)
    ids = [f"{tag}-{i}" for i in range(table.num_rows)]
    return table.set_column(0, "event_id", pa.array(ids))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    first=journeys_st,
    appends=st.lists(journeys_st, min_size=1, max_size=3),
    compact=st.sampled_from([0.0, 0.5, float("inf")]),
    collide=st.booleans(),
)
def test_cache_after_appends_equals_a_fresh_build(
    tmp_path_factory, first, appends, compact, collide
):
    """Also with every dictionary taken to have colliding hashes (64-bit: never seen in
    practice), which makes the cache join on the values; the fresh build uses the hashes."""
    with pytest.MonkeyPatch.context() as mp:
        if collide:
            mp.setattr(HashCodes, "build", classmethod(lambda cls, hashes: None))
        path = tmp_path_factory.mktemp("cache") / "x.duckdb"
        store = loudou.connect(path)
        store.insert_events(table_of(first, "first"))
        cache = store.event_cache(["p"])  # a property cached before the appends
        cache.compact_fraction = compact
        for i, more in enumerate(appends):
            store.insert_events(table_of(more, f"more{i}"))
            store.event_cache()
        cache = store.event_cache(["session_id"])  # and one after them
        assert cache.size == store.counts()["events"]
        kept = by_customer(cache)
        store.close()

    fresh = loudou.connect(path, read_only=True)  # built from hashes
    try:
        assert kept == by_customer(fresh.event_cache(["p", "session_id"]))
    finally:
        fresh.close()


def test_building_the_cache_leaves_duckdbs_memory_limit_as_it_was(tmp_path):
    """The build flushes DuckDB's memory by touching memory_limit: the setting must come back
    exactly (the default, or a limit someone set, which is then left alone)."""
    store = loudou.connect(tmp_path / "x.duckdb")
    store.insert_events(table_of({"k1": [("a", 1, "x", None), ("b", 2, None, "s1")]}, "e"))

    def limit() -> str:
        return str(store.con.sql("SELECT current_setting('memory_limit')").fetchall()[0][0])

    default = limit()
    store.event_cache(["p"])
    assert limit() == default
    store.con.execute("SET memory_limit = '3GB'")
    custom = limit()
    store._cache = None
    store.event_cache(["p"])
    assert limit() == custom != default


def test_an_import_folds_its_rows_into_a_built_cache(tmp_path):
    """With the cache built, each import write brings its rows into the cache itself (the next
    funnel does no refresh), equal to a fresh build; a write of nothing new leaves it alone."""
    store = loudou.connect(tmp_path / "x.duckdb")
    store.insert_events(
        table_of({"a": [("view", 0, "x", "s1")], "b": [("buy", 5, "y", "s2")]}, "f")
    )
    cache = store.event_cache(["p"])
    assert cache.rows == 2
    more = table_of({"a": [("buy", 3, "z", "s1")], "c": [("view", 1, "x", "s3")]}, "m")
    store.insert_events(more)
    assert store._cache is cache and cache.rows == 4 and cache.size == 4  # no funnel asked
    store.insert_events(more)  # all repeats
    assert cache.rows == 4
    kept = by_customer(cache)
    store.close()
    fresh = loudou.connect(tmp_path / "x.duckdb", read_only=True)
    try:
        assert kept == by_customer(fresh.event_cache(["p"]))
    finally:
        fresh.close()


_EMPTY_TRAITS = pa.table(
    {"customer_id": pa.array([], pa.string()), "traits": pa.array([], pa.string())}
)
customer_st = st.sampled_from([f"k{i}" for i in range(8)] + ["u1", "u2"])
step_st = st.one_of(
    st.tuples(st.just("append"), journeys_st),
    st.tuples(st.just("link"), st.lists(st.tuples(customer_st, customer_st), max_size=3)),
    st.tuples(st.just("funnel"), st.none()),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    first=journeys_st,
    steps=st.lists(step_st, min_size=1, max_size=6),
    compact=st.sampled_from([0.0, 0.5, float("inf")]),
    on_disk=st.booleans(),
)
def test_cache_after_identity_links_equals_a_fresh_build(
    tmp_path_factory, first, steps, compact, on_disk
):
    """Identity links re-key stored events: the cache re-reads the customers they touched
    (instead of being dropped) and must then hold exactly what a fresh build holds, through any
    mix of appends, links (chains, repeats, links to new or unknown ids) and compactions."""
    path = tmp_path_factory.mktemp("links") / "x.duckdb" if on_disk else ":memory:"
    store = loudou.connect(path)
    store.collect(table_of(first, "first"), _EMPTY_TRAITS, [])  # type: ignore[attr-defined]
    cache = store.event_cache(["p"])
    cache.compact_fraction = compact
    for i, (kind, arg) in enumerate(steps):
        if kind == "append":
            store.collect(table_of(arg, f"more{i}"), _EMPTY_TRAITS, [])  # type: ignore[attr-defined]
        elif kind == "link":
            store.collect(table_of({}, "none"), _EMPTY_TRAITS, arg)  # type: ignore[attr-defined]
        else:
            assert store.event_cache() is cache
    assert store.event_cache(["session_id"]) is cache  # never rebuilt
    assert cache.size == store.counts()["events"]
    kept = {k: v for k, v in by_customer(cache).items() if v}
    fresh_store = loudou.connect(":memory:")
    rows = store.query("SELECT * FROM events ORDER BY rowid")
    fresh_store.insert_events(rows)
    fresh = {k: v for k, v in by_customer(fresh_store.event_cache(["p", "session_id"])).items()}
    assert kept == fresh
