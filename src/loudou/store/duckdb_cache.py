"""DuckDBStore's columnar funnel cache: build it from the events table, keep it up to date as
events are appended (by row id watermark), and add properties and traits on demand."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from contextlib import AbstractContextManager

import duckdb
import numpy as np
import pyarrow as pa

from loudou.store.cache import EventCache, Segment, empty_segment, encode_values
from loudou.store.duckdb_sql import SqlBuilder

BUILD_BATCH_ROWS = 1 << 20
# Below this many events the cache is built for the first funnel: it takes well under a second.
EAGER_CACHE_ROWS = 2_000_000


class CacheAbilities:
    """The event cache for DuckDBStore (see loudou.store.cache)."""

    con: duckdb.DuckDBPyConnection
    _cache: EventCache | None
    _cache_lock: threading.Lock
    _writes: int
    _traits_version: int

    _funnels_asked: int = 0

    def _count(self, table: str) -> int:
        raise NotImplementedError

    def _transaction(self) -> AbstractContextManager[None]:
        raise NotImplementedError

    def use_event_cache(self) -> bool:
        """Whether this funnel should run on the cache: yes once it is built or when the table is
        small; on a large table only from the second funnel on, since sorting every event costs
        more than one SQL funnel (a single CLI run asks once; the server and notebooks ask again)."""
        if self._cache is not None:
            return True
        self._funnels_asked += 1
        return self._funnels_asked > 1 or self._count("events") <= EAGER_CACHE_ROWS

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
        """Read events sorted by (customer, time, row id) as integer codes, batch by batch, into
        preallocated arrays: DuckDB sorts integers, not strings, and no string column of every
        event is ever held in Python."""
        con = self.con
        try:
            with self._transaction():  # one snapshot for the dictionaries and the rows
                n = self._count("events")
                customers = con.sql(
                    "SELECT DISTINCT customer_id FROM events ORDER BY 1"
                ).to_arrow_table()
                names = con.sql("SELECT DISTINCT event FROM events ORDER BY 1").to_arrow_table()
                n_cust, n_names = customers.num_rows, names.num_rows
                con.register("_cache_customers", customers.append_column("c", pa.array(np.arange(n_cust, dtype=np.int32))))  # fmt: skip
                con.register("_cache_events", names.append_column("v", pa.array(np.arange(n_names, dtype=np.int32))))  # fmt: skip
                reader = con.sql(
                    "SELECT c.c, epoch_us(e.ts) AS t, v.v, e.rowid AS r FROM events e "
                    "JOIN _cache_customers c ON c.customer_id = e.customer_id "
                    "JOIN _cache_events v ON v.event = e.event ORDER BY c.c, t, r"
                ).to_arrow_reader(BUILD_BATCH_ROWS)
                ts = np.empty(n, np.int64)
                code = np.empty(n, np.int32)
                rowid = np.empty(n, np.int64)
                per_customer = np.zeros(n_cust, np.int64)
                at = 0
                for batch in reader:
                    k = batch.num_rows
                    per_customer += np.bincount(batch.column(0).to_numpy(), minlength=n_cust)
                    ts[at : at + k] = batch.column(1).to_numpy()
                    code[at : at + k] = batch.column(2).to_numpy()
                    rowid[at : at + k] = batch.column(3).to_numpy()
                    at += k
        finally:
            con.unregister("_cache_customers")
            con.unregister("_cache_events")
        if at != n:
            raise RuntimeError(f"event cache build read {at} of {n} events")
        off = np.zeros(n_cust + 1, np.int64)
        np.cumsum(per_customer, out=off[1:])
        cache = EventCache(
            customers.column(0).to_pylist(),
            names.column(0).to_pylist(),
            Segment(off, ts, code, rowid, np.zeros((0, n), np.int32)),
            empty_segment(n_cust, 0),
            int(rowid.max()) + 1 if n else 0,
            rows=n,
        )
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
        cust = cache.customer_codes(table.column("customer_id"))
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
