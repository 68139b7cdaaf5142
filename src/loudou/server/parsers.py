"""Parser processes: tracking bodies are parsed, validated and turned into Arrow rows in worker
processes, so the server's own process spends its time (and its GIL) on HTTP and on the DuckDB
writer, which otherwise waits for the GIL between statements while the event loop validates.

The server sends each large body (a batch) over a socket pair to the least busy worker and gets
back the problems and the rows as Arrow IPC. Small bodies (single events) are parsed in-process:
the round trip would cost more than the parsing. A worker exits when its socket closes, so it
never outlives the server (even after ``kill -9``). If a worker dies, its pending requests fail
(the handler answers 503; clients retry) and parsing goes on in-process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import signal
import socket
import struct
import subprocess
import sys
import traceback
from collections import deque
from datetime import datetime

from loudou.backends.wire import from_ipc, to_ipc
from loudou.ingest.segment import Parsed, Rows, parse_request

log = logging.getLogger("loudou.parsers")
IN_PROCESS_BELOW = 8 * 1024  # body bytes: below this, parsing costs less than the round trip
_LEN = struct.Struct("<I")


class ParserGone(Exception):
    """The worker parsing a request died before answering."""


def encode(parsed: Parsed) -> bytes:
    rows = parsed.rows
    tables = None if rows is None else (to_ipc(rows.events), to_ipc(rows.customers), rows.links)
    return pickle.dumps(
        (parsed.key, parsed.problem, parsed.accepted, parsed.problems, tables), protocol=5
    )


def decode(data: bytes) -> Parsed:
    key, problem, accepted, problems, tables = pickle.loads(data)  # noqa: S301 (our own worker)
    rows = None if tables is None else Rows(from_ipc(tables[0]), from_ipc(tables[1]), tables[2])
    return Parsed(key, problem, accepted, problems, rows)


def _recv_exactly(sock: socket.socket, n: int) -> bytes | None:
    buf = bytearray(n)
    view, got = memoryview(buf), 0
    while got < n:
        k = sock.recv_into(view[got:])
        if k == 0:
            return None
        got += k
    return bytes(buf)


def worker_main(fd: int) -> None:
    """A worker's loop: requests in, parsed requests out, until the server closes the socket."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the server, which closes us
    with socket.socket(fileno=fd) as sock:
        sock.sendall(b"R")  # imports done: ready
        while True:
            head = _recv_exactly(sock, _LEN.size)
            frame = None if head is None else _recv_exactly(sock, _LEN.unpack(head)[0])
            if frame is None:
                return
            kind, body, received, client = pickle.loads(frame)  # noqa: S301 (our own server)
            try:
                reply = b"\x00" + encode(parse_request(kind, body, received, client))
            except Exception:  # a bug, not bad input (that is a Problem): the handler answers 500
                reply = b"\x01" + traceback.format_exc().encode()
            sock.sendall(_LEN.pack(len(reply)) + reply)


class _Worker:
    def __init__(
        self,
        proc: subprocess.Popen[bytes],
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.proc, self.reader, self.writer = proc, reader, writer
        self.pending: deque[asyncio.Future[Parsed]] = deque()
        self.alive = True
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.task = asyncio.create_task(self._read())

    def send(self, frame: bytes) -> asyncio.Future[Parsed]:
        future: asyncio.Future[Parsed] = asyncio.get_running_loop().create_future()
        self.pending.append(future)
        self.writer.write(_LEN.pack(len(frame)) + frame)
        return future

    async def _read(self) -> None:
        try:
            await self.reader.readexactly(1)
            self.ready.set_result(None)
            while True:
                head = await self.reader.readexactly(_LEN.size)
                data = await self.reader.readexactly(_LEN.unpack(head)[0])
                future = self.pending.popleft()
                if future.done():  # the client went away meanwhile
                    continue
                if data[:1] == b"\x00":
                    future.set_result(decode(data[1:]))
                else:
                    future.set_exception(RuntimeError(data[1:].decode(errors="replace")))
        except (asyncio.IncompleteReadError, OSError):
            pass
        finally:
            self.alive = False
            if not self.ready.done():
                self.ready.set_result(None)  # failed to start: parse in-process
            if self.proc.poll() is None and not self.writer.is_closing():
                log.error("parser process %d stopped answering", self.proc.pid)
            while self.pending:
                future = self.pending.popleft()
                if not future.done():
                    future.set_exception(ParserGone())


class ParserPool:
    """``processes`` parser workers (0: parse every body in the server's process)."""

    def __init__(self, processes: int) -> None:
        self.processes = processes
        self._workers: list[_Worker] = []

    async def start(self) -> None:
        for _ in range(self.processes):
            ours, theirs = socket.socketpair()
            code = f"from loudou.server.parsers import worker_main; worker_main({theirs.fileno()})"
            proc = subprocess.Popen(
                [sys.executable, "-c", code],
                pass_fds=[theirs.fileno()],
                stdin=subprocess.DEVNULL,
                env={**os.environ, "PYTHONSAFEPATH": "1"},
            )
            theirs.close()
            reader, writer = await asyncio.open_connection(sock=ours)
            self._workers.append(_Worker(proc, reader, writer))
        for w in self._workers:  # serve only once they are ready (else the first batches wait)
            await w.ready

    @property
    def alive(self) -> int:
        return sum(w.alive for w in self._workers)

    async def parse(
        self, kind: str, body: bytes, received: datetime, client_ip: str | None
    ) -> Parsed:
        live = [w for w in self._workers if w.alive]
        if len(body) < IN_PROCESS_BELOW or not live:
            return parse_request(kind, body, received, client_ip)
        worker = min(live, key=lambda w: len(w.pending))
        frame = pickle.dumps((kind, body, received, client_ip), protocol=5)
        return await worker.send(frame)

    async def close(self) -> None:
        for w in self._workers:
            w.writer.close()
        for w in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await w.task
            try:
                w.proc.wait(5)
            except subprocess.TimeoutExpired:
                w.proc.kill()
                w.proc.wait()
        self._workers = []
