"""Identity-link benchmark: the first funnel after an identity link re-keyed stored events, against
a warm funnel and a rebuild of the funnel cache, on N generated events (``bench/imports.py``'s
data: 50k customers with six months of history each, so a link's re-read cannot be narrowed down
by time: the worst case).

    .venv/bin/python bench/links.py                        # 10M events, table
    .venv/bin/python bench/links.py --events 2M --json

Each link joins two customers that both have events (``c<k>`` -> ``c<k+100>``), through the
collection server's write path (``collect``), as an ``identify`` would.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from imports import count, make_events  # noqa: E402

import loudou  # noqa: E402
from loudou.backends.base import CUSTOMER_SCHEMA, EVENT_SCHEMA  # noqa: E402
from loudou.backends.duckdb import DuckDBStore  # noqa: E402
from loudou.ingest.files import import_file  # noqa: E402

T = TypeVar("T")
SPEC = {"steps": ["event_00", "event_01", "signup", "purchase"], "window": "1d"}


def timed(fn: Callable[[], T]) -> tuple[float, T]:
    begin = time.perf_counter()
    out = fn()
    return time.perf_counter() - begin, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=count, default=10_000_000, help="e.g. 10M (default)")
    parser.add_argument("--links", type=int, default=3, help="links, each timed on its own")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    args = parser.parse_args()
    spec = loudou.FunnelSpec.parse(SPEC)
    with tempfile.TemporaryDirectory(prefix="loudou-bench-") as folder:
        data = Path(folder) / "events.parquet"
        pq.write_table(make_events(args.events, ids=True), data)
        store = DuckDBStore(str(Path(folder) / "links.duckdb"))
        import_file(store, data, "events")
        build, _ = timed(store.event_cache)
        warm, _ = timed(lambda: loudou.run_funnel(store, spec))
        no_events, no_traits = EVENT_SCHEMA.empty_table(), CUSTOMER_SCHEMA.empty_table()
        after, patched = [], None
        for k in range(args.links):
            store.collect(no_events, no_traits, [(f"c{k}", f"c{k + 100}")])
            seconds, patched = timed(lambda: loudou.run_funnel(store, spec))
            after.append(seconds)
        cache = store._cache
        store._cache = None
        rebuild, _ = timed(store.event_cache)
        fresh = loudou.run_funnel(store, spec)
        agree = patched is not None and [s.count for s in patched.steps] == [
            s.count for s in fresh.steps
        ]
        store.close()
    report = {
        "events": args.events,
        "cache_build_seconds": round(build, 3),
        "warm_funnel_seconds": round(warm, 3),
        "first_funnel_after_link_seconds": [round(s, 3) for s in after],
        "cache_kept": cache is not None,
        "rebuild_seconds": round(rebuild, 3),
        "counts_agree_with_rebuild": agree,
    }
    if args.json:
        print(json.dumps(report))
        return
    print(f"{args.events:,} events, 50k customers")
    print(f"cache build {build:.3f} s, warm funnel {warm:.3f} s")
    print("first funnel after a link: " + ", ".join(f"{s:.3f} s" for s in after))
    print(f"rebuilding the cache instead: {rebuild:.3f} s; counts agree with it: {agree}")
    if not agree:
        raise SystemExit("the patched cache and a rebuilt one disagree")


if __name__ == "__main__":
    main()
