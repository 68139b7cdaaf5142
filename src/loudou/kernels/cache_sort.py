"""Laying events out for the funnel cache: grouped by customer, then by (time, row id) within each
customer. No I/O.

Rows arrive in any order, batch by batch; each customer's row count is known beforehand (the
offsets). Customers are taken in groups of consecutive codes (``group_shift``): ``Fill.add``
appends each row to its group's range of the output (a few thousand write streams, which stay
in cache, where writing each row straight to its customer's slot misses the cache once per row
and column), keeping the customer's place in its group. ``Fill.finish`` then lays out one group
at a time in cache (a counting sort by customer) and sorts each customer's few events by (time,
row id): groups on threads. O(n) plus small sorts, where one global sort of every event by
(customer, time, row id) costs O(n log n) and, in DuckDB, gigabytes of sort buffers.

Row ids are only needed while sorting: ``merge`` relies on every row of its second segment having
a larger row id than every row of its first, so the merged result keeps (time, row id) order
without them.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow as pa
from numba import njit

RUN = 16  # a customer's events are sorted by insertion in runs of this many, then merged


def group_shift(n_cust: int) -> int:
    """Customers go in groups of 2**shift consecutive codes: about sqrt(customers) groups of
    about sqrt(customers) customers (at most 2**16, a group member fits in 16 bits)."""
    return min(16, (max(n_cust - 1, 1).bit_length() + 1) // 2)


@njit(cache=True, nogil=True)
def _stage(group_next, group_end, shift, cust, rows, ts, vals, member, out_rows, out_ts, out_vals):
    """Append each row to its group's range (``group_next[g]``, advanced), noting its customer's
    place in the group. Returns False, writing nothing more, if a group gets more rows than its
    customers' counts add up to."""
    low = (1 << shift) - 1
    for i in range(cust.shape[0]):
        c = cust[i]
        g = c >> shift
        p = group_next[g]
        if p >= group_end[g]:
            return False
        group_next[g] = p + 1
        member[p] = c & low
        out_rows[p] = rows[i]
        out_ts[p] = ts[i]
        for j in range(vals.shape[0]):
            out_vals[j, p] = vals[j, i]
    return True


@njit(cache=True, nogil=True)
def _finish_groups(off, shift, g_lo, g_hi, member, rows, ts, vals):
    """Lay out groups g_lo..g_hi: a counting sort of each group's range by customer (through a
    scratch copy of the range), then each customer sorted by (time, row id). Returns False if a
    customer's rows do not match its count."""
    n_cust = off.shape[0] - 1
    k = vals.shape[0]
    longest = 0
    for g in range(g_lo, g_hi):
        c0 = g << shift
        longest = max(longest, off[min(c0 + (1 << shift), n_cust)] - off[c0])
    s_rows = np.empty(longest, rows.dtype)
    s_ts = np.empty(longest, np.int64)
    s_vals = np.empty((k, longest), vals.dtype)
    at = np.empty(1 << shift, np.int64)
    for g in range(g_lo, g_hi):
        c0 = g << shift
        c1 = min(c0 + (1 << shift), n_cust)
        lo = off[c0]
        for c in range(c0, c1):
            at[c - c0] = off[c] - lo
        for q in range(lo, off[c1]):
            m = member[q]
            p = at[m]
            if c0 + m >= c1 or p >= off[c0 + m + 1] - lo:
                return False
            at[m] = p + 1
            s_rows[p] = rows[q]
            s_ts[p] = ts[q]
            for j in range(k):
                s_vals[j, p] = vals[j, q]
        for q in range(off[c1] - lo):
            rows[lo + q] = s_rows[q]
            ts[lo + q] = s_ts[q]
            for j in range(k):
                vals[j, lo + q] = s_vals[j, q]
        _sort_range(off, c0, c1, rows, ts, vals)
    return True


