"""The event-id keys a database holds, in memory: which events of a batch are new to the store.

``KeySet`` is a set of 128-bit keys (two uint64 halves) with vectorised calls (kernels in
``loudou.kernels.keys``). ``StoredKeys`` is a cache of a database's ``event_keys`` table (one row
per stored event, appended in order, never updated): it knows how many rows it has absorbed and
catches up on the rows after those before each write, so writes by other processes or other
connections are seen. Keys claimed by a write enter it for good only when the write commits; a
rolled-back write takes them out again. One ``StoredKeys`` serves every store of a database in a
process, and its lock makes their event writes take turns (see ``shared_keys``). It also remembers,
for the customers of recent small writes, a time range their stored first/last seen covers, so a
write whose events all fall inside it need not touch ``customers``.

Memory: 16 bytes per slot, at most 0.75 keys per slot (doubling when full). Loading them on the
first write is bound by random memory accesses, one per key (docs/performance.md).
"""

from __future__ import annotations

import secrets
import threading
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from loudou.kernels.keys import add_keys, has_keys, murmur_keys, rehash, remove_keys

MAX_LOAD = 0.75  # keys per slot before the slot array doubles
SEEN_LIMIT = 250_000  # customer ranges remembered (~200 bytes each) before starting over
_MIN_SLOTS = 1024
KeyBatch = tuple[np.ndarray, np.ndarray]  # (hi, lo) uint64 arrays of one length


def _slots_for(n: int) -> int:
    """Slots (a power of two) holding ``n`` keys within the load limit."""
    need = max(_MIN_SLOTS, int(n / MAX_LOAD) + 1)
    return 1 << (need - 1).bit_length()


def _u64(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.uint64)


