"""What the collection server needs from the DuckDB store: API keys, identity linking in one
transaction with the events (group commit), and paged reads. Mixed into ``DuckDBStore``.

Identity map: ``identities(alias_id → customer_id)``. An alias is an anonymous id (or an earlier
user id, via ``alias``) that belongs to a customer; the first link of an alias wins, and
``customer_id`` is never itself an alias, so one lookup resolves any id. Linking re-keys what the
store already holds for the alias (events and traits move to the customer), and later events sent
under the alias are resolved at write time, so funnel steps done before sign-up count for the
customer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from loudou.backends.base import CUSTOMER_SCHEMA, EVENT_SCHEMA, ApiKey, WriteResult, conform
from loudou.backends.keyset import StoredKeys

if TYPE_CHECKING:
    from loudou.backends.duckdb import DuckDBStore

_RESOLVED_TRAITS = (
    "(SELECT coalesce(i.customer_id, t.customer_id) AS customer_id, t.traits "
    "FROM _traits t LEFT JOIN identities i ON i.alias_id = t.customer_id)"
)
_KNOWN_LIMIT = 1_000_000  # linked aliases remembered by the writer before starting over
# Up to this many aliases the writer holds all of them, so a batch none of whose customer ids is
# an alias (the common case) skips the identity join; past it, every batch is joined.
_ALL_ALIASES_LIMIT = 2_000_000
_LINK_SCHEMA = pa.schema([("alias_id", pa.string()), ("customer_id", pa.string())])


def resolve_links(links: Sequence[tuple[str, str]], existing: dict[str, str]) -> dict[str, str]:
    """New aliases from ``links`` given the stored map: first link of an alias wins, targets are
    resolved to their customer, self-links and cycles are dropped. Pure, so it is easy to test."""
    new: dict[str, str] = {}

    def canonical(x: str) -> str:
        for _ in range(len(new) + 2):
            nxt = existing.get(x) or new.get(x)
            if nxt is None:
                return x
            x = nxt
        return x

    for alias, target in links:
        if alias in existing or alias in new:
            continue
        to = canonical(target)
        if to != alias:
            new[alias] = to
    return {a: canonical(t) for a, t in new.items()}


class ServerAbilities:
    """KeyStore, Collector and EventBrowser for DuckDBStore."""

    con: duckdb.DuckDBPyConnection
    path: str
    _in_transaction: Callable[[dict[str, pa.Table], Callable[[], int]], int]
    _writing_events: Callable[[], AbstractContextManager[None]]
    _put_events: Callable[..., int]  # (batch, log_seen=False)
    _catch_up: Callable[[], int]
    _registered: Callable[[str, pa.Table], AbstractContextManager[None]]
    _keys: StoredKeys
    log_traits: Callable[[str], None]
    _fold_seen: Callable[[], None]
    _cache: Any  # DuckDBStore's in-process event cache
    _writes: int
    _linked_aliases_: set[str] | None = None
    _all_aliases_: set[str] | None = None  # every alias in identities (see _ALL_ALIASES_LIMIT)
    _aliases_count: int = -1  # rows of identities that _all_aliases_ reflects

    # -- keys -----------------------------------------------------------------------------------
    def add_key(self, key: ApiKey) -> None:
        self.con.execute(
            "INSERT INTO api_keys VALUES (?, ?, ?, ?, ?, ?)",
            [key.key_id, key.role, key.key_hash, key.created_at, key.revoked_at, key.name],
        )

    def list_keys(self) -> list[ApiKey]:
        rows = self.con.execute(
            "SELECT key_id, role, key_hash, created_at, revoked_at, name FROM api_keys "
            "ORDER BY created_at, key_id"
        ).fetchall()
        return [ApiKey(*row) for row in rows]

    def revoke_key(self, key_id: str) -> bool:
        rows = self.con.execute(
            "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()::TIMESTAMP) "
            "WHERE key_id = ? RETURNING key_id",
            [key_id],
        ).fetchall()
        return bool(rows)

    @property
    def _linked_aliases(self) -> set[str]:
        """Aliases this connection knows to be linked (a cache: the table is the truth)."""
        if self._linked_aliases_ is None:
            self._linked_aliases_ = set()
        return self._linked_aliases_

    def _may_be_aliases(self, customer_ids: pa.ChunkedArray, count: int) -> bool:
        """Whether some of these ids may be aliases: False only when surely none is. The set of
        all aliases is loaded once and kept up to date by ``_link``; the row count of identities
        in this transaction, ``count`` (only ever inserted into), tells when
        someone else added some, or a link was rolled back: then the set is loaded again."""
        if count != self._aliases_count:
            self._aliases_count = int(count)
            self._all_aliases_ = None
            if count <= _ALL_ALIASES_LIMIT:
                rows = self.con.execute("SELECT alias_id FROM identities").fetchall()
                self._all_aliases_ = {a for (a,) in rows}
        aliases = self._all_aliases_
        if aliases is None:
            return True
        return not aliases.isdisjoint(customer_ids.unique().to_pylist())

    def _remember_aliases(self, new: Sequence[str]) -> None:
        """``_link`` is inserting these aliases in the current transaction."""
        if self._all_aliases_ is not None and self._aliases_count + len(new) <= _ALL_ALIASES_LIMIT:
            self._all_aliases_.update(new)
            self._aliases_count += len(new)

    # -- live ingestion ---------------------------------------------------------------------------
    def collect(
        self, events: pa.Table, customers: pa.Table, links: Sequence[tuple[str, str]]
    ) -> WriteResult:
        events = conform(events, EVENT_SCHEMA)
        customers = conform(customers, CUSTOMER_SCHEMA)

        def work() -> int:
            aliases = self._catch_up()  # identities rows, plus those _link adds
            if links:
                aliases += self._link(links)
            inserted = 0
            if events.num_rows:
                # resolved through the identity map only if some ids may be aliases (after _link)
                ids = events.column("customer_id")
                maybe = self._may_be_aliases(ids, aliases)
                resolved = self._resolved(events) if maybe else events
                inserted = self._put_events(resolved, log_seen=True)
            if customers.num_rows:
                self.log_traits(_RESOLVED_TRAITS)
            return inserted

        tables = {}
        if customers.num_rows:  # registering a table costs about as much as a small insert
            tables["_traits"] = customers
        with self._writing_events():
            inserted = self._in_transaction(tables, work)
        self.external_write()  # this store's own cached traits too
        return WriteResult(inserted=inserted, duplicates=events.num_rows - inserted)

    def _resolved(self, events: pa.Table) -> pa.Table:
        """``events`` with each customer id that is an alias replaced by its customer, in order."""
        ids = events.column("customer_id")
        with self._registered("_ids", pa.table({"alias_id": pc.unique(ids)})):
            links = self.con.sql(
                "SELECT alias_id, customer_id FROM identities WHERE alias_id IN "
                "(SELECT alias_id FROM _ids)"
            ).to_arrow_table()
        if links.num_rows == 0:
            return events
        at = pc.index_in(ids, value_set=links.column("alias_id"))
        customer = pc.coalesce(pc.take(links.column("customer_id"), at), ids)
        return events.set_column(
            events.schema.get_field_index("customer_id"), "customer_id", customer
        )

    def _link(self, links: Sequence[tuple[str, str]]) -> int:
        """Add new aliases and move what the store holds under them to their customers.
        Returns the number of aliases added."""
        con = self.con
        # An alias, once linked, stays linked (first link wins): skip those known to be linked.
        known = self._linked_aliases
        links = [pair for pair in links if pair[0] not in known]
        if not links:
            return 0
        ids = sorted({x for pair in links for x in pair})
        existing = dict(
            con.execute(
                "SELECT alias_id, customer_id FROM identities WHERE alias_id IN (SELECT unnest($1))",
                [ids],
            ).fetchall()
        )
        new = resolve_links(links, existing)
        if len(known) > _KNOWN_LIMIT:
            known.clear()
        known.update(existing)
        known.update(new)
        if not new:
            return 0
        # The customer's own traits win over the alias's: both must be in customers first.
        self._fold_seen()
        self._remember_aliases(list(new))
        self._keys.linked(list(new))
        table = pa.table(
            {"alias_id": list(new), "customer_id": list(new.values())}, schema=_LINK_SCHEMA
        )
        con.register("_new", table)
        try:
            con.execute(
                "INSERT INTO identities SELECT alias_id, customer_id, now()::TIMESTAMP FROM _new"
            )
            # Keep the map flat: whatever pointed at a new alias now points at its customer.
            con.execute(
                "UPDATE identities SET customer_id = n.customer_id FROM _new n "
                "WHERE identities.customer_id = n.alias_id"
            )
            self._rekey_events(con)
            con.execute(
                "UPDATE seen_log SET customer_id = n.customer_id FROM _new n "
                "WHERE seen_log.customer_id = n.alias_id"
            )
            # The customer's own traits win over those gathered while anonymous.
            con.execute(
                """
                INSERT INTO customers (customer_id, traits, first_seen, last_seen)
                SELECT n.customer_id,
                       list_reduce(list(CAST(c.traits AS JSON)), lambda x, y: json_merge_patch(x, y)),
                       min(c.first_seen), max(c.last_seen)
                FROM customers c JOIN _new n ON c.customer_id = n.alias_id
                GROUP BY n.customer_id
                ON CONFLICT (customer_id) DO UPDATE SET
                    traits = json_merge_patch(excluded.traits, customers.traits),
                    first_seen = least(coalesce(customers.first_seen, excluded.first_seen), excluded.first_seen),
                    last_seen = greatest(coalesce(customers.last_seen, excluded.last_seen), excluded.last_seen)
                """
            )
            con.execute("DELETE FROM customers WHERE customer_id IN (SELECT alias_id FROM _new)")
        finally:
            con.unregister("_new")
        return len(new)

    @staticmethod
    def _rekey_events(con: duckdb.DuckDBPyConnection) -> None:
        """Move the events of the aliases in ``_new`` to their customers. The aliases' first/last
        seen bound their events' times, so the UPDATE reads only the row groups whose times
        overlap (DuckDB's min/max per row group): a visitor's recent events, not the whole
        table, whose scan grows with every event stored. Aliases with no row anywhere have no
        events: nothing to do. A range not known (NULL) falls back to the whole table."""
        ((rows, unknown, first, last),) = con.execute(
            """
            SELECT count(*), count(*) FILTER (WHERE f IS NULL OR l IS NULL), min(f), max(l) FROM (
                SELECT c.first_seen AS f, c.last_seen AS l
                FROM customers c JOIN _new n ON c.customer_id = n.alias_id
                UNION ALL
                SELECT s.first_seen, s.last_seen FROM seen_log s JOIN _new n ON s.customer_id = n.alias_id
            )
            """
        ).fetchall()
        if rows == 0:
            return
        sql = (
            "UPDATE events SET customer_id = n.customer_id FROM _new n "
            "WHERE events.customer_id = n.alias_id"
        )
        if unknown:
            con.execute(sql)
        else:
            con.execute(sql + " AND events.ts BETWEEN $1 AND $2", [first, last])

    def external_write(self) -> None:
        """Another connection of this process committed: cached traits are stale. (Cached
        events catch up by themselves: appends by row id, identity links through the rows
        ``identities`` gained; see duckdb_cache.)"""
        lock = getattr(self, "_cache_lock", None)
        if lock is None:
            return
        with lock:
            self._writes = getattr(self, "_writes", 0) + 1

    def reader(self) -> DuckDBStore:
        return type(self).from_connection(self.path, self.con.cursor())  # type: ignore[attr-defined]

    # -- paged reads ------------------------------------------------------------------------------
    def get_customer(self, customer_id: str) -> dict[str, object] | None:
        # seen_log and traits_log (not yet folded into customers) by hand: a filter on the
        # customers_seen view would scan all customers instead of using the key's index
        rows = self.con.execute(
            "SELECT coalesce(c.customer_id, l.customer_id, t.customer_id), CAST(CASE WHEN "
            "t.traits IS NULL THEN coalesce(c.traits, '{}') ELSE json_merge_patch(coalesce("
            "c.traits, '{}'), t.traits) END AS VARCHAR), "
            "least(c.first_seen, l.first_seen), greatest(c.last_seen, l.last_seen) "
            "FROM (SELECT * FROM customers WHERE customer_id = $1) c FULL JOIN "
            "(SELECT $1 AS customer_id, min(first_seen) AS first_seen, max(last_seen) AS last_seen "
            " FROM seen_log WHERE customer_id = $1 HAVING count(*) > 0) l ON true FULL JOIN "
            "(SELECT $1 AS customer_id, list_reduce(list(traits ORDER BY rowid), "
            " lambda x, y: json_merge_patch(x, y)) AS traits "
            " FROM traits_log WHERE customer_id = $1 HAVING count(*) > 0) t ON true",
            [customer_id],
        ).fetchall()
        if not rows:
            return None
        aliases = self.con.execute(
            "SELECT alias_id FROM identities WHERE customer_id = $1 ORDER BY alias_id",
            [customer_id],
        ).fetchall()
        cid, traits, first, last = rows[0]
        return {
            "customer_id": cid,
            "traits": traits,
            "first_seen": first,
            "last_seen": last,
            "aliases": [a for (a,) in aliases],
        }

    def resolve_id(self, any_id: str) -> str:
        """The customer an id (alias or customer id) belongs to."""
        rows = self.con.execute(
            "SELECT customer_id FROM identities WHERE alias_id = $1", [any_id]
        ).fetchall()
        return str(rows[0][0]) if rows else any_id

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
        where, params = ["TRUE"], []  # type: list[str], list[Any]

        def bind(value: Any) -> str:
            params.append(value)
            return f"${len(params)}"

        if customer_id is not None:
            where.append(f"customer_id = {bind(customer_id)}")
        if events:
            where.append(f"event IN (SELECT unnest({bind(list(events))}))")
        if since is not None:
            where.append(f"ts >= {bind(since)}")
        if until is not None:
            where.append(f"ts < {bind(until)}")
        if after is not None:
            t, eid = bind(after[0]), bind(after[1])
            where.append(f"(ts > {t} OR (ts = {t} AND event_id > {eid}))")
        sql = (
            "SELECT * FROM events WHERE "  # noqa: S608 (fragments are ours; values are bound)
            + " AND ".join(where)
            + f" ORDER BY ts, event_id LIMIT {int(limit)}"
        )
        return self.con.sql(sql, params=params).to_arrow_table()
