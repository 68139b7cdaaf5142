"""Slow, obviously-correct reference funnels, written from the definitions (DESIGN §4 and
ClickHouse's documented windowFunnel behaviour), independent of the numba kernels.

An entry is (t, step_index) per (event, matching step); ties are ordered by step index, as
ClickHouse sorts them. Each customer is a list of (t, set_of_matching_steps).
"""

from __future__ import annotations

Events = list[tuple[int, frozenset[int]]]


def ordered_longest_chain(events: Events, n: int, window: int) -> int:
    """ordered: the longest chain s1 <= s2 <= ... with every step within window of s1.
    For a fixed start, taking each next step at its earliest possible entry is optimal."""
    entries = sorted((t, k) for t, ks in events for k in ks)
    best = 0
    for i, (t0, k0) in enumerate(entries):
        if k0 != 0:
            continue
        level = 1
        for t, k in entries[i + 1 :]:
            if t > t0 + window:
                break
            if k == level:
                level += 1
                if level == n:
                    break
        best = max(best, level)
    return best


def clickhouse_port(events: Events, n: int, window: int, mode: str) -> int:
    """A line-by-line Python replay of windowFunnel's documented algorithm for strict modes."""
    strict_order = mode == "strict_order"
    entries = []
    for t, ks in events:
        if ks:
            entries += [(t, k + 1) for k in ks]
        elif strict_order:
            entries.append((t, 0))
    entries.sort()
    if not entries:
        return 0
    if not strict_order and n == 1:
        return 1
    state: list[tuple[int, int] | None] = [None] * n
    first_event = False
    for t, idx in entries:
        k = idx - 1
        if strict_order and k == -1:
            if first_event:
                break
            continue
        if k == 0:
            state[0] = (t, t)
            first_event = True
        elif strict_order and first_event and state[k - 1] is None:
            return next(i for i in range(n) if state[i] is None)
        elif state[k - 1] is not None:
            first, last = state[k - 1]  # type: ignore[misc]
            ok = t <= first + window
            if mode == "strict_increase":
                ok = ok and last < t
            if ok:
                state[k] = (first, t)
                if k + 1 == n:
                    return n
    return sum(1 for s in state if s is not None)


def any_order_level(events: Events, n: int, window: int) -> int:
    """Largest k with steps 1..k all present in one window [a, a + window]."""
    best = 0
    for a, ks in events:
        if not ks:
            continue
        present = set().union(*(s for t, s in events if a <= t <= a + window))
        level = 0
        while level < n and level in present:
            level += 1
        best = max(best, level)
    return best


def level(events: Events, n: int, window: int, mode: str) -> int:
    if mode == "ordered":
        return ordered_longest_chain(events, n, window)
    if mode == "any_order":
        return any_order_level(events, n, window)
    return clickhouse_port(events, n, window, mode)


def attempt_levels(events: Events, n: int, window: int, mode: str) -> list[int]:
    """count=totals: each entry is an attempt anchored at a step-1 event; the next attempt starts
    at the first step-1 event after this one ended (completed, interrupted, or window over)."""
    entries = sorted(
        [(t, k) for t, ks in events for k in ks] + [(t, -1) for t, ks in events if not ks]
    )
    free_after = None
    out = []
    for t0 in sorted(t for t, ks in events if 0 in ks):
        if free_after is not None and t0 <= free_after:
            continue
        level, end, times = 1, t0 + window, [t0]
        if n == 1:
            end = t0  # complete at once
        elif mode == "any_order":
            present = {k for t, k in entries if t0 <= t <= t0 + window}
            first_seen = {
                k: min(t for t, kk in entries if kk == k and t0 <= t) for k in present if k >= 0
            }
            while level < n and level in present:
                level += 1
            if level == n:
                end = max(first_seen[k] for k in range(n))
        else:
            for t, k in entries:
                if t < t0:
                    continue
                if t > t0 + window:
                    break
                if mode == "strict_order" and ((k == -1 and t > t0) or k > level):
                    end = t
                    break
                if k == level and not (mode == "strict_increase" and t <= times[-1]):
                    level += 1
                    times.append(t)
                    if level == n:
                        end = t
                        break
        out.append(level)
        free_after = end
    return out
