"""Laying events out for the funnel cache: grouped by customer, then by (time, row id) within each
customer. No I/O.

The customer offsets are a histogram of the customer codes, so grouping is a counting sort: each
row goes to its customer's next free slot (``place``), batch by batch as rows arrive in any order.
Each customer's few events are then sorted by (time, row id) on their own (``sort_within``), in
parallel over customer ranges. That is O(n) plus small sorts, where one global sort of every event
by (customer, time, row id) costs O(n log n) and, in DuckDB, gigabytes of sort buffers.

Row ids are only needed while sorting: ``merge`` relies on every row of its second segment having
a larger row id than every row of its first, so the merged result keeps (time, row id) order
without them.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from numba import njit

from loudou.kernels.cached import _in_threads

RUN = 16  # a customer's events are sorted by insertion in runs of this many, then merged


@njit(cache=True, nogil=True)
def place(next_slot, end, cust, rows, ts, vals, out_rows, out_ts, out_vals, shift):
    """Put each row at its customer's next free slot (``next_slot[c]``, advanced): a stable
    counting sort by customer, fed one batch at a time. ``vals`` is [columns, rows]. Returns
    False, writing nothing more, if a customer gets more rows than its range (up to ``end[c]``)
    holds.

    Writing each row straight to its slot touches a new cache line per row and column (every
    customer's range is open at once); so the batch is first grouped by ``customer >> shift``
    (a few hundred write streams), then placed group by group (a few hundred customers' ranges
    open at a time): two passes that stay in cache, several times faster than one that does not.
    """
    n = cust.shape[0]
    k = vals.shape[0]
    n_groups = ((next_slot.shape[0] - 1) >> shift) + 1
    at = np.zeros(n_groups + 1, np.int64)
    for i in range(n):
        at[(cust[i] >> shift) + 1] += 1
    for g in range(n_groups):
        at[g + 1] += at[g]
    g_cust = np.empty(n, cust.dtype)
    g_rows = np.empty(n, rows.dtype)
    g_ts = np.empty(n, np.int64)
    g_vals = np.empty((k, n), vals.dtype)
    for i in range(n):
        g = cust[i] >> shift
        q = at[g]
        at[g] = q + 1
        g_cust[q] = cust[i]
        g_rows[q] = rows[i]
        g_ts[q] = ts[i]
        for j in range(k):
            g_vals[j, q] = vals[j, i]
    for q in range(n):
        c = g_cust[q]
        p = next_slot[c]
        if p >= end[c]:
            return False
        next_slot[c] = p + 1
        out_rows[p] = g_rows[q]
        out_ts[p] = g_ts[q]
        for j in range(k):
            out_vals[j, p] = g_vals[j, q]
    return True


def group_shift(n_cust: int) -> int:
    """``place`` groups customers by code >> shift: about sqrt(customers) groups of about
    sqrt(customers) customers, so both of its passes have few write streams."""
    return (max(n_cust - 1, 1).bit_length() + 1) // 2


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


def sort_within(off: np.ndarray, rows: np.ndarray, ts: np.ndarray, vals: np.ndarray) -> None:
    """Sort each customer's slots by (time, row id) in place, customer ranges on threads."""

    def part(lo: int, hi: int) -> None:
        _sort_range(off, lo, hi, rows, ts, vals)

    _in_threads(off.shape[0] - 1, part)


class Fill:
    """One segment's arrays, filled batch by batch from rows in any order (``add``), then sorted
    by (customer, time, row id) (``finish``). ``off`` holds each customer's row count as offsets
    (known beforehand); row ids are kept only until the sort is done."""

    def __init__(self, off: np.ndarray, n_vals: int, row_dtype: type = np.int64) -> None:
        n = int(off[-1])
        self.off = off
        self.next_slot = off[:-1].copy()
        self.shift = group_shift(off.shape[0] - 1)
        self.rows: np.ndarray | None = np.empty(n, row_dtype)
        self.ts = np.empty(n, np.int64)
        self.vals = np.empty((n_vals, n), np.int32)

    def add(self, cust: np.ndarray, rows: np.ndarray, ts: np.ndarray, vals: np.ndarray) -> None:
        assert self.rows is not None
        if not place(
            self.next_slot, self.off[1:], cust, rows, ts, vals, self.rows, self.ts, self.vals,
            self.shift,
        ):  # fmt: skip
            raise RuntimeError("event cache: a customer has more events than counted")

    def finish(self) -> tuple[np.ndarray, np.ndarray]:
        """(times, values [columns, rows]) sorted by (customer, time, row id)."""
        assert self.rows is not None
        if not np.array_equal(self.next_slot, self.off[1:]):
            raise RuntimeError("event cache: fewer events read than counted")
        sort_within(self.off, self.rows, self.ts, self.vals)
        self.rows = None
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
