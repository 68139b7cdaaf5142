"""Exactly-once event storage with the in-memory key set: repeats within and across batches,
rolled-back writes, several stores and processes on one file, and the upgrade from schema 3."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import loudou
from loudou.backends import duckdb as duckdb_store
from loudou.backends.base import CUSTOMER_SCHEMA
from loudou.backends.duckdb import _ROW_GROUP, SCHEMA_VERSION, DuckDBStore, _row_group_chunks
from loudou.backends.keyset import StoredKeys
from loudou.errors import StoreError

from journeys import database_at_version, events_table, murmur


def _batch(ids: list[str], customer: str = "c", start: int = 0) -> pa.Table:
    """Events with these ids, one minute apart, for one customer."""
    table = events_table({customer: [("view", start + 60 * i) for i in range(len(ids))]})
    return table.set_column(0, "event_id", pa.array(ids, pa.string()))


def _stored_ids(store: DuckDBStore) -> list[str]:
    return store.query("SELECT event_id FROM events ORDER BY rowid").column(0).to_pylist()


def _keys_match_events(store: DuckDBStore) -> bool:
    """event_keys holds exactly one key per stored event: the mmh3 package's MurmurHash3 x64 128
    of its id."""
    ids = store.query("SELECT event_id FROM events").column(0).to_pylist()
    keys = store.query("SELECT hi, lo FROM event_keys").to_pylist()
    return sorted((k["hi"] << 64) | k["lo"] for k in keys) == sorted(map(murmur, ids))


def test_repeats_within_and_across_batches_are_stored_once():
    store = DuckDBStore(":memory:")
    first = store.insert_events(_batch(["a", "b", "a", "c", "b"]))
    assert (first.inserted, first.duplicates) == (3, 2)
    again = store.insert_events(_batch(["c", "d", "a", "d", "e"]))
    assert (again.inserted, again.duplicates) == (2, 3)
    assert _stored_ids(store) == ["a", "b", "c", "d", "e"]
    assert _keys_match_events(store)


def test_a_rolled_back_write_leaves_the_key_set_as_it_was(tmp_path):
    store = DuckDBStore(str(tmp_path / "x.duckdb"))
    store.insert_events(_batch(["a", "b"]))
    before = (len(store._keys.keys), store._keys.absorbed)  # type: ignore[arg-type]
    bad = _batch(["b", "c", "d"]).set_column(1, "customer_id", pa.array(["x", None, "y"]))
    with pytest.raises(duckdb.ConstraintException):  # customer_id NOT NULL: fails after claiming
        store.insert_events(bad)
    assert (len(store._keys.keys), store._keys.absorbed) == before  # type: ignore[arg-type]
    fixed = store.insert_events(_batch(["b", "c", "d"]))
    assert (fixed.inserted, fixed.duplicates) == (2, 1)
    assert _stored_ids(store) == ["a", "b", "c", "d"] and _keys_match_events(store)


def test_work_prepared_by_an_import_stores_the_same_as_the_stores_own(monkeypatch):
    """An import has the store hash ids and group customers' times in its reading thread and
    passes them along (``prepare_events``, the PreparedWrites ability); they must be of that very batch, and the time ranges count only when
    every row of the batch is new (a repeated id's time is not a stored event's)."""
    import loudou.backends.duckdb as duckdb_store

    monkeypatch.setattr(duckdb_store, "_SEEN_CUSTOMERS", 0)  # ranges of any batch via MERGE

    batch = _batch(["a", "b", "a", "c"], start=600)
    store = DuckDBStore(":memory:")
    first = store.insert_prepared(batch, store.prepare_events(batch, 100_000))
    assert (first.inserted, first.duplicates) == (3, 1)
    assert _stored_ids(store) == ["a", "b", "c"] and _keys_match_events(store)
    room = store._keys.keys.nbytes  # type: ignore[union-attr]
    assert room >= 75_000 / 0.75 * 16  # room for the rest at this batch's share of new keys
    store.insert_prepared(
        batch, store.prepare_events(batch, 10_000_000)
    )  # nothing new: no more room
    assert store._keys.keys.nbytes == room  # type: ignore[union-attr]
    again = _batch(["c", "d"], start=0)  # "c" again, at an earlier time: not a stored time
    assert store.insert_prepared(again, store.prepare_events(again, 0)).inserted == 1
    seen = store.query("SELECT epoch(first_seen) AS f, epoch(last_seen) AS l FROM customers")
    times = store.query("SELECT epoch(min(ts)) AS f, epoch(max(ts)) AS l FROM events")
    assert seen.to_pylist() == times.to_pylist()
    with pytest.raises(ValueError, match="1 event keys for 2 events"):
        store.insert_prepared(_batch(["e", "f"]), store.prepare_events(_batch(["x"]), 0))
    assert _stored_ids(store) == ["a", "b", "c", "d"] and _keys_match_events(store)


def test_whole_row_groups_reach_duckdb_as_they_are_and_others_are_rechunked():
    rows = 2 * _ROW_GROUP + 5
    table = pa.table({"a": pa.array(range(rows)), "b": pa.array([str(i) for i in range(rows)])})
    aligned = pa.Table.from_batches(table.to_batches(max_chunksize=_ROW_GROUP))
    assert _row_group_chunks(aligned) is aligned
    uneven = pa.Table.from_batches(table.to_batches(max_chunksize=1000))
    chunks = _row_group_chunks(uneven)
    assert [len(c) for c in chunks.column("b").chunks] == [_ROW_GROUP, _ROW_GROUP, 5]
    assert chunks.equals(table)
    one = table.combine_chunks()  # one chunk longer than a row group: split
    assert [len(c) for c in _row_group_chunks(one).column("a").chunks] == [
        _ROW_GROUP,
        _ROW_GROUP,
        5,
    ]
    mixed = pa.table({"a": aligned.column("a"), "b": uneven.column("b")})  # columns chunked apart
    assert [len(c) for c in _row_group_chunks(mixed).column("a").chunks] == [
        _ROW_GROUP,
        _ROW_GROUP,
        5,
    ]
    # Parquet read with dictionaries: batches break at the file's row groups, each with its own
    # dictionary; only the straddling rows are joined, and the values stay the same.
    sizes = [_ROW_GROUP, _ROW_GROUP - 10_240, 10_240 + 7, _ROW_GROUP - 7, 5]
    starts = np.cumsum([0, *sizes])
    encoded = pa.Table.from_batches(
        [
            pa.record_batch(
                {
                    "a": pa.array(range(a, b)),
                    "e": pa.array([f"e{(i * k) % 5}" for i in range(a, b)]).dictionary_encode(),
                }
            )
            for k, (a, b) in enumerate(zip(starts[:-1], starts[1:], strict=True), start=1)
        ]
    )
    chunks = _row_group_chunks(encoded)
    assert [len(c) for c in chunks.column("e").chunks] == [_ROW_GROUP] * 3 + [5]
    first = [t.column("a").chunks[0].buffers()[1].address for t in (chunks, encoded)]
    assert first[0] == first[1]  # a whole chunk is not copied
    assert chunks.to_pylist() == encoded.to_pylist()


def test_a_new_store_keeps_ids_with_zstd_and_an_upgraded_one_keeps_its_events(tmp_path):
    """Migration 7 rebuilds an empty events table only (see ``_v7``)."""

    def layout(store: DuckDBStore) -> str:
        return store.query("SELECT sql FROM duckdb_tables() WHERE table_name = 'events'")["sql"][
            0
        ].as_py()

    new = DuckDBStore(str(tmp_path / "new.duckdb"))
    new.insert_events(_batch([f"e{i}" for i in range(3000)]))
    new.con.execute("CHECKPOINT")
    assert layout(new).count("USING COMPRESSION ZSTD") == 3
    used = new.query(
        "SELECT DISTINCT column_name, compression FROM pragma_storage_info('events') "
        "WHERE column_name IN ('event_id', 'customer_id', 'session_id') AND segment_type = 'VARCHAR'"
    ).to_pylist()
    assert {r["compression"] for r in used} == {"ZSTD"} and len(used) == 3
    old_path = tmp_path / "old.duckdb"
    database_at_version(old_path, 2, _batch(["a", "b"]))
    old = DuckDBStore(str(old_path))
    assert old.schema_version == SCHEMA_VERSION and "COMPRESSION" not in layout(old)
    assert _stored_ids(old) == ["a", "b"]


def test_missing_event_ids_are_refused_naming_the_field():
    store = DuckDBStore(":memory:")
    with pytest.raises(StoreError) as e:
        store.insert_events(_batch(["a", "b"]).set_column(0, "event_id", pa.array(["a", None])))
    assert e.value.field == "event_id"
    assert store.counts()["events"] == 0


def test_two_stores_of_one_file_share_what_is_stored(tmp_path):
    path = str(tmp_path / "x.duckdb")
    one, two = DuckDBStore(path), DuckDBStore(path)  # one DuckDB database in this process
    assert one.insert_events(_batch(["a", "b"])).inserted == 2
    assert two.insert_events(_batch(["b", "c"])).inserted == 1
    assert one.insert_events(_batch(["c", "d", "a"])).inserted == 1
    assert _stored_ids(one) == ["a", "b", "c", "d"]


def test_a_store_catches_up_with_writes_it_did_not_make(tmp_path):
    """A store whose key set is its own (as in another process) reads the keys others added."""
    path = str(tmp_path / "x.duckdb")
    one, two = DuckDBStore(path), DuckDBStore(path)
    two._keys = StoredKeys()
    assert one.insert_events(_batch(["a", "b"])).inserted == 2  # before two's set is loaded
    assert two.insert_events(_batch(["b", "c"])).inserted == 1  # loads the set
    assert one.insert_events(_batch(["c", "d"])).inserted == 1  # one catches up on "c"
    assert two.insert_events(_batch(["d", "e", "a"])).inserted == 1  # two catches up on "d"
    assert _stored_ids(one) == ["a", "b", "c", "d", "e"] and _keys_match_events(one)


def _write_elsewhere(path: Path, ids: list[str]) -> int:
    """Events with these ids written by another process; returns how many it stored."""
    script = textwrap.dedent(
        f"""
        import pyarrow as pa
        from loudou.backends.duckdb import DuckDBStore
        from journeys import events_table
        t = events_table({{"p": [("view", 60 * i) for i in range({len(ids)})]}})
        t = t.set_column(0, "event_id", pa.array({ids!r}))
        print(DuckDBStore({str(path)!r}).insert_events(t).inserted)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],  # tests/, where journeys.py is
    )
    return int(out.stdout)


