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
from numba import njit

from loudou.kernels.cached import _in_threads

SMALL = 32  # customers with at most this many events are sorted by insertion


@njit(cache=True, nogil=True)
def place(next_slot, end, cust, rows, ts, vals, out_rows, out_ts, out_vals):
    """Put each row at its customer's next free slot (``next_slot[c]``, advanced): a stable
    counting sort by customer, fed one batch at a time. ``vals`` is [columns, rows]. Returns
    False, writing nothing more, if a customer gets more rows than its range (up to ``end[c]``)
    holds."""
    k = vals.shape[0]
    for i in range(cust.shape[0]):
        c = cust[i]
        p = next_slot[c]
        if p >= end[c]:
            return False
        next_slot[c] = p + 1
        out_rows[p] = rows[i]
        out_ts[p] = ts[i]
        for j in range(k):
            out_vals[j, p] = vals[j, i]
    return True


@njit(cache=True, nogil=True, inline="always")
def _after(ts, rows, a, b):
    """Whether slot a sorts after slot b by (time, row id)."""
    return ts[a] > ts[b] or (ts[a] == ts[b] and rows[a] > rows[b])


@njit(cache=True, nogil=True)
def _sort_range(off, c_lo, c_hi, rows, ts, vals):
    """Sort the slots of customers c_lo..c_hi by (time, row id), each customer on its own."""
    k = vals.shape[0]
    v = np.empty(k, vals.dtype)
    for c in range(c_lo, c_hi):
        lo, hi = off[c], off[c + 1]
        p = lo + 1
        while p < hi and not _after(ts, rows, p - 1, p):
            p += 1
        if p >= hi:
            continue  # already in order: events often arrive in time order
        if hi - lo <= SMALL:
            for q in range(p, hi):
                t, r = ts[q], rows[q]
                for j in range(k):
                    v[j] = vals[j, q]
                s = q
                while s > lo and (ts[s - 1] > t or (ts[s - 1] == t and rows[s - 1] > r)):
                    ts[s] = ts[s - 1]
                    rows[s] = rows[s - 1]
                    for j in range(k):
                        vals[j, s] = vals[j, s - 1]
                    s -= 1
                ts[s] = t
                rows[s] = r
                for j in range(k):
                    vals[j, s] = v[j]
        else:  # a large customer: two stable sorts, by row id, then by time
            order = np.argsort(rows[lo:hi], kind="mergesort")
            order = order[np.argsort(ts[lo:hi][order], kind="mergesort")] + lo
            ts[lo:hi] = ts[order]
            rows[lo:hi] = rows[order]
            for j in range(k):
                vals[j, lo:hi] = vals[j][order]


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
        self.rows: np.ndarray | None = np.empty(n, row_dtype)
        self.ts = np.empty(n, np.int64)
        self.vals = np.empty((n_vals, n), np.int32)

    def add(self, cust: np.ndarray, rows: np.ndarray, ts: np.ndarray, vals: np.ndarray) -> None:
        assert self.rows is not None
        if not place(
            self.next_slot, self.off[1:], cust, rows, ts, vals, self.rows, self.ts, self.vals
        ):
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
    Every row of b has a larger row id than every row of a, so a's rows go first on equal times."""
    n_cust = a_off.shape[0] - 1
    off = a_off + b_off
    total = off[n_cust]
    n_props = a_props.shape[0]
    ts = np.empty(total, np.int64)
    code = np.empty(total, a_code.dtype)
    props = np.empty((n_props, total), np.int32)
    for c in range(n_cust):
        i, i_end = a_off[c], a_off[c + 1]
        j, j_end = b_off[c], b_off[c + 1]
        o = off[c]
        while i < i_end or j < j_end:
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
            o += 1
    return off, ts, code, props
