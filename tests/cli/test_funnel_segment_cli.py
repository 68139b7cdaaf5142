"""``loudou funnel`` with saved segments: ``--segment`` filters, ``--breakdown segment:a,b`` splits.

Every answer is checked against ``loudou funnel`` on a database holding only the segment's
customers (a funnel is per customer, so the two must agree to the last median)."""

from __future__ import annotations

import json
from typing import Any

import pytest

import loudou
from loudou.analyses.funnel import run_funnel
from loudou.analyses.segments import save_segment
from loudou.model.segment import Segment

from cli_process import run
from journeys import make_store
from planted import STEPS, Plant, build

SPEC_YAML = "name: shop\nwindow: 7d\nsteps: [" + ", ".join(STEPS) + "]\n"
SEGMENTS = {
    "mob": [{"trait": "device", "value": "mobile"}],
    "handheld": [{"trait": "device", "op": "in", "value": ["mobile", "tablet"]}],
}


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, Plant, Any]:
    root = tmp_path_factory.mktemp("funnel_segments")
    db = str(root / "f.duckdb")
    plant = Plant(customers=500, weeks=3, weak_device="mobile", seed=4)
    store, spec = build(plant, db)
    for name, rules in SEGMENTS.items():
        save_segment(store, Segment.parse({"name": name, "rules": rules}))
    store.close()
    path = root / "spec.yaml"
    path.write_text(SPEC_YAML, encoding="utf-8")
    return db, str(path), plant, spec


def alone(plant: Plant, devices: set[str]) -> Any:
    """A store with only the customers on those devices (the reference answer)."""
    keep = [c for c, d in plant.device.items() if d in devices]
    return make_store(
        {c: plant.journeys[c] for c in keep}, {c: {"device": plant.device[c]} for c in keep}
    )


def funnel_json(*args: str) -> dict[str, Any]:
    proc = run("funnel", *args, "--json")
    assert proc.returncode == 0, proc.stderr
    doc: dict[str, Any] = json.loads(proc.stdout)
    return doc


def test_segment_filter_with_a_property_breakdown_equals_the_segment_alone(env):
    db, spec_file, plant, spec = env
    got = funnel_json(
        spec_file, "--segment", "handheld", "--breakdown", "customer.device", "--db", db
    )
    ref = alone(plant, {"mobile", "tablet"})
    want = run_funnel(ref, spec.model_copy(update={"name": "shop", "breakdown": "customer.device"}))
    assert got == json.loads(json.dumps(want.to_dict()))
    assert {b["value"] for b in got["breakdown"]} == {"mobile", "tablet"}
    # and by hand: the entered count is the number of handheld customers
    assert got["steps"][0]["count"] == sum(d != "desktop" for d in plant.device.values())


def test_breakdown_by_saved_segments(env):
    db, spec_file, plant, spec = env
    got = funnel_json(spec_file, "--breakdown", "segment:mob,handheld", "--db", db)
    assert got["breakdown_by"] == "segment:mob,handheld"
    assert [b["value"] for b in got["breakdown"]] == ["mob", "handheld"]
    for b, devices in zip(got["breakdown"], [{"mobile"}, {"mobile", "tablet"}], strict=True):
        want = run_funnel(alone(plant, devices), spec).to_dict()["steps"]
        assert b["steps"] == json.loads(json.dumps(want))
    whole = run_funnel(loudou.connect(db, read_only=True), spec).to_dict()["steps"]
    assert got["steps"] == json.loads(json.dumps(whole))  # the top table is everyone
    every = funnel_json(spec_file, "--breakdown", "segments", "--db", db)
    assert {b["value"] for b in every["breakdown"]} == set(SEGMENTS)


def test_segment_filter_and_segment_breakdown_together(env):
    db, spec_file, plant, spec = env
    got = funnel_json(
        "--step", "view", "--step", "cart", "--window", "7d", "--segment", "handheld",
        "--breakdown", "segment:mob", "--db", db,
    )  # fmt: skip
    steps2 = spec.model_copy(update={"steps": spec.steps[:2]})
    assert got["steps"] == json.loads(
        json.dumps(run_funnel(alone(plant, {"mobile", "tablet"}), steps2).to_dict()["steps"])
    )
    assert got["breakdown"][0]["steps"] == json.loads(
        json.dumps(run_funnel(alone(plant, {"mobile"}), steps2).to_dict()["steps"])
    )


def test_segment_breakdown_replaces_the_spec_files_breakdown(env, tmp_path):
    db, _, plant, spec = env
    with_breakdown = tmp_path / "by_device.yaml"
    with_breakdown.write_text(SPEC_YAML + "breakdown: customer.device\n", encoding="utf-8")
    got = funnel_json(str(with_breakdown), "--breakdown", "segment:mob", "--db", db)
    assert (got["breakdown_by"], [b["value"] for b in got["breakdown"]]) == ("segment:mob", ["mob"])
    kept = funnel_json(str(with_breakdown), "--segment", "mob", "--db", db)
    assert [b["value"] for b in kept["breakdown"]] == ["mobile"]  # within the segment


def test_a_spec_files_segment_breakdown_means_segments(env, tmp_path):
    """``breakdown: segment:...`` in a spec file, or in a spec sent to the REST API, means what
    ``--breakdown segment:...`` means (it was read as a property named 'segment:mob')."""
    from loudou.analyses.funnel.rows import any_funnel
    from loudou.model.templates import spec_from_data

    db, spec_file, _, _ = env
    by_option = funnel_json(spec_file, "--breakdown", "segment:mob,handheld", "--db", db)
    in_file = tmp_path / "by_segments.yaml"
    in_file.write_text(SPEC_YAML + "breakdown: segment:mob,handheld\n", encoding="utf-8")
    assert funnel_json(str(in_file), "--db", db) == by_option
    assert [b["value"] for b in by_option["breakdown"]] == ["mob", "handheld"]
    store = loudou.connect(db, read_only=True)
    try:
        data = {"name": "shop", "window": "7d", "steps": STEPS, "breakdown": "segment:mob,handheld"}
        assert any_funnel(store, spec_from_data(data, store, "spec")).to_dict() == by_option
        assert run_funnel(store, spec_from_data(data, store, "spec")).to_dict() == by_option
    finally:
        store.close()


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--segment", "nope"], "--segment"),  # the option typed
        (["--breakdown", "segment:nope"], "segment"),
        (["--breakdown", "segment:"], "--breakdown"),
    ],
)
def test_bad_segments_are_one_line(env, args, field):
    db, spec_file, _, _ = env
    proc = run("funnel", spec_file, *args, "--db", db)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {field}:"), proc.stderr
