"""Funnel kernel over the columnar event cache: one pass over customers, split across threads.

The cache keeps events sorted by (customer, time, row id) in a base segment plus a small delta
segment of recent appends (see ``loudou.backends.cache``). Per customer, this kernel merges both
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
from loudou.kernels.scratch import Scratch

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
    them at offsets (count=customers: at the customer's index, offsets unused). Every customer's
    per_cust is written, so the outputs need no clearing. Releases the GIL, so threads run ranges
    in parallel."""
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
    no_range = t_lo <= -(2**62) and t_hi >= 2**62
    plain_rows = simple_rows and bd_prop < 0 and no_range
    bd_rows = simple_rows and bd_prop >= 0 and no_range
    b_bd = b_props[bd_prop] if bd_prop >= 0 else b_props.ravel()[:0]  # the breakdown's codes
    first_bit = np.uint64(1)
    for c in range(c_lo, c_hi):
        if simple_rows and d_off[c] != d_off[c + 1]:
            # base and delta rows merged by time (base first on ties), compacted as below: after
            # an append, many customers have a few delta rows, and _gather's call costs more
            n = 0
            trait_mask = trait_masks[c]
            i, i_end = b_off[c], b_off[c + 1]
            j, j_end = d_off[c], d_off[c + 1]
            while i < i_end or j < j_end:
                if j >= j_end or (i < i_end and b_ts[i] <= d_ts[j]):
                    m = event_bits[b_code[i]] & trait_mask
                    ts = b_ts[i]
                    v = b_props[bd_prop, i] if bd_prop >= 0 else 0
                    i += 1
                else:
                    m = event_bits[d_code[j]] & trait_mask
                    ts = d_ts[j]
                    v = d_props[bd_prop, j] if bd_prop >= 0 else 0
                    j += 1
                if (m & first_bit) and (ts < t_lo or ts > t_hi):
                    m &= ~first_bit
                s_t[n] = ts
                s_m[n] = m
                s_bd[n] = v
                n += m != 0
        elif simple_rows:
            # base rows only: a branch-free compaction of the events that match a step
            n = 0
            trait_mask = trait_masks[c]
            if plain_rows:  # no date range, no breakdown property: the tightest loop
                for idx in range(b_off[c], b_off[c + 1]):
                    m = event_bits[b_code[idx]] & trait_mask
                    s_t[n] = b_ts[idx]
                    s_m[n] = m
                    n += m != 0
            elif bd_rows:  # a breakdown, no date range: one more array read, no branch
                for idx in range(b_off[c], b_off[c + 1]):
                    m = event_bits[b_code[idx]] & trait_mask
                    s_t[n] = b_ts[idx]
                    s_m[n] = m
                    s_bd[n] = b_bd[idx]
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
            per_cust[c] = 0
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
            slot = c  # count=customers: one slot per customer
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
                ex_after, ex_before, level, times, bd, unit,
                c if count_mode == COUNT_CUSTOMERS else offsets[c], times_buf, ws,
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


@njit(cache=True, nogil=True)
def _compact(by_customer, per_cust, offsets, level, bd, unit, times, size, n_steps, customer, src):
    """Move the units kept (written and not excluded: level >= 0) to the front of the outputs, in
    order, in place (a write never passes its read), and note each one's customer and former
    slot. Step times [steps, size] (flat) are compacted to [steps, kept], row after row (a row's
    writes land below every row still to be read). Returns how many were kept."""
    k = 0
    for c in range(per_cust.shape[0]):
        if by_customer:
            lo, hi = c, (c + 1 if per_cust[c] > 0 else c)
        else:
            lo, hi = offsets[c], offsets[c + 1]
        for s in range(lo, hi):
            if level[s] >= 0:
                level[k] = level[s]
                bd[k] = bd[s]
                unit[k] = unit[s]
                src[k] = s
                customer[k] = c
                k += 1
    for q in range(n_steps):
        into = q * k
        read = q * size
        for j in range(k):
            times[into + j] = times[read + src[j]]
    return k