def test_another_process_writing_between_two_writes_of_this_one(tmp_path):
    path = tmp_path / "x.duckdb"
    store = DuckDBStore(str(path))
    store.insert_events(_batch(["a", "b"]))
    store.close()  # the key set of this process stays (the store object lives on)
    assert _write_elsewhere(path, ["b", "x"]) == 1
    again = DuckDBStore(str(path))
    assert again._keys is store._keys  # the same cache, now behind the file
    assert again.insert_events(_batch(["x", "y", "a"])).inserted == 1
    assert _stored_ids(again) == ["a", "b", "x", "y"] and _keys_match_events(again)


def test_a_database_replaced_while_closed_is_not_taken_for_the_old_one(tmp_path):
    path = tmp_path / "x.duckdb"
    store = DuckDBStore(str(path))
    store.insert_events(_batch(["a", "b"]))
    store.close()  # its key set stays, remembering a and b
    path.unlink()
    assert _write_elsewhere(path, ["x", "y", "z"]) == 3  # a new database, with more rows
    fresh = DuckDBStore(str(path))
    assert fresh.insert_events(_batch(["a", "z"])).inserted == 1  # "a" is new to this one
    assert _stored_ids(fresh) == ["x", "y", "z", "a"] and _keys_match_events(fresh)


def test_first_and_last_seen_follow_every_write_and_link():
    store = DuckDBStore(":memory:")
    t0 = datetime(2025, 1, 1)

    def seen() -> dict[str, tuple[datetime, datetime]]:
        rows = store.query("SELECT customer_id, first_seen, last_seen FROM customers").to_pylist()
        return {r["customer_id"]: (r["first_seen"], r["last_seen"]) for r in rows}

    store.insert_events(_batch(["1", "2"], "a", 600))  # 10:00 .. 11:00 minutes in
    assert seen() == {"a": (t0 + timedelta(minutes=10), t0 + timedelta(minutes=11))}
    store.insert_events(_batch(["3"], "a", 630))  # inside the range: nothing to change
    store.insert_events(_batch(["4", "5"], "a", 0))  # earlier
    store.insert_events(_batch(["6"], "a", 3600))  # later
    assert seen() == {"a": (t0, t0 + timedelta(hours=1))}
    # linking "a" to "u" moves it (its customer row goes); a later import naming "a" brings it back
    store.collect(_batch(["7"], "u", 60), pa.table({"customer_id": [], "traits": []}), [("a", "u")])
    assert set(seen()) == {"u"}
    store.insert_events(_batch(["8"], "a", 630))
    assert seen()["a"] == (t0 + timedelta(minutes=10, seconds=30),) * 2


