"""Import benchmark: generates N events, writes them as Parquet and CSV (optionally gzip), and times
``loudou import events FILE`` end to end (a new process, as a user runs it) on a fresh database,
then a second import of the same file into the same database (idempotent: adds nothing).

    .venv/bin/python bench/imports.py                      # 2M events, table
    .venv/bin/python bench/imports.py --events 10M --gzip --json

Events look like a product-analytics export: an event id (uuid-like, unless --no-ids, then loudou
hashes each row), 50k customers, 20 event names, ISO timestamps over six months (in time order, as
exports usually are), session, channel, campaign, revenue on purchases, and two free properties.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import gzip
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
LOUDOU = [sys.executable, "-m", "loudou.cli"]
_EVENTS = [f"event_{i:02d}" for i in range(18)] + ["signup", "purchase"]
_CHANNELS = ["search", "social", "email", "referral", "offline", None]


def count(text: str) -> int:
    """'2M', '500k', '2000000' -> int."""
    t = text.strip().lower()
    scale = {"k": 1_000, "m": 1_000_000}.get(t[-1:], 1)
    return int(float(t[:-1] if scale > 1 else t) * scale)


_PART = 40 * 256_000  # rows built at a time (a whole number of the Parquet file's row groups)


def make_events(n: int, *, ids: bool, seed: int = 7) -> pa.Table:
    """``n`` synthetic events in time order (up to a few tens of millions: see ``event_parts``)."""
    return pa.concat_tables(event_parts(n, ids=ids, seed=seed))


def event_parts(n: int, *, ids: bool, seed: int = 7) -> Iterator[pa.Table]:
    """``n`` synthetic events in time order, ``_PART`` rows at a time: a text column of 100M
    events would pass Arrow's 2 GB per array. The values do not depend on the part size."""
    rng = np.random.default_rng(seed)
    start = np.datetime64("2025-01-01T00:00:00", "us").astype(np.int64)
    span = 182 * 86_400_000_000
    ts = np.sort(start + rng.integers(0, span, n)) // 1000 * 1000  # whole milliseconds
    customers = rng.integers(0, 50_000, n)
    events = rng.choice(len(_EVENTS), n, p=_weights())
    hi = rng.integers(0, 2**62, n) if ids else None
    purchase = events == _EVENTS.index("purchase")
    revenue = np.where(purchase, np.round(rng.gamma(2.0, 40.0, n), 2), np.nan)
    channel = rng.integers(0, len(_CHANNELS), n)
    campaign = rng.integers(0, 30, n)
    page = rng.integers(0, 200, n)
    plan = rng.integers(0, 3, n)
    names = {
        "event": np.array(_EVENTS, dtype=object),
        "channel": np.array(_CHANNELS, dtype=object),
        "campaign": np.array([f"cmp{i}" for i in range(30)], dtype=object),
        "page": np.array([f"/p/{i}" for i in range(200)], dtype=object),
        "plan": np.array(["free", "pro", "team"], dtype=object),
    }
    for a in range(0, n, _PART):
        b = min(a + _PART, n)
        cust = pc.binary_join_element_wise("c", pa.array(customers[a:b]).cast(pa.string()), "")
        cols: dict[str, pa.Array] = {}
        if hi is not None:
            cols["event_id"] = pc.binary_join_element_wise(
                "evt-",
                pa.array(hi[a:b]).cast(pa.string()),
                pa.array(np.arange(a, b)).cast(pa.string()),
                "-",
            )
        cols |= {
            "customer_id": cust,
            "event": pa.array(names["event"][events[a:b]], pa.string()),
            "ts": pa.array(ts[a:b], pa.timestamp("us")),
            "session_id": pc.binary_join_element_wise(
                cust, pa.array(ts[a:b] // 3_600_000_000).cast(pa.string()), "-"
            ),
            "channel": pa.array(names["channel"][channel[a:b]], pa.string()),
            "campaign": pa.array(names["campaign"][campaign[a:b]], pa.string()),
            "revenue": pa.array(revenue[a:b], pa.float64(), from_pandas=True),
            "page": pa.array(names["page"][page[a:b]], pa.string()),
            "plan": pa.array(names["plan"][plan[a:b]], pa.string()),
        }
        yield pa.table(cols)


def _weights() -> np.ndarray:
    w = np.ones(len(_EVENTS))
    w[-2:] = 0.2
    return w / w.sum()


def write_files(parts: Iterable[pa.Table], folder: Path, *, gz: bool) -> dict[str, Path]:
    """The same events as Parquet and CSV (ISO 8601 times in CSV, as exports write them)."""
    paths = {"parquet": folder / "events.parquet", "csv": folder / "events.csv"}
    parquet: pq.ParquetWriter | None = None
    text: pcsv.CSVWriter | None = None
    for table in parts:
        if parquet is None:
            parquet = pq.ParquetWriter(paths["parquet"], table.schema)
        parquet.write_table(table, row_group_size=256_000)
        iso = pc.strftime(table["ts"], "%Y-%m-%dT%H:%M:%S.%fZ")  # %f gives nanoseconds' digits
        iso = pc.utf8_replace_slice(iso, 23, 29, "")
        rows = table.set_column(table.schema.get_field_index("ts"), "ts", iso)
        if text is None:
            text = pcsv.CSVWriter(paths["csv"], rows.schema)
        text.write_table(rows)
    for writer in (parquet, text):
        if writer is not None:
            writer.close()
    if gz:
        for key in list(paths):
            target = paths[key].with_name(paths[key].name + ".gz")
            with open(paths[key], "rb") as src, gzip.open(target, "wb", compresslevel=1) as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            paths[key + ".gz"] = target
    return paths


def _generate(n: int, ids: bool, folder: Path, gz: bool) -> dict[str, Path]:
    return write_files(event_parts(n, ids=ids), folder, gz=gz)


@dataclass
class Run:
    """One ``loudou import events`` process: wall and CPU seconds (all threads; CPU time says
    more than wall time when other work shares the machine), peak memory, and its summary."""

    seconds: float
    cpu: float
    peak_rss_mb: float
    summary: dict[str, object]


def run_import(path: Path, db: Path, src: Path) -> Run:
    env = {**os.environ, "PYTHONPATH": str(src)}
    begin = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as errors:
        proc = subprocess.Popen(  # noqa: S603 (our own interpreter and arguments)
            [*LOUDOU, "import", "events", str(path), "--db", str(db), "--json"],
            stdout=out,
            stderr=errors,
            text=True,
            env=env,
        )
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - begin
        out.seek(0)
        errors.seek(0)
        if proc.returncode != 0:
            raise SystemExit(f"import of {path.name} failed:\n{errors.read()}")
        summary = json.loads(out.read())
    cpu = usage.ru_utime + usage.ru_stime
    return Run(seconds, cpu, usage.ru_maxrss / 1024, summary)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=count, default=2_000_000, help="e.g. 2M (default)")
    parser.add_argument("--gzip", action="store_true", help="also time .csv.gz and .parquet.gz")
    parser.add_argument("--no-ids", action="store_true", help="no event_id column: rows hashed")
    parser.add_argument("--only", choices=["parquet", "csv"], help="time one format only")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument(
        "--src",
        type=Path,
        nargs="+",
        default=[ROOT / "src"],
        help="loudou sources to time; several (before/after) run in turn on the same files",
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs per source and format (all are reported)"
    )
    args = parser.parse_args()

    results = []
    with tempfile.TemporaryDirectory(prefix="loudou-bench-") as folder:
        # Written by a child process: an exec'd import inherits its parent's peak memory as
        # its own ``ru_maxrss`` (Linux), so the parent must never hold the generated table.
        spawn = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(1, mp_context=spawn) as pool:
            paths = pool.submit(
                _generate, args.events, not args.no_ids, Path(folder), args.gzip
            ).result()
        os.sync()  # the files' writeback would otherwise share the first import's time
        runs = [
            (fmt, path, src)
            for fmt, path in paths.items()
            if not args.only or fmt.startswith(args.only)
            for _ in range(args.repeat)
            for src in args.src
        ]
        for fmt, path, src in runs:
            db = Path(folder) / f"{fmt}.duckdb"
            db.unlink(missing_ok=True)
            Path(str(db) + ".wal").unlink(missing_ok=True)
            first = run_import(path, db, src)
            again = run_import(path, db, src)
            if first.summary["loaded"] != args.events or again.summary["loaded"] != 0:
                raise SystemExit(f"{fmt}: unexpected counts {first.summary} then {again.summary}")
            results.append(
                {
                    "format": fmt,
                    "src": str(src),
                    "load_average": os.getloadavg()[0],
                    "bytes": path.stat().st_size,
                    "seconds": round(first.seconds, 3),
                    "cpu_seconds": round(first.cpu, 3),
                    "peak_rss_mb": round(first.peak_rss_mb, 1),
                    "events_per_second": round(args.events / first.seconds),
                    "reimport_seconds": round(again.seconds, 3),
                    "reimport_cpu_seconds": round(again.cpu, 3),
                    "reimport_events_per_second": round(args.events / again.seconds),
                }
            )
    report = {
        "events": args.events,
        "event_ids": not args.no_ids,
        "load_average": os.getloadavg()[0],
        "results": results,
    }
    if args.json:
        print(json.dumps(report))
        return
    print(f"{args.events:,} events, event ids {'in the file' if not args.no_ids else 'hashed'}")
    several = len(args.src) > 1
    print(
        f"{'file':<12} {'MB':>7} {'import s':>9} {'cpu s':>6} {'RSS MB':>7} {'events/s':>11} "
        f"{'re-import s':>12} {'cpu s':>6} {'events/s':>11} {'load':>5}"
        + ("  src" if several else "")
    )
    for r in results:
        print(
            f"{r['format']:<12} {r['bytes'] / 1e6:>7.1f} {r['seconds']:>9.2f} "
            f"{r['cpu_seconds']:>6.2f} {r['peak_rss_mb']:>7.0f} {r['events_per_second']:>11,} "
            f"{r['reimport_seconds']:>12.2f} {r['reimport_cpu_seconds']:>6.2f} "
            f"{r['reimport_events_per_second']:>11,} {r['load_average']:>5.1f}"
            + (f"  {r['src']}" if several else "")
        )
    print(f"load average {report['load_average']:.2f}")


if __name__ == "__main__":
    main()