@njit(cache=True, nogil=True)
def _sort_range(off, c_lo, c_hi, rows, ts, vals):
    """Sort the slots of customers c_lo..c_hi by (time, row id), each customer on its own: a
    customer already in order is left alone (events often arrive in time order); otherwise its
    keys are copied to scratch with their positions, sorted in runs of RUN by insertion, the runs
    merged (bottom-up merge sort), and the values moved once at the end. No allocation per
    customer: the scratch is sized for the largest."""
    k = vals.shape[0]
    longest = 0
    for c in range(c_lo, c_hi):
        longest = max(longest, off[c + 1] - off[c])
    a_ts = np.empty(longest, np.int64)
    a_rows = np.empty(longest, rows.dtype)
    a_ix = np.empty(longest, np.int64)
    b_ts = np.empty(longest, np.int64)
    b_rows = np.empty(longest, rows.dtype)
    b_ix = np.empty(longest, np.int64)
    v = np.empty(longest, vals.dtype)
    for c in range(c_lo, c_hi):
        lo, hi = off[c], off[c + 1]
        m = hi - lo
        p = lo + 1
        while p < hi and (ts[p - 1] < ts[p] or (ts[p - 1] == ts[p] and rows[p - 1] < rows[p])):
            p += 1
        if p >= hi:
            continue
        for q in range(m):
            a_ts[q] = ts[lo + q]
            a_rows[q] = rows[lo + q]
            a_ix[q] = q
        for r0 in range(0, m, RUN):
            r1 = min(r0 + RUN, m)
            for q in range(r0 + 1, r1):
                t, r, x = a_ts[q], a_rows[q], a_ix[q]
                s = q
                while s > r0 and (a_ts[s - 1] > t or (a_ts[s - 1] == t and a_rows[s - 1] > r)):
                    a_ts[s] = a_ts[s - 1]
                    a_rows[s] = a_rows[s - 1]
                    a_ix[s] = a_ix[s - 1]
                    s -= 1
                a_ts[s] = t
                a_rows[s] = r
                a_ix[s] = x
        width = RUN
        while width < m:
            for left in range(0, m, 2 * width):
                mid = min(left + width, m)
                end = min(left + 2 * width, m)
                i, j = left, mid
                for o in range(left, end):
                    if j >= end or (
                        i < mid
                        and (a_ts[i] < a_ts[j] or (a_ts[i] == a_ts[j] and a_rows[i] < a_rows[j]))
                    ):
                        b_ts[o], b_rows[o], b_ix[o] = a_ts[i], a_rows[i], a_ix[i]
                        i += 1
                    else:
                        b_ts[o], b_rows[o], b_ix[o] = a_ts[j], a_rows[j], a_ix[j]
                        j += 1
            a_ts, b_ts = b_ts, a_ts
            a_rows, b_rows = b_rows, a_rows
            a_ix, b_ix = b_ix, a_ix
            width *= 2
        for q in range(m):
            ts[lo + q] = a_ts[q]
            rows[lo + q] = a_rows[q]
        for j in range(k):
            for q in range(m):
                v[q] = vals[j, lo + a_ix[q]]
            for q in range(m):
                vals[j, lo + q] = v[q]


class Fill:
    """One segment's arrays, filled batch by batch from rows in any order (``add``), then sorted
    by (customer, time, row id) (``finish``). ``off`` holds each customer's row count as offsets
    (known beforehand); row ids and group places are kept only until then."""

    def __init__(self, off: np.ndarray, n_vals: int, row_dtype: type = np.int64) -> None:
        n = int(off[-1])
        n_cust = off.shape[0] - 1
        self.off = off
        self.shift = group_shift(n_cust)
        firsts = np.minimum(np.arange(0, n_cust + (1 << self.shift), 1 << self.shift), n_cust)
        self.group_next = off[firsts[:-1]].copy()
        self.group_end = off[firsts[1:]]
        self.member: np.ndarray | None = np.empty(n, np.uint16)
        self.rows: np.ndarray | None = np.empty(n, row_dtype)
        self.ts = np.empty(n, np.int64)
        self.vals = np.empty((n_vals, n), np.int32)

    def add(self, cust: np.ndarray, rows: np.ndarray, ts: np.ndarray, vals: np.ndarray) -> None:
        assert self.rows is not None and self.member is not None
        if not _stage(
            self.group_next, self.group_end, self.shift, cust, rows, ts, vals,
            self.member, self.rows, self.ts, self.vals,
        ):  # fmt: skip
            raise RuntimeError("event cache: a customer has more events than counted")

    def finish(self) -> tuple[np.ndarray, np.ndarray]:
        """(times, values [columns, rows]) sorted by (customer, time, row id)."""
        assert self.rows is not None and self.member is not None
        if not np.array_equal(self.group_next, self.group_end):
            raise RuntimeError("event cache: fewer events read than counted")
        n_groups = self.group_next.shape[0]
        rows, member = self.rows, self.member

        def part(lo: int, hi: int) -> bool:
            return bool(
                _finish_groups(self.off, self.shift, lo, hi, member, rows, self.ts, self.vals)
            )

        # threads when there is enough to share (an append's few rows: not worth starting them)
        workers = min(os.cpu_count() or 1, 8) if self.ts.shape[0] >= 1 << 18 else 1
        bounds = np.linspace(0, n_groups, min(workers, max(n_groups, 1)) + 1).astype(np.int64)
        if bounds.shape[0] > 2:
            with ThreadPoolExecutor(bounds.shape[0] - 1) as pool:
                ok = all(pool.map(part, bounds[:-1].tolist(), bounds[1:].tolist()))
        else:
            ok = part(0, n_groups)
        if not ok:
            raise RuntimeError("event cache: a customer has more events than counted")
        self.rows = self.member = None
        return self.ts, self.vals


