"""The DuckDB store: schema and migrations, idempotent writes, trait merging, read-only opening,
and SQL that never contains user text."""

from __future__ import annotations

import json
import subprocess
import sys

import pyarrow as pa
import pytest

import loudou
from loudou.backends.duckdb import SCHEMA_VERSION
from loudou.backends.duckdb_sql import funnel_events_sql
from loudou.errors import StoreError
from loudou.model.plan import plan_funnel

from journeys import database_at_version, events_table, spec_of


def test_new_database_is_migrated_and_reopens(tmp_path):
    path = tmp_path / "x.duckdb"
    store = loudou.connect(path)
    assert store.get_meta("schema_version") == str(SCHEMA_VERSION)
    store.insert_events(events_table({"a": [("view", 0)]}))
    store.close()
    again = loudou.connect(path, read_only=True)
    assert again.counts() == {"events": 1, "customers": 1, "spend": 0}
    again.close()


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "x.duckdb"
    store = loudou.connect(path)
    store.set_meta("schema_version", str(SCHEMA_VERSION + 1))
    store.close()
    with pytest.raises(StoreError, match="newer"):
        loudou.connect(path)


def test_read_only_missing_file_and_missing_folder(tmp_path):
    with pytest.raises(StoreError, match="no database"):
        loudou.connect(tmp_path / "none.duckdb", read_only=True)
    with pytest.raises(StoreError, match="does not exist"):
        loudou.connect(tmp_path / "no" / "such" / "x.duckdb")


def test_not_a_database(tmp_path):
    path = tmp_path / "text.duckdb"
    path.write_text("hello", encoding="utf-8")
    with pytest.raises(StoreError):
        loudou.connect(path)


def test_events_are_idempotent_and_customers_track_first_and_last_seen():
    store = loudou.connect(":memory:")
    batch = events_table({"a": [("view", 0), ("buy", 3600)], "b": [("view", 60)]})
    first = store.insert_events(batch)
    second = store.insert_events(batch)
    assert (first.inserted, first.duplicates) == (3, 0)
    assert (second.inserted, second.duplicates) == (0, 3)
    rows = store.query(
        "SELECT customer_id, first_seen, last_seen FROM customers ORDER BY 1"
    ).to_pylist()
    assert [(r["first_seen"].hour, r["last_seen"].hour) for r in rows] == [(0, 1), (0, 0)]


def test_traits_merge_latest_value_wins():
    store = loudou.connect(":memory:")

    def put(rows):
        return store.upsert_customers(
            pa.table(
                {"customer_id": [r[0] for r in rows], "traits": [json.dumps(r[1]) for r in rows]}
            )
        )

    assert put([("a", {"city": "Paris", "age": 30})]).inserted == 1
    put([("a", {"city": "Lyon"}), ("a", {"plan": "pro"}), ("b", {"city": "Rome"})])
    traits = {
        r["customer_id"]: json.loads(r["traits"])
        for r in store.query("SELECT customer_id, traits FROM customers").to_pylist()
    }
    assert traits == {"a": {"city": "Lyon", "age": 30, "plan": "pro"}, "b": {"city": "Rome"}}


def test_spend_rows_replace_by_day_channel_campaign():
    import datetime as dt

    store = loudou.connect(":memory:")
    day = dt.date(2025, 1, 1)
    table = pa.table(
        {
            "day": [day, day],
            "channel": ["search", "social"],
            "campaign": [None, "x"],
            "amount": [10.0, 5.0],
            "currency": [None, "EUR"],
        }
    )
    assert store.insert_spend(table).inserted == 2
    store.insert_spend(table.slice(0, 1).set_column(3, "amount", pa.array([12.0])))
    rows = store.query(
        "SELECT channel, campaign, amount, currency FROM spend ORDER BY 1"
    ).to_pylist()
    assert rows == [
        {"channel": "search", "campaign": "", "amount": 12.0, "currency": "USD"},
        {"channel": "social", "campaign": "x", "amount": 5.0, "currency": "EUR"},
    ]


