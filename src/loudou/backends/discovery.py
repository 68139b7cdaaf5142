"""How other processes find a running server: ``<db>.server.json`` next to the database.

DuckDB lets one process hold a file read-write, and then no other process can open it, not even
read-only. So while ``loudou serve`` runs, it writes ``<db>.server.json`` (mode 0600) with its URL,
pid and a random local admin token; CLI commands and ``loudou.connect`` on the same database find
it and work through the server's HTTP API instead. Whoever can read the file can read the database
file too, so the token grants nothing new. The file is removed at shutdown; one left behind by a
killed server is ignored, because nothing answers at its URL.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ServerInfo:
    url: str
    pid: int
    token: str


def server_file(db_path: str | os.PathLike[str]) -> Path:
    return Path(str(db_path) + ".server.json")


def write_info(db_path: str, info: ServerInfo) -> None:
    path = server_file(db_path)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"url": info.url, "pid": info.pid, "token": info.token}, f)
    os.replace(tmp, path)


def read_info(db_path: str | os.PathLike[str]) -> ServerInfo | None:
    """The server file's content, or None if there is none (or it is unreadable)."""
    try:
        data = json.loads(server_file(db_path).read_text())
        return ServerInfo(str(data["url"]), int(data["pid"]), str(data["token"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def remove_info(db_path: str) -> None:
    """Remove the file if this process wrote it."""
    info = read_info(db_path)
    if info is not None and info.pid == os.getpid():
        server_file(db_path).unlink(missing_ok=True)


def live_server(db_path: str | os.PathLike[str]) -> ServerInfo | None:
    """The server running on this database, if one answers at the URL its file names."""
    if str(db_path) == ":memory:":
        return None
    info = read_info(db_path)
    if info is None:
        return None
    import httpx

    try:
        r = httpx.get(info.url + "/v1/health", timeout=2.0)
        serves = r.status_code == 200 and r.json().get("db") == str(Path(db_path).resolve())
    except (httpx.HTTPError, ValueError, AttributeError):  # nothing there, or something else
        return None
    return info if serves else None
