"""The Store protocol: everything analyses and importers need from storage, and nothing more.

Analyses never talk to a database directly. A ClickHouse store later implements the same protocol;
optional abilities get protocols of their own rather than widening this one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import pyarrow as pa

if TYPE_CHECKING:
    from loudou.backends.cache import EventCache
    from loudou.model.plan import FunnelPlan

# Columns of the events table (DESIGN §3). `properties` is JSON text; promoted columns are pulled out
# of the properties because they pay for themselves (sessions, attribution, revenue).
EVENT_SCHEMA = pa.schema(
    [
        ("event_id", pa.string()),
        ("customer_id", pa.string()),
        ("event", pa.string()),
        ("ts", pa.timestamp("us")),  # UTC, naive
        ("session_id", pa.string()),
        ("channel", pa.string()),
        ("campaign", pa.string()),
        ("revenue", pa.float64()),
        ("properties", pa.string()),
    ]
)
PROMOTED_COLUMNS = ("session_id", "channel", "campaign", "revenue")
NUMERIC_COLUMNS = ("revenue",)

CUSTOMER_SCHEMA = pa.schema(
    [
        ("customer_id", pa.string()),
        ("traits", pa.string()),  # JSON object text; merged into existing traits, latest wins
    ]
)

SPEND_SCHEMA = pa.schema(
    [
        ("day", pa.date32()),
        ("channel", pa.string()),
        ("campaign", pa.string()),
        ("amount", pa.float64()),
        ("currency", pa.string()),
    ]
)


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with exactly the columns and types of ``schema``, casting only where needed: rows
    from the tracking parser already are, and dictionary-encoded text (a Parquet import's event
    names and channels) stays encoded where the schema has text. DuckDB stores both alike, and
    decoding would cost an import more than reading the file did."""
    if table.schema.equals(schema):
        return table
    table = table.select(schema.names)
    fields = [_kept(f, table.schema.field(f.name).type) for f in schema]
    return table.cast(pa.schema(fields))


def _kept(field: pa.Field, given: pa.DataType) -> pa.Field:
    text = (pa.string(), pa.large_string())
    if field.type in text and pa.types.is_dictionary(given) and given.value_type in text:
        return field.with_type(given)
    return field


@dataclass
class WriteResult:
    """What one write did: rows new to the store, and rows it already had (idempotent re-imports)."""

    inserted: int = 0
    duplicates: int = 0

    def __iadd__(self, other: WriteResult) -> WriteResult:
        self.inserted += other.inserted
        self.duplicates += other.duplicates
        return self


@runtime_checkable
class CachedStore(Protocol):
    """Optional ability: a columnar event cache for fast funnels (see loudou.backends.cache)."""

    def event_cache(self, properties: Sequence[str] = (), traits: Sequence[str] = ()) -> EventCache:
        """The cache brought up to date with the events table, with these event properties
        and customer traits dictionary-encoded alongside."""
        ...

    def use_event_cache(self) -> bool:
        """Whether ``engine="auto"`` should use the cache for the funnel being asked now."""
        ...


@runtime_checkable
class PreparedWrites(Protocol):
    """Optional ability: part of an event write's work done ahead, in the caller's thread. An
    import prepares its next write while the previous one runs (writes are its critical path);
    what is prepared is the backend's own business (DuckDB: the batch's event keys and each
    customer's time range)."""

    def prepare_events(self, batch: pa.Table, more: int = 0, ranges: bool = True) -> object:
        """Work for writing ``batch`` later; ``more``: events still to come after it (room can
        be made now); ``ranges``: whether customers' time ranges are worth preparing (not for a
        re-import, whose rows are mostly stored already)."""
        ...

    def insert_prepared(self, batch: pa.Table, prepared: object) -> WriteResult:
        """``insert_events`` with the work :meth:`prepare_events` did for this very batch."""
        ...