def layout(
    n_cust: int, cust: np.ndarray, rows: np.ndarray, ts: np.ndarray, vals: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows in any order -> (customer offsets, times, values [columns, rows]) sorted by
    (customer, time, row id)."""
    off = np.zeros(n_cust + 1, np.int64)
    np.cumsum(np.bincount(cust, minlength=n_cust), out=off[1:])
    fill = Fill(off, vals.shape[0], rows.dtype.type)
    fill.add(cust, rows, ts, vals)
    return (off, *fill.finish())


@njit(cache=True, nogil=True)
def merge(a_off, a_ts, a_code, a_props, b_off, b_ts, b_code, b_props):
    """Merge two segments sorted by (customer, time, row id) into one, customer by customer.
    Every row of b has a larger row id than every row of a, so a's rows go first on equal times.
    Customers without rows in b (most, when b is an append or the delta) are copied as one block
    per run of them."""
    n_cust = a_off.shape[0] - 1
    off = a_off + b_off
    total = off[n_cust]
    n_props = a_props.shape[0]
    ts = np.empty(total, np.int64)
    code = np.empty(total, a_code.dtype)
    props = np.empty((n_props, total), np.int32)
    run = 0  # first customer of the run without rows in b not yet copied
    for c in range(n_cust + 1):
        if c < n_cust and b_off[c] == b_off[c + 1]:
            continue
        lo, hi, o = a_off[run], a_off[c], off[run]
        ts[o : o + hi - lo] = a_ts[lo:hi]
        code[o : o + hi - lo] = a_code[lo:hi]
        for p in range(n_props):
            props[p, o : o + hi - lo] = a_props[p, lo:hi]
        if c == n_cust:
            break
        i, i_end = a_off[c], a_off[c + 1]
        j, j_end = b_off[c], b_off[c + 1]
        for o in range(off[c], off[c + 1]):
            if j >= j_end or (i < i_end and a_ts[i] <= b_ts[j]):
                ts[o], code[o] = a_ts[i], a_code[i]
                for p in range(n_props):
                    props[p, o] = a_props[p, i]
                i += 1
            else:
                ts[o], code[o] = b_ts[j], b_code[j]
                for p in range(n_props):
                    props[p, o] = b_props[p, j]
                j += 1
        run = c + 1
    return off, ts, code, props


# -- customer ids: the build's are sorted, so a lookup is a binary search over Arrow's buffers -----


def string_buffers(ids: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(offsets, bytes) of a string array without a copy."""
    ids = ids.cast(pa.string())
    if ids.offset:
        ids = pa.concat_arrays([ids])  # a slice: its own buffers from position 0
    _, offsets, data = ids.buffers()
    n = len(ids)
    if data is None:
        return np.zeros(n + 1, np.int32), np.zeros(0, np.uint8)
    return np.frombuffer(offsets, np.int32, n + 1), np.frombuffer(data, np.uint8)


@njit(cache=True, nogil=True, inline="always")
def _compare(off, data, i, q_off, q_data, j):
    """-1, 0 or 1 as string i of (off, data) sorts before, equal to or after string j of the
    other, bytewise (shorter first on a common prefix)."""
    s, e = off[i], off[i + 1]
    t, u = q_off[j], q_off[j + 1]
    k = 0
    while s + k < e and t + k < u:
        a, b = data[s + k], q_data[t + k]
        if a != b:
            return -1 if a < b else 1
        k += 1
    if s + k < e:
        return 1
    return -1 if t + k < u else 0


@njit(cache=True, nogil=True)
def strictly_sorted(off, data):
    """Whether the strings are in strictly increasing bytewise order."""
    for i in range(off.shape[0] - 2):
        if _compare(off, data, i, off, data, i + 1) >= 0:
            return False
    return True


@njit(cache=True, nogil=True)
def find_sorted(off, data, n, q_off, q_data):
    """Index of each query string among the first n strings (sorted bytewise), else -1.

    Queries in ascending order (which callers arrange) are found by galloping forward from
    where the previous one ended: the probes stay near each other, in cache, where a binary
    search over millions of ids misses the cache at nearly every step. A query smaller than
    the one before starts again from 0, so any order is answered correctly."""
    out = np.full(q_off.shape[0] - 1, -1, np.int64)
    floor = 0
    for j in range(out.shape[0]):
        if j > 0 and _compare(q_off, q_data, j, q_off, q_data, j - 1) < 0:
            floor = 0
        lo, step = floor, 1
        while floor + step - 1 < n and _compare(off, data, floor + step - 1, q_off, q_data, j) < 0:
            lo = floor + step
            step *= 2
        hi = min(floor + step - 1, n)  # the answer lies in [lo, hi]
        while lo < hi:
            mid = (lo + hi) // 2
            if _compare(off, data, mid, q_off, q_data, j) < 0:
                lo = mid + 1
            else:
                hi = mid
        if lo < n and _compare(off, data, lo, q_off, q_data, j) == 0:
            out[j] = lo
        floor = lo
    return out


# -- codes from DuckDB's hash of a value: a lookup table instead of a join on strings -----------


class HashCodes:
    """Code (position) of each of a few distinct keys, found from a 64-bit hash of the key.

    DuckDB joins rows with a dictionary on strings slowly, comparing strings on one thread;
    handing over ``hash(value)`` instead and looking it up here costs a fraction of that. Exact
    when every looked-up value is one of the keys and their hashes are distinct: ``build``
    returns None when two collide (callers then join on the values), and a hash not found is an
    error."""

    def __init__(self, hashes: np.ndarray, slots: np.ndarray) -> None:
        self.hashes = hashes
        self.slots = slots

    @classmethod
    def build(cls, hashes: np.ndarray) -> HashCodes | None:
        hashes = np.ascontiguousarray(hashes, np.uint64)
        slots = _hash_slots(hashes)
        return None if slots.shape[0] == 0 else cls(hashes, slots)

    def codes(self, probe: np.ndarray) -> np.ndarray:
        out = np.empty(probe.shape[0], np.int32)
        if _look_up(self.hashes, self.slots, np.ascontiguousarray(probe, np.uint64), out):
            raise RuntimeError("event cache: a value missing from its dictionary")
        return out


@njit(cache=True, nogil=True)
def _hash_slots(hashes):
    """Open addressing, linear probing, at most half full: slot -> index of its hash (-1 empty).
    Empty (size 0) if two hashes are equal."""
    cap = 2
    while cap < 2 * hashes.shape[0]:
        cap *= 2
    mask = np.uint64(cap - 1)
    slots = np.full(cap, -1, np.int32)
    for i in range(hashes.shape[0]):
        s = hashes[i] & mask
        while slots[s] >= 0:
            if hashes[slots[s]] == hashes[i]:
                return slots[:0]
            s = (s + np.uint64(1)) & mask
        slots[s] = i
    return slots


@njit(cache=True, nogil=True)
def _look_up(hashes, slots, probe, out):
    """out[i] = index of probe[i] among the hashes; returns how many were not found."""
    mask = np.uint64(slots.shape[0] - 1)
    missing = 0
    for i in range(probe.shape[0]):
        s = probe[i] & mask
        while True:
            j = slots[s]
            if j < 0:
                out[i] = -1
                missing += 1
                break
            if hashes[j] == probe[i]:
                out[i] = j
                break
            s = (s + np.uint64(1)) & mask
    return missing
