"""Work arrays kept between queries on a long-lived cache, instead of fresh ones per query.

A funnel on a large cache needs arrays as long as the customers (kernel outputs, step times,
per-step durations). Allocated fresh each time they are page-faulted in again, and in a process
that holds gigabytes the kernel may first have to reclaim memory for them: on a large cache the
first funnel after an import took several times the warm time (docs/performance.md). A
:class:`Scratch` hands out views of buffers it keeps (grown with headroom, so a cache grown by an
append usually fits), and a :class:`ScratchPool` gives each query its own, so concurrent queries
never share one.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

HEADROOM = 8  # grow to size + size // HEADROOM: appends seldom outgrow it


class Scratch:
    """Named buffers for one query at a time; the views it hands out are valid until the next
    ``take`` of the same name."""

    def __init__(self) -> None:
        self._buffers: dict[str, np.ndarray] = {}
        self.objects: dict[str, Any] = {}  # other reusable values (immutable ones, e.g. Arrow)

    def take(self, name: str, size: int, dtype: type = np.int64) -> np.ndarray:
        """An uninitialised 1-d view of ``size`` items of the buffer ``name``."""
        buf = self._buffers.get(name)
        if buf is None or buf.shape[0] < size or buf.dtype != dtype:
            buf = np.empty(size + size // HEADROOM, dtype)
            self._buffers[name] = buf
        return buf[:size]

    @property
    def nbytes(self) -> int:
        return sum(b.nbytes for b in self._buffers.values())


def fresh(name: str, size: int, dtype: type = np.int64) -> np.ndarray:
    """``Scratch.take`` without reuse: a new array (for one-off callers)."""
    return np.empty(size, dtype)


class ScratchPool:
    """Scratches of one cache. A query borrows one for its whole duration; a query running while
    all are borrowed gets a new one, kept afterwards only while fewer than ``keep`` are idle (so
    memory stays bounded and concurrent queries never share buffers)."""

    def __init__(self, keep: int = 1) -> None:
        self._keep = keep
        self._idle: list[Scratch] = []
        self._lock = threading.Lock()

    @contextmanager
    def borrow(self) -> Iterator[Scratch]:
        with self._lock:
            scratch = self._idle.pop() if self._idle else Scratch()
        try:
            yield scratch
        finally:
            with self._lock:
                if len(self._idle) < self._keep:
                    self._idle.append(scratch)
