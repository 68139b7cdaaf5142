"""Funnels on the columnar event cache: the spec becomes small lookup tables, one kernel pass does
the rest (loudou.kernels.cached). Results equal the SQL path's, which the tests check.

Conditions are evaluated once per distinct value of a property or trait instead of once per event,
with the same meaning as the SQL builder (loudou.store.duckdb_sql.SqlBuilder.condition).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

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
from loudou.model.spec import Condition, FunnelSpec
from loudou.store.base import CachedStore
from loudou.store.cache import EventCache
from loudou.store.duckdb_sql import date_bounds

if TYPE_CHECKING:
    from loudou.query.funnel import Units

ALL_BITS = np.uint64(0xFFFFFFFFFFFFFFFF)
COUNT_MODES = {"customers": COUNT_CUSTOMERS, "sessions": COUNT_SESSIONS, "totals": COUNT_TOTALS}


def _number(text: str | None) -> float | None:
    """TRY_CAST(text AS DOUBLE): a number, or None when the text is not one."""
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        return None


def _compare(a: float | str, op: str, b: float | str) -> bool:
    if op == "=":
        return a == b
    if op == "!=":
        return a != b
    if op == ">":
        return a > b  # type: ignore[operator]
    if op == ">=":
        return a >= b  # type: ignore[operator]
    if op == "<":
        return a < b  # type: ignore[operator]
    return a <= b  # type: ignore[operator]


def _as_text(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _is_number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def condition_holds(cond: Condition, values: list[str]) -> np.ndarray:
    """For code 0 (null) and each dictionary value: does the condition hold? Null satisfies only
    'is not set'; comparisons follow SQL: numbers numerically (NaN never equal), text as text."""
    raw: list[str | None] = [None, *values]
    op, value = cond.op, cond.value
    out = np.zeros(len(raw), bool)
    for i, x in enumerate(raw):
        if op == "is set":
            out[i] = x is not None
        elif op == "is not set":
            out[i] = x is None
        elif x is None:
            out[i] = False
        elif op in ("in", "not in"):
            assert isinstance(value, list)
            if all(_is_number(v) for v in value):
                num = _number(x)
                member = num is not None and any(num == float(v) for v in value)
                out[i] = num is not None and (member if op == "in" else not member)
            else:
                member = x in {_as_text(v) for v in value}
                out[i] = member if op == "in" else not member
        elif op == "contains":
            out[i] = _as_text(value).lower() in x.lower()
        elif _is_number(value):
            num = _number(x)
            out[i] = num is not None and not math.isnan(num) and _compare(num, op, float(value))  # type: ignore[arg-type]
        else:
            out[i] = _compare(x, op, _as_text(value))
    return out


def _event_field(name: str) -> str:
    return name.removeprefix("event.")


def _micros(d: datetime) -> int:
    if d.tzinfo is None:
        d = d.replace(tzinfo=UTC)
    return int(round(d.timestamp() * 1_000_000))


NO_TRAIT_CODES = np.zeros(0, np.int32)


@contextmanager
def borrowed_units(store: CachedStore, spec: FunnelSpec) -> Iterator[tuple[Units | None, Scratch]]:
    """Units for the spec from the store's cache (None when the cache cannot express it). Their
    arrays are views of the cache's reusable work buffers, valid only inside the block; the
    scratch yielded with them is this query's alone, for more work arrays (e.g.
    ``step_time_quantiles``)."""
    from loudou.query.funnel import Units

    props: list[str] = []
    traits: list[str] = []
    conditions = [(k, s.where) for k, s in enumerate(spec.steps)]
    conditions += [(len(spec.steps) + j, x.where) for j, x in enumerate(spec.exclusions)]
    for _, where in conditions:
        for c in where:
            (traits if c.on_customer else props).append(c.field_name)
    group = ([spec.session_property] if spec.count == "sessions" else []) + list(spec.hold_constant)
    props += group
    bd_prop_name = bd_trait_name = None
    if spec.breakdown is not None:
        if spec.breakdown.startswith("customer."):
            bd_trait_name = spec.breakdown.removeprefix("customer.")
        else:
            bd_prop_name = _event_field(spec.breakdown)
            if not spec.breakdown.startswith("event."):
                bd_trait_name = spec.breakdown
        if bd_prop_name:
            props.append(bd_prop_name)
        if bd_trait_name:
            traits.append(bd_trait_name)
    cache = store.event_cache(list(dict.fromkeys(props)), list(dict.fromkeys(traits)))
    with cache.scratch.borrow() as scratch:
        yield _run(cache, spec, group, bd_prop_name, bd_trait_name, Units, scratch), scratch


def _tables(
    cache: EventCache, spec: FunnelSpec, scratch: Scratch
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Step bits per event code; allowed bits per (property, value code) for the properties with
    conditions, and their rows in the cache; allowed bits per customer (in ``scratch``)."""
    event_bits = np.zeros(max(len(cache.events), 1), np.uint64)
    groups = [(k, s.events, s.where) for k, s in enumerate(spec.steps)]
    groups += [(len(spec.steps) + j, x.events, x.where) for j, x in enumerate(spec.exclusions)]
    width = max([len(v) for v in cache.prop_values], default=0) + 1
    prop_tables = np.full((len(cache.prop_names), width), ALL_BITS, np.uint64)
    trait_masks = scratch.take("trait_masks", len(cache.customers), np.uint64)
    trait_masks.fill(ALL_BITS)
    for bit_no, names, where in groups:
        bit = np.uint64(1) << np.uint64(bit_no)
        for name in names:
            code = cache.event_code(name)
            if code is not None:
                event_bits[code] |= bit
        for cond in where:
            if cond.on_customer:
                values, codes = cache.traits[cond.field_name]
                ok = condition_holds(cond, values)
                trait_masks[~ok[codes]] &= ~bit
            else:
                row = cache.prop_names.index(cond.field_name)
                ok = condition_holds(cond, cache.prop_values[row])
                prop_tables[row, : ok.shape[0]][~ok] &= ~bit
    used = np.flatnonzero((prop_tables != ALL_BITS).any(axis=1)).astype(np.int64)
    return event_bits, np.ascontiguousarray(prop_tables[used]), used, trait_masks


