"""Funnel benchmark: loudou against ClickHouse (chdb), DuckDB SQL and pandas on the same data.

    python bench/funnel.py --events 10M            # table
    python bench/funnel.py --events 1M --json      # machine-readable

Generates N events (customers, ~20 event names, a 5-step funnel with realistic drop-off, many gaps
longer than the window), writes them as Parquet, imports them into a fresh loudou store, then times
each method warm, best of 3, each in its own process so peak memory is per method. All exact
methods must give identical step counts.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

STEPS = ["view_item", "add_to_cart", "begin_checkout", "add_payment", "purchase"]
NOISE = [f"event_{i:02d}" for i in range(15)]
WINDOW_S = 86_400
BASE_S = 1_735_689_600  # 2025-01-01


def parse_count(text: str) -> int:
    text = text.strip().upper()
    mult = {"K": 1_000, "M": 1_000_000, "B": 1_000_000_000}.get(text[-1:], 1)
    return int(float(text[:-1] if text[-1:] in "KMB" else text) * mult)


def generate_columns(n: int, seed: int = 1) -> dict[str, np.ndarray]:
    """Sessions that walk the funnel with drop-off, plus noise events; ~40 events per customer.
    Integer columns: customer number, time in seconds, event number, and region per customer."""
    rng = np.random.default_rng(seed)
    customers = max(1, n // 40)
    sessions = max(1, n // 12)
    level = np.ones(sessions, np.int64)
    alive = np.ones(sessions, bool)
    for p in (0.45, 0.5, 0.55, 0.65):
        alive &= rng.random(sessions) < p
        level += alive
    s_cust = rng.integers(0, customers, sessions)
    s_start = BASE_S + rng.integers(0, 90 * 86_400, sessions)
    rep = np.repeat(np.arange(sessions), level)
    first = np.cumsum(level) - level  # each session's first row
    step = np.arange(rep.size) - np.repeat(first, level)
    # gaps between steps: mostly minutes, sometimes longer than the window
    gap = np.where(
        rng.random(rep.size) < 0.08,
        rng.integers(86_400, 5 * 86_400, rep.size),
        rng.integers(0, 3_600, rep.size),
    )
    gap[step == 0] = 0
    offs = np.cumsum(gap)
    offs -= np.repeat(offs[first] - gap[first], level)
    k = max(0, n - rep.size)
    return {
        "cust": np.concatenate([s_cust[rep], rng.integers(0, customers, k)])[:n],
        "ts": np.concatenate([s_start[rep] + offs, BASE_S + rng.integers(0, 90 * 86_400, k)])[:n],
        "name": np.concatenate([step, len(STEPS) + rng.integers(0, len(NOISE), k)])[:n],
        "region": rng.integers(0, 10, customers),
    }


def _prefixed(prefix: str, numbers: np.ndarray) -> pa.Array:
    return pc.binary_join_element_wise(prefix, pa.array(numbers).cast(pa.string()), "")


def to_table(cols: dict[str, np.ndarray], lo: int, hi: int, id_prefix: str = "e") -> pa.Table:
    """Rows lo..hi as the file a user would import (string ids and names, one property)."""
    cust = cols["cust"][lo:hi]
    names = pa.array(STEPS + NOISE)
    regions = pa.array([f"r{i}" for i in range(10)])
    return pa.table(
        {
            "event_id": _prefixed(id_prefix, np.arange(lo, hi)),
            "customer_id": _prefixed("c", cust),
            "event": names.take(pa.array(cols["name"][lo:hi])),
            "ts": pa.array(cols["ts"][lo:hi] * 1_000_000, pa.timestamp("us")),
            "region": regions.take(pa.array(cols["region"][cust])),
        }
    )


def generate(n: int, seed: int = 1, id_prefix: str = "e") -> pa.Table:
    return to_table(generate_columns(n, seed), 0, n, id_prefix)


def write_parquet(n: int, path: Path, chunk: int = 5_000_000) -> None:
    """Generate and write in row groups, so 100M events fit in memory."""
    cols = generate_columns(n)
    with pq.ParquetWriter(path, to_table(cols, 0, 1).schema) as writer:
        for lo in range(0, n, chunk):
            writer.write_table(to_table(cols, lo, min(n, lo + chunk)), row_group_size=1_000_000)


# ---- methods: each returns step counts; run in a fresh process ----------------------------------


def m_loudou(work: Path, breakdown: bool) -> Callable[[], list[int]]:
    import loudou

    store = loudou.connect(work / "loudou.duckdb", read_only=True)
    spec = loudou.Funnel(STEPS, window=WINDOW_S, breakdown="region" if breakdown else None).spec

    def run() -> list[int]:
        counts = [s.count for s in loudou.run_funnel(store, spec, engine="cache").steps]
        base = store.event_cache().base  # what the query reads: offsets, times, event codes
        INFO["cache_mb"] = (base.off.nbytes + base.ts.nbytes + base.code.nbytes) / 2**20
        return counts

    return run


INFO: dict[str, float] = {}  # extra figures a method reports


def m_chdb(work: Path) -> Callable[[], list[int]]:
    from chdb import session

    sess = session.Session(str(work / "chdb"))
    conds = ", ".join(f"event = {i}" for i in range(len(STEPS)))
    codes = ", ".join(str(i) for i in range(len(STEPS)))
    sql = (
        f"SELECT level, count() FROM (SELECT customer_id, windowFunnel({WINDOW_S})(ts, {conds}) AS level "
        f"FROM ev WHERE event IN ({codes}) GROUP BY customer_id) GROUP BY level"
    )

    def run() -> list[int]:
        rows = sess.query(sql, "CSV").bytes().decode().split()
        by_level = {int(a): int(b) for a, b in (r.split(",") for r in rows)}
        return [sum(c for lv, c in by_level.items() if lv >= k) for k in range(1, len(STEPS) + 1)]

    return run


def m_duckdb_asof(work: Path) -> Callable[[], list[int]]:
    import duckdb

    con = duckdb.connect(str(work / "loudou.duckdb"), read_only=True)
    # per step-1 event, the earliest next step at or after the previous one (optimal for a fixed
    # start); the customer's level is the best over starts
    parts = ["s0 AS (SELECT customer_id, ts AS t0, ts AS t FROM events WHERE event = $1)"]
    for k in range(1, len(STEPS)):
        parts.append(
            f"e{k} AS (SELECT customer_id, ts FROM events WHERE event = ${k + 1}), "
            f"s{k} AS (SELECT p.customer_id, p.t0, n.ts AS t FROM s{k - 1} p ASOF JOIN e{k} n "
            f"ON p.customer_id = n.customer_id AND n.ts >= p.t WHERE n.ts <= p.t0 + INTERVAL {WINDOW_S} SECOND)"
        )
    levels = " UNION ALL ".join(
        f"SELECT customer_id, {k + 1} AS lv FROM s{k}" for k in range(len(STEPS))
    )
    sql = f"WITH {', '.join(parts)} SELECT lv, count(*) FROM (SELECT customer_id, max(lv) AS lv FROM ({levels}) GROUP BY 1) GROUP BY 1"  # noqa: S608

    def run() -> list[int]:
        by_level = dict(con.execute(sql, STEPS).fetchall())
        return [sum(c for lv, c in by_level.items() if lv >= k) for k in range(1, len(STEPS) + 1)]

    return run


def m_pandas(work: Path) -> Callable[[], list[int]]:
    import pandas as pd

    df = pq.read_table(work / "events.parquet", columns=["customer_id", "event", "ts"]).to_pandas()
    df = df[df["event"].isin(STEPS)]
    frames = [df[df["event"] == s][["customer_id", "ts"]].sort_values("ts") for s in STEPS]

    def run() -> list[int]:
        cur = frames[0].rename(columns={"ts": "t"}).assign(t0=lambda d: d["t"])
        best = {0: cur["customer_id"].unique()}
        for k in range(1, len(STEPS)):
            nxt = frames[k].rename(columns={"ts": "t_next"})
            cur = pd.merge_asof(
                cur.sort_values("t"),
                nxt,
                left_on="t",
                right_on="t_next",
                by="customer_id",
                direction="forward",
            )
            cur = cur[cur["t_next"] <= cur["t0"] + pd.Timedelta(seconds=WINDOW_S)]
            cur = cur.drop(columns=["t"]).rename(columns={"t_next": "t"})
            best[k] = cur["customer_id"].unique()
        return [len(best[k]) for k in range(len(STEPS))]

    return run


def m_loudou_append(work: Path) -> Callable[[], list[int]]:
    """The first funnel after 1% more events were appended (on a copy of the store): it must
    fold them into the cache without a full rebuild. Each call appends a fresh 1%."""
    import shutil

    import loudou
    from loudou.ingest.files import import_file

    copy = work / "append.duckdb"
    shutil.copy(work / "loudou.duckdb", copy)
    store = loudou.connect(copy)
    spec = loudou.Funnel(STEPS, window=WINDOW_S).spec
    loudou.run_funnel(store, spec, engine="cache")  # warm: the cache is built
    n = store.counts()["events"]
    calls = [0]

    def run() -> list[int]:
        calls[0] += 1
        more = generate(max(1, n // 100), seed=100 + calls[0], id_prefix=f"a{calls[0]}-")
        path = work / f"append-{calls[0]}.parquet"
        pq.write_table(more, path)
        import_file(store, path, "events", progress=False)
        t0 = time.perf_counter()
        counts = [s.count for s in loudou.run_funnel(store, spec, engine="cache").steps]
        APPEND_TIMES.append(time.perf_counter() - t0)
        return counts

    return run


APPEND_TIMES: list[float] = []  # funnel time alone, without the append itself

METHODS: dict[str, Callable[[Path], Callable[[], list[int]]]] = {
    "loudou": lambda w: m_loudou(w, False),
    "loudou_breakdown10": lambda w: m_loudou(w, True),
    "loudou_after_append_1pct": m_loudou_append,
    "chdb_windowFunnel": m_chdb,
    "duckdb_asof_sql": m_duckdb_asof,
    "pandas_merge_asof": m_pandas,
}
NOT_COMPARED = {"loudou_breakdown10", "loudou_after_append_1pct"}  # other questions or data


def _peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss, not inherited across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _reset_peak_rss() -> None:
    """Start a new VmHWM from the current RSS (Linux clear_refs 5), to see the query's own peak."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def _child(name: str, work: str, repeats: int, queue: Any) -> None:
    setup = METHODS[name](Path(work))
    setup()  # warm-up (compiles, caches)
    load_peak = _peak_rss_mb()
    _reset_peak_rss()
    times, counts = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        counts = setup()
        times.append(time.perf_counter() - t0)
    if APPEND_TIMES:
        times = APPEND_TIMES[1:]  # the funnel alone, not the append before it
    queue.put(
        {
            "method": name,
            "seconds": min(times),
            "peak_rss_mb": max(load_peak, _peak_rss_mb()),
            "query_peak_rss_mb": _peak_rss_mb(),
            "counts": counts,
            **INFO,
        }
    )