def test_version_3_database_upgrades_keeping_events_and_deduplication(tmp_path):
    """MD5 keys (version 3), split in halves (4), become MurmurHash3 keys (8)."""
    path = tmp_path / "v3.duckdb"
    ids = ["e1", "e2", "e3"]
    old = _batch(ids)
    database_at_version(path, 3, old)
    before = duckdb.connect(str(path))
    old_keys = [
        int(k) for (k,) in before.execute("SELECT k FROM event_keys ORDER BY rowid").fetchall()
    ]
    before.close()
    md5 = [int.from_bytes(hashlib.md5(i.encode()).digest(), "little") for i in ids]
    assert old_keys == sorted(md5)  # version 3 kept them in key order
    store = loudou.connect(path)
    assert store.schema_version == SCHEMA_VERSION >= 8
    assert _stored_ids(store) == ids and _keys_match_events(store)
    rows = store.query("SELECT hi, lo FROM event_keys ORDER BY rowid").to_pylist()
    assert [(r["hi"] << 64) | r["lo"] for r in rows] == [murmur(i) for i in ids]  # in event order
    assert store.insert_events(old).inserted == 0
    assert store.insert_events(_batch(["e3", "e4"])).inserted == 1
    store.close()
    reopened = loudou.connect(path, read_only=True)
    assert reopened.counts()["events"] == 4
    reopened.close()