def _run(
    cache: EventCache,
    spec: FunnelSpec,
    group: list[str],
    bd_prop_name: str | None,
    bd_trait_name: str | None,
    units_cls: type[Units],
    scratch: Scratch,
) -> Units | None:
    n_steps = len(spec.steps)
    event_bits, prop_tables, prop_rows, trait_masks = _tables(cache, spec, scratch)
    start, end, inclusive = date_bounds(spec)
    t_lo = _micros(start) if start is not None else -(2**62)
    t_hi = (_micros(end) - (0 if inclusive else 1)) if end is not None else 2**62
    group_rows = np.array([cache.prop_names.index(g) for g in group], np.int64)
    radix = np.array([len(cache.prop_values[r]) + 1 for r in group_rows], np.int64)
    if radix.size and float(np.prod(radix.astype(float))) >= 2.0**62:
        return None  # too many distinct group values to pack in one key: use the SQL path
    n_unit_parts = 1 if spec.count == "sessions" else 0
    unit_div = int(np.prod(radix[n_unit_parts:])) if radix.size else 1
    bd_row = cache.prop_names.index(bd_prop_name) if bd_prop_name else -1
    b, d = cache.base, cache.delta
    ex_after = np.array([x.after_step for x in spec.exclusions], dtype=np.int64)
    ex_before = np.array([x.before_step for x in spec.exclusions], dtype=np.int64)
    customer, level, times, bd, unit = cached_funnel(
        b.off, b.ts, b.code, b.props, d.off, d.ts, d.code, d.props,
        event_bits, prop_tables, prop_rows, trait_masks, np.int64(t_lo), np.int64(t_hi),
        group_rows, radix, np.int64(unit_div), bd_row,
        n_steps, np.int64(spec.window_seconds) * 1_000_000, kern.MODES[spec.mode],
        COUNT_MODES[spec.count], ex_after, ex_before, int(max_events(b.off, d.off)), scratch,
    )  # fmt: skip
    if spec.count == "sessions":
        sessions = np.array(["", *cache.prop_values[group_rows[0]]], dtype=object)
        unit_key = pa.array(sessions[unit], pa.string())
    else:
        unit_key = _blank_keys(scratch, level.shape[0])
    breakdown = labels = None
    if spec.breakdown is not None:
        # one code space: 0..P-1 property values, P..P+T-1 trait values (-1 none)
        prop_labels = cache.prop_values[bd_row] if bd_row >= 0 else []
        labels = list(prop_labels)
        t_codes = NO_TRAIT_CODES
        if bd_trait_name is not None:
            t_values, t_codes = cache.traits[bd_trait_name]
            labels += t_values
            if customer.size and customer[-1] >= t_codes.shape[0]:  # units are in customer order
                raise IndexError("event cache: trait codes cover fewer customers than the units")
        breakdown = scratch.take("breakdown", level.shape[0])
        breakdown_codes(bd, level, customer, bd_trait_name is not None, t_codes,
                        len(prop_labels), breakdown)  # fmt: skip
    return units_cls(level, times, customer, cache.customers, unit_key, breakdown, labels)


def _blank_keys(scratch: Scratch, n: int) -> pa.Array:
    """n empty unit keys (count=customers and totals), sliced from one kept array: Arrow arrays
    are immutable, so every query may share it."""
    keys = scratch.objects.get("blank_keys")
    if keys is None or len(keys) < n:
        keys = scratch.objects["blank_keys"] = pa.repeat(pa.scalar("", pa.string()), n + n // 8)
    return keys.slice(0, n)
