"""Funnel kernels: one linear pass over events sorted by (group, time). No I/O.

Input per event: ``t`` (int64 microseconds) and ``mask`` (uint64; bit k = matches step k+1,
bit n_steps+j = matches exclusion j). Groups are contiguous runs given by ``starts``.

The ordered, strict_order and strict_increase modes replay ClickHouse ``windowFunnel`` exactly:
entries are taken in (timestamp, step) order, so events at one timestamp are handled step by step
(an event matching steps 1 and 2 counts as both), and for each level the kernel keeps the first
and last timestamp of the latest chain reaching it. Along with the level, the kernel keeps the time
of each step of that chain, which gives times to convert, exclusion checks and the step-1 event
used to attribute breakdowns.
"""

from __future__ import annotations

import numpy as np
from numba import njit

ORDERED, STRICT_ORDER, STRICT_INCREASE, ANY_ORDER = 0, 1, 2, 3
MODES = {
    "ordered": ORDERED,
    "strict_order": STRICT_ORDER,
    "strict_increase": STRICT_INCREASE,
    "any_order": ANY_ORDER,
}


@njit(cache=True, nogil=True, inline="always")
def _excluded(t, mask, s, e, level, times, window, n_steps, ex_after, ex_before):
    """True if an exclusion event falls strictly between the chain's two steps (or, when the
    later step was not reached, after the earlier step and within the window)."""
    for j in range(ex_after.shape[0]):
        a = ex_after[j]
        b = ex_before[j]
        if level < a:
            continue
        lo = times[a - 1]
        if level >= b:
            hi = times[b - 1]
            inclusive = False
        else:
            hi = times[0] + window
            inclusive = True
        bit = np.uint64(1) << np.uint64(n_steps + j)
        for i in range(s, e):
            if mask[i] & bit:
                ti = t[i]
                if ti > lo and (ti < hi or (inclusive and ti == hi)):
                    return True
    return False


@njit(cache=True, nogil=True)
def workspace(n_steps):
    """Scratch rows for the per-group routines, allocated once per thread, not per customer."""
    return np.empty((n_steps + 4, n_steps), np.int64)


@njit(cache=True, nogil=True, inline="always")
def _chain_level(t, mask, s, e, n_steps, window, mode, times_out, ws):
    """windowFunnel's level for one group; fills times_out[:level] with the chain's step times.
    Returns (level, index of the chain's step-1 event)."""
    step_bits = (np.uint64(1) << np.uint64(n_steps)) - np.uint64(1)
    chain = ws[:n_steps]
    first = ws[n_steps]
    last = ws[n_steps + 1]
    is_set = ws[n_steps + 2]
    start = ws[n_steps + 3]
    is_set[:] = 0
    has_first = False
    result = -1
    i = s
    while i < e and result < 0:
        ts = t[i]
        j = i
        tie_mask = np.uint64(0)
        has_other = False
        first_idx = -1
        while j < e and t[j] == ts:
            m = mask[j] & step_bits
            if m == 0:
                has_other = True
            elif first_idx < 0 and (m & np.uint64(1)):
                first_idx = j
            tie_mask |= m
            j += 1
        if mode == STRICT_ORDER and has_other and has_first:
            break
        for k in range(n_steps):
            if not (tie_mask >> np.uint64(k)) & np.uint64(1):
                continue
            if k == 0:
                first[0] = ts
                last[0] = ts
                is_set[0] = 1
                chain[0, 0] = ts
                start[0] = first_idx
                has_first = True
            elif mode == STRICT_ORDER and has_first and is_set[k - 1] == 0:
                lvl = 0
                while lvl < n_steps and is_set[lvl] != 0:
                    lvl += 1
                result = lvl
                break
            elif is_set[k - 1] != 0:
                f = first[k - 1]
                ok = ts <= f + window
                if mode == STRICT_INCREASE:
                    ok = ok and last[k - 1] < ts
                if ok:
                    first[k] = f
                    last[k] = ts
                    is_set[k] = 1
                    for q in range(k):
                        chain[k, q] = chain[k - 1, q]
                    chain[k, k] = ts
                    start[k] = start[k - 1]
                    if k + 1 == n_steps:
                        result = n_steps
                        break
        i = j
    if result < 0:
        result = 0
        while result < n_steps and is_set[result] != 0:
            result += 1
    if result == 0:
        return 0, -1
    for q in range(result):
        times_out[q] = chain[result - 1, q]
    return result, start[result - 1]


@njit(cache=True, nogil=True, inline="always")
def _any_order_level(t, mask, s, e, n_steps, window, times_out, ws):
    """Largest k such that steps 1..k all occur within one window, in any order. times_out[q] is
    when steps 1..q+1 were all done in the best window (earliest such window on ties)."""
    step_bits = (np.uint64(1) << np.uint64(n_steps)) - np.uint64(1)
    counts = ws[n_steps]
    counts[:] = 0
    best = 0
    best_anchor = -1
    r = s
    i = s
    while i < e:
        if (mask[i] & step_bits) == 0:
            i += 1
            continue
        anchor = t[i]
        while r < e and t[r] <= anchor + window:
            for k in range(n_steps):
                if (mask[r] >> np.uint64(k)) & np.uint64(1):
                    counts[k] += 1
            r += 1
        lvl = 0
        while lvl < n_steps and counts[lvl] > 0:
            lvl += 1
        if lvl > best:
            best = lvl
            best_anchor = i
            if best == n_steps:
                break
        # drop all events at this timestamp from the window before moving the anchor
        while i < e and t[i] == anchor:
            for k in range(n_steps):
                if (mask[i] >> np.uint64(k)) & np.uint64(1):
                    counts[k] -= 1
            i += 1
    if best == 0:
        return 0, -1
    anchor = t[best_anchor]
    done = ws[n_steps + 1]
    done[:] = -1
    start_idx = -1
    for q in range(best_anchor, e):
        if t[q] > anchor + window:
            break
        for k in range(best):
            if done[k] < 0 and (mask[q] >> np.uint64(k)) & np.uint64(1):
                done[k] = t[q]
                if k == 0:
                    start_idx = q
    running = np.int64(-(2**62))
    for k in range(best):
        running = max(running, done[k])
        times_out[k] = running
    return best, start_idx