@runtime_checkable
class Store(Protocol):
    """Narrow storage interface shared by every backend."""

    path: str

    def insert_events(self, batch: pa.Table) -> WriteResult:
        """Add events (EVENT_SCHEMA); rows whose event_id is already stored are skipped."""
        ...

    def upsert_customers(self, batch: pa.Table) -> WriteResult:
        """Merge traits (CUSTOMER_SCHEMA) into customers, latest value wins."""
        ...

    def insert_spend(self, batch: pa.Table) -> WriteResult:
        """Add or replace spend rows (SPEND_SCHEMA), keyed by day, channel and campaign."""
        ...

    def funnel_events(self, plan: FunnelPlan) -> pa.Table:
        """Events relevant to a funnel plan (``loudou.model.plan``), sorted by group and time, with a step bit mask per row.

        Columns: ``customer_id``, ``group_key`` (session and held values joined, or ''),
        ``t`` (int64 microseconds UTC), ``mask`` (uint64: bit k = step k+1, bit n+j = exclusion j),
        and ``breakdown`` (string or null) when the spec has a breakdown.
        """
        ...

    def read_events(
        self,
        events: Sequence[str] | None = None,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        columns: Sequence[str] = ("customer_id", "event", "ts"),
        properties: Sequence[str] = (),
    ) -> pa.Table:
        """Events (optionally only these names, with since <= ts < until), sorted by customer and
        time. ``columns`` come from EVENT_SCHEMA; each of ``properties`` becomes a string column of
        that name (null when absent)."""
        ...

    def read_customers(self, traits: Sequence[str] = ()) -> pa.Table:
        """customer_id, first_seen, last_seen, and each trait as a string column of that name."""
        ...

    def read_spend(self, since: date | None = None, until: date | None = None) -> pa.Table:
        """Spend rows (SPEND_SCHEMA) with since <= day < until, sorted by day, channel, campaign."""
        ...

    def counts(self) -> dict[str, int]:
        """Row counts per table, for summaries."""
        ...

    def get_meta(self, key: str) -> str | None: ...

    def set_meta(self, key: str, value: str) -> None: ...

    def close(self) -> None: ...


# -- optional abilities (the collection server needs them; analyses do not) -------------------------


@dataclass(frozen=True)
class ApiKey:
    """One API key as stored: only a hash of the secret, never the secret itself."""

    key_id: str
    role: str  # write | read | admin
    key_hash: str
    created_at: datetime
    revoked_at: datetime | None = None
    name: str | None = None


@runtime_checkable
class KeyStore(Protocol):
    """Stores hashed API keys for the server."""

    def add_key(self, key: ApiKey) -> None: ...

    def list_keys(self) -> list[ApiKey]: ...

    def revoke_key(self, key_id: str) -> bool:
        """Mark a key revoked; False if no such key (revoking twice is fine)."""
        ...


@runtime_checkable
class Collector(Protocol):
    """Live ingestion: one durable transaction per group of requests, with identity linking."""

    def collect(
        self, events: pa.Table, customers: pa.Table, links: Sequence[tuple[str, str]]
    ) -> WriteResult:
        """In one transaction: link each (alias_id, customer_id) pair (first link of an alias wins,
        earlier events and traits of a newly linked alias move to its customer), then add events and
        merge traits, both with ids resolved through the links. Durable when it returns."""
        ...

    def reader(self) -> Store:
        """Another connection to the same database in this process, for reads while writing."""
        ...

    def external_write(self) -> None:
        """Called on a reader after another connection committed, so caches can be refreshed."""
        ...


@runtime_checkable
class Upkeep(Protocol):
    """Optional ability: upkeep a store's single writer runs between its commits (DuckDB moves
    its WAL into the database file then, and folds logged first/last seen times). The writer
    knows when it is idle; the store knows what upkeep it needs and when."""

    idle_poll: float  # seconds between ``when_idle`` calls while nothing is written

    def start_writing(self) -> None:
        """Once, before the writer's first commit."""
        ...

    def after_commit(self) -> bool:
        """After a commit: upkeep that should not wait for idle time; True if some ran."""
        ...

    def when_idle(self, idle_seconds: float) -> bool:
        """Nothing written for ``idle_seconds``: True if upkeep ran (not asked again until
        the next commit), False to be asked again later."""
        ...


@runtime_checkable
class EventBrowser(Protocol):
    """Paged reads for the query API: one customer's profile, filtered event pages."""

    def get_customer(self, customer_id: str) -> dict[str, object] | None:
        """customer_id, traits (JSON text), first_seen, last_seen and aliases, or None."""
        ...

    def browse_events(
        self,
        *,
        customer_id: str | None = None,
        events: Sequence[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        after: tuple[datetime, str] | None = None,
        limit: int = 100,
    ) -> pa.Table:
        """Events (EVENT_SCHEMA) in (ts, event_id) order, strictly after the ``after`` cursor."""
        ...

    def resolve_id(self, any_id: str) -> str:
        """The customer an id belongs to: itself, or the customer it was linked to as alias."""
        ...