@njit(cache=True, nogil=True)
def max_events(b_off, d_off):
    """The most events one customer has in both segments (sizes the kernel's scratch)."""
    most = 0
    for c in range(b_off.shape[0] - 1):
        most = max(most, b_off[c + 1] - b_off[c] + d_off[c + 1] - d_off[c])
    return most


@njit(cache=True, nogil=True)
def breakdown_codes(bd, level, customer, use_traits, trait_codes, n_prop_values, out):
    """Each unit's breakdown in one code space: its property value (bd - 1) when it has one, else
    the customer's trait value (n_prop_values + trait code - 1) when ``use_traits`` and set, else
    -1; -1 too for units that did not enter."""
    for u in range(bd.shape[0]):
        code = bd[u] - 1 if bd[u] > 0 else -1
        if code < 0 and use_traits:
            t = trait_codes[customer[u]] - 1
            if t >= 0:
                code = n_prop_values + t
        out[u] = -1 if level[u] == 0 else code


NO_SLOTS = np.zeros(0, np.int64)


def cached_funnel(
    b_off, b_ts, b_code, b_props, d_off, d_ts, d_code, d_props,
    event_bits, prop_tables, prop_rows, trait_masks, t_lo, t_hi, group_props, group_radix, unit_div, bd_prop,
    n_steps, window, mode, count_mode, ex_after, ex_before, max_events, scratch=None,
):  # fmt: skip
    """Units of every customer, excluded ones left out: (customer, level, step times [units,
    steps] as a column-major view, breakdown value code, unit key).

    For count=customers one pass writes one slot per customer. Otherwise pass 0 counts each
    customer's units and pass 1 writes them at prefix-sum offsets. The kernel marks an excluded
    unit with level -1; the kept units are then moved to the front in place. The results are
    views of ``scratch``'s buffers (a :class:`Scratch`; default: a new one), valid until its next
    use.
    """
    scratch = Scratch() if scratch is None else scratch
    n_cust = b_off.shape[0] - 1
    keep_all = mode == STRICT_ORDER
    by_customer = count_mode == COUNT_CUSTOMERS
    per_cust = scratch.take("per_cust", n_cust)
    offsets = NO_SLOTS if by_customer else scratch.take("offsets", n_cust + 1)
    out = [NO_SLOTS, np.zeros((n_steps, 0), np.int64), NO_SLOTS, NO_SLOTS]  # pass 0 writes none

    def run(pass_no: int) -> None:
        def part(lo: int, hi: int) -> None:
            _pass(
                pass_no, lo, hi, max_events, b_off, b_ts, b_code, b_props, d_off, d_ts, d_code,
                d_props, event_bits, prop_tables, prop_rows, trait_masks, t_lo, t_hi, keep_all, group_props,
                group_radix, bd_prop, unit_div, n_steps, window, mode, count_mode, ex_after,
                ex_before, per_cust, offsets, *out,
            )  # fmt: skip

        _in_threads(n_cust, part)

    size = n_cust
    if not by_customer:
        run(0)
        offsets[0] = 0
        np.cumsum(per_cust, out=offsets[1:])
        size = int(offsets[n_cust])
    # level, step times [steps, units] (one contiguous row per step), breakdown code, unit. None
    # needs clearing: every unit the kernel writes gets all its fields (times -1 where a step was
    # not reached), and the slots it does not write are left out by _compact.
    flat_times = scratch.take("times", n_steps * size)
    level, bd, unit = (scratch.take(name, size) for name in ("level", "bd", "unit"))
    out = [level, flat_times.reshape(n_steps, size), bd, unit]
    run(1)
    customer = scratch.take("customer", size)
    src = customer if by_customer else scratch.take("slot", size)  # by customer: the same
    k = _compact(by_customer, per_cust, offsets, level, bd, unit, flat_times, size, n_steps,
                 customer, src)  # fmt: skip
    times = flat_times[: n_steps * k].reshape(n_steps, k)
    return customer[:k], level[:k], times.T, bd[:k], unit[:k]
