"""A real ``loudou serve`` in a subprocess on a free 127.0.0.1 port, with keys, for server tests."""

from __future__ import annotations

import os
import resource
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

import loudou
from loudou.server.keys import new_key


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_keys(db: Path) -> dict[str, str]:
    """One key per role, created directly in the (not yet served) database."""
    store = loudou.connect(db)
    keys = {}
    for role in ("write", "read", "admin"):
        secret, record = new_key(role)
        store.add_key(record)  # type: ignore[attr-defined]
        keys[role] = secret
    store.close()
    return keys


@dataclass
class Server:
    db: Path
    url: str
    proc: subprocess.Popen[bytes]
    keys: dict[str, str]

    def client(self, role: str | None = "write") -> httpx.Client:
        auth = (self.keys[role], "") if role else None
        return httpx.Client(base_url=self.url, auth=auth, timeout=30)

    def post(self, path: str, body: Any, role: str | None = "write") -> httpx.Response:
        with self.client(role) as c:
            return c.post(path, json=body)

    def get(self, path: str, role: str | None = "read", **params: Any) -> httpx.Response:
        with self.client(role) as c:
            return c.get(path, params=params)

    def kill(self) -> None:
        """kill -9: no shutdown, no checkpoint."""
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


def children(pid: int) -> list[int]:
    """Live child processes of ``pid`` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "stat").read_text().rsplit(")", 1)[1].split()[
                1
            ] == str(pid):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def start(
    db: Path,
    keys: dict[str, str] | None = None,
    args: tuple[str, ...] = (),
    max_file_bytes: int | None = None,
    port: int | None = None,
) -> Server:
    """Serve ``db`` (creating keys if none are given) and wait until it answers.
    ``max_file_bytes`` limits the size of files the server may write (RLIMIT_FSIZE), so that
    its writes fail like on a full disk."""
    keys = keys if keys is not None else make_keys(db)
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failed write, not a killed process
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_file_bytes, max_file_bytes))

    proc = subprocess.Popen(
        [sys.executable, "-m", "loudou", "serve", "--db", str(db), "--port", str(port), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=limit if max_file_bytes is not None else None,  # noqa: PLW1509
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(proc.stderr.read().decode() if proc.stderr else "server died")
        try:
            if httpx.get(url + "/v1/health", timeout=1).status_code == 200:
                return Server(db, url, proc, keys)
        except httpx.HTTPError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("server did not start")
