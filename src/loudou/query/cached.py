"""Funnels on the columnar event cache: the spec becomes small lookup tables, one kernel pass does
the rest (loudou.kernels.cached). Results equal the SQL path's, which the tests check.

Conditions are evaluated once per distinct value of a property or trait instead of once per event,
with the same meaning as the SQL builder (loudou.store.duckdb_sql.SqlBuilder.condition).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from loudou.kernels import funnel as kern
from loudou.kernels.cached import COUNT_CUSTOMERS, COUNT_SESSIONS, COUNT_TOTALS, cached_funnel
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


def cached_units(store: CachedStore, spec: FunnelSpec) -> Units | None:
    """Units for the spec from the store's cache, or None when the cache cannot express it."""
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
    return _run(cache, spec, group, bd_prop_name, bd_trait_name, Units)


def _tables(
    cache: EventCache, spec: FunnelSpec
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Step bits per event code; allowed bits per (property, value code) for the properties with
    conditions, and their rows in the cache; allowed bits per customer."""
    event_bits = np.zeros(max(len(cache.events), 1), np.uint64)
    groups = [(k, s.events, s.where) for k, s in enumerate(spec.steps)]
    groups += [(len(spec.steps) + j, x.events, x.where) for j, x in enumerate(spec.exclusions)]
    width = max([len(v) for v in cache.prop_values], default=0) + 1
    prop_tables = np.full((len(cache.prop_names), width), ALL_BITS, np.uint64)
    trait_masks = np.full(len(cache.customers), ALL_BITS, np.uint64)
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
) -> Units | None:
    n_steps = len(spec.steps)
    event_bits, prop_tables, prop_rows, trait_masks = _tables(cache, spec)
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
    per_customer = np.diff(b.off) + np.diff(d.off)
    max_events = int(per_customer.max()) if per_customer.size else 0
    ex_after = np.array([x.after_step for x in spec.exclusions], dtype=np.int64)
    ex_before = np.array([x.before_step for x in spec.exclusions], dtype=np.int64)
    customer, level, times, bd, unit = cached_funnel(
        b.off, b.ts, b.code, b.props, d.off, d.ts, d.code, d.props,
        event_bits, prop_tables, prop_rows, trait_masks, np.int64(t_lo), np.int64(t_hi),
        group_rows, radix, np.int64(unit_div), bd_row,
        n_steps, np.int64(spec.window_seconds) * 1_000_000, kern.MODES[spec.mode],
        COUNT_MODES[spec.count], ex_after, ex_before, max_events,
    )  # fmt: skip
    if spec.count == "sessions":
        sessions = np.array(["", *cache.prop_values[group_rows[0]]], dtype=object)
        unit_key = pa.array(sessions[unit], pa.string())
    else:
        unit_key = pa.repeat(pa.scalar("", pa.string()), level.shape[0])
    breakdown = labels = None
    if spec.breakdown is not None:
        # one code space: 0..P-1 property values, P..P+T-1 trait values (-1 none)
        prop_labels = cache.prop_values[bd_row] if bd_row >= 0 else []
        breakdown = np.where(bd > 0, bd - 1, -1).astype(np.int64)
        labels = list(prop_labels)
        if bd_trait_name is not None:
            t_values, t_codes = cache.traits[bd_trait_name]
            trait_code = t_codes[customer].astype(np.int64) - 1
            use_trait = (breakdown < 0) & (trait_code >= 0)
            breakdown[use_trait] = len(prop_labels) + trait_code[use_trait]
            labels += t_values
        breakdown[level == 0] = -1
    return units_cls(level, times, customer, cache.customers, unit_key, breakdown, labels)
