"""``loudou kpi ...`` in a subprocess: the JSON contracts of the issue, errors as one line."""

from __future__ import annotations

import json

import pytest

from cli_process import run
from journeys import make_store

D = 86400


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


@pytest.mark.parametrize("command", ["repeat", "nps"])
def test_grouping_by_a_trait_no_customer_has_is_an_error(kpi_db, command):
    r = run("kpi", command, "--by", "segmnt", "--db", kpi_db)
    assert r.returncode == 1, r.stdout
    assert r.stderr.startswith("error: --by:") and "segmnt" in r.stderr
    assert r.stderr.count("\n") == 1


@pytest.mark.parametrize(
    "args,key",
    [
        (["cac", "--ltv", "historical"], "blended"),
        (["retention", "--basis", "purchase"], "cohorts"),
        (["repeat", "--by", "segment"], "repeat_rate"),
        (["churn"], "periods"),
        (["nps", "--by", "channel"], "nps"),
        (["sales-cycle", "--by", "segment"], "first_touch_to_purchase"),
    ],
)
def test_other_kpi_commands_print_json(kpi_db, args, key):
    r = run("kpi", *args, "--json", "--db", kpi_db)
    assert r.returncode == 0, r.stderr
    assert key in json.loads(r.stdout)


def test_kpi_numbers_through_the_cli(kpi_db):
    doc = json.loads(run("kpi", "repeat", "--json", "--db", kpi_db).stdout)
    assert doc["buyers"] == 2 and doc["repeat_rate"] == 0.5  # ann bought twice, bob once
    doc = json.loads(run("kpi", "nps", "--json", "--db", kpi_db).stdout)
    assert doc["nps"] == 0  # one promoter (10), one detractor (3)
    doc = json.loads(run("kpi", "sales-cycle", "--json", "--db", kpi_db).stdout)
    assert doc["first_touch_to_purchase"]["median"] == 2.5  # ann 2 days, bob 3 days


def test_tables_print(kpi_db):
    for args in (["attribution"], ["cac", "--ltv", "historical"], ["retention"], ["nps"]):
        r = run("kpi", *args, "--db", kpi_db)
        assert r.returncode == 0 and r.stdout.strip(), (args, r.stderr)


def test_demo_prints_kpi_summary(tmp_path):
    r = run(
        "demo",
        "--customers",
        "400",
        "--months",
        "3",
        "--db",
        str(tmp_path / "d.duckdb"),
        "-o",
        str(tmp_path / "r.html"),
        "--lang",
        "en",
    )
    assert r.returncode == 0, r.stderr
    for text in ("CAC", "CLV", "LTV:CAC", "NPS", "repeat purchase rate", "sales cycle", "blended"):
        assert text in r.stdout


def test_python_api_facade():
    import loudou
    from loudou import kpi

    store = make_store(
        {"a": [("page_view", 0, {"channel": "email"}), ("order_completed", 60, {"revenue": 5})]}
    )
    res = kpi.attribution(store, model="last_touch")
    assert res.to_pandas().to_dict("records") == [
        {"channel": "email", "conversions": 1.0, "revenue": 5.0, "share": 1.0}
    ]
    assert callable(kpi.clv) and callable(kpi.summary) and loudou.connect


def test_summary_in_chinese(kpi_db):
    r = run("kpi", "summary", "--lang", "zh", "--db", kpi_db)
    assert r.returncode == 0, r.stderr
    assert "获客成本" in r.stdout and "净推荐值" in r.stdout