@njit(cache=True, nogil=True)
def funnel_groups(t, mask, starts, n_steps, window, mode, ex_after, ex_before):
    """Per group: (level, step times [G, n_steps], step-1 event index, excluded)."""
    g_count = starts.shape[0] - 1
    levels = np.zeros(g_count, np.int64)
    times = np.full((g_count, n_steps), -1, np.int64)
    first_idx = np.full(g_count, -1, np.int64)
    excluded = np.zeros(g_count, np.bool_)
    ws = workspace(n_steps)
    for g in range(g_count):
        s = starts[g]
        e = starts[g + 1]
        if mode == ANY_ORDER:
            lvl, fi = _any_order_level(t, mask, s, e, n_steps, window, times[g], ws)
        else:
            lvl, fi = _chain_level(t, mask, s, e, n_steps, window, mode, times[g], ws)
        levels[g] = lvl
        first_idx[g] = fi
        if lvl > 0 and ex_after.shape[0] > 0:
            excluded[g] = _excluded(
                t, mask, s, e, lvl, times[g], window, n_steps, ex_after, ex_before
            )
    return levels, times, first_idx, excluded


@njit(cache=True, nogil=True, inline="always")
def _attempt(t, mask, s, p, e, n_steps, window, mode, times_out, ws):
    """One funnel attempt anchored at the step-1 event p. Returns (level, end time)."""
    step_bits = (np.uint64(1) << np.uint64(n_steps)) - np.uint64(1)
    anchor = t[p]
    times_out[0] = anchor
    level = 1
    # start at the first event of the anchor's timestamp: later steps at the same time count
    first_q = p
    while first_q > s and t[first_q - 1] == anchor:
        first_q -= 1
    if mode == ANY_ORDER:
        seen = ws[n_steps]
        seen[:] = -1
        seen[0] = anchor
        q = first_q
        while q < e and t[q] <= anchor + window:
            for k in range(1, n_steps):
                if seen[k] < 0 and (mask[q] >> np.uint64(k)) & np.uint64(1):
                    seen[k] = t[q]
            q += 1
        running = anchor
        while level < n_steps and seen[level] >= 0:
            running = max(running, seen[level])
            times_out[level] = running
            level += 1
        end = times_out[level - 1] if level == n_steps else anchor + window
        return level, end
    q = first_q
    while q < e and level < n_steps:
        ts = t[q]
        if ts > anchor + window:
            break
        j = q
        tie_mask = np.uint64(0)
        has_other = False
        while j < e and t[j] == ts:
            m = mask[j] & step_bits
            if m == 0:
                has_other = True
            tie_mask |= m
            j += 1
        if mode == STRICT_ORDER and has_other and ts > anchor:
            return level, ts
        for k in range(1, n_steps):
            if not (tie_mask >> np.uint64(k)) & np.uint64(1):
                continue
            if k == level:
                if mode == STRICT_INCREASE and ts <= times_out[k - 1]:
                    continue
                times_out[k] = ts
                level += 1
                if level == n_steps:
                    break
            elif k > level and mode == STRICT_ORDER:
                return level, ts
        q = j
    end = times_out[level - 1] if level == n_steps else anchor + window
    return level, end


@njit(cache=True, nogil=True)
def funnel_attempts(t, mask, starts, n_steps, window, mode, ex_after, ex_before):
    """Totals: every entry into the funnel is an attempt. A new attempt starts at the first step-1
    event after the previous attempt ended (completed, interrupted, or its window ran out)."""
    n = t.shape[0]
    levels = np.zeros(n, np.int64)
    times = np.full((n, n_steps), -1, np.int64)
    first_idx = np.full(n, -1, np.int64)
    excluded = np.zeros(n, np.bool_)
    group = np.zeros(n, np.int64)
    count = 0
    ws = workspace(n_steps)
    for g in range(starts.shape[0] - 1):
        s = starts[g]
        e = starts[g + 1]
        free_after = np.int64(-(2**62))
        for p in range(s, e):
            if not (mask[p] & np.uint64(1)) or t[p] <= free_after:
                continue
            lvl, end = _attempt(t, mask, s, p, e, n_steps, window, mode, times[count], ws)
            levels[count] = lvl
            first_idx[count] = p
            group[count] = g
            if ex_after.shape[0] > 0:
                excluded[count] = _excluded(
                    t, mask, s, e, lvl, times[count], window, n_steps, ex_after, ex_before
                )
            free_after = end
            count += 1
    return levels[:count], times[:count], first_idx[:count], excluded[:count], group[:count]


@njit(cache=True, nogil=True)
def best_group_per_unit(levels, unit_starts):
    """Index of the group with the highest level in each unit (first on ties)."""
    u_count = unit_starts.shape[0] - 1
    out = np.empty(u_count, np.int64)
    for u in range(u_count):
        best = unit_starts[u]
        for g in range(unit_starts[u] + 1, unit_starts[u + 1]):
            if levels[g] > levels[best]:
                best = g
        out[u] = best
    return out
