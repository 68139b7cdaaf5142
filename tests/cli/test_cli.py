"""The real ``loudou`` command in a subprocess: output formats, errors as one line, exit codes."""

from __future__ import annotations

import json

import pytest

import loudou

from cli_process import run
from journeys import events_table


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "cli.duckdb"
    store = loudou.connect(path)
    store.insert_events(
        events_table(
            {
                "a": [("signup", 0, {"plan": "pro"}), ("purchase", 3600, {"revenue": 150})],
                "b": [("signup", 0, {"plan": "free"}), ("purchase", 7200, {"revenue": 50})],
                "c": [("signup", 0, {"plan": "free"})],
            }
        )
    )
    store.close()
    return str(path)


def test_inline_funnel_json_matches_python_api(db):
    proc = run(
        "funnel",
        "--db",
        db,
        "--step",
        "signup",
        "--step",
        "purchase where revenue > 100",
        "--window",
        "7d",
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["mode"] == "ordered" and doc["window_seconds"] == 7 * 86400
    assert [s["count"] for s in doc["steps"]] == [3, 1]
    step = doc["steps"][1]
    assert set(step) >= {
        "name",
        "count",
        "conversion_from_previous",
        "conversion_from_start",
        "ci95",
        "dropoff",
        "median_seconds_from_previous",
        "p90_seconds_from_previous",
    }
    assert step["median_seconds_from_previous"] == 3600.0
    assert doc["breakdown"] == []


def test_table_csv_lang_and_env_db(db):
    proc = run("funnel", "-s", "signup", "-s", "purchase", "--lang", "zh", env={"LOUDOU_DB": db})
    assert proc.returncode == 0, proc.stderr
    assert "阶段" in proc.stdout and "最大流失" in proc.stdout
    proc = run(
        "funnel", "--db", db, "-s", "signup", "-s", "purchase", "--csv", "--breakdown", "plan"
    )
    lines = proc.stdout.strip().splitlines()
    assert lines[0].startswith("breakdown,step,name,count")
    assert any(line.startswith("free,2,purchase,1,") for line in lines)


def test_spec_file_with_command_line_override(db, tmp_path):
    spec = tmp_path / "f.yaml"
    spec.write_text(
        "name: s\nsteps:\n  - {event: signup, name_zh: 注册}\n  - purchase\nwindow: 1h\n",
        encoding="utf-8",
    )
    doc = json.loads(run("funnel", str(spec), "--db", db, "--json").stdout)
    assert [s["count"] for s in doc["steps"]] == [3, 1]
    doc = json.loads(run("funnel", str(spec), "--db", db, "--json", "--window", "2h").stdout)
    assert [s["count"] for s in doc["steps"]] == [3, 2]
    assert doc["steps"][0]["name_zh"] == "注册"


def test_templates_map_and_use(db, tmp_path):
    copy = tmp_path / "t.duckdb"
    copy.write_bytes(open(db, "rb").read())
    proc = run(
        "templates", "map", "customer", "awareness=signup", "purchase=purchase", "--db", str(copy)
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(run("funnel", "--template", "customer", "--db", str(copy), "--json").stdout)
    assert [s["name"] for s in doc["steps"]] == ["Awareness", "Purchase"]
    assert "awareness: signup" in run("templates", "show", "customer", "--db", str(copy)).stdout
    assert "客户漏斗" in run("templates", "list").stdout


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["funnel", "-s", "signup", "--window", "soon"], "window"),
        (["funnel", "-s", "signup", "--mode", "fast"], "mode"),
        (["funnel", "-s", "purchase where revenue >"], "missing value"),
        (["funnel"], "at least one --step"),
        (["funnel", "/no/such/spec.yaml"], "cannot read spec file"),
        (["funnel", "-s", "a", "--exclude", "refund"], "--exclude"),
        (["funnel", "-s", "a", "--lang", "fr"], "--lang"),
        (["templates", "show", "aida"], "no stage map saved"),
    ],
)
def test_bad_input_is_one_line_without_traceback(db, args, needle):
    proc = run(*args, "--db", db)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0, proc.stderr
    assert proc.stderr.startswith("error: ") and needle in proc.stderr


def test_missing_database_is_an_error(tmp_path):
    proc = run("funnel", "-s", "a", "--db", str(tmp_path / "none.duckdb"))
    assert proc.returncode == 1 and "no database" in proc.stderr and "Traceback" not in proc.stderr


def test_help_explains():
    proc = run("funnel", "--help")
    assert proc.returncode == 0
    for word in ("--step", "--window", "--mode", "--breakdown", "--json", "--db"):
        assert word in proc.stdout


def test_info(db):
    doc = json.loads(run("info", "--db", db, "--json").stdout)
    assert doc["events"] == 5 and doc["customers"] == 3
