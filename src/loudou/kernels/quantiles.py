"""Median and p90 of step-to-step times for many groups in one call, bit-for-bit as numpy.

``np.percentile(x, [50, 90])`` per (group, step) costs numpy's per-call overhead dozens of times
in a breakdown, and a partition (quickselect) of float64 mispredicts a branch per element. This
kernel counts units per (group, level), writes each (group, step)'s durations as int64
microseconds into one buffer and finds the four order statistics the two percentiles need by
radix selection: a min/max pass, a histogram pass and a gather pass, then small leftovers.
Dividing by 1e6 keeps order, so the order statistics of the seconds are exactly the seconds of the
order statistics of the microseconds.

The interpolation replays numpy's default 'linear' method exactly (numpy 2.x ``_quantile``): the
virtual index is ``(n - 1) * q`` in float64; at or above ``n - 1`` both neighbours are the maximum
and the weight is ``index + 1``; the value is ``_lerp(a, b, t)``, i.e. ``a + (b - a) * t``, or
``b - (b - a) * (1 - t)`` when ``t >= 0.5``. The order statistics are the same whatever the
selection algorithm, so the results are identical, which the tests check with ``==``.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numba import njit

from loudou.kernels.scratch import Scratch, fresh

Q50 = 50 / 100  # numpy divides the percentiles by 100 in float64
Q90 = 90 / 100
MAX_BITS = 11  # radix digits of up to 11 bits: a histogram of at most 2048 buckets
SMALL = 32  # ranges up to this size are sorted instead


@njit(cache=True, nogil=True)
def _insertion_sort(a, lo, hi):
    for i in range(lo + 1, hi):
        x = a[i]
        j = i - 1
        while j >= lo and a[j] > x:
            a[j + 1] = a[j]
            j -= 1
        a[j + 1] = x


@njit(cache=True, nogil=True, inline="always")
def _bit_length(x):
    width = np.int64(0)
    while x > 0:
        x >>= np.uint64(1)
        width += 1
    return width


@njit(cache=True, nogil=True)
def _digits(a, lo, hi):
    """Smallest value of a[lo:hi], the shift that leaves a digit of ``x - min`` (about 16 values
    per bucket, at most MAX_BITS wide; -1 when all values are equal) and the number of buckets."""
    mn = a[lo]
    mx = a[lo]
    for i in range(lo + 1, hi):
        x = a[i]
        mn = min(mn, x)
        mx = max(mx, x)
    if mn == mx:
        return mn, np.int64(-1), np.int64(1)
    span = np.uint64(mx) - np.uint64(mn)  # wraps to the true span, which is below 2**64
    bits = min(max(_bit_length(np.uint64(hi - lo)) - 4, 3), MAX_BITS)
    shift = max(_bit_length(span) - bits, 0)
    return mn, shift, np.int64(span >> np.uint64(shift)) + 1


@njit(cache=True, nogil=True, inline="always")
def _digit(x, mn, shift):
    return np.int64((np.uint64(x) - np.uint64(mn)) >> np.uint64(shift))


@njit(cache=True, nogil=True)
def _histogram(a, lo, hi, mn, shift, n_buckets, hist):
    hist[:n_buckets] = 0
    for i in range(lo, hi):
        hist[_digit(a[i], mn, shift)] += 1


@njit(cache=True, nogil=True, inline="always")
def _find(hist, r):
    """The bucket holding rank r, and the rank inside it."""
    b = 0
    while r >= hist[b]:
        r -= hist[b]
        b += 1
    return b, r


@njit(cache=True, nogil=True)
def _narrow(work, m, r, hist):
    """The r-th smallest of work[:m] (reordered): keep only the rank's bucket, digit by digit."""
    while m > SMALL:
        mn, shift, n_buckets = _digits(work, 0, m)
        if shift < 0:
            return mn
        _histogram(work, 0, m, mn, shift, n_buckets, hist)
        b, r = _find(hist, r)
        if shift == 0:
            return mn + b
        k = 0
        for i in range(m):  # compact in place: the write index never passes the read index
            if _digit(work[i], mn, shift) == b:
                work[k] = work[i]
                k += 1
        m = k
    _insertion_sort(work, 0, m)
    return work[r]


