"""Funnels on the columnar event cache: the plan becomes small lookup tables, one kernel pass does
the rest (loudou.kernels.cached). Results equal the SQL path's, which the tests check.

Conditions are evaluated once per distinct value of a property or trait instead of once per event,
by the rules of loudou.model.conditions (the SQL builder translates the same rules).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pyarrow as pa

from loudou.analyses.funnel.units import Units
from loudou.backends.base import CachedStore
from loudou.backends.cache import EventCache
from loudou.kernels import funnel as kern
from loudou.kernels.cached import (
    COUNT_CUSTOMERS,
    COUNT_SESSIONS,
    COUNT_TOTALS,
    breakdown_codes,
    cached_funnel,
    max_events,
)
from loudou.kernels.scratch import Scratch
from loudou.model.plan import FunnelPlan

ALL_BITS = np.uint64(0xFFFFFFFFFFFFFFFF)
COUNT_MODES = {"customers": COUNT_CUSTOMERS, "sessions": COUNT_SESSIONS, "totals": COUNT_TOTALS}
NO_TRAIT_CODES = np.zeros(0, np.int32)


@contextmanager
def borrowed_units(store: CachedStore, plan: FunnelPlan) -> Iterator[tuple[Units | None, Scratch]]:
    """Units for the plan from the store's cache (None when the cache cannot express it). Their
    arrays are views of the cache's reusable work buffers, valid only inside the block; the
    scratch yielded with them is this query's alone, for more work arrays (e.g.
    ``step_time_quantiles``)."""
    cache = store.event_cache(plan.properties, plan.traits)
    with cache.scratch.borrow() as scratch:
        yield _run(cache, plan, scratch), scratch


def _tables(
    cache: EventCache, plan: FunnelPlan, scratch: Scratch
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Match bits per event code; allowed bits per (property, value code) for the properties
    with conditions, and their rows in the cache; allowed bits per customer (in ``scratch``).
    Conditions are decided once per distinct value, by the rules of model.conditions."""
    event_bits = np.zeros(max(len(cache.events), 1), np.uint64)
    width = max([len(v) for v in cache.prop_values], default=0) + 1
    prop_tables = np.full((len(cache.prop_names), width), ALL_BITS, np.uint64)
    trait_masks = scratch.take("trait_masks", len(cache.customers), np.uint64)
    trait_masks.fill(ALL_BITS)
    for bit_no, match in enumerate(plan.matches):
        bit = np.uint64(1) << np.uint64(bit_no)
        for name in match.events:
            code = cache.event_code(name)
            if code is not None:
                event_bits[code] |= bit
        for test in match.tests:
            if test.on_customer:
                values, codes = cache.traits[test.name]
                ok = np.array(test.holds_each([None, *values]), bool)
                trait_masks[~ok[codes]] &= ~bit
            else:
                row = cache.prop_names.index(test.name)
                ok = np.array(test.holds_each([None, *cache.prop_values[row]]), bool)
                prop_tables[row, : ok.shape[0]][~ok] &= ~bit
    used = np.flatnonzero((prop_tables != ALL_BITS).any(axis=1)).astype(np.int64)
    return event_bits, np.ascontiguousarray(prop_tables[used]), used, trait_masks


def _run(cache: EventCache, plan: FunnelPlan, scratch: Scratch) -> Units | None:
    n_steps = len(plan.steps)
    event_bits, prop_tables, prop_rows, trait_masks = _tables(cache, plan, scratch)
    t_lo = plan.t_from if plan.t_from is not None else -(2**62)
    t_hi = plan.t_to if plan.t_to is not None else 2**62
    group_rows = np.array([cache.prop_names.index(g) for g in plan.group_properties], np.int64)
    radix = np.array([len(cache.prop_values[r]) + 1 for r in group_rows], np.int64)
    if radix.size and float(np.prod(radix.astype(float))) >= 2.0**62:
        return None  # too many distinct group values to pack in one key: use the SQL path
    n_unit_parts = 1 if plan.unit_property else 0
    unit_div = int(np.prod(radix[n_unit_parts:])) if radix.size else 1
    source = plan.breakdown
    bd_prop = source.property if source is not None else None
    bd_trait = source.trait if source is not None else None
    bd_row = cache.prop_names.index(bd_prop) if bd_prop else -1
    b, d = cache.base, cache.delta
    ex_after = np.array(plan.after_step, dtype=np.int64)
    ex_before = np.array(plan.before_step, dtype=np.int64)
    customer, level, times, bd, unit = cached_funnel(
        b.off, b.ts, b.code, b.props, d.off, d.ts, d.code, d.props,
        event_bits, prop_tables, prop_rows, trait_masks, np.int64(t_lo), np.int64(t_hi),
        group_rows, radix, np.int64(unit_div), bd_row,
        n_steps, np.int64(plan.window_us), kern.MODES[plan.mode],
        COUNT_MODES[plan.count], ex_after, ex_before, int(max_events(b.off, d.off)), scratch,
    )  # fmt: skip
    if plan.unit_property:
        sessions = np.array(["", *cache.prop_values[group_rows[0]]], dtype=object)
        unit_key = pa.array(sessions[unit], pa.string())
    else:
        unit_key = _blank_keys(scratch, level.shape[0])
    breakdown = labels = None
    if source is not None:
        # one code space: 0..P-1 property values, P..P+T-1 trait values (-1 none)
        prop_labels = cache.prop_values[bd_row] if bd_row >= 0 else []
        labels = list(prop_labels)
        t_codes = NO_TRAIT_CODES
        if bd_trait is not None:
            t_values, t_codes = cache.traits[bd_trait]
            labels += t_values
            if customer.size and customer[-1] >= t_codes.shape[0]:  # units are in customer order
                raise IndexError("event cache: trait codes cover fewer customers than the units")
        breakdown = scratch.take("breakdown", level.shape[0])
        breakdown_codes(bd, level, customer, bd_trait is not None, t_codes,
                        len(prop_labels), breakdown)  # fmt: skip
    return Units(level, times, customer, cache.customers, unit_key, breakdown, labels)


def _blank_keys(scratch: Scratch, n: int) -> pa.Array:
    """n empty unit keys (count=customers and totals), sliced from one kept array: Arrow arrays
    are immutable, so every query may share it."""
    keys = scratch.objects.get("blank_keys")
    if keys is None or len(keys) < n:
        keys = scratch.objects["blank_keys"] = pa.repeat(pa.scalar("", pa.string()), n + n // 8)
    return keys.slice(0, n)
