"""Shared statistics against scipy and statsmodels on the same tables."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import chi2_contingency, norm
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint, proportions_ztest

from loudou.analyses.stats import bh_qvalues, normal_sf, two_proportion_test, wilson_interval

TABLES = [
    (40, 100, 55, 100),
    (3, 50, 12, 60),
    (120, 1000, 150, 1100),
    (7, 31, 7, 31),
    (1, 40, 0, 45),
]


@pytest.mark.parametrize("x1,n1,x2,n2", TABLES)
def test_two_proportion_matches_statsmodels_and_chi_square(x1, n1, x2, n2):
    z, p = two_proportion_test(x1, n1, x2, n2)
    z_ref, p_ref = proportions_ztest([x1, x2], [n1, n2])
    assert z == pytest.approx(z_ref, abs=1e-9)
    assert p == pytest.approx(p_ref, rel=1e-9, abs=1e-15)
    chi2, p_chi, _, _ = chi2_contingency([[x1, n1 - x1], [x2, n2 - x2]], correction=False)
    assert p == pytest.approx(p_chi, rel=1e-9)
    assert z * z == pytest.approx(chi2, rel=1e-9)


def test_two_proportion_degenerate_tables():
    assert two_proportion_test(0, 10, 0, 20) == (0.0, 1.0)
    assert two_proportion_test(10, 10, 20, 20) == (0.0, 1.0)
    with pytest.raises(ValueError):
        two_proportion_test(0, 0, 1, 2)


def test_normal_tail_far_out():
    for z in (0.0, 1.5, 5.0, 12.0):
        assert normal_sf(z) == pytest.approx(norm.sf(z), rel=1e-12)


def test_bh_qvalues_match_statsmodels():
    rng = np.random.default_rng(1)
    for size in (1, 2, 7, 50):
        p = np.concatenate([rng.uniform(0, 1, size), rng.uniform(0, 0.01, size // 3)])
        ref = multipletests(p, method="fdr_bh")[1]
        assert bh_qvalues(list(p)) == pytest.approx(list(ref), rel=1e-12)


def test_bh_skips_missing_and_handles_ties():
    q = bh_qvalues([0.01, None, 0.04, 0.04, None])
    ref = multipletests([0.01, 0.04, 0.04], method="fdr_bh")[1]
    assert q[1] is None and q[4] is None
    assert [q[0], q[2], q[3]] == pytest.approx(list(ref))
    assert bh_qvalues([]) == []


@pytest.mark.parametrize("x,n", [(0, 10), (3, 10), (10, 10), (57, 412)])
def test_wilson_matches_statsmodels(x, n):
    low, high = proportion_confint(x, n, alpha=0.05, method="wilson")
    assert wilson_interval(x, n) == pytest.approx((low, high), abs=1e-12)
    assert not math.isnan(wilson_interval(x, n)[0])