def test_version_7_keys_are_computed_again_page_by_page(tmp_path, monkeypatch):
    """Schema version 8 re-keys every stored event (MD5 halves -> MurmurHash3), a page of rows
    at a time, in event order; de-duplication goes on across the upgrade."""
    path = tmp_path / "v7.duckdb"
    ids = [f"e{i}" for i in range(10)]
    database_at_version(path, 7, _batch(ids))
    con = duckdb.connect(str(path))
    con.execute(
        "INSERT INTO event_keys SELECT (md5_number(event_id) >> 64)::UBIGINT, "
        "(md5_number(event_id) & 18446744073709551615::UHUGEINT)::UBIGINT FROM events"
    )
    con.close()
    monkeypatch.setattr(duckdb_store, "_REKEY_ROWS", 3)
    store = DuckDBStore(str(path))
    assert store.schema_version == SCHEMA_VERSION
    rows = store.query("SELECT hi, lo FROM event_keys ORDER BY rowid").to_pylist()
    assert [(r["hi"] << 64) | r["lo"] for r in rows] == [murmur(i) for i in ids]
    assert store.insert_events(_batch(["e3", "e10"])).inserted == 1
    assert _keys_match_events(store)
    store.close()


def test_first_and_last_seen_of_a_write_with_many_customers():
    """Writes with more customers than the store keeps ranges for (imports) go the other way."""
    store = DuckDBStore(":memory:")
    n = 12_000
    t0 = datetime(2025, 1, 1)

    def batch(prefix: str, minutes: int) -> pa.Table:
        table = events_table({"c": [("view", 60 * minutes)] * n})
        return table.set_column(
            0, "event_id", pa.array([f"{prefix}{i}" for i in range(n)])
        ).set_column(1, "customer_id", pa.array([f"c{i}" for i in range(n)]))

    store.insert_events(batch("a", 5))
    store.insert_events(batch("b", 1).slice(0, 10))  # a small write: earlier for 10 of them
    store.insert_events(batch("c", 9))
    rows = store.query(
        "SELECT first_seen, last_seen, count(*) AS n FROM customers GROUP BY ALL ORDER BY 1"
    ).to_pylist()
    assert [(r["first_seen"], r["last_seen"], r["n"]) for r in rows] == [
        (t0 + timedelta(minutes=1), t0 + timedelta(minutes=9), 10),
        (t0 + timedelta(minutes=5), t0 + timedelta(minutes=9), n - 10),
    ]


_CUSTOMER_IDS = st.sampled_from(["a", "b", "c", "d", "u", "v"])
_OPS = st.lists(
    st.one_of(
        st.tuples(  # collect: events (customer, minute) through the server's write
            st.just("events"), st.lists(st.tuples(_CUSTOMER_IDS, st.integers(0, 500)), max_size=6)
        ),
        st.tuples(st.just("link"), st.tuples(_CUSTOMER_IDS, _CUSTOMER_IDS)),
        st.tuples(st.just("traits"), st.tuples(_CUSTOMER_IDS, st.integers(0, 3))),
        st.tuples(st.just("fold"), st.none()),
        st.tuples(  # an import's write (MERGE into customers directly)
            st.just("import"), st.lists(st.tuples(_CUSTOMER_IDS, st.integers(0, 500)), max_size=4)
        ),
    ),
    max_size=25,
)