class KeySet:
    """A set of 128-bit keys given as (hi, lo) uint64 arrays."""

    def __init__(self, capacity: int = 0, seed: int | None = None) -> None:
        self.seed = np.uint64(secrets.randbits(64) if seed is None else seed)
        self._slots = np.zeros((_slots_for(capacity), 2), np.uint64)
        self._flags = np.zeros(2, np.int64)  # [holds (0, 0), keys in slots]

    def __len__(self) -> int:
        return int(self._flags[0] + self._flags[1])

    @property
    def nbytes(self) -> int:
        return int(self._slots.nbytes)

    def reserve(self, n: int) -> None:
        """Room for ``n`` more keys without growing on the way (at least double when growing)."""
        slots = _slots_for(int(self._flags[1]) + n)
        if slots > self._slots.shape[0]:
            slots = max(slots, 2 * self._slots.shape[0])
        if slots > self._slots.shape[0]:
            bigger = np.zeros((slots, 2), np.uint64)
            rehash(self._slots, self.seed, bigger)
            self._slots = bigger

    def add(self, hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
        """Add the keys; returns a mask of the rows whose key was not in the set before and is
        the first of its kind in the batch."""
        hi, lo = _u64(hi), _u64(lo)
        new = np.empty(len(hi), np.bool_)
        at = 0
        while True:
            limit = int(self._slots.shape[0] * MAX_LOAD)
            at, _ = add_keys(self._slots, self.seed, self._flags, hi, lo, new, at, limit)
            if at == len(hi):
                return new
            self.reserve(len(hi) - at)  # full: grow (by at least doubling) and go on

    def contains(self, hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
        out = np.empty(len(hi), np.bool_)
        has_keys(self._slots, self.seed, self._flags, _u64(hi), _u64(lo), out)
        return out

    def discard(self, hi: np.ndarray, lo: np.ndarray) -> None:
        """Remove the keys (those not in the set are ignored)."""
        remove_keys(self._slots, self.seed, self._flags, _u64(hi), _u64(lo))


def event_keys(ids: pa.ChunkedArray | pa.Array) -> KeyBatch:
    """The (hi, lo) key of each id: its MurmurHash3 x64 128, split in halves (see
    :mod:`loudou.kernels.keys`)."""
    if isinstance(ids, pa.ChunkedArray):
        chunks = ids.chunks
    else:
        chunks = [ids]
    n = len(ids)
    hi, lo = np.empty(n, np.uint64), np.empty(n, np.uint64)
    at = 0
    for chunk in chunks:
        if chunk.null_count:
            raise ValueError("event ids must not be null")
        if not pa.types.is_string(chunk.type):
            chunk = chunk.cast(pa.string())
        m = len(chunk)
        _, offsets_buf, data_buf = chunk.buffers()
        offsets = np.frombuffer(offsets_buf, np.int32, m + 1, chunk.offset * 4)
        data = np.frombuffer(data_buf, np.uint8) if data_buf is not None else np.zeros(0, np.uint8)
        murmur_keys(data, offsets, hi[at : at + m], lo[at : at + m])
        at += m
    return hi, lo


def warm_up_kernels() -> None:
    """Load every kernel (from numba's cache, or compiling it) with a tiny call."""
    hi, lo = event_keys(pa.array(["x"]))
    keys = KeySet()
    keys.add(hi, lo)
    keys.contains(hi, lo)
    keys.discard(hi, lo)
    keys.reserve(_MIN_SLOTS)


class StoredKeys:
    """What one database stores, as far as writes need to know, kept in memory: the keys of its
    ``event_keys`` rows ``0 .. absorbed - 1`` (loaded on the first write), and for some customers
    a range of times their ``first_seen .. last_seen`` surely covers (events in it change
    nothing). Use under ``lock``, inside the write transaction: ``catch_up`` with the tables' row
    counts, ``claim`` the batch's keys, then ``commit`` or ``rollback`` with the transaction."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.keys: KeySet | None = None
        self.absorbed = 0  # event_keys rows whose keys are in ``keys``
        # customer -> (first, last) in µs, within the stored range. Only linking an alias
        # deletes a customer (or could shrink what is stored), so the count of identities
        # rows tells when to forget them all.
        self.seen: dict[str, tuple[int, int]] = {}
        self.links = -1  # identities rows ``seen`` is valid for
        self.last: tuple[int, int] | None = None  # the key of row ``absorbed - 1``
        self.verified = False  # whether the table is known to still hold ``last`` there
        self._claimed: list[KeyBatch] = []  # added by the write in progress
        self._seen_now: list[tuple[list[str], list[int], list[int]]] = []
        self._links_now = 0

    def reopened(self) -> None:
        """A store opened a connection: the database may be another than the one these keys
        came from (all connections were closed, and the file replaced or restored), so the next
        ``catch_up`` checks that the last row absorbed still holds the key it held."""
        self.verified = False

    def catch_up(
        self,
        rows: int,
        links: int,
        read: Callable[[int], Iterable[KeyBatch]],
        key_at: Callable[[int], tuple[int, int] | None],
    ) -> None:
        """Absorb ``event_keys`` rows from ``absorbed`` up to ``rows`` (the table's row count in
        this transaction); ``read(start)`` yields the keys of the rows from ``start`` on,
        ``key_at(row)`` the key of one row. ``links`` is the row count of ``identities``."""
        if not self.verified and self.keys is not None and self.absorbed:
            if rows < self.absorbed or key_at(self.absorbed - 1) != self.last:
                self._forget_all()
        self.verified = True
        if links != self.links:
            self.seen.clear()
            self.links = links
        if self.keys is not None and rows == self.absorbed:
            return
        if self.keys is None or rows < self.absorbed:  # first use, or the table was rebuilt
            self._forget_all()
            self.keys = KeySet(rows)
        keys = self.keys
        assert keys is not None
        keys.reserve(rows - self.absorbed)
        for hi, lo in read(self.absorbed):
            keys.add(hi, lo)
            if len(hi):
                self.last = (int(hi[-1]), int(lo[-1]))
        self.absorbed = rows

    def _forget_all(self) -> None:
        self.keys, self.absorbed, self.last = None, 0, None
        self.seen.clear()
        self.links = -1

    def claim(self, hi: np.ndarray, lo: np.ndarray, more: int = 0) -> np.ndarray:
        """Mask of the rows to store: keys new to the store, first of their kind in the batch.
        The keys count as stored from now on in this transaction. ``more``: keys expected
        soon after these (an import's rest); room is made at once for as many as these keys'
        share of new ones says: growing the set step by step re-inserts every key about once
        more, while a re-imported file adds nothing."""
        assert self.keys is not None, "catch_up first"
        new = self.keys.add(hi, lo)
        if more and len(hi):
            self.keys.reserve(more * int(np.count_nonzero(new)) // len(hi))
        if new.any():
            self._claimed.append((hi[new], lo[new]))
        return new

    def cover(self, ids: list[str], first: int, last: int) -> bool:
        """Whether every one of these customers' stored ranges covers (first, last)."""
        seen = self.seen
        for c in ids:
            have = seen.get(c)
            if have is None or first < have[0] or last > have[1]:
                return False
        return True

    def unseen(self, ids: list[str], first: list[int], last: list[int]) -> list[int]:
        """Indexes of the customers whose stored range may not cover (first, last)."""
        seen = self.seen
        out = []
        for i, (c, f, la) in enumerate(zip(ids, first, last, strict=True)):
            have = seen.get(c)
            if have is None or f < have[0] or la > have[1]:
                out.append(i)
        return out

    def saw(self, ids: list[str], first: list[int], last: list[int]) -> None:
        """This transaction makes these customers' stored ranges cover (first, last)."""
        self._seen_now.append((ids, first, last))

    def linked(self, aliases: Sequence[str]) -> None:
        """This transaction links these aliases (their customer rows are deleted)."""
        for a in aliases:
            self.seen.pop(a, None)
        self._links_now += len(aliases)

    def commit(self) -> None:
        """The write committed: the claimed keys are rows of ``event_keys`` now."""
        self.absorbed += sum(len(hi) for hi, _ in self._claimed)
        if self._claimed:
            hi, lo = self._claimed[-1]
            self.last = (int(hi[-1]), int(lo[-1]))
        self.links += self._links_now
        seen = self.seen
        for ids, first, last in self._seen_now:
            if len(seen) + len(ids) > SEEN_LIMIT:
                seen.clear()
            for c, f, la in zip(ids, first, last, strict=True):
                have = seen.get(c)
                seen[c] = (f, la) if have is None else (min(f, have[0]), max(la, have[1]))
        self._forget_now()

    def rollback(self) -> None:
        """The write did not commit: forget the keys it claimed. (Should the commit have happened
        after all, the next ``catch_up`` reads them back from the table.)"""
        claimed = self._claimed
        self._forget_now()
        if self.keys is not None:
            for hi, lo in claimed:
                self.keys.discard(hi, lo)

    def _forget_now(self) -> None:
        self._claimed, self._seen_now, self._links_now = [], [], 0


_SHARED: weakref.WeakValueDictionary[str, StoredKeys] = weakref.WeakValueDictionary()
_SHARED_LOCK = threading.Lock()


def shared_keys(path: str) -> StoredKeys:
    """The ``StoredKeys`` of the database file at ``path`` in this process. DuckDB gives every
    connection to one file in a process the same database, so its stores share the keys, and its
    lock keeps two event writes from both taking a key as new. In-memory databases are private."""
    if path == ":memory:":
        return StoredKeys()
    name = str(Path(path).expanduser().resolve())
    with _SHARED_LOCK:
        keys = _SHARED.get(name)
        if keys is None:
            keys = _SHARED[name] = StoredKeys()
        return keys


@dataclass
class Prepared:
    """What an import works out for a write of events in its reading thread, while its previous
    write runs: the writes are an import's critical path, so they should have as little as
    possible left to do."""

    keys: KeyBatch  # the batch's event keys (:func:`event_keys`)
    seen: pa.Table | None  # customer_id, ts_min, ts_max: each customer's time range in the batch
    more: int = 0  # events the import expects after this batch: room for their keys is made now
