"""The FastAPI application: one store opened read-write, a group-commit writer, a few read
connections, the key ring, and the routes of each resource."""

from __future__ import annotations

import contextlib
import os
import queue
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles

from loudou.backends import ServerInfo, announce, open_for_server, withdraw
from loudou.backends.base import ApiKey, Collector, KeyStore
from loudou.server import errors
from loudou.server.keys import KeyRing
from loudou.server.parsers import ParserPool
from loudou.server.writer import GroupWriter

STATIC = Path(__file__).resolve().parent.parent / "web" / "static"
READERS = 4


@dataclass
class ServerState:
    """What handlers share; ``app.state.loudou``."""

    db: str
    writer: GroupWriter
    ring: KeyRing
    readers: queue.Queue[tuple[Any, int]] = field(default_factory=queue.Queue)
    parsers: ParserPool = field(default_factory=lambda: ParserPool(0))
    local_key: ApiKey | None = None  # the admin token in <db>.server.json, for local CLI use

    @contextlib.contextmanager
    def reader(self) -> Iterator[Any]:
        """A read connection of its own for the duration of one request, told about commits
        made since it was last used (so in-process caches stay right)."""
        store, commits = self.readers.get()
        now = self.writer.commits
        if commits != now:
            store.external_write()
            commits = now
        try:
            yield store
        finally:
            self.readers.put((store, commits))


def create_app(db: str, url: str | None = None, parsers: int = 0) -> FastAPI:
    """The server for the database at ``db``; ``url`` is where it listens, for other processes;
    ``parsers`` worker processes parse and validate tracking batches (see server/parsers.py)."""
    path = str(Path(db).expanduser().resolve()) if db != ":memory:" else db

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = open_for_server(path)
        assert isinstance(store, Collector) and isinstance(store, KeyStore)
        token = secrets.token_urlsafe(32)
        ring = KeyRing(store.list_keys())
        local = ApiKey("local", "admin", "", datetime.now(UTC).replace(tzinfo=None), name="local")
        state = ServerState(path, GroupWriter(store), ring, local_key=_with_hash(local, token))
        state.parsers = ParserPool(parsers)
        await state.parsers.start()
        ring.add(state.local_key)  # type: ignore[arg-type]
        for _ in range(READERS):
            state.readers.put((store.reader(), 0))
        app.state.loudou = state
        if url is not None and path != ":memory:":
            announce(path, ServerInfo(url, os.getpid(), token))
        try:
            yield
        finally:
            if path != ":memory:":
                withdraw(path)
            await state.parsers.close()
            state.writer.close()
            while not state.readers.empty():
                state.readers.get()[0].close()
            store.close()

    from fastapi_offline import FastAPIOffline

    # The docs page's assets come from the installed package, not a CDN (everything works offline).
    app = FastAPIOffline(
        title="loudou",
        version=_version(),
        description="Segment-compatible event collection and funnel queries (漏斗).",
        lifespan=lifespan,
    )
    from loudou.server import (
        admin,
        analysis,
        generated,
        kpi,
        query,
        segments,
        store_proxy,
        tracking,
    )

    app.add_middleware(tracking.TrackingFastPath)  # added first: inside CORS
    # Browsers post events from other sites; keys, not origins, decide who may write.
    app.add_middleware(
        CORSMiddleware, allow_origins=["*"], allow_methods=["*"], allow_headers=["*"]
    )
    app.add_middleware(errors.CatchAll)  # outermost: no unexpected error drops the connection
    errors.install(app)

    app.include_router(tracking.router)
    app.include_router(query.router)
    app.include_router(admin.router)
    app.include_router(store_proxy.router)
    for reads in (generated, analysis, segments, kpi):  # analyses and KPIs (read keys)
        app.include_router(reads.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def _with_hash(key: ApiKey, token: str) -> ApiKey:
    from dataclasses import replace

    from loudou.server.keys import hash_key

    return replace(key, key_hash=hash_key(token))


def _version() -> str:
    from loudou import __version__

    return __version__
