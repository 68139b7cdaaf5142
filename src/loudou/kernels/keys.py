"""Event-id keys: a 128-bit hash of Arrow strings, and an open-addressing set of such keys. No I/O.

A key is MurmurHash3 x64 128 (Austin Appleby's published algorithm, seed 0) of the id's UTF-8
bytes, in two uint64 halves: ``hi`` its high 64 bits (``h2``) and ``lo`` its low 64 (``h1``);
as the ``mmh3`` package reads it, ``hash128(id) == hi << 64 | lo``. Its odds of two ids colliding
are those of any 128-bit hash (MD5, which keys were until schema version 8, cost several times as
much per id). Hashing here rather than in DuckDB costs no statement per batch (a DuckDB query has
a fixed cost whatever its size) and runs without the GIL.

The set is one array of ``(hi, lo)`` slots, a power of two of them, probed linearly: a key and
its neighbours share cache lines. ``(0, 0)`` marks an empty slot; the key ``(0, 0)`` itself is
kept in a flag. Slots are chosen by a seeded mix of both halves, so ids crafted to collide in
the hash's low bits cannot pile up in one run of slots.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_C1 = np.uint64(0x87C37B91114253D5)
_C2 = np.uint64(0x4CF5AD432745937F)


@njit(cache=True, nogil=True, inline="always")
def _rotl(x, r):
    return (x << np.uint64(r)) | (x >> np.uint64(64 - r))


@njit(cache=True, nogil=True, inline="always")
def _fmix(k):
    k ^= k >> np.uint64(33)
    k *= np.uint64(0xFF51AFD7ED558CCD)
    k ^= k >> np.uint64(33)
    k *= np.uint64(0xC4CEB9FE1A85EC53)
    k ^= k >> np.uint64(33)
    return k


@njit(cache=True, nogil=True, inline="always")
def _word(buf, p, n):
    """The little-endian integer of the ``n`` (at most 8) bytes at ``buf[p]``."""
    w = np.uint64(0)
    for j in range(n):
        w |= np.uint64(buf[p + j]) << np.uint64(8 * j)
    return w


@njit(cache=True, nogil=True)
def murmur_keys(data, offsets, hi, lo):
    """``hi``/``lo``: MurmurHash3 x64 128 (seed 0) of each string ``data[offsets[i]:offsets[i + 1]]``,
    ``h2`` and ``h1`` of the reference implementation (the hash as an integer is hi << 64 | lo)."""
    for i in range(offsets.shape[0] - 1):
        start = np.int64(offsets[i])
        n = np.int64(offsets[i + 1]) - start
        h1 = np.uint64(0)
        h2 = np.uint64(0)
        p = start
        for _ in range(n // 16):
            h1 ^= _rotl(_word(data, p, 8) * _C1, 31) * _C2
            h1 = (_rotl(h1, 27) + h2) * np.uint64(5) + np.uint64(0x52DCE729)
            h2 ^= _rotl(_word(data, p + 8, 8) * _C2, 33) * _C1
            h2 = (_rotl(h2, 31) + h1) * np.uint64(5) + np.uint64(0x38495AB5)
            p += 16
        rest = n & 15
        if rest > 8:
            h2 ^= _rotl(_word(data, p + 8, rest - 8) * _C2, 33) * _C1
        if rest > 0:
            h1 ^= _rotl(_word(data, p, min(rest, 8)) * _C1, 31) * _C2
        h1 ^= np.uint64(n)
        h2 ^= np.uint64(n)
        h1 += h2
        h2 += h1
        h1 = _fmix(h1)
        h2 = _fmix(h2)
        h1 += h2
        h2 += h1
        lo[i] = h1
        hi[i] = h2


@njit(cache=True, nogil=True, inline="always")
def _home(h, lw, seed, mask):
    """A key's first slot: a seeded mix of both halves."""
    x = (lw ^ seed) * np.uint64(0x9E3779B97F4A7C15)
    x ^= h + (x >> np.uint64(29))
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(32)
    return np.int64(x & mask)


