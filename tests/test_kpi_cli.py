"""``loudou kpi ...`` in a subprocess: the JSON contracts of the issue, errors as one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from journeys import make_store

D = 86400


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "loudou.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "LANG": "C.UTF-8"},
        timeout=120,
    )


@pytest.fixture(scope="module")
def kpi_db(tmp_path_factory):
    path = tmp_path_factory.mktemp("kpi") / "kpi.duckdb"
    store = make_store(
        {
            "ann": [
                ("ad_click", 0, {"channel": "search", "campaign": "brand"}),
                ("page_view", D, {"channel": "email"}),
                ("order_completed", 2 * D, {"revenue": 100}),
                ("order_completed", 20 * D, {"revenue": 60}),
                ("nps_submitted", 21 * D, {"score": 10}),
            ],
            "bob": [
                ("page_view", 0, {"channel": "social"}),
                ("order_completed", 3 * D, {"revenue": 40}),
                ("nps_submitted", 5 * D, {"score": 3}),
            ],
            "cat": [("page_view", 0, {"channel": "search"})],
        },
        traits={"ann": {"segment": "business"}, "bob": {"segment": "consumer"}},
    )
    # make_store is in-memory; copy into a file the CLI can open
    store.con.execute(f"ATTACH '{path}' AS f")
    store.con.execute("COPY FROM DATABASE memory TO f")
    store.close()
    return str(path)


def test_attribution_json_contract(kpi_db):
    r = run(
        "kpi",
        "attribution",
        "--conversion",
        "order_completed",
        "--model",
        "first_touch",
        "--lookback",
        "30d",
        "--json",
        "--db",
        kpi_db,
    )
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    rows = {c["channel"]: c for c in doc["channels"]}
    assert set(rows["search"]) == {"channel", "conversions", "revenue", "share"}
    # ann's first order -> search; her second order's path is empty (after the first) -> none;
    # bob -> social
    assert rows["search"]["conversions"] == 1 and rows["search"]["revenue"] == 100
    assert rows["social"]["share"] == 0.5
    assert doc["unattributed_conversions"] == 1


def test_attribution_every_model_runs(kpi_db):
    for model in ("first_touch", "last_touch", "linear", "time_decay", "position", "markov"):
        r = run("kpi", "attribution", "--model", model, "--json", "--db", kpi_db)
        assert r.returncode == 0, r.stderr
        doc = json.loads(r.stdout)
        assert sum(c["conversions"] for c in doc["channels"]) == pytest.approx(2)


def test_attribution_bad_model_is_one_line(kpi_db):
    r = run("kpi", "attribution", "--model", "shapley", "--db", kpi_db)
    assert r.returncode == 1
    assert r.stderr.startswith("error: --model:") and r.stderr.count("\n") == 1
