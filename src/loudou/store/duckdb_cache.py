"""DuckDBStore's columnar funnel cache: build it from the events table, keep it up to date as
events are appended (by row id watermark), and add properties and traits on demand."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import duckdb
import numpy as np
import pyarrow.compute as pc

from loudou.store.cache import EventCache, Segment, empty_segment, encode_values
from loudou.store.duckdb_sql import SqlBuilder


class CacheAbilities:
    """The event cache for DuckDBStore (see loudou.store.cache)."""

    con: duckdb.DuckDBPyConnection
    _cache: EventCache | None
    _cache_lock: threading.Lock
    _writes: int
    _traits_version: int

    def _count(self, table: str) -> int:
        raise NotImplementedError

    def event_cache(self, properties: Sequence[str] = (), traits: Sequence[str] = ()) -> EventCache:
        with self._cache_lock:
            if self._cache is None:
                self._cache = self._build_cache()
            cache = self._cache
            for name in properties:
                if name not in cache.prop_names:
                    self._cache_property(cache, name)
            self._refresh_cache(cache)
            if self._traits_version != self._writes:
                cache.traits.clear()
                self._traits_version = self._writes
            for name in traits:
                if name not in cache.traits:
                    cache.traits[name] = self._cache_trait(cache, name)
            return cache

    def _build_cache(self) -> EventCache:
        table = self.con.sql(
            "SELECT customer_id, epoch_us(ts) AS t, event, rowid AS r FROM events ORDER BY customer_id, t, r"
        ).to_arrow_table()
        cust = pc.dictionary_encode(table.column("customer_id")).combine_chunks()
        customers = cust.dictionary.to_pylist()
        idx = cust.indices.to_numpy(zero_copy_only=False)
        cache = EventCache(
            customers, [], empty_segment(len(customers), 0), empty_segment(len(customers), 0), 0
        )
        rowid = table.column("r").to_numpy().astype(np.int64)
        cache.base = Segment(
            off=np.searchsorted(idx, np.arange(len(customers) + 1)).astype(np.int64),
            ts=table.column("t").to_numpy().astype(np.int64),
            code=cache.event_codes(table.column("event")),
            rowid=rowid,
            props=np.zeros((0, len(rowid)), np.int32),
        )
        cache.watermark = int(rowid.max()) + 1 if len(rowid) else 0
        cache.rows = len(rowid)
        return cache

    def _refresh_cache(self, cache: EventCache) -> None:
        """Bring appended events (row ids from the watermark on) into the cache's delta.

        Events are never deleted, so an unchanged row count (cheap: table metadata) means
        there is nothing new to read."""
        rows = self._count("events")
        if rows == cache.rows:
            return
        b = SqlBuilder()
        exprs = [f"CAST({b.event_field(p)} AS VARCHAR)" for p in cache.prop_names]
        extra = "".join(f", {e} AS p{i}" for i, e in enumerate(exprs))
        wm = b.bind(cache.watermark)
        table = self.con.sql(
            f"SELECT customer_id, epoch_us(ts) AS t, event, rowid AS r{extra} FROM events e WHERE rowid >= {wm}",  # noqa: S608
            params=b.params,
        ).to_arrow_table()
        cache.rows = rows
        if table.num_rows == 0:
            return
        cust = cache.customer_codes(table.column("customer_id").to_pylist())
        props = np.zeros((len(cache.prop_names), table.num_rows), np.int32)
        for i in range(len(cache.prop_names)):
            props[i] = cache.extend_property(i, table.column(f"p{i}").combine_chunks())
        cache.append(
            cust,
            table.column("t").to_numpy().astype(np.int64),
            cache.event_codes(table.column("event").combine_chunks()),
            table.column("r").to_numpy().astype(np.int64),
            props,
        )

    def _cache_property(self, cache: EventCache, name: str) -> None:
        """Dictionary-encode one event property for every cached row, aligned by row id."""
        b = SqlBuilder()
        expr = f"CAST({b.event_field(name)} AS VARCHAR)"
        wm = b.bind(cache.watermark)
        table = self.con.sql(
            f"SELECT rowid AS r, {expr} AS v FROM events e WHERE rowid < {wm}",  # noqa: S608
            params=b.params,
        ).to_arrow_table()
        codes, values = encode_values(table.column("v").combine_chunks())
        rows = table.column("r").to_numpy().astype(np.int64)
        by_row = np.zeros(cache.watermark, np.int32)
        by_row[rows] = codes
        cache.add_property(name, by_row[cache.base.rowid], by_row[cache.delta.rowid], values)

    def _cache_trait(self, cache: EventCache, name: str) -> tuple[list[str], np.ndarray]:
        b = SqlBuilder()
        table = self.con.sql(
            f"SELECT customer_id, {b.trait_field(name)} AS v FROM customers c",  # noqa: S608
            params=b.params,
        ).to_arrow_table()
        codes, values = encode_values(table.column("v").combine_chunks())
        per_customer = np.zeros(len(cache.customers), np.int32)
        index = cache.customer_index
        for cid, code in zip(table.column("customer_id").to_pylist(), codes, strict=True):
            i = index.get(cid)
            if i is not None:
                per_customer[i] = code
        return values, per_customer
