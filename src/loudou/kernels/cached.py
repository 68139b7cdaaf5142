"""Funnel kernel over the columnar event cache: one pass over customers, split across threads.

The cache keeps events sorted by (customer, time, row id) in a base segment plus a small delta
segment of recent appends (see ``loudou.store.cache``). Per customer, this kernel merges both
segments by time, computes each event's step bits from small lookup tables (event code, property
value codes, customer trait codes, the step-1 date range), keeps only what the funnel needs in a
scratch buffer, groups it (session, held values) and hands each group to the very same per-group
routines the SQL path uses (``loudou.kernels.funnel``), so both paths share one semantics.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numba import njit

from loudou.kernels.funnel import (
    ANY_ORDER,
    ORDERED,
    STRICT_ORDER,
    _any_order_level,
    _attempt,
    _chain_level,
    _excluded,
    workspace,
)

COUNT_CUSTOMERS, COUNT_SESSIONS, COUNT_TOTALS = 0, 1, 2


@njit(cache=True, nogil=True)
def _gather(
    c, b_off, b_ts, b_code, b_props, d_off, d_ts, d_code, d_props,
    event_bits, prop_tables, prop_rows, trait_mask, t_lo, t_hi, keep_all, group_props, group_radix,
    s_t, s_m, s_key, s_bd, bd_prop,
):  # fmt: skip
    """Fill the scratch buffers with the customer's relevant events in time order; returns count."""
    i, i_end = b_off[c], b_off[c + 1]
    j, j_end = d_off[c], d_off[c + 1]
    n = 0
    n_props = prop_tables.shape[0]
    n_groups = group_props.shape[0]
    while i < i_end or j < j_end:
        if j >= j_end:
            use_base = True
        elif i >= i_end:
            use_base = False
        else:
            use_base = b_ts[i] <= d_ts[j]  # base rows are older on ties
        if use_base:
            idx = i
            i += 1
            m = event_bits[b_code[idx]] & trait_mask
        else:
            idx = j
            j += 1
            m = event_bits[d_code[idx]] & trait_mask
        if m == 0 and not keep_all:
            continue  # most events: no step, no need to read anything else
        props = b_props if use_base else d_props
        ts = b_ts[idx] if use_base else d_ts[idx]
        if m != 0:
            for p in range(n_props):
                m &= prop_tables[p, props[prop_rows[p], idx]]
            if (m & np.uint64(1)) and (ts < t_lo or ts > t_hi):
                m &= ~np.uint64(1)
            if m == 0 and not keep_all:
                continue
        key = np.int64(0)
        ok = True
        for g in range(n_groups):
            v = props[group_props[g], idx]
            if v == 0:
                ok = False
                break
            key = key * group_radix[g] + v
        if not ok:
            continue
        s_t[n] = ts
        s_m[n] = m
        s_key[n] = key
        s_bd[n] = props[bd_prop, idx] if bd_prop >= 0 else 0
        n += 1
    return n


@njit(cache=True, nogil=True)
def _sort_by_key(n, s_t, s_m, s_key, s_bd):
    """Stable sort of the first n scratch entries by group key (time order kept inside a key)."""
    order = np.argsort(s_key[:n], kind="mergesort")
    s_t[:n] = s_t[:n][order]
    s_m[:n] = s_m[:n][order]
    s_bd[:n] = s_bd[:n][order]
    s_key[:n] = s_key[:n][order]


