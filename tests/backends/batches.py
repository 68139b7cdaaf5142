"""Write batches for the contract tests, from plain rows (events from journeys: ``journeys.py``)."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pyarrow as pa

from loudou.backends.base import EVENT_SCHEMA, SPEND_SCHEMA


def event_rows(rows: list[dict[str, Any]]) -> pa.Table:
    """An EVENT_SCHEMA batch from dicts (missing columns are null, properties become JSON)."""
    cols: dict[str, list[Any]] = {name: [] for name in EVENT_SCHEMA.names}
    for row in rows:
        for name in EVENT_SCHEMA.names:
            value = row.get(name)
            cols[name].append(json.dumps(value or {}) if name == "properties" else value)
    return pa.table(cols, schema=EVENT_SCHEMA)


def traits_rows(rows: list[tuple[str, dict[str, Any]]]) -> pa.Table:
    """A CUSTOMER_SCHEMA batch, rows in order (one customer may appear more than once)."""
    return pa.table(
        {"customer_id": [c for c, _ in rows], "traits": [json.dumps(t) for _, t in rows]}
    )


def spend_rows(rows: list[tuple[date, str, str | None, float, str | None]]) -> pa.Table:
    """A SPEND_SCHEMA batch: (day, channel, campaign, amount, currency) per row."""
    names = SPEND_SCHEMA.names
    return pa.table({n: [r[i] for r in rows] for i, n in enumerate(names)}, schema=SPEND_SCHEMA)
