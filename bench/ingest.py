"""Ingestion benchmark: concurrent clients send Segment batches to a running ``loudou serve`` over
loopback; reports sustained events/s with p50/p99 request latency (durable: every 200 is
committed), then single-event requests/s.

    .venv/bin/python bench/ingest.py                       # starts its own server on a temp db
    .venv/bin/python bench/ingest.py --url http://127.0.0.1:8000 --key ldw_...   # yours

The client is a minimal asyncio HTTP/1.1 keep-alive client with pre-built bodies, so the load
generator takes as little CPU as possible from the server it measures (they share the machine).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent


def make_body(events: int, single: bool, live: bool = False) -> bytes:
    """A body with MSGPFX where each request puts its own unique prefix (so nothing dedups), and
    with ``live`` TIMESTAMP where it puts the current time (else all events share one time)."""

    def message(i: int) -> dict[str, object]:
        return {
            "type": "track",
            "userId": f"user-{i % 1000}",
            "anonymousId": f"anon-{i % 1000}",
            "event": ["page_view", "add_to_cart", "checkout", "order_completed"][i % 4],
            "messageId": f"MSGPFX-{i}",
            "timestamp": "TIMESTAMP" if live else "2025-06-01T12:00:00Z",
            "properties": {"sku": f"sku-{i % 50}", "price": 19.99, "revenue": 19.99},
            "context": {
                "ip": "10.0.0.1",
                "userAgent": "bench/1.0",
                "campaign": {"source": "google", "name": "summer"},
                "page": {"path": "/product", "url": "https://shop.example/product"},
            },
        }

    if single:
        msg = message(0)
        del msg["type"]
        return json.dumps(msg).encode()
    return json.dumps({"batch": [message(i) for i in range(events)]}).encode()


class Connection:
    """One keep-alive HTTP/1.1 connection."""

    def __init__(self, host: str, port: int, auth: str) -> None:
        self.host, self.port, self.auth = host, port, auth
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nAuthorization: Basic {self.auth}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        self.writer.write(head + body)
        status_line = await self.reader.readline()
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        await self.reader.readexactly(length)
        return int(status_line.split()[1])


def server_commits(url: str) -> int:
    """Transactions the server has committed so far (group commit: fewer than requests)."""
    from urllib.request import urlopen

    with urlopen(url + "/v1/health") as r:
        return int(json.load(r)["commits"])


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU time of a process and its live children (the server's parser
    processes), from Linux /proc; 0 when unknown."""
    if pid is None:
        return 0.0
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat(int(entry.name))
        if fields is not None and (int(entry.name) == pid or int(fields[1]) == pid):
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


async def drive(
    url: str,
    key: str,
    clients: int,
    seconds: float,
    events: int,
    single: bool,
    pid: int | None,
    live: bool = False,
    tag: str = "",
) -> dict[str, float]:
    parts = urlsplit(url)
    auth = base64.b64encode(f"{key}:".encode()).decode()
    template = make_body(events, single, live)
    path = "/v1/track" if single else "/v1/batch"
    latencies: list[float] = []
    counter = 0
    failures = 0
    deadline = time.perf_counter() + seconds

    async def client(c: int) -> None:
        nonlocal counter, failures
        conn = Connection(parts.hostname or "127.0.0.1", parts.port or 80, auth)
        while time.perf_counter() < deadline:
            counter += 1
            body = template.replace(b"MSGPFX", f"r{os.getpid()}{tag}-{c}-{counter}".encode())
            if live:
                now = datetime.now(UTC).isoformat(timespec="milliseconds")
                body = body.replace(b"TIMESTAMP", now.encode())
            t0 = time.perf_counter()
            status = await conn.post(path, body)
            latencies.append(time.perf_counter() - t0)
            if status != 200:
                failures += 1

    commits = server_commits(url)
    start, server_cpu, own_cpu = time.perf_counter(), cpu_seconds(pid), time.process_time()
    await asyncio.gather(*(client(c) for c in range(clients)))
    elapsed = time.perf_counter() - start
    server_cpu = cpu_seconds(pid) - server_cpu
    commits = server_commits(url) - commits
    own_cpu = time.process_time() - own_cpu
    ok = len(latencies) - failures
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0.0] * 99
    return {
        "requests": len(latencies),
        "failed": failures,
        "seconds": round(elapsed, 2),
        "requests_per_s": round(ok / elapsed, 1),
        "events_per_s": round(ok * (1 if single else events) / elapsed, 1),
        "p50_ms": round(q[49] * 1000, 1),
        "p99_ms": round(q[98] * 1000, 1),
        "commits_per_s": round(commits / elapsed, 1),
        "events_per_commit": round(ok * (1 if single else events) / commits, 1) if commits else 0.0,
        # CPU used, in cores: the server shares this machine with the client (and anything else)
        "server_cores": round(server_cpu / elapsed, 2),
        "client_cores": round(own_cpu / elapsed, 2),
        "events_per_server_cpu_s": round(ok * (1 if single else events) / server_cpu, 1)
        if server_cpu
        else 0.0,
    }


