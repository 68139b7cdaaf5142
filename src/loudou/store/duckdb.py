"""The default store: one embedded DuckDB file. The only module that calls DuckDB."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from loudou.errors import StoreError
from loudou.model.spec import FunnelSpec
from loudou.store.base import CUSTOMER_SCHEMA, EVENT_SCHEMA, SPEND_SCHEMA, WriteResult
from loudou.store.cache import EventCache
from loudou.store.duckdb_cache import CacheAbilities
from loudou.store.duckdb_server import ServerAbilities
from loudou.store.duckdb_sql import (
    funnel_events_sql,
    read_customers_sql,
    read_events_sql,
)

# An event's de-duplication key: a stable 128-bit hash of its id (md5 is fixed by its standard, so
# keys written by one DuckDB version match those of the next; 2^-128 odds of two ids colliding).
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


# Migrations in order; the schema version is the number applied. Append, never edit.
MIGRATIONS: list[Callable[[duckdb.DuckDBPyConnection], None]] = [_v1, _v2, _v3]
SCHEMA_VERSION = len(MIGRATIONS)


_ROW_GROUP = 122_880  # DuckDB's rows per row group


def _row_group_chunks(table: pa.Table) -> pa.Table:
    """``table`` in chunks of one DuckDB row group. DuckDB appends each Arrow chunk as a unit,
    in parallel; chunks that do not fill whole row groups leave partial ones that the commit
    then rewrites (twice the time, and twice the file size, for a bulk import)."""
    if table.num_rows <= _ROW_GROUP:
        return table
    return pa.Table.from_batches(
        table.combine_chunks().to_batches(max_chunksize=_ROW_GROUP), table.schema
    )


class DuckDBStore(ServerAbilities, CacheAbilities):
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
        self._cache: EventCache | None = None
        self._cache_lock = threading.Lock()
        self._writes = 0  # bumped on every write; cached traits are only valid for one value
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
            raise StoreError(
                "database needs a schema upgrade; open it once without read-only", "db"
            )
        for i in range(version, SCHEMA_VERSION):
            con.execute("BEGIN")
            MIGRATIONS[i](con)
            self.set_meta("schema_version", str(i + 1))
            con.execute("COMMIT")

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

    def _put_events(self, source: str) -> int:
        """Insert events from ``source`` (a relation of EVENT_SCHEMA named by loudou, never by
        users) inside the caller's transaction, skipping ids already stored and repeats within
        ``source`` (the first one wins); every customer seen exists in customers, with first/last
        seen times. Events are only appended, so the rows added are those from the old row count.

        The keys go into ``event_keys`` first (sorted, which makes the index insert cheaper); how
        many were new tells whether all rows, none, or only some need inserting: the common bulk
        cases (a new file, a file imported again) then need no join and no copy."""
        con = self.con
        rows = self._count(source)
        keys_before = self._count("event_keys")
        rows_before = self._count("events")
        new = int(
            self._scalar(  # type: ignore[call-overload]
                f"INSERT INTO event_keys SELECT {_EVENT_KEY} FROM {source} ORDER BY 1 "  # noqa: S608
                "ON CONFLICT DO NOTHING"  # a key repeated within source counts once
            )
            or 0
        )
        if new == rows:
            con.execute(f"INSERT INTO events SELECT {_EVENT_COLUMNS} FROM {source}")  # noqa: S608
        elif new:
            self._put_some_events(source, keys_before)
        if new:
            self._saw_customers(rows_before)
        return new

    def _put_some_events(self, source: str, keys_before: int) -> None:
        """Insert the rows of ``source`` whose key was new to ``event_keys`` (row ``keys_before``
        on), the first row of each key; rows keep their order."""
        con = self.con
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE _staged AS "  # noqa: S608
            f"SELECT {_EVENT_KEY} AS _k, {_EVENT_COLUMNS} FROM {source}"
        )
        try:
            con.execute(
                f"""
                INSERT INTO events SELECT {_EVENT_COLUMNS} FROM _staged WHERE rowid IN (
                    SELECT min(s.rowid) FROM _staged s JOIN event_keys k ON k.k = s._k
                    WHERE k.rowid >= $1 GROUP BY s._k
                ) ORDER BY rowid
                """,  # noqa: S608
                [keys_before],
            )
        finally:
            con.execute("DROP TABLE IF EXISTS _staged")

    def _saw_customers(self, rows_before: int) -> None:
        """First/last seen of the customers of events appended from row ``rows_before`` on. An
        UPDATE of the customers whose range grows and an INSERT of the new ones: DuckDB's
        ``ON CONFLICT DO UPDATE`` costs far more per row (seconds for 50k customers)."""
        con = self.con
        con.execute(
            "CREATE OR REPLACE TEMP TABLE _seen AS SELECT customer_id, min(ts) AS f, max(ts) AS l "
            "FROM events WHERE rowid >= $1 GROUP BY customer_id",
            [rows_before],
        )
        try:
            con.execute(
                """
                UPDATE customers SET
                    first_seen = least(coalesce(customers.first_seen, s.f), s.f),
                    last_seen = greatest(coalesce(customers.last_seen, s.l), s.l)
                FROM _seen s
                WHERE customers.customer_id = s.customer_id
                  AND (customers.first_seen IS NULL OR customers.last_seen IS NULL
                       OR s.f < customers.first_seen OR s.l > customers.last_seen)
                """
            )
            con.execute(  # the new ones; the key lookups cost less than scanning customers
                "INSERT INTO customers (customer_id, first_seen, last_seen) "
                "SELECT customer_id, f, l FROM _seen ON CONFLICT DO NOTHING"
            )
        finally:
            con.execute("DROP TABLE IF EXISTS _seen")

    def _merge_traits(self, source: str) -> int:
        """Merge traits from ``source`` (CUSTOMER_SCHEMA) inside the caller's transaction; rows for
        one customer are merged in order, then into the store. Returns customers new to the store."""
        con = self.con
        new = self._scalar(
            f"SELECT count(DISTINCT customer_id) FROM {source} "  # noqa: S608
            "WHERE customer_id NOT IN (SELECT customer_id FROM customers)"
        )
        con.execute(
            f"""
            INSERT INTO customers (customer_id, traits)
            SELECT customer_id,
                   list_reduce(list(CAST(traits AS JSON) ORDER BY rn),
                               lambda x, y: json_merge_patch(x, y))
            FROM (SELECT *, row_number() OVER () AS rn FROM {source})
            GROUP BY customer_id
            ON CONFLICT (customer_id) DO UPDATE SET
                traits = json_merge_patch(customers.traits, excluded.traits)
            """  # noqa: S608
        )
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

    def insert_events(self, batch: pa.Table) -> WriteResult:
        self._writes += 1
        batch = _row_group_chunks(batch.select(EVENT_SCHEMA.names).cast(EVENT_SCHEMA))
        if batch.num_rows == 0:
            return WriteResult()
        inserted = self._in_transaction({"_batch": batch}, lambda: self._put_events("_batch"))
        return WriteResult(inserted=inserted, duplicates=batch.num_rows - inserted)

    def upsert_customers(self, batch: pa.Table) -> WriteResult:
        self._writes += 1
        batch = batch.select(CUSTOMER_SCHEMA.names).cast(CUSTOMER_SCHEMA)
        if batch.num_rows == 0:
            return WriteResult()
        inserted = self._in_transaction({"_batch": batch}, lambda: self._merge_traits("_batch"))
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
    def funnel_events(self, spec: FunnelSpec) -> pa.Table:
        sql, params = funnel_events_sql(spec)
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
        try:
            sql, params = read_events_sql(events, since, until, columns, properties)
        except ValueError as e:
            raise StoreError(str(e), "properties") from None
        return self.con.sql(sql, params=params).to_arrow_table()

    def read_customers(self, traits: Sequence[str] = ()) -> pa.Table:
        try:
            sql, params = read_customers_sql(traits)
        except ValueError as e:
            raise StoreError(str(e), "traits") from None
        return self.con.sql(sql, params=params).to_arrow_table()

    def read_spend(self, since: date | None = None, until: date | None = None) -> pa.Table:
        sql = "SELECT * FROM spend WHERE day >= coalesce($1, DATE '0001-01-01') AND day < coalesce($2, DATE '9999-12-31') ORDER BY day, channel, campaign"
        return self.con.sql(sql, params=[since, until]).to_arrow_table()

    def counts(self) -> dict[str, int]:
        return {t: self._count(t) for t in ("events", "customers", "spend")}

    def query(self, sql: str, params: list[object] | None = None) -> pa.Table:
        """Run read SQL built by loudou's own builders (never from user text)."""
        return self.con.sql(sql, params=params or []).to_arrow_table()

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> DuckDBStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
