"""The analysis commands through the real ``loudou`` CLI: JSON equals the Python API, errors are
one line, segments round-trip through the store."""

from __future__ import annotations

import csv
import io
import json

import pytest

import loudou
from loudou.analyses.compare import compare
from loudou.analyses.diagnose import diagnose
from loudou.present.render import document

from cli_process import run
from planted import STEPS, Plant, build

SPEC_YAML = "name: shop\nwindow: 7d\nsteps: [" + ", ".join(STEPS) + "]\n"


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("analysis")
    db = str(root / "a.duckdb")
    store, _ = build(Plant(customers=1200, weak_device="mobile", bad_week=2, seed=2), db)
    store.close()
    spec = root / "spec.yaml"
    spec.write_text(SPEC_YAML, encoding="utf-8")
    return db, str(spec)


def test_segments_create_list_show_export(env):
    db, _ = env
    proc = run("segments", "create", "mob", "--trait", "device = mobile", "--db", db)
    assert proc.returncode == 0, proc.stderr
    proc = run(
        "segments", "create", "buyers", "--rule", "{did: purchase}", "--name-zh", "买家", "--db", db
    )
    assert proc.returncode == 0, proc.stderr
    listed = json.loads(run("segments", "list", "--json", "--db", db).stdout)
    assert [s["name"] for s in listed["segments"]] == ["mob", "buyers"]
    shown = json.loads(run("segments", "show", "mob", "--json", "--db", db).stdout)
    exported = list(
        csv.DictReader(io.StringIO(run("segments", "export", "mob", "--db", db).stdout))
    )
    assert shown["customers"] == len(exported) > 0
    store = loudou.connect(db, read_only=True)
    devices = dict(
        zip(
            *store.read_customers(["device"])
            .select(["customer_id", "device"])
            .to_pydict()
            .values(),
            strict=True,
        )
    )
    store.close()
    assert {devices[r["customer_id"]] for r in exported} == {"mobile"}


def test_bad_segment_input_is_one_line(env):
    db, _ = env
    proc = run("segments", "create", "x", "--rule", "{rfm: [best]}", "--db", db)
    assert (
        proc.returncode == 1
        and proc.stderr.startswith("error: rules.0")
        and "Traceback" not in proc.stderr
    )
    proc = run("segments", "show", "nope", "--db", db)
    assert proc.returncode == 1 and "no segment named 'nope'" in proc.stderr


def test_compare_json_equals_python_api(env):
    db, spec = env
    proc = run("compare", spec, "--by", "device", "--json", "--db", db)
    assert proc.returncode == 0, proc.stderr
    store = loudou.connect(db, read_only=True)
    expected = compare(store, loudou.FunnelSpec.from_yaml(spec), "device").to_dict()
    store.close()
    assert json.loads(proc.stdout) == json.loads(json.dumps(expected))
    text = run("compare", spec, "--by", "device", "--min-customers", "5000", "--db", db)
    assert "too few customers" in text.stdout


def test_diagnose_json_and_languages(env):
    db, spec = env
    proc = run("diagnose", spec, "--by", "device", "--json", "--db", db)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    store = loudou.connect(db, read_only=True)
    expected = document(diagnose(store, loudou.FunnelSpec.from_yaml(spec), ["device"]))
    store.close()
    assert doc == json.loads(json.dumps(expected))
    kinds = {f["kind"] for f in doc["findings"]}
    assert {"stage", "segment", "period"} <= kinds
    zh = run("diagnose", spec, "--by", "device", "--lang", "zh", "--db", db)
    assert "转化率" in zh.stdout
    bad = run("diagnose", spec, "--period", "year", "--db", db)
    assert bad.returncode == 1 and bad.stderr.startswith("error: --period")


def test_journey_commands(env):
    db, spec = env
    for args in (
        ("trends", spec, "--period", "month"),
        ("time-to-convert", spec, "--from-step", "1", "--to-step", "3"),
        ("transitions", spec),
        ("paths", "--after", "view", "--depth", "2"),
        ("correlate", spec, "--step", "2", "--min-customers", "5"),
    ):
        proc = run(*args, "--json", "--db", db)
        assert proc.returncode == 0, (args, proc.stderr)
        json.loads(proc.stdout)
    rows = list(
        csv.DictReader(
            io.StringIO(
                run("customers", spec, "--step", "3", "--outcome", "dropped", "--db", db).stdout
            )
        )
    )
    assert rows and all(r["next_at"] == "" and r["level"] == "3" for r in rows)
