"""Group commit: requests hand their rows to one writer thread, which stores everything queued
since its last commit in a single transaction and then answers all of those requests.

A request is answered only after the transaction holding its rows committed (the store makes it
durable, e.g. DuckDB syncs its WAL), so a 200 means durable. While one commit runs, new requests
queue up and share the next one: many concurrent small requests become few transactions.

Between commits the writer gives a store with the ``Upkeep`` ability its turn (DuckDB's
checkpoints, see backends/duckdb_upkeep.py): after each commit, and while idle with no request being
read. What upkeep does and when is the store's business.
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
from operator import methodcaller
from typing import Any

from loudou.backends.base import Collector, Upkeep, WriteResult
from loudou.ingest.segment import Rows

log = logging.getLogger("loudou.writer")
MAX_GROUP_ROWS = 50_000  # bounds one transaction's size and latency
# A commit has a large fixed cost (statements, WAL sync), so while requests are still being read
# or parsed the writer waits for them, up to this long, rather than commit without them.
LINGER_S = 0.005


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
    ) -> None:
        self.store = store
        self.max_rows = max_rows
        self.linger = linger
        self.incoming = 0  # requests being read or parsed, soon to be written (event loop's count)
        self.commits = 0  # transactions so far, for tests and /v1/health
        self.rows = 0
        self.upkeeps = 0  # the store's upkeep runs (e.g. DuckDB checkpoints)
        self._unsaved = False  # committed since the last upkeep
        self._upkeep: Upkeep | None = store if isinstance(store, Upkeep) else None
        if self._upkeep is not None:
            self._upkeep.start_writing()
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
            self._tend(methodcaller("after_commit"))

    def _next(self) -> _Job | None:
        """The next job; while none comes, the store's idle upkeep (not while requests are
        being read: they would wait for it)."""
        idle = 0.0
        while self._unsaved and self._upkeep is not None:
            try:
                return self._queue.get(timeout=self._upkeep.idle_poll)
            except queue.Empty:
                idle += self._upkeep.idle_poll
                if self.incoming <= 0:
                    self._tend(methodcaller("when_idle", idle))
        return self._queue.get()

    def _tend(self, work: Callable[[Upkeep], bool]) -> None:
        """Give the store's upkeep its turn; a failure (e.g. a reader's transaction in the way
        of a checkpoint) is logged, and the next turn tries again."""
        if self._upkeep is None:
            return
        try:
            ran = work(self._upkeep)
        except Exception:
            log.warning("store upkeep failed", exc_info=True)
            self._unsaved = False
            return
        if ran:
            self._unsaved = False
            self.upkeeps += 1

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
