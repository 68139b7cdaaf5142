"""Storage backends. ``connect`` opens the default embedded DuckDB store."""

from __future__ import annotations

import os
from pathlib import Path

from loudou.store.base import Store, WriteResult

DEFAULT_DB = "loudou.duckdb"


def default_path() -> str:
    """``$LOUDOU_DB`` if set, else ``./loudou.duckdb``."""
    return os.environ.get("LOUDOU_DB") or DEFAULT_DB


def connect(path: str | Path | None = None, *, read_only: bool = False) -> Store:
    """Open (creating and migrating if needed) the store at ``path``.

    If ``loudou serve`` holds that database, DuckDB will not let this process open it; the store
    returned then works through the server instead (see ``loudou.api.discovery``)."""
    from loudou.api.discovery import live_server
    from loudou.store.duckdb import DuckDBStore

    target = str(path) if path is not None else default_path()
    server = live_server(target)
    if server is not None:
        from loudou.store.remote import RemoteStore

        return RemoteStore(target, server.url, server.token)
    return DuckDBStore(target, read_only=read_only)


__all__ = ["Store", "WriteResult", "connect", "default_path"]
