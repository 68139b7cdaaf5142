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
    """Open (creating and migrating if needed) the store at ``path``."""
    from loudou.store.duckdb import DuckDBStore

    return DuckDBStore(str(path) if path is not None else default_path(), read_only=read_only)


__all__ = ["Store", "WriteResult", "connect", "default_path"]
