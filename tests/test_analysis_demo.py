"""End to end on the demo business: compare and diagnose find the segments planted in it."""

from __future__ import annotations

import pytest

import loudou
from loudou import demo
from loudou.query.compare import compare
from loudou.query.diagnose import diagnose


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
