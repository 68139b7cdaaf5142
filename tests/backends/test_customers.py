"""Customers: traits merged with the latest value winning, read back as text columns (null when
missing), and first/last seen following the customer's events."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pyarrow as pa

from loudou.backends import Store

from batches import traits_rows
from journeys import events_table


def own(store: Store, ns: str, traits: tuple[str, ...] = ()) -> dict[str, dict[str, Any]]:
    """This test's customers: id -> the rest of the row."""
    out = {}
    for row in store.read_customers(traits).to_pylist():
        cid = row.pop("customer_id")
        if cid.startswith(ns):
            out[cid.removeprefix(ns)] = row
    return out


def test_traits_merge_latest_value_wins(scratch: Store, ns: str) -> None:
    before = scratch.counts()["customers"]
    first = scratch.upsert_customers(
        traits_rows(
            [
                (f"{ns}x", {"plan": "free", "age": 30, "city": "Paris"}),
                (f"{ns}y", {"plan": "pro"}),
            ]
        )
    )
    assert (first.inserted, first.duplicates) == (2, 0)
    second = scratch.upsert_customers(
        traits_rows(
            [
                (f"{ns}x", {"plan": "pro"}),  # changes plan, keeps age and city
                (f"{ns}z", {"plan": "team", "age": 41.5}),  # new
                (f"{ns}z", {"plan": "enterprise"}),  # later row of one batch wins
            ]
        )
    )
    assert (second.inserted, second.duplicates) == (1, 2)
    assert scratch.counts()["customers"] - before == 3
    got = own(scratch, ns, ("plan", "age", "city", "missing"))
    assert {c: (r["plan"], r["age"], r["city"], r["missing"]) for c, r in got.items()} == {
        "x": ("pro", "30", "Paris", None),
        "y": ("pro", None, None, None),
        "z": ("enterprise", "41.5", None, None),
    }


def test_read_customers_columns_and_order(scratch: Store, ns: str) -> None:
    scratch.upsert_customers(traits_rows([(f"{ns}b", {"k": "1"}), (f"{ns}a", {"k": "2"})]))
    table = scratch.read_customers(("k",))
    assert table.column_names == ["customer_id", "first_seen", "last_seen", "k"]
    assert table.schema.field("k").type in (pa.string(), pa.large_string())
    ids = table.column("customer_id").to_pylist()
    assert ids == sorted(ids)  # analyses (segments) rely on it
    plain = scratch.read_customers()
    assert plain.column_names == ["customer_id", "first_seen", "last_seen"]
    # customers known from traits only have not been seen yet
    assert own(scratch, ns) == {
        "a": {"first_seen": None, "last_seen": None},
        "b": {"first_seen": None, "last_seen": None},
    }


def test_first_and_last_seen_follow_events(scratch: Store, ns: str) -> None:
    x, y = f"{ns}x", f"{ns}y"
    scratch.upsert_customers(traits_rows([(x, {"plan": "pro"})]))
    scratch.insert_events(
        events_table(
            {
                x: [("view", "2025-03-02 10:00:00.000001"), ("buy", "2025-03-05 18:00")],
                y: [("view", "2025-03-03 09:00")],
            }
        )
    )
    assert own(scratch, ns, ("plan",)) == {
        "x": {
            "first_seen": datetime(2025, 3, 2, 10, 0, 0, 1),
            "last_seen": datetime(2025, 3, 5, 18, 0),
            "plan": "pro",
        },
        "y": {
            "first_seen": datetime(2025, 3, 3, 9, 0),
            "last_seen": datetime(2025, 3, 3, 9, 0),
            "plan": None,
        },
    }
    # an earlier event moves first_seen back, a later one last_seen on; one inside changes nothing
    later = {
        x: [("old", "2025-01-01 00:00"), ("mid", "2025-03-04 00:00"), ("new", "2025-04-01 12:30")]
    }
    batch = events_table(later)
    batch = batch.set_column(0, "event_id", pa.array([f"{ns}late{i}" for i in range(3)]))
    scratch.insert_events(batch)
    seen = own(scratch, ns)
    assert seen["x"] == {
        "first_seen": datetime(2025, 1, 1, 0, 0),
        "last_seen": datetime(2025, 4, 1, 12, 30),
    }
    assert seen["y"]["first_seen"] == datetime(2025, 3, 3, 9, 0)


def test_journey_customers(journeys_store: Store, journeys: dict, traits: dict) -> None:
    table = journeys_store.read_customers(("region", "age", "plan"))
    rows = {r.pop("customer_id"): r for r in table.to_pylist()}
    assert sorted(rows) == sorted(journeys)  # f has events but no traits: a customer too
    for cid, events in journeys.items():
        times = [datetime.fromisoformat(e[1]) for e in events]
        mine = traits.get(cid, {})
        assert rows[cid] == {
            "first_seen": min(times),
            "last_seen": max(times),
            "region": mine.get("region"),
            "age": None if "age" not in mine else str(mine["age"]),
            "plan": mine.get("plan"),
        }