def test_user_text_is_bound_never_spliced():
    hostile = "x'); DROP TABLE events; --"
    spec = spec_of(
        [
            {"event": hostile, "where": [{"property": "plan", "value": hostile}]},
            "buy where customer.city = O'Hare",
        ],
        breakdown="region",
    )
    sql, params = funnel_events_sql(plan_funnel(spec))
    assert hostile not in sql and "O'Hare" not in sql and "plan" not in sql
    assert hostile in params and "O'Hare" in params and '$."plan"' in params
    store = loudou.connect(":memory:")
    store.insert_events(events_table({"a": [(hostile, 0, {"plan": hostile})]}))
    assert loudou.run_funnel(store, spec).steps[0].count == 1
    assert store.counts()["events"] == 1


def test_funnel_sql_golden():
    spec = spec_of(["view", "buy where revenue > 100"], window="1d")
    sql, params = funnel_events_sql(plan_funnel(spec))
    assert sql == (
        "SELECT customer_id, unit_key, group_key, t, mask FROM (SELECT e.customer_id AS customer_id, "
        "e.rowid AS r, '' AS unit_key, '' AS group_key, epoch_us(e.ts) AS t, "
        "((CAST(COALESCE(e.event IN ($1), FALSE) AS UBIGINT) << 0) | "
        "(CAST(COALESCE(e.event IN ($2) AND ((CASE WHEN isfinite(e.revenue) THEN e.revenue END) > $3), "
        "FALSE) AS UBIGINT) << 1)) AS mask "
        "FROM events e WHERE e.event IN ($4, $5) AND TRUE) q WHERE mask <> 0 "
        "ORDER BY customer_id, unit_key, group_key, t, r"
    )
    assert params == ["view", "buy", 100.0, "buy", "view"]


def test_generic_reads_for_analyses():
    import datetime as dt

    store = loudou.connect(":memory:")
    store.insert_events(
        events_table(
            {"a": [("view", 0, {"price": 3, "revenue": 2.5}), ("buy", 10)], "b": [("view", 5)]}
        )
    )
    store.upsert_customers(
        pa.table({"customer_id": ["a"], "traits": ['{"city": "Paris", "age": 31}']})
    )
    got = store.read_events(
        ["view"], columns=["customer_id", "revenue"], properties=["price"]
    ).to_pylist()
    assert got == [
        {"customer_id": "a", "revenue": 2.5, "price": "3"},
        {"customer_id": "b", "revenue": None, "price": None},
    ]
    assert store.read_events(since=dt.datetime(2025, 1, 1, 0, 0, 6)).column(
        "event"
    ).to_pylist() == ["buy"]
    assert store.read_events([]).num_rows == 0
    rows = store.read_customers(["city", "age"]).to_pylist()
    assert [(r["customer_id"], r["city"], r["age"]) for r in rows] == [
        ("a", "Paris", "31"),
        ("b", None, None),
    ]
    with pytest.raises(StoreError):
        store.read_events(properties=['x"y'])
    assert store.read_spend().num_rows == 0


def test_funnel_customers_lists_who_reached_what():
    from loudou.analyses.funnel import funnel_customers

    store = loudou.connect(":memory:")
    store.insert_events(
        events_table({"a": [("view", 0), ("buy", 60)], "b": [("view", 5)], "c": [("buy", 1)]})
    )
    rows = funnel_customers(store, spec_of(["view", "buy"], window="1h")).to_pylist()
    assert [(r["customer_id"], r["level"], r["step_2"] is None) for r in rows] == [
        ("a", 2, False),
        ("b", 1, True),
    ]
    assert rows[0]["step_2"].second == 0 and rows[0]["step_2"].minute == 1


