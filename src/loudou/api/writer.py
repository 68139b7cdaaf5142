"""Group commit: requests hand their rows to one writer thread, which stores everything queued
since its last commit in a single transaction and then answers all of those requests.

A request is answered only after the transaction holding its rows committed (DuckDB writes and
syncs its WAL at commit), so a 200 means durable. While one commit runs, new requests queue up and
share the next one: many concurrent small requests become few transactions.

Checkpoints (DuckDB moving the WAL into the database file, during which no commit can run: ~10-25
ms for 4 MB of WAL, ~0.6 s for 32 MB) are the writer's to schedule: DuckDB's own threshold is
raised so that a commit does not run one, and the writer checkpoints when it has been idle a
little while, or between two commits once the WAL has grown past ``MAX_WAL_BYTES`` (sustained
load leaves no idle time; small checkpoints keep the wait of queued requests short).
Durability does not depend on checkpoints: every commit syncs the WAL. An idle checkpoint first
folds the customers' first/last seen times gathered in ``seen_log`` into ``customers`` (one scan
of ``customers`` for many commits; see store migration ``_v5``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from loudou.ingest.segment import Rows
from loudou.store.base import Collector, WriteResult

log = logging.getLogger("loudou.writer")
MAX_GROUP_ROWS = 50_000  # bounds one transaction's size and latency
# A commit has a large fixed cost (statements, WAL sync), so while requests are still being read
# or parsed the writer waits for them, up to this long, rather than commit without them.
LINGER_S = 0.005
# Idle checkpoints: after IDLE_CHECKPOINT_S with no job and at least IDLE_MIN_WAL_BYTES of WAL (a
# checkpoint rewrites each table's last row group, so tiny ones are wasteful), or after
# IDLE_ANY_WAL_S with any WAL.
IDLE_CHECKPOINT_S = 0.05
IDLE_MIN_WAL_BYTES = 1 << 20
IDLE_ANY_WAL_S = 1.0
# Checkpoint between commits even when busy, past this much WAL: small checkpoints stall the queue
# briefly (~10-25 ms for 4 MB; 32 MB took ~0.6 s).
MAX_WAL_BYTES = 4 << 20
# A commit runs a checkpoint only past this much WAL (a backstop for writes the writer does not
# see, e.g. actions); the writer's own checkpoints come long before.
WAL_BACKSTOP = "1GB"


@runtime_checkable
class WriterStore(Protocol):
    """A store whose checkpoints the writer schedules, and which prepares for writes (the
    DuckDB store)."""

    def defer_checkpoints(self, threshold: str) -> None: ...

    def checkpoint(self) -> None: ...

    def wal_bytes(self) -> int: ...

    def prepare_writes(self) -> None: ...

    def fold_seen(self) -> None: ...


@dataclass
class _Job:
    rows: Rows | None  # rows to store, or
    action: Callable[[Collector], Any] | None  # something else to do on the write connection
    done: Callable[[Any, BaseException | None], object]

    @property
    def size(self) -> int:
        return self.rows.events.num_rows if self.rows is not None else 0


class GroupWriter:
    """Owns the store's write connection; ``await write(rows)`` returns once the rows are durable."""

    def __init__(
        self,
        store: Collector,
        max_rows: int = MAX_GROUP_ROWS,
        linger: float = LINGER_S,
        idle_checkpoint: float = IDLE_CHECKPOINT_S,
        max_wal: int = MAX_WAL_BYTES,
    ) -> None:
        self.store = store
        self.max_rows = max_rows
        self.linger = linger
        self.idle_checkpoint = idle_checkpoint
        self.max_wal = max_wal
        self.incoming = 0  # requests being read or parsed, soon to be written (event loop's count)
        self.commits = 0  # transactions so far, for tests and /v1/health
        self.rows = 0
        self.checkpoints = 0  # run by this writer (idle or past max_wal)
        self._unsaved = False  # committed since the last checkpoint
        self._ckpt: WriterStore | None = store if isinstance(store, WriterStore) else None
        if self._ckpt is not None:
            self._ckpt.defer_checkpoints(WAL_BACKSTOP)
            self._ckpt.prepare_writes()  # so that the first requests do not wait for it
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="loudou-writer", daemon=True)
        self._thread.start()

    async def write(self, rows: Rows) -> None:
        await self._submit(rows, None)

    @contextlib.contextmanager
    def expecting(self) -> Iterator[None]:
        """Around reading and parsing a request that will likely write: the writer may wait
        for it to join the next commit."""
        self.incoming += 1
        try:
            yield
        finally:
            self.incoming -= 1

    async def run(self, action: Callable[[Collector], Any]) -> Any:
        """Run ``action(store)`` on the write connection, between commits (key changes)."""
        return await self._submit(None, action)

    async def _submit(self, rows: Rows | None, action: Callable[[Collector], Any] | None) -> Any:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()

        def settle(result: Any, error: BaseException | None) -> None:
            if not future.done():
                if error is None:
                    future.set_result(result)
                else:
                    future.set_exception(error)

        self._queue.put(_Job(rows, action, lambda r, e: loop.call_soon_threadsafe(settle, r, e)))
        return await future

    def close(self) -> None:
        """Finish what is queued, then stop the thread."""
        self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        held: list[_Job | None] = []  # a job taken from the queue that must wait for a commit
        while True:
            first = held.pop() if held else self._next()
            if first is None:
                return
            if first.action is not None:
                self._act(first)
                continue
            group, size = [first], first.size
            deadline = time.monotonic() + self.linger
            while size < self.max_rows:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    if self.incoming <= 0 or time.monotonic() >= deadline:
                        break
                    try:  # more is on its way: wait a little for it
                        job = self._queue.get(timeout=0.0005)
                    except queue.Empty:
                        continue
                if job is None or job.action is not None:
                    held.append(job)  # runs after this group's commit, keeping the order
                    break
                group.append(job)
                size += job.size
            error = self._commit(group)
            for job in group:
                job.done(None, error)
            if self._ckpt is not None and self._ckpt.wal_bytes() >= self.max_wal:
                self._checkpoint()

    def _next(self) -> _Job | None:
        """The next job; while none comes, checkpoint once idle for ``idle_checkpoint`` s with
        a megabyte of WAL, or for a second with any (not while requests are being read: they
        would wait for it)."""
        idle = 0.0
        while self._unsaved and self._ckpt is not None:
            try:
                return self._queue.get(timeout=self.idle_checkpoint)
            except queue.Empty:
                idle += self.idle_checkpoint
                if self.incoming <= 0 and (
                    idle >= IDLE_ANY_WAL_S or self._ckpt.wal_bytes() >= IDLE_MIN_WAL_BYTES
                ):
                    self._checkpoint(fold=True)
        return self._queue.get()

    def _checkpoint(self, fold: bool = False) -> None:
        """Checkpoint; ``fold`` (when idle) first folds first/last seen times into customers."""
        self._unsaved = False
        if self._ckpt is None:
            return
        try:
            if fold:
                self._ckpt.fold_seen()
            self._ckpt.checkpoint()
        except Exception:  # e.g. a reader's transaction in the way: the next one will do
            log.warning("checkpoint failed", exc_info=True)
            return
        self.checkpoints += 1

    def _act(self, job: _Job) -> None:
        assert job.action is not None
        try:
            result = job.action(self.store)
        except Exception as e:
            job.done(None, e)
        else:
            self.commits += 1  # may have written: readers refresh their caches
            self._unsaved = True
            job.done(result, None)

    def _commit(self, group: list[_Job]) -> BaseException | None:
        merged = Rows.concat([job.rows for job in group if job.rows is not None])
        try:
            result: WriteResult = self.store.collect(merged.events, merged.customers, merged.links)
        except Exception as e:  # the server stays up; these requests get a 503 and may retry
            log.exception("commit of %d requests failed", len(group))
            return e
        self.commits += 1
        self.rows += result.inserted
        self._unsaved = True
        return None
