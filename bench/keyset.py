"""Key-set benchmark: what the first write into a large store costs (loading every stored event key
into memory), how much memory the set takes, and what a small write costs at that size.

    .venv/bin/python bench/keyset.py --keys 10M
    .venv/bin/python bench/keyset.py --keys 100M --json

It makes a database whose ``event_keys`` holds N random keys (no events: loading reads only that
table), opens it as loudou does, and times ``prepare_writes()`` (what the server does before it
serves, and any writer on its first write), then a write of 1,000 new events and a catch-up after
1,000 keys appended by another connection.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import duckdb
import pyarrow as pa

ROOT = Path(__file__).resolve().parent.parent


def count(text: str) -> int:
    t = text.strip().lower()
    scale = {"k": 1_000, "m": 1_000_000}.get(t[-1:], 1)
    return int(float(t[:-1] if scale > 1 else t) * scale)


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def timed(work) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """Wall and CPU seconds (all threads) of ``work()``."""
    c0, t0 = time.process_time(), time.perf_counter()
    work()
    return time.perf_counter() - t0, time.process_time() - c0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keys", type=count, default=10_000_000, help="stored keys, e.g. 10M")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    from loudou.backends.duckdb import DuckDBStore

    with tempfile.TemporaryDirectory(prefix="loudou-keyset-") as folder:
        path = str(Path(folder) / "k.duckdb")
        DuckDBStore(path).close()  # the schema
        con = duckdb.connect(path)
        con.execute(
            f"INSERT INTO event_keys SELECT hash(i), hash(i + {args.keys}) FROM range({args.keys}) t(i)"  # noqa: S608
        )
        con.close()
        store = DuckDBStore(path)
        before = rss_mb()
        load_wall, load_cpu = timed(store.prepare_writes)
        keys = store._keys.keys
        assert keys is not None and len(keys) == args.keys
        grown = rss_mb() - before
        ids = pa.array([f"new-{i}" for i in range(1000)])
        batch = pa.table(
            {
                "event_id": ids,
                "customer_id": pa.array(["c"] * 1000),
                "event": pa.array(["view"] * 1000),
                "ts": pa.array([0] * 1000, pa.timestamp("us")),
            }
        )
        for name in ("session_id", "channel", "campaign", "properties"):
            batch = batch.append_column(name, pa.array([None] * 1000, pa.string()))
        batch = batch.append_column("revenue", pa.array([None] * 1000, pa.float64()))
        write_wall, write_cpu = timed(lambda: store.insert_events(batch))
        other = store.con.cursor()
        other.execute(
            "INSERT INTO event_keys SELECT hash(i), hash(i) FROM range(1000) t(i)"  # noqa: S608
        )
        again = batch.set_column(0, "event_id", pa.array([f"more-{i}" for i in range(1000)]))
        catch_wall, catch_cpu = timed(lambda: store.insert_events(again))
        report = {
            "keys": args.keys,
            "load_seconds": round(load_wall, 2),
            "load_cpu_seconds": round(load_cpu, 2),
            "set_mb": round(keys.nbytes / 2**20, 1),
            "rss_growth_mb": round(grown, 1),
            "write_1000_ms": round(write_wall * 1000, 1),
            "write_1000_cpu_ms": round(write_cpu * 1000, 1),
            "catch_up_1000_and_write_1000_ms": round(catch_wall * 1000, 1),
            "catch_up_cpu_ms": round(catch_cpu * 1000, 1),
            "load_average": os.getloadavg()[0],
        }
        store.close()
    if args.json:
        print(json.dumps(report))
        return
    for k, v in report.items():
        print(f"{k:>32}: {v}")


if __name__ == "__main__":
    main()