def measure(name: str, work: Path, repeats: int) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(name, str(work), repeats, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return dict(result)


def prepare(n: int, work: Path, log: Callable[[str], None]) -> dict[str, float]:
    """Generate, write Parquet, import into loudou and load chdb; returns load timings."""
    import loudou
    from loudou.ingest.files import import_file

    write_parquet(n, work / "events.parquet")
    timings = {}
    t0 = time.perf_counter()
    store = loudou.connect(work / "loudou.duckdb")
    summary = import_file(store, work / "events.parquet", "events", progress=sys.stderr.isatty())
    store.close()
    timings["loudou_import_parquet_s"] = time.perf_counter() - t0
    log(f"imported {summary.loaded:,} events in {timings['loudou_import_parquet_s']:.1f} s")

    from chdb import session

    t0 = time.perf_counter()
    sess = session.Session(str(work / "chdb"))
    sess.query(
        "CREATE TABLE ev (customer_id UInt32, ts UInt32, event UInt8) ENGINE = MergeTree ORDER BY (customer_id, ts)"
    )
    codes = ", ".join(f"'{s}'" for s in STEPS + NOISE)
    sess.query(
        f"INSERT INTO ev SELECT toUInt32(substring(customer_id, 2)), toUInt32(toUnixTimestamp(ts)), "
        f"toUInt8(indexOf([{codes}], event) - 1) FROM file('{work / 'events.parquet'}', Parquet)"
    )
    sess.close()
    timings["chdb_load_s"] = time.perf_counter() - t0
    log(f"chdb loaded in {timings['chdb_load_s']:.1f} s")
    return timings


def _ratio(by: dict[str, float], a: str, b: str) -> float | None:
    return by[a] / by[b] if a in by and b in by else None


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--events", default="1M", help="number of events: 200k, 10M, 100M")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--methods", default=",".join(METHODS), help="comma-separated subset")
    ap.add_argument("--workdir", default=None, help="keep data here (default: a temporary folder)")
    ap.add_argument("--json", action="store_true", help="print the JSON result only")
    ap.add_argument(
        "--data", default=None, help="keep the generated data here and reuse it on later runs"
    )
    args = ap.parse_args()
    n = parse_count(args.events)
    log = (lambda m: print(m, file=sys.stderr)) if args.json else print
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        work = Path(args.data or tmp)
        work.mkdir(parents=True, exist_ok=True)
        if (work / "loudou.duckdb").exists() and (work / "chdb").exists():
            loads: dict[str, float] = {}
            log(f"reusing the data in {work}")
        else:
            loads = prepare(n, work, log)
        results = []
        for name in args.methods.split(","):
            r = measure(name, work, args.repeats)
            log(
                f"{name:26s} {r['seconds']:8.3f} s  peak {r['peak_rss_mb']:7.0f} MB"
                f"  (during queries {r['query_peak_rss_mb']:7.0f} MB)  counts {r['counts']}"
            )
            results.append(r)
    exact = [r for r in results if r["method"] not in NOT_COMPARED]
    agree = len({tuple(r["counts"]) for r in exact}) == 1
    by = {r["method"]: r["seconds"] for r in results}
    doc = {
        "events": n,
        "results": [
            {k: r[k] for k in ("method", "seconds", "peak_rss_mb", "query_peak_rss_mb")}
            for r in results
        ],
        "ratio_loudou_chdb": _ratio(by, "loudou", "chdb_windowFunnel"),
        "ratio_breakdown_plain": _ratio(by, "loudou_breakdown10", "loudou"),
        "ratio_after_append_warm": _ratio(by, "loudou_after_append_1pct", "loudou"),
        "loudou_cache_mb": next((r["cache_mb"] for r in results if "cache_mb" in r), None),
        "counts_agree": agree,
        "counts": exact[0]["counts"] if exact else None,
        **loads,
        "cpu_count": os.cpu_count(),
    }
    if args.json:
        print(json.dumps(doc))
    else:
        for key in ("ratio_loudou_chdb", "ratio_breakdown_plain", "ratio_after_append_warm"):
            if doc[key] is not None:
                log(f"{key}: {doc[key]:.2f}")
        log(f"counts agree: {agree}")
    if not agree:
        sys.exit(1)


if __name__ == "__main__":
    main()
