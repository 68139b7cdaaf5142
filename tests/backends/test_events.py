"""Events: idempotent writes, what comes back (promoted columns, JSON properties, UTC microsecond
times), and the generic read (names, time range, columns, properties, order)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pyarrow as pa
import pytest

from loudou.backends import Store
from loudou.backends.base import EVENT_SCHEMA
from loudou.errors import LoudouError

from batches import event_rows

ALL_COLUMNS = tuple(EVENT_SCHEMA.names)


def own(table: pa.Table, ns: str) -> list[dict[str, Any]]:
    """The rows of ``table`` whose customer_id starts with ``ns``, in their order."""
    return [r for r in table.to_pylist() if r["customer_id"].startswith(ns)]


def test_every_backend_is_a_store(scratch: Store, journeys_store: Store) -> None:
    assert isinstance(scratch, Store) and isinstance(journeys_store, Store)
    assert isinstance(scratch.path, str)


def test_insert_stores_rows_and_reinserting_is_idempotent(scratch: Store, ns: str) -> None:
    t0 = datetime(2025, 5, 1, 8, 0)
    batch = event_rows(
        [
            {"event_id": f"{ns}1", "customer_id": f"{ns}x", "event": "view", "ts": t0},
            {"event_id": f"{ns}2", "customer_id": f"{ns}x", "event": "buy", "ts": t0},
            {"event_id": f"{ns}3", "customer_id": f"{ns}y", "event": "view", "ts": t0},
        ]
    )
    before = scratch.counts()
    first = scratch.insert_events(batch)
    assert (first.inserted, first.duplicates) == (3, 0)
    again = scratch.insert_events(batch)
    assert (again.inserted, again.duplicates) == (0, 3)
    # a batch mixing stored and new ids stores the new ones only
    mixed = event_rows(
        [
            {"event_id": f"{ns}3", "customer_id": f"{ns}y", "event": "changed", "ts": t0},
            {"event_id": f"{ns}4", "customer_id": f"{ns}y", "event": "buy", "ts": t0},
        ]
    )
    third = scratch.insert_events(mixed)
    assert (third.inserted, third.duplicates) == (1, 1)
    after = scratch.counts()
    assert after["events"] - before["events"] == 4
    assert after["customers"] - before["customers"] == 2
    stored = own(scratch.read_events(columns=("event_id", "customer_id", "event")), ns)
    assert sorted((r["event_id"], r["event"]) for r in stored) == [
        (f"{ns}1", "view"),
        (f"{ns}2", "buy"),
        (f"{ns}3", "view"),  # the first write of an id wins
        (f"{ns}4", "buy"),
    ]


def test_repeated_id_within_one_batch_is_stored_once(scratch: Store, ns: str) -> None:
    t0 = datetime(2025, 5, 1, 8, 0)
    batch = event_rows(
        [
            {"event_id": f"{ns}1", "customer_id": f"{ns}x", "event": "first", "ts": t0},
            {"event_id": f"{ns}1", "customer_id": f"{ns}x", "event": "second", "ts": t0},
        ]
    )
    result = scratch.insert_events(batch)
    assert (result.inserted, result.duplicates) == (1, 1)
    stored = own(scratch.read_events(columns=("customer_id", "event")), ns)
    assert [r["event"] for r in stored] == ["first"]


def test_an_empty_batch_writes_nothing(scratch: Store) -> None:
    before = scratch.counts()
    result = scratch.insert_events(event_rows([]))
    assert (result.inserted, result.duplicates) == (0, 0)
    assert scratch.counts() == before


def test_columns_properties_and_times_round_trip(scratch: Store, ns: str) -> None:
    rows = [
        {
            "event_id": f"{ns}1",
            "customer_id": f"{ns}x",
            "event": "purchase",
            "ts": datetime(2025, 3, 4, 5, 6, 7, 123456),
            "session_id": "s1",
            "channel": "email",
            "campaign": "spring sale",
            "revenue": 99.25,
            "properties": {
                "sku": "A-1",
                "qty": 3,
                "gift": True,
                "note": "café 漏斗",
                "tags": ["x"],
            },
        },
        {
            "event_id": f"{ns}2",
            "customer_id": f"{ns}x",
            "event": "view",
            "ts": datetime(2025, 3, 4, 5, 6, 7, 123457),  # one microsecond later
        },
    ]
    scratch.insert_events(event_rows(rows))
    table = scratch.read_events(columns=ALL_COLUMNS)
    assert table.schema.field("ts").type == pa.timestamp("us")  # naive: UTC by convention
    got = own(table, ns)
    assert [r["ts"] for r in got] == [r["ts"] for r in rows]
    first, second = got
    for name in ("event_id", "customer_id", "event", "session_id", "channel", "campaign"):
        assert first[name] == rows[0][name]
    assert first["revenue"] == 99.25
    assert json.loads(first["properties"]) == rows[0]["properties"]
    assert (second["session_id"], second["channel"], second["campaign"], second["revenue"]) == (
        None,
        None,
        None,
        None,
    )
    assert json.loads(second["properties"]) == {}
    # properties come back one string column each, null when absent
    props = scratch.read_events(columns=("customer_id",), properties=("sku", "qty", "note", "none"))
    assert own(props, ns) == [
        {"customer_id": f"{ns}x", "sku": "A-1", "qty": "3", "note": "café 漏斗", "none": None},
        {"customer_id": f"{ns}x", "sku": None, "qty": None, "note": None, "none": None},
    ]
    for name in ("sku", "qty", "note", "none"):
        assert props.schema.field(name).type in (pa.string(), pa.large_string())


def test_aware_times_are_stored_as_utc(scratch: Store, ns: str) -> None:
    shanghai = timezone(timedelta(hours=8))
    local = datetime(2025, 3, 4, 13, 6, 7, 500, tzinfo=shanghai)
    batch = pa.table(
        {
            "event_id": [f"{ns}1"],
            "customer_id": [f"{ns}x"],
            "event": ["view"],
            "ts": pa.array([local], pa.timestamp("us", tz="Asia/Shanghai")),
            "session_id": pa.array([None], pa.string()),
            "channel": pa.array([None], pa.string()),
            "campaign": pa.array([None], pa.string()),
            "revenue": pa.array([None], pa.float64()),
            "properties": ["{}"],
        }
    )
    scratch.insert_events(batch)
    got = own(scratch.read_events(columns=("customer_id", "ts")), ns)
    assert got == [{"customer_id": f"{ns}x", "ts": datetime(2025, 3, 4, 5, 6, 7, 500)}]
    # reads bounded by aware times compare in UTC too
    utc = local.astimezone(UTC)
    assert own(scratch.read_events(since=utc, until=utc + timedelta(microseconds=1)), ns)
    assert not own(scratch.read_events(until=local), ns)


def rows_of(table: pa.Table) -> list[tuple[Any, ...]]:
    return [tuple(r.values()) for r in table.to_pylist()]


def assert_events(table: pa.Table, expected: list[tuple[Any, ...]]) -> None:
    """``table`` (customer_id, event, ts) holds the ``expected`` rows in (customer, time) order;
    the order of one customer's events at the same time is not part of the contract."""
    got = rows_of(table)
    assert [(c, t) for c, _, t in got] == [(c, t) for c, _, t in expected]
    assert sorted(got) == sorted(expected)