def test_version_2_database_upgrades_keeping_events_in_order_and_deduplication(tmp_path):
    path = tmp_path / "old.duckdb"
    old = events_table({"a": [("view", 0), ("buy", 60)], "b": [("view", 5), ("buy", 9)]})
    database_at_version(path, 2, old)
    store = loudou.connect(path)
    assert store.schema_version == SCHEMA_VERSION
    rows = store.query("SELECT event_id FROM events ORDER BY rowid").column("event_id").to_pylist()
    assert rows == old.column("event_id").to_pylist()
    keys = store.query("SELECT count(*) AS n FROM event_keys").column("n").to_pylist()
    assert keys == [4]
    again = store.insert_events(old)
    assert (again.inserted, again.duplicates) == (0, 4)
    more = events_table({"c": [("view", 1)]})
    assert store.insert_events(more).inserted == 1
    store.close()
    reopened = loudou.connect(path, read_only=True)
    assert reopened.counts()["events"] == 5
    reopened.close()


def test_events_with_repeated_ids_in_one_batch_keep_the_first():
    store = loudou.connect(":memory:")
    first = events_table({"a": [("view", 0), ("buy", 60)]})
    assert store.insert_events(first).inserted == 2
    ids = first.column("event_id").to_pylist()
    # one stored id, one new id twice (the first copy wins), one new id once
    batch = pa.concat_tables([first.slice(1, 1), events_table({"x": [("late", 5)]})] * 2)
    batch = batch.set_column(0, "event_id", pa.array([ids[1], "n1", ids[1], "n1"]))
    batch = batch.set_column(
        2, "event", pa.array(["dup", "first copy", "dup", "second copy"], pa.string())
    )
    result = store.insert_events(batch)
    assert (result.inserted, result.duplicates) == (1, 3)
    rows = store.query("SELECT event_id, event FROM events ORDER BY rowid").to_pylist()
    assert [(r["event_id"], r["event"]) for r in rows] == [
        (ids[0], "view"),
        (ids[1], "buy"),
        ("n1", "first copy"),
    ]
    seen = store.query("SELECT customer_id FROM customers ORDER BY 1").column("customer_id")
    assert seen.to_pylist() == ["a", "x"]


def test_first_and_last_seen_grow_with_later_and_earlier_events():
    store = loudou.connect(":memory:")
    store.insert_events(events_table({"a": [("view", 3600)]}))
    batch = events_table({"a": [("view", 60), ("buy", 7200)], "b": [("view", 0)]})
    batch = batch.set_column(0, "event_id", pa.array(["e1", "e2", "e3"]))
    store.insert_events(batch)
    rows = store.query(
        "SELECT customer_id, epoch(first_seen) AS f, epoch(last_seen) AS l FROM customers ORDER BY 1"
    ).to_pylist()
    base = rows[1]["f"]
    assert [(r["customer_id"], r["f"] - base, r["l"] - base) for r in rows] == [
        ("a", 60, 7200),
        ("b", 0, 0),
    ]


def test_an_older_database_opened_for_reading_is_upgraded_first(tmp_path):
    """After upgrading loudou, read commands (which open read-only) upgrade an older database
    in a short read-write open instead of failing; while another process has it open (here: a
    reader), the upgrade cannot run and the error says so."""
    path = tmp_path / "old.duckdb"
    database_at_version(path, 2, events_table({"a": [("view", 0), ("buy", 60)]}))
    reader = loudou.connect(path, read_only=True)
    assert reader.schema_version == SCHEMA_VERSION and reader.counts()["events"] == 2
    with pytest.raises(Exception, match="read-only|read only|Cannot execute"):
        reader.insert_events(events_table({"b": [("view", 1)]}))  # still a reader
    reader.close()

    held = tmp_path / "held.duckdb"
    database_at_version(held, 2, events_table({"a": [("view", 0)]}))
    code = f"import duckdb, time; c = duckdb.connect({str(held)!r}, read_only=True); print('ok', flush=True); time.sleep(30)"
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ok"
        with pytest.raises(StoreError, match="schema version 2 and needs the upgrade") as e:
            loudou.connect(held, read_only=True)
        assert e.value.field == "db"
    finally:
        holder.kill()
        holder.wait()
