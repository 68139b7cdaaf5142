"""Segment comparison: counts against the planted truth, p-values and q-values against
statsmodels on the same tables, small cells, segments as groups."""

from __future__ import annotations

import numpy as np
import pytest
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint, proportions_ztest

from loudou.analyses.compare import compare
from loudou.analyses.segments import save_segment
from loudou.model.segment import Segment

from planted import DEVICES, Plant, build


@pytest.fixture(scope="module")
def planted():
    plant = Plant(customers=1500, weak_device="mobile", seed=3)
    store, spec = build(plant)
    return plant, store, spec


def test_compare_by_trait_matches_truth_and_statsmodels(planted):
    plant, store, spec = planted
    result = compare(store, spec, "device")
    assert [s.value for s in result.segments] == sorted(
        DEVICES, key=lambda d: (-sum(v == d for v in plant.device.values()), d)
    )
    levels = np.array(list(plant.levels.values()))
    device = np.array(list(plant.device.values()))
    pvals = []
    for seg in result.segments:
        for k, cell in enumerate(seg.transitions, start=1):
            inside = device == seg.value
            n, x = int((levels[inside] >= k).sum()), int((levels[inside] >= k + 1).sum())
            rn, rx = int((levels[~inside] >= k).sum()), int((levels[~inside] >= k + 1).sum())
            assert (cell.entered, cell.converted, cell.rest_entered, cell.rest_converted) == (
                n,
                x,
                rn,
                rx,
            )
            assert cell.rate == pytest.approx(x / n)
            assert cell.ci95 == pytest.approx(proportion_confint(x, n, method="wilson"))
            assert cell.difference_points == pytest.approx(100 * (x / n - rx / rn))
            assert cell.won_back == pytest.approx(n * (rx / rn - x / n))
            assert cell.p_value == pytest.approx(proportions_ztest([x, rx], [n, rn])[1], rel=1e-9)
            pvals.append(cell.p_value)
    q_ref = multipletests(pvals, method="fdr_bh")[1]
    assert [c.q_value for c in result.cells()] == pytest.approx(list(q_ref))
    mobile = next(s for s in result.segments if s.value == "mobile").transitions[1]
    assert mobile.difference_points < 0 and mobile.q_value < 0.01


def test_small_cells_say_too_few(planted):
    _, store, spec = planted
    result = compare(store, spec, "device", min_customers=400)
    last = [s.transitions[-1] for s in result.segments]
    assert all(c.too_few and c.rate is None and c.p_value is None for c in last)
    assert all(c.q_value is None for c in last)
    doc = result.to_dict()
    assert doc["segments"][0]["transitions"][-1]["too_few"] is True


def test_saved_segments_as_groups_and_filter(planted):
    plant, store, spec = planted
    save_segment(
        store, Segment.parse({"name": "mob", "rules": [{"trait": "device", "value": "mobile"}]})
    )
    by_seg = compare(store, spec, "segment:mob")
    by_trait = compare(store, spec, "device")
    mob = by_seg.segments[0]
    ref = next(s for s in by_trait.segments if s.value == "mobile")
    assert mob.customers == ref.customers
    assert [c.converted for c in mob.transitions] == [c.converted for c in ref.transitions]
    within = compare(store, spec, "device", segment="mob")
    assert [s.value for s in within.segments] == ["mobile"]
    assert all(c.too_few for c in within.segments[0].transitions)  # no rest inside the segment
