"""Journeys as plain data for tests: {"alice": [("view", "2025-01-01 10:00", {"price": 5}), ...]}.

Times may be ISO strings or integer seconds from 2025-01-01 00:00 UTC.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import mmh3
import numpy as np
import pyarrow as pa

import loudou
from loudou.analyses.funnel import funnel_units
from loudou.backends.base import EVENT_SCHEMA, PROMOTED_COLUMNS
from loudou.model.spec import FunnelSpec

EPOCH = datetime(2025, 1, 1)
Journey = list[tuple[Any, ...]]


def when(ts: str | int) -> datetime:
    return datetime.fromisoformat(ts) if isinstance(ts, str) else EPOCH + timedelta(seconds=int(ts))


def events_table(journeys: dict[str, Journey]) -> pa.Table:
    cols: dict[str, list[Any]] = {k: [] for k in EVENT_SCHEMA.names}
    for cid, evs in journeys.items():
        for i, item in enumerate(evs):
            event, ts = item[0], item[1]
            props = dict(item[2]) if len(item) > 2 else {}
            cols["event_id"].append(f"{cid}#{i}")
            cols["customer_id"].append(cid)
            cols["event"].append(event)
            cols["ts"].append(when(ts))
            for p in PROMOTED_COLUMNS:
                cols[p].append(props.pop(p, None))
            cols["properties"].append(json.dumps(props))
    return pa.table(cols, schema=EVENT_SCHEMA)


def make_store(
    journeys: dict[str, Journey], traits: dict[str, dict[str, Any]] | None = None
) -> Any:
    store = loudou.connect(":memory:")
    store.insert_events(events_table(journeys))
    if traits:
        store.upsert_customers(
            pa.table(
                {"customer_id": list(traits), "traits": [json.dumps(v) for v in traits.values()]}
            )
        )
    return store


def spec_of(steps: list[Any], **options: Any) -> FunnelSpec:
    from loudou.model.spec import parse_step

    raw = [parse_step(s) if isinstance(s, str) else s for s in steps]
    return FunnelSpec.parse({"steps": raw, **options})


def levels_by_customer(store: Any, spec: FunnelSpec, engine: str = "auto") -> dict[str, int]:
    """Customer -> level from the engine (customers absent from the result have level 0)."""
    units = funnel_units(store, spec, engine)
    ids = units.ids().to_pylist()
    return {ids[c]: int(lv) for c, lv in zip(units.customer, units.levels, strict=True) if lv > 0}


def counts(store: Any, spec: FunnelSpec, engine: str = "auto") -> list[int]:
    units = funnel_units(store, spec, engine)
    return [int(np.count_nonzero(units.levels >= k)) for k in range(1, len(spec.steps) + 1)]


def counts_from_levels(levels: list[int] | np.ndarray, n_steps: int) -> list[int]:
    arr = np.asarray(list(levels), dtype=np.int64)
    return [int(np.count_nonzero(arr >= k)) for k in range(1, n_steps + 1)]


def murmur(text: str) -> int:
    """An event id's key as the ``mmh3`` package computes it (the reference for loudou's own)."""
    return mmh3.hash128(text.encode(), seed=0, x64arch=True, signed=False)


def database_at_version(path: Any, version: int, batch: pa.Table) -> None:
    """A database as loudou left it at an older schema ``version`` (its first migrations only),
    holding ``batch``: what an upgrade starts from. Version 3 kept event keys in ``event_keys``."""
    import duckdb

    from loudou.backends.duckdb import MIGRATIONS

    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)")
    for migration in MIGRATIONS[:version]:
        migration(con)
    con.execute("INSERT INTO meta VALUES ('schema_version', ?)", [str(version)])
    con.register("b", batch)
    con.execute("INSERT INTO events SELECT * FROM b")
    if version == 3:
        con.execute("INSERT INTO event_keys SELECT md5_number(event_id) FROM b ORDER BY 1")
    con.execute("INSERT INTO customers (customer_id) SELECT DISTINCT customer_id FROM b")
    con.close()
