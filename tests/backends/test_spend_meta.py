"""Spend rows (replaced by day, channel and campaign; read by day range, in order), saved settings
(meta) and row counts."""

from __future__ import annotations

from datetime import date
from typing import Any

import pyarrow as pa

from loudou.backends import Store
from loudou.backends.base import SPEND_SCHEMA

from batches import spend_rows
from journeys import events_table


def own(table: pa.Table, ns: str) -> list[tuple[Any, ...]]:
    return [tuple(r.values()) for r in table.to_pylist() if r["channel"].startswith(ns)]


def test_spend_is_replaced_by_day_channel_and_campaign(scratch: Store, ns: str) -> None:
    ads, mail = f"{ns}ads", f"{ns}mail"
    d1, d2 = date(2025, 1, 1), date(2025, 1, 2)
    first = scratch.insert_spend(
        spend_rows(
            [
                (d1, ads, "spring", 100.0, "USD"),
                (d1, ads, "summer", 50.0, "USD"),
                (d2, mail, "spring", 10.0, "EUR"),
            ]
        )
    )
    assert (first.inserted, first.duplicates) == (3, 0)
    second = scratch.insert_spend(
        spend_rows([(d1, ads, "spring", 120.0, "USD"), (d2, ads, "spring", 5.0, "USD")])
    )
    assert (second.inserted, second.duplicates) == (1, 1)
    assert own(scratch.read_spend(), ns) == [
        (d1, ads, "spring", 120.0, "USD"),
        (d1, ads, "summer", 50.0, "USD"),
        (d2, ads, "spring", 5.0, "USD"),
        (d2, mail, "spring", 10.0, "EUR"),
    ]


def test_read_spend_range_and_order(scratch: Store, ns: str) -> None:
    a, b = f"{ns}a", f"{ns}b"
    rows = [
        (date(2025, 2, 3), b, "x", 1.0, "USD"),
        (date(2025, 2, 1), b, "y", 2.0, "USD"),
        (date(2025, 2, 1), a, "z", 3.0, "USD"),
        (date(2025, 2, 2), a, "y", 4.0, "USD"),
        (date(2025, 2, 1), b, "x", 5.0, "USD"),
    ]
    scratch.insert_spend(spend_rows(rows))
    every = scratch.read_spend()
    assert every.schema.names == SPEND_SCHEMA.names
    keys = [(r["day"], r["channel"], r["campaign"]) for r in every.to_pylist()]
    assert keys == sorted(keys)
    assert own(every, ns) == sorted(rows)
    # since <= day < until
    assert own(scratch.read_spend(date(2025, 2, 2), date(2025, 2, 3)), ns) == [
        (date(2025, 2, 2), a, "y", 4.0, "USD")
    ]
    assert own(scratch.read_spend(since=date(2025, 2, 2)), ns) == [
        (date(2025, 2, 2), a, "y", 4.0, "USD"),
        (date(2025, 2, 3), b, "x", 1.0, "USD"),
    ]
    assert [r[3] for r in own(scratch.read_spend(until=date(2025, 2, 2)), ns)] == [3.0, 5.0, 2.0]
    assert own(scratch.read_spend(date(2025, 2, 4)), ns) == []


def test_meta(scratch: Store, ns: str) -> None:
    assert scratch.get_meta(f"{ns}missing") is None
    scratch.set_meta(f"{ns}k", "one")
    assert scratch.get_meta(f"{ns}k") == "one"
    scratch.set_meta(f"{ns}k", '{"json": ["漏斗", 2]}')  # overwrite
    assert scratch.get_meta(f"{ns}k") == '{"json": ["漏斗", 2]}'
    scratch.set_meta(f"{ns}blank", "")
    assert scratch.get_meta(f"{ns}blank") == ""  # set but blank is not missing
    assert scratch.get_meta(f"{ns}missing") is None


def test_counts_follow_writes(scratch: Store, ns: str) -> None:
    before = scratch.counts()
    assert set(before) >= {"events", "customers", "spend"}
    assert all(isinstance(v, int) for v in before.values())
    scratch.insert_events(events_table({f"{ns}x": [("a", 0), ("b", 1)], f"{ns}y": [("a", 2)]}))
    scratch.insert_spend(spend_rows([(date(2025, 1, 1), f"{ns}c", "", 1.0, "USD")]))
    after = scratch.counts()
    assert {k: after[k] - before[k] for k in ("events", "customers", "spend")} == {
        "events": 3,
        "customers": 2,
        "spend": 1,
    }


def test_journey_counts(journeys_store: Store, journeys: dict) -> None:
    counts = journeys_store.counts()
    assert counts["events"] == sum(len(v) for v in journeys.values()) == 39
    assert counts["customers"] == 12 and counts["spend"] == 0
