"""The cache engine reuses its work buffers between funnels (loudou.kernels.scratch): funnels of
different shapes in a row, after appends that grow the cache, and from several threads at once
must still equal the SQL engine, and units handed to callers must not change afterwards."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pyarrow as pa

import loudou
from loudou.analyses.funnel import funnel_units
from loudou.kernels.scratch import ScratchPool

from journeys import events_table, spec_of

SPECS = [
    (["a", "b", "c", "d"], {}),
    (["a", "b|c"], {"count": "totals", "window": 900}),
    (["a", "b", "c"], {"count": "sessions", "breakdown": "v"}),
    (["a where v >= 1", "c"], {"mode": "any_order", "breakdown": "customer.tier"}),
    (["b", "c", "d"], {"mode": "strict_order", "hold_constant": ["prod"]}),
    (["a", "b", "c"], {"exclusions": [{"event": "x", "after_step": 1, "before_step": 2}]}),
    (["a", "c"], {"date_from": "2025-01-01T02:00:00", "breakdown": "tier"}),
]


def journeys(rng: np.random.Generator, customers: range, shift: int = 0) -> dict[str, list[Any]]:
    """A few random events per customer over a few hours (seconds from 2025-01-01)."""
    out = {}
    for c in customers:
        rows = []
        for _ in range(int(rng.integers(1, 9))):
            props = {"v": int(rng.integers(0, 3)), "session_id": f"s{rng.integers(0, 3)}"}
            if rng.random() < 0.7:
                props["prod"] = str(rng.choice(["p", "q"]))
            event = str(rng.choice(["a", "b", "c", "d", "x"]))
            rows.append((event, shift + int(rng.integers(0, 4 * 3600)), props))
        out[f"c{c}"] = rows
    return out


def store_of(n_customers: int) -> Any:
    """More than 2048 customers: the kernel runs on threads."""
    store = loudou.connect(":memory:")
    store.insert_events(events_table(journeys(np.random.default_rng(7), range(n_customers))))
    ids = [f"c{i}" for i in range(0, n_customers, 3)]
    traits = [json.dumps({"tier": "gold" if i % 2 else "silver"}) for i in range(len(ids))]
    store.upsert_customers(pa.table({"customer_id": ids, "traits": traits}))
    return store


def answers(store: Any, engine: str, order: list[int]) -> dict[int, str]:
    return {
        i: json.dumps(
            loudou.run_funnel(store, spec_of(SPECS[i][0], **SPECS[i][1]), engine=engine).to_dict(),
            sort_keys=True,
        )
        for i in order
    }


def test_funnels_in_a_row_after_appends_and_on_threads_equal_sql():
    store = store_of(2600)
    everything = list(range(len(SPECS)))
    want = answers(store, "sql", everything)
    assert answers(store, "cache", everything) == want  # each funnel reuses the last's buffers
    assert answers(store, "cache", everything[::-1]) == want
    # units handed out are the caller's: later funnels must not overwrite them
    spec = spec_of(SPECS[2][0], **SPECS[2][1])
    units = funnel_units(store, spec, "cache")
    kept = (units.levels.copy(), units.times.copy(), units.customer.copy(), units.breakdown.copy())
    answers(store, "cache", everything)
    for before, now in zip(
        kept, (units.levels, units.times, units.customer, units.breakdown), strict=True
    ):
        assert np.array_equal(before, now)

    # an append with many new customers: the buffers grow past their headroom
    batch = events_table(journeys(np.random.default_rng(8), range(2000, 3200), shift=3600))
    batch = batch.set_column(0, "event_id", pa.array([f"late-{i}" for i in range(len(batch))]))
    store.insert_events(batch)
    want = answers(store, "sql", everything)
    assert answers(store, "cache", everything) == want

    # several threads on one cache: each query borrows buffers of its own
    orders = [everything, everything[::-1], everything[2:] + everything[:2], everything[1::2]]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda order: answers(store, "cache", order), orders * 2))
    for order, result in zip(orders * 2, got, strict=True):
        assert result == {i: want[i] for i in order}


def test_a_pool_never_lends_one_scratch_twice_and_keeps_one_idle():
    pool = ScratchPool(keep=1)
    with pool.borrow() as first, pool.borrow() as second:
        assert first is not second
        a = first.take("x", 10)
        assert first.take("x", 5).base is a.base  # reused, not reallocated
        assert first.take("x", 10**3).shape == (10**3,)  # grown
    with pool.borrow() as again:
        assert again is first or again is second
    assert len(pool._idle) == 1