@njit(cache=True, nogil=True, inline="always")
def _probe(slots, h, lw, seed, mask):
    """Linear probing from the key's home: (its slot, True) when it is there, else (the empty
    slot where it would go, False)."""
    j = _home(h, lw, seed, mask)
    while True:
        sh = slots[j, 0]
        sl = slots[j, 1]
        if sh == h and sl == lw:
            return j, True
        if sh == 0 and sl == 0:
            return j, False
        j = (j + 1) & np.int64(mask)


_AHEAD = 16  # keys whose home slots are read ahead of probing them


@njit(cache=True, nogil=True)
def add_keys(slots, seed, flags, his, los, new, start, limit):
    """Add keys from row ``start`` on; ``new[i]`` is True when key i was in neither the set nor
    earlier in the batch. ``flags[0]`` holds the key (0, 0); ``flags[1]`` counts the keys in
    slots. Stops when that count reaches ``limit`` (below the slot count); returns (the next
    row, a value to ignore).

    Each key's home slot is a cache miss in a large set. The home slots of the next keys are
    read first, as independent loads the CPU overlaps, then the keys are probed in order, which
    is markedly faster on a large set (docs/performance.md). The value returned second keeps
    those reads from being optimised away."""
    mask = np.uint64(slots.shape[0] - 1)
    added = 0
    n = his.shape[0]
    touched = np.uint64(0)
    for group in range(start, n, _AHEAD):
        end = min(group + _AHEAD, n)
        for i in range(group, end):
            touched ^= slots[_home(his[i], los[i], seed, mask), 0]
        for i in range(group, end):
            if flags[1] + added >= limit:
                flags[1] += added
                return i, touched
            h = his[i]
            lw = los[i]
            if h == 0 and lw == 0:
                new[i] = flags[0] == 0
                flags[0] = 1
                continue
            j, found = _probe(slots, h, lw, seed, mask)
            new[i] = not found
            if not found:
                slots[j, 0] = h
                slots[j, 1] = lw
                added += 1
    flags[1] += added
    return n, touched


@njit(cache=True, nogil=True)
def has_keys(slots, seed, flags, his, los, out):
    """``out[i]``: whether key i is in the set."""
    mask = np.uint64(slots.shape[0] - 1)
    for i in range(his.shape[0]):
        h = his[i]
        lw = los[i]
        if h == 0 and lw == 0:
            out[i] = flags[0] != 0
            continue
        out[i] = _probe(slots, h, lw, seed, mask)[1]


@njit(cache=True, nogil=True)
def remove_keys(slots, seed, flags, his, los):
    """Remove keys (absent ones are skipped). Linear probing allows exact removal: the slots after
    a freed one move back when their home is not between the two (no tombstones)."""
    mask = np.uint64(slots.shape[0] - 1)
    m = np.int64(mask)
    for i in range(his.shape[0]):
        h = his[i]
        lw = los[i]
        if h == 0 and lw == 0:
            flags[0] = 0
            continue
        j, found = _probe(slots, h, lw, seed, mask)
        if not found:
            continue
        flags[1] -= 1
        hole = j
        k = j
        while True:
            k = (k + 1) & m
            kh = slots[k, 0]
            kl = slots[k, 1]
            if kh == 0 and kl == 0:
                break
            home = _home(kh, kl, seed, mask)
            # the entry at k may fill the hole unless its home lies cyclically in (hole, k]
            if (k - home) & m >= (k - hole) & m:
                slots[hole, 0] = kh
                slots[hole, 1] = kl
                hole = k
        slots[hole, 0] = 0
        slots[hole, 1] = 0


@njit(cache=True, nogil=True)
def rehash(old, seed, slots):
    """Move every key of ``old`` into the empty, larger ``slots``."""
    mask = np.uint64(slots.shape[0] - 1)
    m = np.int64(mask)
    for i in range(old.shape[0]):
        h = old[i, 0]
        lw = old[i, 1]
        if h == 0 and lw == 0:
            continue
        j = _home(h, lw, seed, mask)
        while slots[j, 0] != 0 or slots[j, 1] != 0:
            j = (j + 1) & m
        slots[j, 0] = h
        slots[j, 1] = lw