@njit(cache=True, nogil=True)
def _order_stats(a, lo, hi, ranks, hist, slot_of, gathered, work):
    """The values at ``ranks`` (0-based) of a[lo:hi] in sorted order, without sorting: one
    min/max pass, one histogram pass and one pass gathering the buckets that hold the ranks; then
    each rank narrows inside its bucket (usually a small part). ``a`` is left unchanged.
    ``gathered`` and ``work`` hold at least hi - lo values; ``slot_of`` is all -1 (and is left so).
    """
    m = ranks.shape[0]
    out = np.empty(m, np.int64)
    n = hi - lo
    if n <= SMALL:
        work[:n] = a[lo:hi]
        _insertion_sort(work, 0, n)
        for j in range(m):
            out[j] = work[ranks[j]]
        return out
    mn, shift, n_buckets = _digits(a, lo, hi)
    if shift < 0:
        out[:] = mn
        return out
    _histogram(a, lo, hi, mn, shift, n_buckets, hist)
    bucket = np.empty(m, np.int64)
    inner = np.empty(m, np.int64)
    for j in range(m):
        bucket[j], inner[j] = _find(hist, ranks[j])
        out[j] = mn + bucket[j]
    if shift == 0:  # a bucket is one value
        return out
    # one region of ``gathered`` per distinct bucket (ranks often share one)
    begin = np.empty(m, np.int64)
    fill = np.empty(m, np.int64)
    used = 0
    for j in range(m):
        b = bucket[j]
        if slot_of[b] < 0:
            slot_of[b] = j
            begin[j] = used
            fill[j] = used
            used += hist[b]
    for i in range(lo, hi):
        s = slot_of[_digit(a[i], mn, shift)]
        if s >= 0:
            gathered[fill[s]] = a[i]
            fill[s] += 1
    for j in range(m):
        s = slot_of[bucket[j]]
        size = fill[s] - begin[s]
        work[:size] = gathered[begin[s] : fill[s]]
        out[j] = _narrow(work, size, inner[j], hist)
    for j in range(m):
        slot_of[bucket[j]] = -1
    return out


@njit(cache=True, nogil=True, inline="always")
def _lerp(a, b, t):
    """numpy's ``_lerp``: exact at both ends and monotonic."""
    diff = b - a
    if t >= 0.5:
        return b - diff * (1.0 - t)
    return a + diff * t


@njit(cache=True, nogil=True, inline="always")
def _position(n, q):
    """numpy's neighbour ranks and weight for the 'linear' method: at or past the last value
    numpy takes the last value for both neighbours and ``index + 1`` as the weight."""
    index = (n - 1) * q
    if index >= n - 1:
        return n - 1, n - 1, index + 1.0
    below = np.floor(index)
    return np.int64(below), np.int64(below) + 1, index - below


@njit(cache=True, nogil=True)
def _median_p90(deltas, lo, hi, hist, slot_of, gathered, work):
    """``np.percentile(deltas[lo:hi] / 1e6, [50, 90])`` for a non-empty range of int64
    microseconds."""
    n = hi - lo
    a50, b50, t50 = _position(n, Q50)
    a90, b90, t90 = _position(n, Q90)
    ranks = np.array([a50, b50, a90, b90], np.int64)
    v = _order_stats(deltas, lo, hi, ranks, hist, slot_of, gathered, work)
    return _lerp(v[0] / 1e6, v[1] / 1e6, t50), _lerp(v[2] / 1e6, v[3] / 1e6, t90)


@njit(cache=True, nogil=True)
def median_p90(deltas):
    """``np.percentile(deltas / 1e6, [50, 90])`` of non-empty int64 microseconds."""
    n = deltas.shape[0]
    hist = np.zeros(1 << MAX_BITS, np.int64)
    slot_of = np.full(1 << MAX_BITS, -1, np.int64)
    return _median_p90(deltas, 0, n, hist, slot_of, np.empty(n, np.int64), np.empty(n, np.int64))


@njit(cache=True, nogil=True)
def entered_by_code(levels, codes, n_codes):
    """Units that entered the funnel (level > 0) per value code; code -1 (no value) last."""
    out = np.zeros(n_codes + 1, np.int64)
    for u in range(levels.shape[0]):
        c = codes[u]
        out[c if c >= 0 else n_codes] += levels[u] > 0
    return out


@njit(cache=True, nogil=True, inline="always")
def _group(codes, lut, u, spare):
    """The unit's group: lut[code] (the last entry for code -1); ``spare`` when in none."""
    c = codes[u]
    g = lut[c if c >= 0 else lut.shape[0] - 1]
    return g if g >= 0 else spare


@njit(cache=True, nogil=True)
def _plan(levels, codes, lut, n_groups, n_steps):
    """Units reaching each step per group (rows: the groups, all units, units in no group), and
    where each step's segments start: all units' in ``every`` (with one spare slot), the groups'
    (units in no group last) in ``by_group``."""
    rows = n_groups + 2
    by_level = np.zeros((rows, n_steps + 1), np.int64)
    for u in range(levels.shape[0]):
        by_level[n_groups, levels[u]] += 1
    if n_groups > 0:
        for u in range(levels.shape[0]):
            g = _group(codes, lut, u, n_groups)
            by_level[g if g < n_groups else n_groups + 1, levels[u]] += 1
    reached = np.zeros((rows, n_steps), np.int64)
    for g in range(rows):
        above = np.int64(0)
        for k in range(n_steps - 1, -1, -1):
            above += by_level[g, k + 1]
            reached[g, k] = above
    at_every = np.zeros(n_steps + 1, np.int64)  # the last entry: the total
    at_group = np.zeros((n_steps + 1, n_groups + 1), np.int64)
    total = 0
    total_grouped = 0
    for k in range(1, n_steps):
        at_every[k] = total
        total += reached[n_groups, k] + 1
        for g in range(n_groups + 1):
            at_group[k, g] = total_grouped
            total_grouped += reached[g if g < n_groups else n_groups + 1, k]
    at_every[n_steps] = total
    at_group[n_steps, 0] = total_grouped
    return reached, at_every, at_group


