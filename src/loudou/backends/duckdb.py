"""The default store: one embedded DuckDB file. The only module that calls DuckDB."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import date, datetime
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from loudou.backends.base import (
    CUSTOMER_SCHEMA,
    EVENT_SCHEMA,
    SPEND_SCHEMA,
    WriteResult,
    conform,
)
from loudou.backends.cache import EventCache
from loudou.backends.duckdb_cache import CacheAbilities
from loudou.backends.duckdb_server import ServerAbilities
from loudou.backends.duckdb_sql import (
    funnel_events_sql,
    read_customers_sql,
    read_events_sql,
)
from loudou.backends.duckdb_upkeep import UpkeepAbilities
from loudou.backends.keyset import KeyBatch, Prepared, event_keys, shared_keys, warm_up_kernels
from loudou.errors import StoreError
from loudou.model.plan import FunnelPlan

# An event's de-duplication key up to schema version 7 (``_v8`` replaced it with MurmurHash3,
# computed in numba: see loudou.kernels.keys).
_EVENT_KEY = "md5_number(event_id)"


def _v1(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        """
        CREATE TABLE IF NOT EXISTS events (
            event_id    VARCHAR PRIMARY KEY,
            customer_id VARCHAR NOT NULL,
            event       VARCHAR NOT NULL,
            ts          TIMESTAMP NOT NULL,   -- UTC, microseconds
            session_id  VARCHAR,
            channel     VARCHAR,
            campaign    VARCHAR,
            revenue     DOUBLE,
            properties  JSON
        );
        CREATE TABLE IF NOT EXISTS customers (
            customer_id VARCHAR PRIMARY KEY,
            traits      JSON NOT NULL DEFAULT '{}',
            first_seen  TIMESTAMP,
            last_seen   TIMESTAMP
        );
        CREATE TABLE IF NOT EXISTS spend (
            day      DATE NOT NULL,
            channel  VARCHAR NOT NULL,
            campaign VARCHAR NOT NULL DEFAULT '',
            amount   DOUBLE NOT NULL,
            currency VARCHAR NOT NULL DEFAULT 'USD',
            PRIMARY KEY (day, channel, campaign)
        );
        """
    )


def _v2(con: duckdb.DuckDBPyConnection) -> None:
    """API keys (hashed) and the identity map of the collection server."""
    con.execute(
        """
        CREATE TABLE IF NOT EXISTS api_keys (
            key_id     VARCHAR PRIMARY KEY,
            role       VARCHAR NOT NULL,
            key_hash   VARCHAR NOT NULL,     -- sha256 hex of the secret; the secret is not kept
            created_at TIMESTAMP NOT NULL,
            revoked_at TIMESTAMP,
            name       VARCHAR
        );
        CREATE TABLE IF NOT EXISTS identities (
            alias_id    VARCHAR PRIMARY KEY,  -- an anonymous id or an earlier user id
            customer_id VARCHAR NOT NULL,     -- the customer it belongs to (never itself an alias)
            linked_at   TIMESTAMP NOT NULL
        );
        """
    )


_EVENT_COLUMNS = ", ".join(EVENT_SCHEMA.names)


def _v3(con: duckdb.DuckDBPyConnection) -> None:
    """Event ids are de-duplicated through ``event_keys`` (a 128-bit hash of each stored id, with
    its own primary key) instead of a primary key on ``events.event_id``: a fixed-width key is
    cheaper to index, and bulk imports then append to ``events`` with no index to maintain there.
    DuckDB cannot drop a primary key, so ``events`` is rebuilt, keeping its row order."""
    con.execute(
        f"""
        CREATE TABLE events_v3 (
            event_id    VARCHAR NOT NULL,
            customer_id VARCHAR NOT NULL,
            event       VARCHAR NOT NULL,
            ts          TIMESTAMP NOT NULL,   -- UTC, microseconds
            session_id  VARCHAR,
            channel     VARCHAR,
            campaign    VARCHAR,
            revenue     DOUBLE,
            properties  JSON
        );
        INSERT INTO events_v3 SELECT {_EVENT_COLUMNS} FROM events ORDER BY rowid;
        DROP TABLE events;
        ALTER TABLE events_v3 RENAME TO events;
        CREATE TABLE event_keys (k UHUGEINT PRIMARY KEY);  -- md5_number(event_id)
        INSERT INTO event_keys SELECT DISTINCT {_EVENT_KEY} FROM events ORDER BY 1;
        """  # noqa: S608
    )


_LOW_64 = "18446744073709551615::UHUGEINT"  # 2^64 - 1


def _v4(con: duckdb.DuckDBPyConnection) -> None:
    """``event_keys`` without an index: a plain table appended in step with ``events`` (one row
    per stored event), holding each key as two UBIGINT halves, ``hi = md5_number(event_id) >> 64``
    and ``lo`` its low 64 bits. Which keys are new is decided in memory (``backends.keyset``), so
    writes no longer maintain an ART index that grows with the store. The table is rebuilt (DuckDB
    cannot drop a primary key), keeping its row order."""
    con.execute(
        f"""
        CREATE TABLE event_keys_v4 (hi UBIGINT NOT NULL, lo UBIGINT NOT NULL);
        INSERT INTO event_keys_v4
            SELECT (k >> 64)::UBIGINT, (k & {_LOW_64})::UBIGINT FROM event_keys ORDER BY rowid;
        DROP TABLE event_keys;
        ALTER TABLE event_keys_v4 RENAME TO event_keys;
        """  # noqa: S608
    )


def _v5(con: duckdb.DuckDBPyConnection) -> None:
    """``seen_log``: first/last seen times of the collection server's commits, appended there
    and folded into ``customers`` from time to time. Updating ``customers`` in every commit
    scanned the whole table (DuckDB joins by hash, not through its index), a cost per commit
    that grows with the customers. Readers see both through the ``customers_seen`` view."""
    con.execute(
        """
        CREATE TABLE seen_log (
            customer_id VARCHAR NOT NULL,
            first_seen  TIMESTAMP NOT NULL,
            last_seen   TIMESTAMP NOT NULL
        );
        CREATE VIEW customers_seen AS
        SELECT coalesce(c.customer_id, p.customer_id) AS customer_id,
               coalesce(c.traits, '{}'::JSON) AS traits,
               least(c.first_seen, p.first_seen) AS first_seen,
               greatest(c.last_seen, p.last_seen) AS last_seen
        FROM customers c
        FULL JOIN (SELECT customer_id, min(first_seen) AS first_seen, max(last_seen) AS last_seen
                   FROM seen_log GROUP BY customer_id) p
          ON c.customer_id = p.customer_id;
        """
    )


def _v6(con: duckdb.DuckDBPyConnection) -> None:
    """``traits_log``: the collection server's trait merges (identify), appended in order and
    folded into ``customers`` with ``seen_log`` (``INSERT .. ON CONFLICT`` into ``customers`` in
    every commit was costly per merged customer on a large table). ``customers_seen`` merges the
    pending traits over the stored ones, in order."""
    con.execute(
        """
        CREATE TABLE traits_log (customer_id VARCHAR NOT NULL, traits JSON NOT NULL);
        CREATE OR REPLACE VIEW customers_seen AS
        SELECT coalesce(c.customer_id, p.customer_id, t.customer_id) AS customer_id,
               CASE WHEN t.traits IS NULL THEN coalesce(c.traits, '{}'::JSON)
                    ELSE json_merge_patch(coalesce(c.traits, '{}'::JSON), t.traits) END AS traits,
               least(c.first_seen, p.first_seen) AS first_seen,
               greatest(c.last_seen, p.last_seen) AS last_seen
        FROM customers c
        FULL JOIN (SELECT customer_id, min(first_seen) AS first_seen, max(last_seen) AS last_seen
                   FROM seen_log GROUP BY customer_id) p
          ON c.customer_id = p.customer_id
        FULL JOIN (SELECT customer_id,
                          list_reduce(list(traits ORDER BY rowid),
                                      lambda x, y: json_merge_patch(x, y)) AS traits
                   FROM traits_log GROUP BY customer_id) t
          ON coalesce(c.customer_id, p.customer_id) = t.customer_id;
        """
    )


def _v7(con: duckdb.DuckDBPyConnection) -> None:
    """A new store keeps its event, customer and session ids compressed with zstd. DuckDB's own
    choice for such many-valued strings (dictionary + FSST) spent a large share of an import's
    insert time analysing them; zstd makes the file somewhat larger, and scans and point reads
    measured alike (docs/performance.md). Only an empty ``events`` is rebuilt: rewriting a
    store's events would make the upgrade take minutes, and its layout changes nothing it
    answers."""
    if con.execute("SELECT count(*) FROM events").fetchall()[0][0]:
        return
    con.execute(
        """
        DROP TABLE events;
        CREATE TABLE events (
            event_id    VARCHAR NOT NULL USING COMPRESSION zstd,
            customer_id VARCHAR NOT NULL USING COMPRESSION zstd,
            event       VARCHAR NOT NULL,
            ts          TIMESTAMP NOT NULL,   -- UTC, microseconds
            session_id  VARCHAR USING COMPRESSION zstd,
            channel     VARCHAR,
            campaign    VARCHAR,
            revenue     DOUBLE,
            properties  JSON
        );
        """
    )


_REKEY_ROWS = 1 << 20  # events re-keyed at a time by _v8


def _v8(con: duckdb.DuckDBPyConnection) -> None:
    """Event keys become MurmurHash3 x64 128 of the id instead of MD5: the same 128-bit odds of
    two ids colliding at a fraction of the CPU per id (an import hashes every row it reads; see
    docs/performance.md). The keys of stored events are computed again, in rowid order, a million
    events at a time."""
    con.execute("CREATE TABLE event_keys_v8 (hi UBIGINT NOT NULL, lo UBIGINT NOT NULL)")
    end = con.execute("SELECT coalesce(max(rowid) + 1, 0) FROM events").fetchall()[0][0]
    for start in range(0, end, _REKEY_ROWS):
        ids = con.sql(
            "SELECT event_id FROM events WHERE rowid >= $1 AND rowid < $2 ORDER BY rowid",
            params=[start, start + _REKEY_ROWS],
        ).to_arrow_table()
        if ids.num_rows:
            hi, lo = event_keys(ids.column(0))
            con.from_arrow(pa.table({"hi": hi, "lo": lo})).insert_into("event_keys_v8")
    con.execute("DROP TABLE event_keys; ALTER TABLE event_keys_v8 RENAME TO event_keys")


# Migrations in order; the schema version is the number applied. Append, never edit.
MIGRATIONS: list[Callable[[duckdb.DuckDBPyConnection], None]] = [
    _v1,
    _v2,
    _v3,
    _v4,
    _v5,
    _v6,
    _v7,
    _v8,
]
SCHEMA_VERSION = len(MIGRATIONS)


_ROW_GROUP = 122_880  # DuckDB's rows per row group


_KEY_BATCH = 1 << 20  # keys read from event_keys at a time
# Up to this many customers in a write, the store remembers the first/last seen it made sure of
# (a collection server's writes often change nothing there); an import's large writes do not.
_SEEN_CUSTOMERS = 10_000
# The collection server's seen_log is folded into customers past this many rows (and when idle).
FOLD_ROWS = 50_000
# First/last seen of ``source`` (customer_id, ts_min, ts_max; one row per customer) into customers.
_MERGE_SEEN = """
    MERGE INTO customers USING {source} s ON customers.customer_id = s.customer_id
    WHEN MATCHED AND (customers.first_seen IS NULL OR customers.last_seen IS NULL
                      OR s.ts_min < customers.first_seen
                      OR s.ts_max > customers.last_seen) THEN UPDATE SET
        first_seen = least(coalesce(customers.first_seen, s.ts_min), s.ts_min),
        last_seen = greatest(coalesce(customers.last_seen, s.ts_max), s.ts_max)
    WHEN NOT MATCHED THEN INSERT (customer_id, first_seen, last_seen)
        VALUES (s.customer_id, s.ts_min, s.ts_max)