@njit(cache=True, nogil=True)
def _customer(
    n, s_t, s_m, s_key, s_bd, unit_div, n_steps, window, mode, count_mode, ex_after, ex_before,
    out_level, out_times, out_bd, out_unit, slot, times, ws,
):  # fmt: skip
    """Run the groups of one customer; write its units from ``slot`` on; return how many."""
    written = 0
    s = 0
    best_level = -1
    cur_unit = np.int64(-1)
    while s < n:
        e = s + 1
        while e < n and s_key[e] == s_key[s]:
            e += 1
        if count_mode == COUNT_TOTALS:
            free_after = np.int64(-(2**62))
            for p in range(s, e):
                if not (s_m[p] & np.uint64(1)) or s_t[p] <= free_after:
                    continue
                for q in range(n_steps):
                    times[q] = -1
                lvl, end = _attempt(s_t, s_m, s, p, e, n_steps, window, mode, times, ws)
                free_after = end
                if ex_after.shape[0] > 0 and _excluded(
                    s_t, s_m, s, e, lvl, times, window, n_steps, ex_after, ex_before
                ):
                    continue
                if out_level.shape[0] > 0:
                    out_level[slot + written] = lvl
                    for q in range(n_steps):
                        out_times[q, slot + written] = times[q]
                    out_bd[slot + written] = s_bd[p]
                    out_unit[slot + written] = s_key[s] // unit_div
                written += 1
        else:
            for q in range(n_steps):
                times[q] = -1
            if mode == ANY_ORDER:
                lvl, fi = _any_order_level(s_t, s_m, s, e, n_steps, window, times, ws)
            else:
                lvl, fi = _chain_level(s_t, s_m, s, e, n_steps, window, mode, times, ws)
            unit = s_key[s] // unit_div
            if best_level >= 0 and unit != cur_unit:  # next session: the previous unit is done
                written += 1
                best_level = -1
            cur_unit = unit
            if lvl > best_level:  # a unit's best group (held values) speaks for it; first on ties
                best_level = lvl
                if out_level.shape[0] > 0:
                    excluded = (
                        lvl > 0
                        and ex_after.shape[0] > 0
                        and _excluded(
                            s_t, s_m, s, e, lvl, times, window, n_steps, ex_after, ex_before
                        )
                    )
                    out_level[slot + written] = -1 if excluded else lvl
                    for q in range(n_steps):
                        out_times[q, slot + written] = times[q]
                    out_bd[slot + written] = s_bd[fi] if fi >= 0 else 0
                    out_unit[slot + written] = unit
        s = e
    if count_mode != COUNT_TOTALS and best_level >= 0:
        written += 1
    return written


@njit(cache=True, nogil=True)
def _pass(
    pass_no, c_lo, c_hi, max_events, b_off, b_ts, b_code, b_props, d_off, d_ts, d_code, d_props,
    event_bits, prop_tables, prop_rows, trait_masks, t_lo, t_hi, keep_all, group_props, group_radix,
    bd_prop, unit_div, n_steps, window, mode, count_mode, ex_after, ex_before,
    per_cust, offsets, level, times, bd, unit,
):  # fmt: skip
    """Customers c_lo..c_hi. Pass 0 counts each customer's units into per_cust; pass 1 writes
    them at offsets. Releases the GIL, so threads run ranges in parallel."""
    empty_l = np.zeros(0, np.int64)
    empty_t = np.zeros((n_steps, 0), np.int64)
    s_t = np.empty(max_events + 1, np.int64)
    s_m = np.empty(max_events + 1, np.uint64)
    s_key = np.zeros(max_events + 1, np.int64)  # stays 0 when there are no groups
    s_bd = np.zeros(max_events + 1, np.int64)
    times_buf = np.empty(n_steps, np.int64)
    ws = workspace(n_steps)
    # The common case runs inline: calls that take many arrays cost reference counting per
    # customer, which at millions of customers is more than the funnel itself.
    simple_rows = prop_tables.shape[0] == 0 and group_props.shape[0] == 0 and not keep_all
    one_unit = simple_rows and count_mode == COUNT_CUSTOMERS and pass_no == 1
    plain_rows = simple_rows and bd_prop < 0 and t_lo <= -(2**62) and t_hi >= 2**62
    first_bit = np.uint64(1)
    for c in range(c_lo, c_hi):
        if simple_rows and d_off[c] == d_off[c + 1]:
            # base rows only: a branch-free compaction of the events that match a step
            n = 0
            trait_mask = trait_masks[c]
            if plain_rows:  # no date range, no breakdown property: the tightest loop
                for idx in range(b_off[c], b_off[c + 1]):
                    m = event_bits[b_code[idx]] & trait_mask
                    s_t[n] = b_ts[idx]
                    s_m[n] = m
                    n += m != 0
            else:
                for idx in range(b_off[c], b_off[c + 1]):
                    m = event_bits[b_code[idx]] & trait_mask
                    ts = b_ts[idx]
                    if (m & first_bit) and (ts < t_lo or ts > t_hi):
                        m &= ~first_bit
                    s_t[n] = ts
                    s_m[n] = m
                    if bd_prop >= 0:
                        s_bd[n] = b_props[bd_prop, idx]
                    n += m != 0
        else:
            n = _gather(
                c, b_off, b_ts, b_code, b_props, d_off, d_ts, d_code, d_props,
                event_bits, prop_tables, prop_rows, trait_masks[c], t_lo, t_hi, keep_all, group_props,
                group_radix, s_t, s_m, s_key, s_bd, bd_prop,
            )  # fmt: skip
        if n == 0:
            continue
        if one_unit and ex_after.shape[0] == 0:
            # one group, one unit: the customer (same as _customer, without the bookkeeping)
            for q in range(n_steps):
                times_buf[q] = -1
            if mode == ORDERED:  # the default mode, inlined with a constant: its checks fold away
                lvl, fi = _chain_level(s_t, s_m, 0, n, n_steps, window, ORDERED, times_buf, ws)
            elif mode == ANY_ORDER:
                lvl, fi = _any_order_level(s_t, s_m, 0, n, n_steps, window, times_buf, ws)
            else:
                lvl, fi = _chain_level(s_t, s_m, 0, n, n_steps, window, mode, times_buf, ws)
            slot = offsets[c]
            level[slot] = lvl
            for q in range(n_steps):
                times[q, slot] = times_buf[q]
            bd[slot] = s_bd[fi] if fi >= 0 else 0
            unit[slot] = 0
            per_cust[c] = 1
            continue
        if group_props.shape[0] > 0:
            _sort_by_key(n, s_t, s_m, s_key, s_bd)
        if pass_no == 0:
            per_cust[c] = _customer(
                n, s_t, s_m, s_key, s_bd, unit_div, n_steps, window, mode, count_mode,
                ex_after, ex_before, empty_l, empty_t, empty_l, empty_l, 0, times_buf, ws,
            )  # fmt: skip
        else:
            per_cust[c] = _customer(
                n, s_t, s_m, s_key, s_bd, unit_div, n_steps, window, mode, count_mode,
                ex_after, ex_before, level, times, bd, unit, offsets[c], times_buf, ws,
            )  # fmt: skip


