"""DuckDBStore's columnar funnel cache: build it from the events table, keep it up to date as
events are appended (by row id watermark), and add properties and traits on demand.

DuckDB is asked for integer codes (customer and event codes come from joins with the small
dictionaries) in whatever order it produces them; the cache's order is made in numba
(``loudou.kernels.cache_sort``): a counting sort by customer, then each customer's few events.
Sorting every event in DuckDB instead held gigabytes of sort buffers (docs/performance.md).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from loudou.backends.cache import EventCache, Segment, empty_segment, encode_values
from loudou.backends.duckdb_sql import SqlBuilder
from loudou.kernels.cache_sort import Fill, HashCodes, layout, strictly_sorted, string_buffers

BUILD_BATCH_ROWS = 1 << 20
# Below this many events the cache is built for the first funnel: it takes well under a second.
EAGER_CACHE_ROWS = 2_000_000
# DuckDB memory left to other queries while cached table blocks are evicted after a build.
EVICT_HEADROOM = 16 << 20


@functools.cache
def _default_limit() -> str:
    """DuckDB's default memory_limit on this machine, as current_setting shows it."""
    with duckdb.connect() as con:
        return str(con.sql("SELECT current_setting('memory_limit')").fetchall()[0][0])


def _codes_table(
    column: str, keys: pa.Array | pa.ChunkedArray, codes: np.ndarray | None = None
) -> pa.Table:
    """A dictionary for DuckDB to join with: ``column`` -> code ``c`` (default: position)."""
    c = np.arange(len(keys)) if codes is None else codes
    return pa.table({column: keys, "c": c.astype(np.int32)})


def _row_dtype(watermark: int) -> type:
    """Row ids are held only while sorting; 4 bytes each when they fit."""
    return np.int32 if watermark < 2**31 else np.int64


