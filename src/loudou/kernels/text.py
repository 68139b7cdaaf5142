"""Text kernels for the importer: looks at Arrow string buffers and joins of them. No I/O.

Arrow's compute functions answer these too, but each is a separate pass that builds a new array
(a comparison with "" to find empty cells, a gather of first bytes to rule out trimming, a join
element by element): at ten million rows those passes cost more than reading the file. Here each
question is one loop over the offsets, without the GIL.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def edges(offsets, data):
    """(whether some value's first or last byte is a space, a control byte or a non-ASCII byte,
    the number of empty values) for the strings ``data[offsets[i]:offsets[i + 1]]``. Nulls count
    as their bytes say (usually empty)."""
    odd = False
    empty = 0
    for i in range(offsets.shape[0] - 1):
        a = np.int64(offsets[i])
        b = np.int64(offsets[i + 1])
        if b == a:
            empty += 1
            continue
        f = data[a]
        g = data[b - 1]
        if f <= 32 or f >= 128 or g <= 32 or g >= 128:
            odd = True
    return odd, empty


@njit(cache=True, nogil=True)
def json_unsafe(data, start, end):
    """Whether ``data[start:end]`` holds a byte a JSON string must escape (control, '"', '\\')."""
    for p in range(start, end):
        c = data[p]
        if c < 32 or c == 34 or c == 92:
            return True
    return False


@njit(cache=True, nogil=True)
def join(rows, offsets, data, literals, literal_at):
    """Row ``i`` of the result is ``literal 0, value 0, literal 1, value 1, .., literal k``, where
    value ``j`` is ``data[offsets[r]:offsets[r + 1]]`` for ``r = rows[j, i]`` and literal ``j``
    is ``literals[literal_at[j]:literal_at[j + 1]]``. Returns (result offsets, result bytes)."""
    k, n = rows.shape
    fixed = literal_at[k + 1] - literal_at[0]
    out_at = np.empty(n + 1, np.int64)
    out_at[0] = 0
    for i in range(n):
        m = fixed
        for j in range(k):
            r = rows[j, i]
            m += offsets[r + 1] - offsets[r]
        out_at[i + 1] = out_at[i] + m
    out = np.empty(out_at[n], np.uint8)
    for i in range(n):
        p = out_at[i]
        for j in range(k + 1):
            for q in range(literal_at[j], literal_at[j + 1]):
                out[p] = literals[q]
                p += 1
            if j < k:
                r = rows[j, i]
                for q in range(offsets[r], offsets[r + 1]):
                    out[p] = data[q]
                    p += 1
    return out_at, out
