"""The funnel benchmark's correctness check at a small size: every exact method (loudou,
ClickHouse windowFunnel via chdb, DuckDB ASOF SQL, pandas merge_asof) gives the same step counts.
Timings are printed by the benchmark, never asserted here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "funnel.py"


def test_benchmark_methods_agree_at_200k(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, str(BENCH), "--events", "200k", "--repeats", "1", "--json"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    doc = json.loads(out.stdout)
    assert doc["events"] == 200_000
    assert doc["counts_agree"] is True
    methods = {r["method"] for r in doc["results"]}
    assert {"loudou", "chdb_windowFunnel", "duckdb_asof_sql", "pandas_merge_asof"} <= methods
    counts = doc["counts"]
    assert counts[0] > counts[-1] > 0 and counts == sorted(counts, reverse=True)
    for r in doc["results"]:
        assert r["seconds"] > 0 and r["peak_rss_mb"] > 0
    assert doc["ratio_loudou_chdb"] > 0