class CacheAbilities:
    """The event cache for DuckDBStore (see loudou.backends.cache)."""

    con: duckdb.DuckDBPyConnection
    path: str
    _cache: EventCache | None
    _cache_lock: threading.Lock
    _writes: int
    _traits_version: int

    _funnels_asked: int = 0

    def _count(self, table: str) -> int:
        raise NotImplementedError

    def _transaction(self) -> AbstractContextManager[None]:
        raise NotImplementedError

    def _registered(self, name: str, table: pa.Table) -> AbstractContextManager[None]:
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
            # rows first, then new properties, read for the rows as they stand (a link another
            # connection commits in between fails the property's line-up check: this call raises,
            # the next one follows the link)
            self._follow_links(cache)
            self._refresh_cache(cache)
            for name in properties:
                if name not in cache.prop_names:
                    self._cache_property(cache, name)
            if self._traits_version != self._writes:
                cache.traits.clear()
                self._traits_version = self._writes
            for name in traits:
                if name not in cache.traits:
                    cache.traits[name] = self._cache_trait(cache, name)
            return cache

    def _build_cache(self) -> EventCache:
        """Read every event as integer codes, batch by batch, straight into its customer's range
        (each customer's count is known from the dictionary query), then sort each customer's
        events by (time, row id). No string column of every event is ever held in Python."""
        con = self.con
        with self._transaction():  # one snapshot for the dictionaries, counts and rows
            customers = con.sql(
                "SELECT customer_id, count(*) AS n FROM events GROUP BY 1 ORDER BY 1"
            ).to_arrow_table()
            names = con.sql("SELECT DISTINCT event FROM events ORDER BY 1").to_arrow_table()
            watermark = int(
                con.sql("SELECT coalesce(max(rowid), -1) + 1 FROM events").fetchall()[0][0]
            )
            links = self._count("identities")
            ids = customers.column(0).combine_chunks().cast(pa.string())
            counts = customers.column(1).to_numpy()
            del customers
            if not strictly_sorted(*string_buffers(ids)):  # a collation other than bytewise
                order = pc.sort_indices(ids)
                ids, counts = ids.take(order), counts[order.to_numpy()]
            n_cust = len(ids)
            off = np.zeros(n_cust + 1, np.int64)
            np.cumsum(counts, out=off[1:])
            fill = Fill(off, 1, _row_dtype(watermark))
            for cust, code, batch in self._code_batches(
                ids, names.column(0), "epoch_us(e.ts), e.rowid"
            ):
                assert code is not None
                fill.add(
                    cust, batch.column(1).to_numpy(), batch.column(0).to_numpy(), code[None, :]
                )
        ts, code = fill.finish()
        del fill
        n = int(off[-1])
        cache = EventCache(
            ids,
            names.column(0).to_pylist(),
            Segment(off, ts, code[0], np.zeros((0, n), np.int32)),
            empty_segment(n_cust, 0),
            watermark,
            watermark,
            rows=n,
            links=links,
        )
        self._release_memory()
        return cache

    def _code_batches(
        self,
        ids: pa.Array,
        names: pa.Array | None,
        select: str,
        where: str = "",
        params: list[object] | None = None,
    ) -> Iterator[tuple[np.ndarray, np.ndarray | None, pa.RecordBatch]]:
        """Events batch by batch as (customer codes, event-name codes, the ``select`` columns):
        positions in ``ids`` and ``names`` (every row's value must be one of them). DuckDB hands
        over its 64-bit hash of each value, looked up in numba (a join on the strings costs more
        than the whole scan); if two hashes of a dictionary collide, it joins on the strings."""
        keys = [("customer_id", ids)] + ([("event", names)] if names is not None else [])
        maps = []
        for _, values in keys:
            with self._registered("_cache_keys", pa.table({"v": values})):
                hashes = self.con.sql("SELECT hash(v) FROM _cache_keys").to_arrow_table()
            maps.append(HashCodes.build(hashes.column(0).to_numpy()))
        with ExitStack() as stack:
            if all(m is not None for m in maps):
                codes = ", ".join(f"hash(e.{col})" for col, _ in keys)
                joins = ""
            else:
                for i, (col, values) in enumerate(keys):
                    stack.enter_context(self._registered(f"_cache_k{i}", _codes_table(col, values)))
                codes = ", ".join(f"k{i}.c" for i in range(len(keys)))
                joins = "".join(
                    f" JOIN _cache_k{i} k{i} ON k{i}.{col} = e.{col}"
                    for i, (col, _) in enumerate(keys)
                )
            sql = f"SELECT {codes}, {select} FROM events e{joins}{where}"  # noqa: S608
            reader = self.con.sql(sql, params=params).to_arrow_reader(BUILD_BATCH_ROWS)
            for batch in reader:
                coded = [
                    batch.column(i).to_numpy() if m is None else m.codes(batch.column(i).to_numpy())
                    for i, m in enumerate(maps)
                ]
                rest = pa.RecordBatch.from_arrays(
                    batch.columns[len(keys) :], batch.schema.names[len(keys) :]
                )
                yield coded[0], coded[1] if names is not None else None, rest

    def _release_memory(self) -> None:
        """Hand back to the OS the memory DuckDB holds after reading every event.

        DuckDB keeps the table blocks it read (until memory runs short; they scale with the
        table) and its allocator (jemalloc) keeps the pages freed during the build (both sizable
        on a large table, see docs/performance.md). Neither helps once the cache is built:
        funnels then read the cache, and refreshes only the newest rows. Lowering memory_limit
        evicts cached blocks down to it, and any change of it flushes the allocator
        (BufferPool::SetLimit); RESET puts back the exact default. So this runs only while the
        limit is the default, which loudou never changes, and evicts only in a database file (an
        in-memory table's blocks are its data). During the moment the limit is low, other queries
        of this database have EVICT_HEADROOM to work in.
        """
        con = self.con
        if con.sql("SELECT current_setting('memory_limit')").fetchall()[0][0] != _default_limit():
            return
        if self.path != ":memory:":
            used = dict(con.sql("SELECT tag, memory_usage_bytes FROM duckdb_memory()").fetchall())
            cached = int(used.get("BASE_TABLE", 0))
            if cached > EVICT_HEADROOM:
                low = sum(int(v) for v in used.values()) - cached + EVICT_HEADROOM
                try:
                    con.execute(f"SET memory_limit = '{low}B'")
                except duckdb.OutOfMemoryException:
                    pass  # could not evict that much (blocks in use): the reset still flushes
        con.execute("RESET memory_limit")

    def _refresh_cache(self, cache: EventCache) -> None:
        """Bring appended events (row ids from the watermark on) into the cache's delta.

        Events are never deleted, so an unchanged row count (cheap: table metadata) means
        there is nothing new to read. The new rows' distinct customer ids and event names are
        looked up in the cache's dictionaries (new ones added)."""
        con = self.con
        if self._count("events") == cache.rows:
            return
        with self._transaction():  # the lookups and the rows from one snapshot
            rows = self._count("events")
            ids, names = (
                con.sql(sql, params=[cache.watermark]).to_arrow_table().column(0)
                for sql in (
                    "SELECT DISTINCT customer_id FROM events WHERE rowid >= $1",
                    "SELECT DISTINCT event FROM events WHERE rowid >= $1",
                )
            )
            coded = self._coded_rows(cache, ids, names, "e.rowid >= $1", [cache.watermark])
        cache.rows = rows
        if coded is not None:
            cache.append(*coded)

    def _follow_links(self, cache: EventCache) -> None:
        """Identity links re-key events (their alias's rows move to the customer): re-read the
        rows the cache holds (ids below its watermark) of each alias linked since the cache last
        looked and of its customer, and put them in place. ``identities`` only grows (rows are
        never deleted, and their row ids stay), so its row count says whether there is
        anything to do, and its rows from that count on are the new links. Their customers'
        first/last seen bound the rows' times, so DuckDB reads only the row groups whose times
        overlap (as the re-keying itself does)."""
        links = self._count("identities")
        if links == cache.links:
            return
        con = self.con
        with self._transaction():  # the links and the rows from one snapshot
            links = self._count("identities")
            pairs = con.sql(
                "SELECT alias_id AS id FROM identities WHERE rowid >= $1 "
                "UNION SELECT customer_id FROM identities WHERE rowid >= $1",
                params=[cache.links],
            ).to_arrow_table()
            ids = pairs.column(0).combine_chunks()
            affected = np.unique(cache.customer_codes(ids))
            with self._registered("_cache_linked", pa.table({"customer_id": ids})):
                first, last, unknown = con.sql(
                    "SELECT min(first_seen), max(last_seen), count(*) FILTER (WHERE first_seen "
                    "IS NULL OR last_seen IS NULL) FROM customers_seen "
                    "WHERE customer_id IN (SELECT customer_id FROM _cache_linked)"
                ).fetchall()[0]
                where = "e.rowid < $1 AND e.customer_id IN (SELECT customer_id FROM _cache_linked)"
                params: list[object] = [cache.watermark]
                if first is not None and not unknown:
                    where += " AND e.ts BETWEEN $2 AND $3"
                    params += [first, last]
                coded = self._coded_rows(
                    cache, ids, pa.array(cache.events, pa.string()), where, params
                )
        cache.links = links
        n_cust, n_props = len(cache.customers), len(cache.prop_names)
        if coded is None:  # every row of these customers left (or none was cached)
            parts = [empty_segment(n_cust, n_props), empty_segment(n_cust, n_props)]
        else:
            cust, t, code, r, props = coded
            vals = np.vstack([code[None, :], props])
            parts = []
            for sel in (r < cache.delta_from, r >= cache.delta_from):
                off, ts, v = layout(n_cust, cust[sel], r[sel], t[sel], vals[:, sel])
                parts.append(Segment(off, ts, v[0], v[1:]))
        cache.replace_customers(affected, *parts)

    def _coded_rows(
        self,
        cache: EventCache,
        ids: pa.Array,
        names: pa.Array,
        where: str,
        params: Sequence[object],
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
        """The rows matching ``where`` (on ``e``, with ``params`` as $1, $2..) as (customer code, time,
        event code, row id, cached properties' codes [properties, rows]), or None if there are
        none. ``ids`` and ``names`` hold (at least) the rows' customer ids and event names:
        looked up in the cache's dictionaries (new ones added), DuckDB joins the rows with
        those small tables and hands over integer codes instead of a string per row."""
        b = SqlBuilder()
        for value in params:  # $1, $2.. in order
            b.bind(value)
        props = [f"CAST({b.event_field(p)} AS VARCHAR)" for p in cache.prop_names]
        extra = "".join(f", {e} AS p{i}" for i, e in enumerate(props))
        customers = _codes_table("customer_id", ids, cache.customer_codes(ids))
        events = _codes_table("event", names, cache.event_codes(names))
        with (
            self._registered("_cache_customers", customers),
            self._registered("_cache_events", events),
        ):
            table = self.con.sql(
                f"SELECT c.c, epoch_us(e.ts) AS t, v.c, e.rowid AS r{extra} FROM events e "  # noqa: S608
                "JOIN _cache_customers c ON c.customer_id = e.customer_id "
                f"JOIN _cache_events v ON v.event = e.event WHERE {where}",
                params=b.params,
            ).to_arrow_table()
        if table.num_rows == 0:
            return None
        cust, t, code, r = (table.column(i).to_numpy() for i in range(4))
        codes = np.zeros((len(props), table.num_rows), np.int32)
        for i in range(len(props)):
            codes[i] = cache.extend_property(i, table.column(f"p{i}").combine_chunks())
        return cust, t, code, r, codes

    def _cache_property(self, cache: EventCache, name: str) -> None:
        """Dictionary-encode one event property for every cached row. The cache keeps no row
        ids, so the rows are read with what orders them (customer code, time, row id) and laid
        out again the same way: they land in the same order as the cached events."""
        b = SqlBuilder()
        expr = f"CAST({b.event_field(name)} AS VARCHAR)"
        wm = b.bind(cache.watermark)
        segments = (cache.base, cache.delta)
        fills = [Fill(seg.off, 1, _row_dtype(cache.watermark)) for seg in segments]
        dictionaries: list[pa.Array] = []
        entries = 0  # values in the batch dictionaries so far: a row's value is entry + 1
        batches = self._code_batches(
            cache.customers,
            None,
            f"epoch_us(e.ts), e.rowid, {expr}",
            f" WHERE e.rowid < {wm}",
            b.params,
        )
        for cust, _, batch in batches:
            t, r = batch.column(0).to_numpy(), batch.column(1).to_numpy()
            enc = pc.dictionary_encode(batch.column(2))
            dictionaries.append(enc.dictionary)
            vals = enc.indices.fill_null(-1 - entries).to_numpy().astype(np.int32)
            vals += entries + 1  # 0 = null
            entries += len(enc.dictionary)
            in_delta = r >= cache.delta_from
            if not in_delta.any():
                fills[0].add(cust, r, t, vals[None, :])
                continue
            for fill, sel in ((fills[0], ~in_delta), (fills[1], in_delta)):
                fill.add(cust[sel], r[sel], t[sel], vals[None, sel])
        # one sorted dictionary for the entries of every batch
        entry_codes, values = encode_values(
            pa.concat_arrays([d.cast(pa.string()) for d in dictionaries])
            if dictionaries
            else pa.array([], pa.string())
        )
        lookup = np.concatenate([[0], entry_codes]).astype(np.int32)
        codes = []
        for fill, seg in zip(fills, segments, strict=True):
            ts, vals = fill.finish()
            if not np.array_equal(ts, seg.ts):
                raise RuntimeError(
                    f"event cache: property {name!r} does not line up with the events"
                )
            codes.append(lookup[vals[0]])
        cache.add_property(name, codes[0], codes[1], values)
        self._release_memory()

    def _cache_trait(self, cache: EventCache, name: str) -> tuple[list[str], np.ndarray]:
        b = SqlBuilder()
        table = self.con.sql(
            f"SELECT customer_id, {b.trait_field(name)} AS v FROM customers_seen c",  # noqa: S608
            params=b.params,
        ).to_arrow_table()
        codes, values = encode_values(table.column("v").combine_chunks())
        per_customer = np.zeros(len(cache.customers), np.int32)
        index = cache.customer_codes(table.column("customer_id"), add=False)
        known = index >= 0
        per_customer[index[known]] = codes[known]
        return values, per_customer