def expected_events(journeys: dict[str, list[tuple[Any, ...]]], names: set[str] | None = None):
    """(customer_id, event, ts) of the journeys, by customer then time: the read's own order."""
    rows = [
        (cid, e[0], datetime.fromisoformat(e[1]))
        for cid, evs in journeys.items()
        for e in evs
        if names is None or e[0] in names
    ]
    return sorted(rows, key=lambda r: (r[0], r[2]))


def test_read_events_by_name(journeys_store: Store, journeys: dict) -> None:
    every = journeys_store.read_events()
    assert every.column_names == ["customer_id", "event", "ts"]
    assert_events(every, expected_events(journeys))
    purchases = journeys_store.read_events(["purchase"])
    assert_events(purchases, expected_events(journeys, {"purchase"}))
    assert len(purchases) == 10
    two = journeys_store.read_events(["signup", "bounce"])
    assert_events(two, expected_events(journeys, {"signup", "bounce"}))
    none = journeys_store.read_events([])
    assert none.num_rows == 0 and none.column_names == ["customer_id", "event", "ts"]
    assert journeys_store.read_events(["no such event"]).num_rows == 0


def test_read_events_time_range_is_half_open(journeys_store: Store) -> None:
    since, until = datetime(2025, 1, 2, 0, 10), datetime(2025, 1, 2, 9, 10)
    got = rows_of(journeys_store.read_events(since=since, until=until))
    assert got == [
        ("h", "view", datetime(2025, 1, 2, 9, 0)),
        ("h", "bounce", datetime(2025, 1, 2, 9, 5)),
        ("i", "view", datetime(2025, 1, 2, 9, 0)),
        ("j", "view", datetime(2025, 1, 2, 9, 0)),
        ("m", "signup", datetime(2025, 1, 2, 0, 10)),  # at `since`: in; the 09:10 signups: out
    ]
    later = journeys_store.read_events(["view"], since=datetime(2025, 2, 1))
    assert rows_of(later) == [
        ("a", "view", datetime(2025, 2, 3, 10, 0)),
        ("j", "view", datetime(2025, 3, 5, 10, 0)),
    ]
    before = journeys_store.read_events(["signup"], until=datetime(2025, 1, 1, 10, 10))
    assert rows_of(before) == [
        ("d", "signup", datetime(2025, 1, 1, 10, 0)),
        ("f", "signup", datetime(2025, 1, 1, 10, 0)),
    ]


def test_read_events_columns_and_properties(journeys_store: Store) -> None:
    table = journeys_store.read_events(
        ["purchase"], columns=("customer_id", "revenue", "session_id"), properties=("sku", "qty")
    )
    assert table.column_names == ["customer_id", "revenue", "session_id", "sku", "qty"]
    assert table.to_pylist()[:3] == [
        {"customer_id": "a", "revenue": 120.5, "session_id": "s-a1", "sku": "A", "qty": "2"},
        {"customer_id": "a", "revenue": 30.0, "session_id": "s-a2", "sku": "B", "qty": None},
        {"customer_id": "b", "revenue": 20.0, "session_id": "s-b1", "sku": None, "qty": None},
    ]
    views = journeys_store.read_events(["view"], columns=("customer_id", "channel", "campaign"))
    assert views.to_pylist()[0] == {"customer_id": "a", "channel": "ads", "campaign": "spring"}
    assert views.column("channel").null_count == views.num_rows - 1
    only_props = journeys_store.read_events(["view"], columns=(), properties=("device",))
    assert only_props.column_names == ["device"]
    assert only_props.column("device").to_pylist().count("mobile") == 5


def test_read_events_orders_by_customer_then_time(journeys_store: Store) -> None:
    table = journeys_store.read_events(columns=("customer_id", "ts", "event"))
    keys = [(r["customer_id"], r["ts"]) for r in table.to_pylist()]
    assert keys == sorted(keys)


def test_unknown_column_is_an_error(journeys_store: Store) -> None:
    with pytest.raises(LoudouError, match="no_such_column"):
        journeys_store.read_events(columns=("customer_id", "no_such_column"))