@njit(cache=True, nogil=True)
def _collect(levels, times, codes, lut, k, every, p, tags, by_group, at):
    """Step k's durations of the units that reached it, in unit order, into every[p:] (branch
    free: each unit writes, only those that reached step k advance; the segment has one spare
    slot). With groups (``at`` longer than 1: each group's next slot, units in no group last),
    each duration is then copied to its group's segment of ``by_group``."""
    later = times[k]
    earlier = times[k - 1]
    start = p
    if at.shape[0] > 1:
        spare = at.shape[0] - 1
        for u in range(levels.shape[0]):
            every[p] = later[u] - earlier[u]
            tags[p - start] = _group(codes, lut, u, spare)
            p += levels[u] > k
        for i in range(start, p):
            g = tags[i - start]
            by_group[at[g]] = every[i]
            at[g] += 1
    else:
        for u in range(levels.shape[0]):
            every[p] = later[u] - earlier[u]
            p += levels[u] > k


@njit(cache=True, nogil=True)
def _steps(
    levels, times, codes, lut, steps, reached, at_every, at_group, every, by_group, median, p90,
    tags, gathered, work,
):  # fmt: skip
    """Collect and summarise the given steps (each thread has its own steps and work arrays:
    ``tags`` one per unit and one more when there are groups, ``gathered`` and ``work`` as many
    as the most units reaching one of the steps; the shared arrays are written at disjoint
    places)."""
    n_groups = median.shape[0] - 1
    hist = np.zeros(1 << MAX_BITS, np.int64)
    slot_of = np.full(1 << MAX_BITS, -1, np.int64)
    for k in steps:
        _collect(
            levels, times, codes, lut, k, every, at_every[k], tags, by_group, at_group[k].copy()
        )
        for g in range(n_groups + 1):
            n = reached[g, k]
            if n > 0:
                data = every if g == n_groups else by_group
                lo = at_every[k] if g == n_groups else at_group[k, g]
                median[g, k], p90[g, k] = _median_p90(
                    data, lo, lo + n, hist, slot_of, gathered, work
                )


NO_CODES = np.zeros(0, np.int64)
PARALLEL_FROM = 100_000  # durations; below this, threads cost more than they save


def step_time_quantiles(
    levels: np.ndarray,
    times: np.ndarray,
    codes: np.ndarray = NO_CODES,
    lut: np.ndarray = NO_CODES,
    n_groups: int = 0,
    scratch: Scratch | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per group and step: units that reached the step, and the median and p90 of the seconds
    from the previous step, ``(later - earlier) / 1e6`` (NaN for step 1 and where no unit
    reached the step). Row ``n_groups`` of each result is all units, whatever their group.

    ``levels``: int64 per unit (steps reached); ``times``: int64 microseconds [steps, units],
    C-contiguous; a unit's group is ``lut[code]`` (``lut[-1]`` for code -1), -1 for none.
    Returns ``reached`` int64 [groups + 1, steps], ``median`` and ``p90`` float64
    [groups + 1, steps]. Steps are split over threads when there is enough to do. The work
    arrays (as long as the durations) come from ``scratch`` when given (a long-lived cache's:
    see ``loudou.kernels.scratch``), else are allocated.
    """
    n_steps = times.shape[0]
    take = fresh if scratch is None else scratch.take
    reached, at_every, at_group = _plan(levels, codes, lut, n_groups, n_steps)
    every = take("q_every", int(at_every[n_steps]))
    by_group = take("q_by_group", int(at_group[n_steps, 0]))
    median = np.full((n_groups + 1, n_steps), np.nan)
    p90 = np.full((n_groups + 1, n_steps), np.nan)
    sizes = reached[n_groups, 1:]
    workers = min(os.cpu_count() or 1, n_steps - 1, 8)
    if workers < 2 or sizes.sum() < PARALLEL_FROM:
        parts = [np.arange(1, n_steps, dtype=np.int64)]
    else:  # largest steps first, each to the least loaded thread
        load = [0] * workers
        taken: list[list[int]] = [[] for _ in range(workers)]
        for k in np.argsort(-sizes, kind="stable") + 1:
            w = load.index(min(load))
            load[w] += int(sizes[k - 1])
            taken[w].append(int(k))
        parts = [np.array(t, np.int64) for t in taken if t]

    n_tags = levels.shape[0] + 1 if n_groups > 0 else 0
    work = []  # each thread's: tags per unit, and two arrays for its largest step's durations
    for i, steps in enumerate(parts):
        largest = int(reached[n_groups, steps].max(initial=0))
        work.append((take(f"q_tags{i}", n_tags), take(f"q_gathered{i}", largest),
                     take(f"q_work{i}", largest)))  # fmt: skip

    def run(i: int) -> None:
        _steps(levels, times, codes, lut, parts[i], reached, at_every, at_group, every, by_group,
               median, p90, *work[i])  # fmt: skip

    if len(parts) == 1:
        run(0)
    else:
        with ThreadPoolExecutor(len(parts)) as pool:
            list(pool.map(run, range(len(parts))))
    return reached[: n_groups + 1], median, p90