"""
# Traits of ``source`` (customer_id, traits, in ``order``) merged per customer in that order, then
# over the stored ones (latest value wins).
_UPSERT_TRAITS = """
    INSERT INTO customers (customer_id, traits)
    SELECT customer_id,
           list_reduce(list(CAST(traits AS JSON) ORDER BY {order}), lambda x, y: json_merge_patch(x, y))
    FROM {source} GROUP BY customer_id
    ON CONFLICT (customer_id) DO UPDATE SET
        traits = json_merge_patch(customers.traits, excluded.traits)
"""
_FOLD_SOURCE = (
    "(SELECT customer_id, min(first_seen) AS ts_min, max(last_seen) AS ts_max "
    "FROM seen_log GROUP BY customer_id)"
)


def _row_group_chunks(table: pa.Table) -> pa.Table:
    """``table`` in chunks of one DuckDB row group. DuckDB appends each Arrow chunk as a unit,
    in parallel; chunks that do not fill whole row groups leave partial ones that the commit
    then rewrites (twice the time, and twice the file size, for a bulk import). Many small chunks
    (the server's group of requests) cost a scan each: one chunk takes clearly less time. A clean
    import's rows come in whole row groups already (it reads that many at a time) and are kept
    as they are. Otherwise only the rows of a row group that straddles two chunks are copied
    (a Parquet file read with dictionaries breaks its batches at each of its own row groups):
    re-chunking everything copied every value, a cost paid on every write."""
    if table.num_rows <= _ROW_GROUP:
        return table.combine_chunks() if table.column(0).num_chunks > 1 else table
    if _whole_row_groups(table):
        return table
    groups: list[pa.RecordBatch] = []
    pieces: list[pa.RecordBatch] = []
    filled = 0
    for batch in table.to_batches():
        while batch.num_rows:
            piece = batch.slice(0, _ROW_GROUP - filled)
            batch = batch.slice(piece.num_rows)
            pieces.append(piece)
            filled += piece.num_rows
            if filled == _ROW_GROUP:
                groups.append(_joined(pieces))
                pieces, filled = [], 0
    if pieces:
        groups.append(_joined(pieces))
    return pa.Table.from_batches(groups, table.schema)


def _joined(pieces: list[pa.RecordBatch]) -> pa.RecordBatch:
    if len(pieces) == 1:
        return pieces[0]
    return pa.Table.from_batches(pieces).combine_chunks().to_batches()[0]


def _whole_row_groups(table: pa.Table) -> bool:
    """Every column chunked alike, each chunk but the last one row group long (the last no longer)."""
    lengths = [len(c) for c in table.column(0).chunks]
    if any(n != _ROW_GROUP for n in lengths[:-1]) or lengths[-1] > _ROW_GROUP:
        return False
    return all([len(c) for c in column.chunks] == lengths for column in table.columns[1:])


def _keys_table(batch: pa.Table, hi: np.ndarray, lo: np.ndarray) -> pa.Table:
    """The keys (``event_keys`` rows) of ``batch``, chunked like it (DuckDB appends chunk by
    chunk, a row group each for an import)."""
    bounds = np.cumsum([0, *(len(c) for c in batch.column(0).chunks)])
    pieces = list(zip(bounds[:-1], bounds[1:], strict=True))
    return pa.table(
        {
            "hi": pa.chunked_array([hi[a:b] for a, b in pieces], pa.uint64()),
            "lo": pa.chunked_array([lo[a:b] for a, b in pieces], pa.uint64()),
        }
    )


class DuckDBStore(ServerAbilities, UpkeepAbilities, CacheAbilities):
    """Embedded store. Opens read-only when asked, so readers can share a file with one writer."""

    @classmethod
    def from_connection(cls, path: str, con: duckdb.DuckDBPyConnection) -> DuckDBStore:
        """A store over an already open (and migrated) connection, e.g. a cursor of another."""
        return cls(path, con=con)

    def __init__(
        self, path: str, *, read_only: bool = False, con: duckdb.DuckDBPyConnection | None = None
    ) -> None:
        self.path = path
        self.read_only = read_only
        if con is not None:
            self.con = con
        else:
            self.con = self._connect()
            self._migrate()
        self._keys = shared_keys(path)  # event ids stored (shared by this file's stores)
        if con is None:
            self._keys.reopened()
        self._cache: EventCache | None = None
        self._cache_lock = threading.Lock()
        self._writes = 0  # bumped on every write; cached traits are only valid for one value
        self._seen_logged = 0  # rows in seen_log (as of this connection's last write)
        self._traits_version = -1

    def _connect(self) -> duckdb.DuckDBPyConnection:
        path, read_only = self.path, self.read_only
        if path != ":memory:":
            parent = Path(path).expanduser().resolve().parent
            if not parent.is_dir():
                raise StoreError(f"folder {str(parent)!r} does not exist", "db")
            if read_only and not Path(path).exists():
                raise StoreError(f"no database at {path!r}; import data first", "db")
        try:
            return duckdb.connect(path, read_only=read_only)
        except duckdb.IOException as e:
            hint = ""
            if "lock" in str(e).lower():
                hint = " (another process holds it; if it is 'loudou serve', wait until it answers or stop it)"
            raise StoreError(
                f"cannot open database {path!r}: {str(e).splitlines()[0]}{hint}", "db"
            ) from None
        except duckdb.Error as e:
            raise StoreError(
                f"{path!r} is not a loudou database: {str(e).splitlines()[0]}", "db"
            ) from None

    # -- schema ---------------------------------------------------------------------------------
    def _migrate(self) -> None:
        con = self.con
        has_meta = self._scalar(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'meta'"
        )
        if not has_meta:
            if self.read_only:
                raise StoreError(f"{self.path!r} is not a loudou database", "db")
            con.execute("CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)")
        version = int(self.get_meta("schema_version") or 0)
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"database schema version {version} is newer than this loudou ({SCHEMA_VERSION}); upgrade",
                "db",
            )
        if version < SCHEMA_VERSION and self.read_only:
            self._upgrade_then_read(version)
            return
        for i in range(version, SCHEMA_VERSION):
            con.execute("BEGIN")
            MIGRATIONS[i](con)
            self.set_meta("schema_version", str(i + 1))
            con.execute("COMMIT")

    def _upgrade_then_read(self, version: int) -> None:
        """A database of an older loudou opened for reading (e.g. ``loudou funnel`` after an
        upgrade): upgrade it in a short read-write open, then open it read-only again."""
        self.con.close()
        try:
            DuckDBStore(self.path).close()
        except StoreError as e:
            raise StoreError(
                f"the database has schema version {version} and needs the upgrade to "
                f"{SCHEMA_VERSION}, which a write must do first: {e.message}",
                "db",
            ) from None
        self.con = self._connect()

    @property
    def schema_version(self) -> int:
        return int(self.get_meta("schema_version") or 0)

    def _scalar(self, sql: str, params: list[object] | None = None) -> object:
        """First value of a query's first row (None if no row); reads the whole result, as
        DuckDB wants results finished before the connection is used again."""
        rows = self.con.execute(sql, params or []).fetchall()
        return rows[0][0] if rows else None

    def get_meta(self, key: str) -> str | None:
        value = self._scalar("SELECT value FROM meta WHERE key = ?", [key])
        return None if value is None else str(value)

    def set_meta(self, key: str, value: str) -> None:
        self.con.execute(
            "INSERT INTO meta VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [key, value],
        )

    # -- writes ---------------------------------------------------------------------------------
    def _count(self, table: str) -> int:
        return int(self._scalar(f"SELECT count(*) FROM {table}") or 0)  # type: ignore[call-overload]  # noqa: S608

    def _catch_up(self) -> int:
        """First thing in an event write's transaction: bring the in-memory keys (loaded on the
        first write: reads never pay for it) up to the tables as this transaction sees them.
        Returns the row count of ``identities``."""
        ((keys, links, logged),) = self.con.execute(
            "SELECT (SELECT count(*) FROM event_keys), (SELECT count(*) FROM identities), "
            "(SELECT count(*) FROM seen_log) + (SELECT count(*) FROM traits_log)"
        ).fetchall()
        self._keys.catch_up(int(keys), int(links), self._read_keys, self._key_at)
        self._seen_logged = int(logged)
        return int(links)

    def _key_at(self, row: int) -> tuple[int, int] | None:
        rows = self.con.execute("SELECT hi, lo FROM event_keys WHERE rowid = $1", [row]).fetchall()
        return (int(rows[0][0]), int(rows[0][1])) if rows else None

    def prepare_writes(self) -> None:
        """Load what event writes need (the stored keys, the compiled kernels) now rather than
        in the first write; a server does this before it takes requests."""
        with self._writing_events(), self._transaction():
            self._catch_up()
        warm_up_kernels()

    def _read_keys(self, start: int) -> Iterator[KeyBatch]:
        """The keys of ``event_keys`` rows from ``start`` on, a batch at a time."""
        rel = self.con.sql("SELECT hi, lo FROM event_keys WHERE rowid >= $1", params=[start])
        for batch in rel.to_arrow_reader(_KEY_BATCH):
            yield (
                batch.column(0).to_numpy(zero_copy_only=False),
                batch.column(1).to_numpy(zero_copy_only=False),
            )

    @contextmanager
    def _registered(self, name: str, table: pa.Table) -> Iterator[None]:
        """``table`` registered as ``name`` within a statement or two of a transaction."""
        self.con.register(name, table)
        try:
            yield
        except BaseException:
            # the transaction is aborted, which refuses even this; the next registration of the
            # name replaces the table
            with suppress(duckdb.Error):
                self.con.unregister(name)
            raise
        self.con.unregister(name)

    @contextmanager
    def _writing_events(self) -> Iterator[None]:
        """Around a write transaction that stores events: one at a time per database in this
        process, and the keys it claimed count as stored only if it committed."""
        keys = self._keys
        with keys.lock:
            try:
                yield
            except BaseException:
                keys.rollback()
                raise
            keys.commit()

    def _put_events(
        self, batch: pa.Table, log_seen: bool = False, prepared: Prepared | None = None
    ) -> int:
        """Insert the events of ``batch`` (EVENT_SCHEMA) inside the caller's transaction (under
        ``_writing_events``, after ``_catch_up``), skipping ids already stored and repeats within
        the batch (the first one wins), keeping their order; every customer seen exists in
        customers, with first/last seen times. Returns the number of events inserted. The key
        set says which rows are new, so only those are inserted, into ``events`` and (their
        keys) ``event_keys``, both plain appends. ``log_seen`` (the server's small commits):
        first/last seen go to ``seen_log`` (see ``_v5``)."""
        if prepared is None:
            try:
                prepared = Prepared(event_keys(batch.column("event_id")), None)
            except ValueError as e:
                raise StoreError(str(e), "event_id") from None
        hi, lo = prepared.keys
        if len(hi) != batch.num_rows:
            raise ValueError(f"{len(hi)} event keys for {batch.num_rows} events")
        new = self._keys.claim(hi, lo, more=prepared.more)
        inserted = int(np.count_nonzero(new))
        if inserted == 0:
            return 0
        seen = prepared.seen
        if inserted < batch.num_rows:
            batch, hi, lo = batch.filter(pa.array(new)), hi[new], lo[new]
            seen = None  # the ranges of the rows stored, not of the whole batch
        batch = _row_group_chunks(batch)
        con = self.con
        # Relations rather than registered views: registering costs about as much as inserting
        # a few hundred rows (the server commits every few milliseconds). Columns by position:
        # ``conform`` put them in the table's order.
        con.from_arrow(batch).insert_into("events")
        con.from_arrow(_keys_table(batch, hi, lo)).insert_into("event_keys")
        self._saw_customers(batch, log_seen, seen)
        return inserted

    def _saw_customers(
        self, batch: pa.Table, log_seen: bool = False, seen: pa.Table | None = None
    ) -> None:
        """First/last seen of the customers of newly stored events, from the batch itself: in
        one MERGE (every statement that joins customers scans it whole, ``INSERT .. ON
        CONFLICT`` too), or appended to ``seen_log`` (``log_seen``: folded later, in one
        MERGE for many commits). Small batches (the server's) leave out the customers whose
        stored range is known to cover them already; large ones (imports) skip that bookkeeping.
        ``seen``: the batch's ranges (customer_id, ts_min, ts_max) as an import worked them out
        already (all rows new), instead of grouping the batch here."""
        stored = self._keys
        customers = (
            seen.column("customer_id")
            if seen is not None
            else pc.unique(batch.column("customer_id"))
        )
        small = len(customers) <= _SEEN_CUSTOMERS
        if small:
            span = pc.min_max(batch.column("ts").cast(pa.int64())).as_py()
            if stored.cover(customers.to_pylist(), span["min"], span["max"]):
                return
        if seen is None:
            seen = batch.group_by("customer_id", use_threads=False).aggregate(
                [("ts", "min"), ("ts", "max")]
            )
        if small:
            ids = seen.column("customer_id").to_pylist()
            first = seen.column("ts_min").cast(pa.int64()).to_pylist()
            last = seen.column("ts_max").cast(pa.int64()).to_pylist()
            todo = stored.unseen(ids, first, last)
            if not todo:
                return
            if len(todo) < len(ids):
                seen = seen.take(todo)
        seen = seen.select(["customer_id", "ts_min", "ts_max"])
        if small and log_seen:
            self.con.from_arrow(seen).insert_into("seen_log")
            self._logged(seen.num_rows)
        else:
            with self._registered("_seen", seen):
                self.con.execute(_MERGE_SEEN.format(source="_seen"))
        if small:
            stored.saw([ids[i] for i in todo], [first[i] for i in todo], [last[i] for i in todo])

    def _fold_seen(self) -> None:
        """``seen_log`` and ``traits_log`` into ``customers``, inside the caller's transaction."""
        con = self.con
        con.execute(_MERGE_SEEN.format(source=_FOLD_SOURCE))
        con.execute("DELETE FROM seen_log")
        con.execute(_UPSERT_TRAITS.format(source="traits_log", order="rowid"))
        con.execute("DELETE FROM traits_log")
        self._seen_logged = 0

    def log_traits(self, source: str) -> None:
        """Append trait merges (``source``: customer_id, traits; in order) to ``traits_log``,
        inside the caller's transaction; folded with ``seen_log``."""
        con = self.con
        logged = con.execute(
            f"INSERT INTO traits_log SELECT customer_id, traits FROM {source}"  # noqa: S608
        ).fetchall()
        self._logged(int(logged[0][0]) if logged else 0)

    def _logged(self, rows: int) -> None:
        """``rows`` more were appended to the logs: fold them past ``FOLD_ROWS``."""
        self._seen_logged += rows
        if self._seen_logged >= FOLD_ROWS:
            self._fold_seen()

    def _fold_if_logged(self) -> None:
        if self._scalar(
            "SELECT (SELECT count(*) FROM seen_log) + (SELECT count(*) FROM traits_log)"
        ):
            self._fold_seen()

    def fold_seen(self) -> None:
        """Fold ``seen_log`` and ``traits_log`` into ``customers`` now (a server's writer does
        when idle)."""
        if self.read_only:
            return
        with self._transaction():
            self._fold_if_logged()

    def _merge_traits(self, source: str) -> int:
        """Merge traits from ``source`` (CUSTOMER_SCHEMA) inside the caller's transaction; rows for
        one customer are merged in order, then into the store. Returns customers new to the store.
        (The server logs its merges instead: ``log_traits``.)"""
        con = self.con
        new = self._scalar(
            f"SELECT count(DISTINCT customer_id) FROM {source} "  # noqa: S608
            "WHERE customer_id NOT IN (SELECT customer_id FROM customers)"
        )
        numbered = f"(SELECT *, row_number() OVER () AS rn FROM {source})"  # noqa: S608
        con.execute(_UPSERT_TRAITS.format(source=numbered, order="rn"))
        return int(new or 0)  # type: ignore[call-overload]

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """One transaction on this connection: committed when the block ends, else rolled back."""
        con = self.con
        con.execute("BEGIN")
        try:
            yield
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise

    def _in_transaction(self, tables: dict[str, pa.Table], work: Callable[[], int]) -> int:
        """Register Arrow tables under fixed names, run ``work`` in one transaction, clean up."""
        con = self.con
        for name, table in tables.items():
            con.register(name, table)
        try:
            with self._transaction():
                return work()
        finally:
            for name in tables:
                con.unregister(name)

    def prepare_events(self, batch: pa.Table, more: int = 0, ranges: bool = True) -> Prepared:
        """The batch's event keys and (``ranges``) each customer's time range (PreparedWrites)."""
        seen = None
        if ranges:
            seen = batch.group_by("customer_id", use_threads=False).aggregate(
                [("ts", "min"), ("ts", "max")]
            )
            seen = seen.select(["customer_id", "ts_min", "ts_max"])
        return Prepared(event_keys(batch.column("event_id")), seen, more)

    def insert_prepared(self, batch: pa.Table, prepared: object) -> WriteResult:
        assert isinstance(prepared, Prepared), "prepare_events made it"
        return self.insert_events(batch, prepared)

    def insert_events(self, batch: pa.Table, prepared: Prepared | None = None) -> WriteResult:
        self._writes += 1
        batch = conform(batch, EVENT_SCHEMA)
        if batch.num_rows == 0:
            return WriteResult()

        def work() -> int:
            self._catch_up()
            return self._put_events(batch, prepared=prepared)

        with self._writing_events():
            inserted = self._in_transaction({}, work)
        if inserted and self._cache is not None:
            # The funnel cache is kept up to date as events arrive: an import (its writes run in
            # a background thread while the next rows are read) folds its rows in now, so the
            # next funnel does not pay for it (the fold's cost grows with the rows imported).
            with self._cache_lock:
                if self._cache is not None:
                    self._refresh_cache(self._cache)
        return WriteResult(inserted=inserted, duplicates=batch.num_rows - inserted)

    def upsert_customers(self, batch: pa.Table) -> WriteResult:
        self._writes += 1
        batch = batch.select(CUSTOMER_SCHEMA.names).cast(CUSTOMER_SCHEMA)
        if batch.num_rows == 0:
            return WriteResult()

        def work() -> int:
            self._fold_if_logged()  # the server's pending merges came first: keep the order
            return self._merge_traits("_batch")

        inserted = self._in_transaction({"_batch": batch}, work)
        return WriteResult(inserted=inserted, duplicates=batch.num_rows - inserted)

    def insert_spend(self, batch: pa.Table) -> WriteResult:
        batch = batch.select(SPEND_SCHEMA.names).cast(SPEND_SCHEMA)
        if batch.num_rows == 0:
            return WriteResult()

        def work() -> int:
            before = self._count("spend")
            self.con.execute(
                """
                INSERT INTO spend
                SELECT day, channel, coalesce(campaign, ''), sum(amount), any_value(coalesce(currency, 'USD'))
                FROM _batch GROUP BY day, channel, coalesce(campaign, '')
                ON CONFLICT (day, channel, campaign) DO UPDATE SET
                    amount = excluded.amount, currency = excluded.currency
                """
            )
            return self._count("spend") - before

        inserted = self._in_transaction({"_batch": batch}, work)
        return WriteResult(inserted=inserted, duplicates=batch.num_rows - inserted)

    # -- reads ----------------------------------------------------------------------------------
    def funnel_events(self, plan: FunnelPlan) -> pa.Table:
        sql, params = funnel_events_sql(plan)
        return self.con.sql(sql, params=params).to_arrow_table()

    def read_events(
        self,
        events: Sequence[str] | None = None,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        columns: Sequence[str] = ("customer_id", "event", "ts"),
        properties: Sequence[str] = (),
    ) -> pa.Table:
        sql, params = read_events_sql(events, since, until, columns, properties)
        return self.con.sql(sql, params=params).to_arrow_table()

    def read_customers(self, traits: Sequence[str] = ()) -> pa.Table:
        sql, params = read_customers_sql(traits)
        return self.con.sql(sql, params=params).to_arrow_table()

    def read_spend(self, since: date | None = None, until: date | None = None) -> pa.Table:
        sql = "SELECT * FROM spend WHERE day >= coalesce($1, DATE '0001-01-01') AND day < coalesce($2, DATE '9999-12-31') ORDER BY day, channel, campaign"
        return self.con.sql(sql, params=[since, until]).to_arrow_table()

    def counts(self) -> dict[str, int]:
        # customers_seen: the server's new customers may still be in seen_log only
        tables = {"events": "events", "customers": "customers_seen", "spend": "spend"}
        return {name: self._count(table) for name, table in tables.items()}

    def query(self, sql: str, params: list[object] | None = None) -> pa.Table:
        """Run read SQL built by loudou's own builders (never from user text)."""
        return self.con.sql(sql, params=params or []).to_arrow_table()

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> DuckDBStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