def own_server(
    src: Path,
) -> tuple[subprocess.Popen[bytes], str, str, tempfile.TemporaryDirectory[str]]:
    """A fresh server running the loudou sources in ``src``, on a temporary database, with a
    write key."""
    import socket

    import httpx

    tmp = tempfile.TemporaryDirectory()
    db = str(Path(tmp.name) / "bench.duckdb")
    cli = [sys.executable, "-m", "loudou"]
    env = {**os.environ, "PYTHONPATH": str(src)}
    made = subprocess.run(
        [*cli, "keys", "create", "--role", "write", "--json", "--db", db],
        capture_output=True,
        check=True,
        text=True,
        env=env,
    )
    key = json.loads(made.stdout)["key"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([*cli, "serve", "--db", db, "--port", str(port)], env=env)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(url + "/v1/health").status_code == 200:
                return proc, url, key, tmp
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("server did not start")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--url", help="A running server (default: start one on a temp database).")
    ap.add_argument("--key", help="Its write key (required with --url).")
    ap.add_argument("--clients", type=int, default=16, help="Concurrent batch clients.")
    ap.add_argument(
        "--single-clients",
        type=int,
        default=32,
        help="Concurrent single clients (0: skip that phase).",
    )
    ap.add_argument("--seconds", type=float, default=10.0, help="Duration of each phase.")
    ap.add_argument(
        "--warmup",
        type=float,
        default=2.0,
        help="Seconds of batch load before measuring (a new server's first requests load code).",
    )
    ap.add_argument(
        "--live",
        action="store_true",
        help="Events at the current time (each request extends its customers' last_seen), "
        "rather than all at one fixed time.",
    )
    ap.add_argument("--batch", type=int, default=100, help="Events per batch request.")
    ap.add_argument("--pid", type=int, help="The server's pid, to report its CPU use.")
    ap.add_argument("--json", action="store_true", help="Print JSON.")
    ap.add_argument(
        "--src", type=Path, default=ROOT / "src", help="loudou sources to serve (before/after)"
    )
    args = ap.parse_args()
    proc = tmp = None
    pid = args.pid
    load_before = os.getloadavg()[0]
    if args.url is None:
        proc, url, key, tmp = own_server(args.src)
        pid = proc.pid
    else:
        if not args.key:
            raise SystemExit("--key is required with --url")
        url, key = args.url.rstrip("/"), args.key
    try:
        if args.warmup > 0:
            asyncio.run(
                drive(url, key, args.clients, args.warmup, args.batch, False, pid, args.live, "w")
            )
        batch = asyncio.run(
            drive(url, key, args.clients, args.seconds, args.batch, False, pid, args.live, "b")
        )
        single = (
            asyncio.run(
                drive(url, key, args.single_clients, args.seconds, 1, True, pid, args.live, "s")
            )
            if args.single_clients
            else None
        )
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait()
        if tmp is not None:
            tmp.cleanup()
    report = {
        "batch": batch,
        "single": single,
        "clients": args.clients,
        "batch_size": args.batch,
        "live_timestamps": args.live,
        "warmup_s": args.warmup,
        "load_average": [load_before, os.getloadavg()[0]],
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(
        f"batches of {args.batch}, {args.clients} clients: {batch['events_per_s']:,.0f} events/s, "
        f"p50 {batch['p50_ms']} ms, p99 {batch['p99_ms']} ms ({batch['failed']} failed); "
        f"server {batch['server_cores']} cores, client {batch['client_cores']} cores; "
        f"{batch['commits_per_s']} commits/s"
    )
    if single is not None:
        print(
            f"single events, {args.single_clients} clients: {single['requests_per_s']:,.0f} requests/s, "
            f"p50 {single['p50_ms']} ms, p99 {single['p99_ms']} ms ({single['failed']} failed); "
            f"server {single['server_cores']} cores, client {single['client_cores']} cores; "
            f"{single['commits_per_s']} commits/s"
        )
    print(
        f"load average before: {load_before:.1f}, after: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )


if __name__ == "__main__":
    main()