def _in_threads(n_cust: int, run: Callable[[int, int], None]) -> None:
    """Split customers into one contiguous range per core and run them on threads."""
    workers = max(1, min(os.cpu_count() or 1, 8, n_cust // 2048 + 1))
    if workers == 1:
        run(0, n_cust)
        return
    bounds = np.linspace(0, n_cust, workers + 1).astype(np.int64)
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(run, bounds[:-1].tolist(), bounds[1:].tolist()))


def _outputs(size: int, n_steps: int) -> list[np.ndarray]:
    """level, step times [steps, units] (one contiguous row per step), breakdown code, unit.
    Times need no fill: every unit the kernel writes gets all its steps (-1 where not reached),
    and slots it does not write are filtered out."""
    return [
        np.zeros(size, np.int64),
        np.empty((n_steps, size), np.int64),
        np.zeros(size, np.int64),
        np.zeros(size, np.int64),
    ]


def cached_funnel(
    b_off, b_ts, b_code, b_props, d_off, d_ts, d_code, d_props,
    event_bits, prop_tables, prop_rows, trait_masks, t_lo, t_hi, group_props, group_radix, unit_div, bd_prop,
    n_steps, window, mode, count_mode, ex_after, ex_before, max_events,
):  # fmt: skip
    """Units of every customer, excluded ones left out: (customer, level, step times [units,
    steps] as a column-major view, breakdown value code, unit key).

    For count=customers one pass writes one slot per customer. Otherwise pass 0 counts each
    customer's units and pass 1 writes them at prefix-sum offsets. The kernel marks an excluded
    unit with level -1.
    """
    n_cust = b_off.shape[0] - 1
    keep_all = mode == STRICT_ORDER
    per_cust = np.zeros(n_cust, np.int64)
    offsets = np.arange(n_cust + 1, dtype=np.int64)
    out = _outputs(n_cust, n_steps)

    def run(pass_no: int) -> None:
        def part(lo: int, hi: int) -> None:
            _pass(
                pass_no, lo, hi, max_events, b_off, b_ts, b_code, b_props, d_off, d_ts, d_code,
                d_props, event_bits, prop_tables, prop_rows, trait_masks, t_lo, t_hi, keep_all, group_props,
                group_radix, bd_prop, unit_div, n_steps, window, mode, count_mode, ex_after,
                ex_before, per_cust, offsets, *out,
            )  # fmt: skip

        _in_threads(n_cust, part)

    if count_mode != COUNT_CUSTOMERS:
        run(0)
        offsets[1:] = np.cumsum(per_cust)
        out = _outputs(int(offsets[n_cust]), n_steps)
    run(1)
    level, times, bd, unit = out
    if count_mode == COUNT_CUSTOMERS:
        keep = (per_cust > 0) & (level >= 0)
        customer = np.flatnonzero(keep)
    else:
        keep = level >= 0
        customer = np.repeat(np.arange(n_cust), per_cust)[keep]
    return customer, level[keep], np.compress(keep, times, axis=1).T, bd[keep], unit[keep]
