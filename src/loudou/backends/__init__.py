"""Storage backends behind one boundary. ``connect(url)`` picks the backend from the URL's scheme
in a registry; a plain path is a DuckDB file. The server and the CLI open stores only through
these functions, so they never import a concrete backend, and a new backend joins by registering
itself here and passing the backend contract suite (tests/backends).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from loudou.backends import discovery
from loudou.backends.base import Store, WriteResult
from loudou.backends.discovery import ServerInfo
from loudou.errors import StoreError

DEFAULT_DB = "loudou.duckdb"


@dataclass(frozen=True)
class Backend:
    """How to open one kind of store, and (for engines that let one process hold a database)
    how a server on it is announced to, and found by, other processes of the machine."""

    name: str
    open: Callable[[str, bool], Store]  # (location, read_only): for analyses and imports
    open_for_server: Callable[[str], Store]  # the server's own read-write store
    served_by: Callable[[str], ServerInfo | None] = lambda location: None
    announce: Callable[[str, ServerInfo], None] = lambda location, info: None
    withdraw: Callable[[str], None] = lambda location: None


_BACKENDS: dict[str, Backend] = {}


def register_backend(scheme: str, backend: Backend) -> None:
    """Make ``scheme://...`` URLs open with ``backend``."""
    _BACKENDS[scheme] = backend


def default_path() -> str:
    """``$LOUDOU_DB`` if set, else ``./loudou.duckdb``."""
    return os.environ.get("LOUDOU_DB") or DEFAULT_DB


def resolve(url: str | Path | None = None) -> tuple[Backend, str]:
    """The backend of a URL (``scheme://location``; a plain path is DuckDB) and its location."""
    target = str(url) if url is not None else default_path()
    scheme, sep, rest = target.partition("://")
    if not sep:
        scheme, rest = "duckdb", target
    backend = _BACKENDS.get(scheme)
    if backend is None:
        known = ", ".join(f"{s}://" for s in sorted(_BACKENDS))
        raise StoreError(
            f"no backend for {scheme}:// in this version (known: {known}, or a plain file path)",
            "db",
        )
    return backend, rest


def connect(url: str | Path | None = None, *, read_only: bool = False) -> Store:
    """Open (creating and migrating if needed) the store at ``url``: a path or ``duckdb:///path``
    for an embedded DuckDB file (``$LOUDOU_DB`` or ``./loudou.duckdb`` by default).

    If ``loudou serve`` holds that database, the store returned works through the server (DuckDB
    lets one process hold a file; see ``loudou.backends.discovery``)."""
    backend, location = resolve(url)
    return backend.open(location, read_only)


def open_for_server(url: str | Path) -> Store:
    """The read-write store a server holds (with the Collector and KeyStore abilities)."""
    backend, location = resolve(url)
    return backend.open_for_server(location)


def served_by(url: str | Path | None = None) -> ServerInfo | None:
    """The server holding this database, if its backend has one process hold it and one does."""
    backend, location = resolve(url)
    return backend.served_by(location)


def announce(url: str | Path, info: ServerInfo) -> None:
    """Tell other processes where the server holding this database listens."""
    backend, location = resolve(url)
    backend.announce(location, info)


def withdraw(url: str | Path) -> None:
    backend, location = resolve(url)
    backend.withdraw(location)


def _open_duckdb(location: str, read_only: bool) -> Store:
    server = discovery.live_server(location)
    if server is not None:
        from loudou.backends.remote import RemoteStore

        return RemoteStore(location, server.url, server.token)
    from loudou.backends.duckdb import DuckDBStore

    return DuckDBStore(location, read_only=read_only)


def _open_duckdb_for_server(location: str) -> Store:
    from loudou.backends.duckdb import DuckDBStore

    return DuckDBStore(location)


def _register_builtin() -> None:
    register_backend(
        "duckdb",
        Backend(
            "duckdb",
            _open_duckdb,
            _open_duckdb_for_server,
            served_by=discovery.live_server,
            announce=discovery.write_info,
            withdraw=discovery.remove_info,
        ),
    )


_register_builtin()

__all__ = [
    "Backend",
    "ServerInfo",
    "Store",
    "WriteResult",
    "announce",
    "connect",
    "default_path",
    "open_for_server",
    "register_backend",
    "resolve",
    "served_by",
    "withdraw",
]
