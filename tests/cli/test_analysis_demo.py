"""End to end on the demo business: compare and diagnose find the effects planted in it."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

import loudou
from loudou import demo
from loudou.analyses.compare import compare
from loudou.analyses.diagnose import diagnose


@pytest.fixture(scope="module")
def store():
    s = loudou.connect(":memory:")
    demo.load(s, demo.generate(seed=7, customers=4000, months=4))
    return s


def spec_of(effect):
    return demo.journey_funnel_spec() if effect.funnel == "journey" else demo.sales_funnel_spec()


# The 18-24 repeat-purchase effect reaches too few customers at this size to be significant.
STRONG = [e for e in demo.PLANTED_EFFECTS if e.trait != "age_band"]


@pytest.mark.parametrize("effect", STRONG, ids=lambda e: f"{e.trait}={e.value}")
def test_compare_shows_each_planted_effect(store, effect):
    result = compare(store, spec_of(effect), effect.trait)
    seg = next(s for s in result.segments if s.value == effect.value)
    cell = seg.transitions[effect.step - 1]
    assert cell.q_value is not None and cell.q_value < 0.05
    assert (cell.difference_points < 0) == (effect.factor < 1)


def test_diagnose_lists_the_weak_planted_segments(store):
    traits = list(dict.fromkeys(e.trait for e in demo.PLANTED_EFFECTS))
    for name in ("journey", "sales"):
        spec = demo.journey_funnel_spec() if name == "journey" else demo.sales_funnel_spec()
        found = {
            (f.segment["property"], f.segment["value"], f.from_step)
            for f in diagnose(store, spec, traits).findings
            if f.kind == "segment"
        }
        for e in STRONG:
            if e.funnel == name and e.factor < 1:
                assert (e.trait, e.value, spec.steps[e.step - 1].label()) in found


# ---- what `loudou demo` prints finds every planted kind --------------------------------------


@pytest.fixture(scope="module")
def full():
    """The default demo business, as `loudou demo` builds it (about 1M events)."""
    data = demo.generate()
    s = loudou.connect(":memory:")
    demo.load(s, data)
    return s, data


def test_demo_prints_the_planted_segments_period_and_loop(full):
    store, data = full
    found = demo.diagnoses(store)  # the top 5 per funnel that `loudou demo` prints
    specs = demo.funnel_specs()
    assert set(found) == {"journey", "sales", "checkout"}
    assert all(len(d.findings) <= 5 for d in found.values())

    for e in STRONG:
        if e.factor < 1:
            step = specs[e.funnel].steps[e.step - 1].label()
            segments = [f for f in found[e.funnel].findings if f.kind == "segment"]
            assert (e.trait, e.value, step) in {
                (f.segment["property"], f.segment["value"], f.from_step) for f in segments
            }

    (outage,) = demo.PLANTED_PERIODS
    first = data.start + timedelta(days=outage.first_day)
    last = first + timedelta(days=outage.days - 1)
    steps = specs[outage.funnel].steps
    periods = [f for f in found[outage.funnel].findings if f.kind == "period"]
    assert len(periods) == 1, periods
    p = periods[0]
    assert p.segment == {"property": outage.trait, "value": outage.value}
    assert (p.from_step, p.to_step) == (steps[outage.step - 1].label(), steps[outage.step].label())
    # the outage starts on a Monday and lasts three whole weeks: the weekly scan finds it exactly
    assert (p.period["start"], p.period["end"]) == (first.isoformat(), last.isoformat())
    assert p.q_value <= 0.05 and p.conversion < 0.3 * p.baseline

    (loop,) = demo.PLANTED_LOOPS
    stages = list(demo.DEAL_STAGES)
    steps = specs[loop.funnel].steps
    loops = [f for f in found[loop.funnel].findings if f.kind == "loop"]
    assert [(f.from_step, f.to_step) for f in loops] == [
        (steps[stages.index(loop.stage)].label(), steps[stages.index(loop.back_to)].label())
    ]
    reached, went_back = _sales_moves_by_hand(data, stages.index(loop.stage))
    assert loops[0].entered == reached
    assert loops[0].conversion == pytest.approx(went_back / reached)
    assert loops[0].baseline == 0  # no other stage is planted to go back


def _sales_moves_by_hand(data, stage: int) -> tuple[int, int]:
    """Customers with a deal at ``stage``, and those whose next stage change went back from it."""
    ev = data.events.to_pandas()
    ev = ev[ev.event == "deal_stage_changed"].copy()
    ev["to"] = ev.properties.map(lambda p: json.loads(p)["to_stage"])
    funnel_stages = list(demo.DEAL_STAGES[: demo.LOST])  # lead .. won; 'lost' is no step
    ev = ev[ev.to.isin(funnel_stages)].sort_values(["customer_id", "ts"])
    ev["k"] = ev.to.map(funnel_stages.index)
    reached = went_back = 0
    for _, ks in ev.groupby("customer_id").k:
        seq = ks.tolist()
        if stage in seq:
            reached += 1
            went_back += any(a == stage and b < a for a, b in zip(seq, seq[1:], strict=False))
    return reached, went_back