@settings(max_examples=60, deadline=None)
@given(ops=_OPS, fold_rows=st.integers(1, 8))
def test_first_and_last_seen_with_the_servers_seen_log_match_the_events(ops, fold_rows):
    """The server's commits log first/last seen (seen_log) and fold it into customers from time
    to time (past FOLD_ROWS rows, or when asked); whenever that happens, every reader sees each
    customer's first/last seen = the min/max time of the events stored under it (brute force)."""
    import loudou.backends.duckdb as duckdb_store

    old = duckdb_store.FOLD_ROWS
    try:
        duckdb_store.FOLD_ROWS = fold_rows
        store = _replay(ops, fold_each=False)
        duckdb_store.FOLD_ROWS = 10**9
        folded = _replay(ops, fold_each=True)  # the logs folded after every operation
        expected = {
            r["customer_id"]: (r["f"], r["l"])
            for r in store.query(
                "SELECT customer_id, min(ts) AS f, max(ts) AS l FROM events GROUP BY 1"
            ).to_pylist()
        }
        customers = store.read_customers(["x"]).to_pylist()
        got = {r["customer_id"]: (r["first_seen"], r["last_seen"]) for r in customers}
        assert {c: v for c, v in got.items() if v != (None, None)} == expected
        assert len(customers) == len(got) == store.counts()["customers"]  # one row per customer
        # pending trait merges (traits_log) read as if folded, in order
        assert customers == folded.read_customers(["x"]).to_pylist()
        for row in customers:
            detail = store.get_customer(row["customer_id"])
            assert detail is not None
            assert (detail["first_seen"], detail["last_seen"]) == (
                row["first_seen"],
                row["last_seen"],
            )
            traits = detail["traits"]
            traits = json.loads(traits) if isinstance(traits, str) else traits
            assert traits.get("x") == (None if row["x"] is None else int(row["x"]))
        logged = store.query(
            "SELECT (SELECT count(*) FROM seen_log) + (SELECT count(*) FROM traits_log) AS n"
        )
        assert logged.column(0)[0].as_py() < fold_rows + 6  # folded past fold_rows
    finally:
        duckdb_store.FOLD_ROWS = old


def _replay(ops: list, fold_each: bool) -> DuckDBStore:
    store = DuckDBStore(":memory:")
    no_traits = pa.table({"customer_id": [], "traits": []}, schema=CUSTOMER_SCHEMA)
    for n, (op, arg) in enumerate(ops):
        if op in ("events", "import"):
            table = events_table({f"{c}": [("view", 60 * m)] for c, m in arg})
            if len(arg) != len({c for c, _ in arg}):  # one customer many times
                table = events_table({"_": [("view", 60 * m) for _, m in arg]}).set_column(
                    1, "customer_id", pa.array([c for c, _ in arg])
                )
            table = table.set_column(0, "event_id", pa.array([f"{n}-{i}" for i in range(len(arg))]))
            if op == "events":
                store.collect(table, no_traits, [])
            else:
                store.insert_events(table)
        elif op == "link" and arg[0] != arg[1]:
            store.collect(events_table({}), no_traits, [arg])
        elif op == "traits":
            who, value = arg
            traits = pa.table(
                {"customer_id": [who, who], "traits": ['{"x": 9, "y": 1}', f'{{"x": {value}}}']},
                schema=CUSTOMER_SCHEMA,
            )
            store.collect(events_table({}), traits, [])
        elif op == "fold":
            store.fold_seen()
        if fold_each:
            store.fold_seen()
    return store


def test_linking_moves_every_event_of_the_alias_within_its_seen_range():
    """The server's link re-keys an alias's events reading only the row groups whose times overlap
    the alias's first/last seen (logged or folded): all of them move, the customer's do not."""
    store = DuckDBStore(":memory:")
    no_traits = pa.table({"customer_id": [], "traits": []}, schema=CUSTOMER_SCHEMA)
    store.collect(_batch(["v1", "v2"], "visitor", 10), no_traits, [])  # logged
    store.fold_seen()
    store.collect(_batch(["v3"], "visitor", 3000), no_traits, [])  # later, in seen_log
    store.collect(_batch(["u1", "u2"], "alice", 0), no_traits, [])
    store.collect(events_table({}), no_traits, [("visitor", "alice")])
    owners = store.query("SELECT event_id, customer_id FROM events ORDER BY event_id").to_pylist()
    assert {r["event_id"]: r["customer_id"] for r in owners} == dict.fromkeys(
        ["u1", "u2", "v1", "v2", "v3"], "alice"
    )
    ((first, last),) = [
        (r["first_seen"], r["last_seen"]) for r in store.read_customers().to_pylist()
    ]
    assert (first, last) == (datetime(2025, 1, 1), datetime(2025, 1, 1, 0, 50))
