"""The step-time quantile kernel equals ``np.percentile(..., [50, 90])`` exactly (``==``, not
approximately), alone and per group, and funnels with a breakdown equal a numpy reference built
from ``funnel_customers``."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import loudou
from loudou.analyses.funnel import NONE_VALUE, OTHER, funnel_customers
from loudou.analyses.stats import wilson_interval
from loudou.kernels.quantiles import median_p90, step_time_quantiles

from journeys import make_store, spec_of

I62 = 2**62


def numpy_median_p90(deltas: np.ndarray) -> tuple[float, float]:
    median, p90 = np.percentile(deltas / 1e6, [50, 90])
    return float(median), float(p90)


def exactly(got: tuple[float, float], want: tuple[float, float]) -> None:
    """Equal as floats, and with the same sign bit (so -0.0 and 0.0 count as different)."""
    assert got == want
    assert [np.signbit(x) for x in got] == [np.signbit(x) for x in want]


deltas_st = st.one_of(
    st.lists(st.integers(-I62, I62), min_size=1, max_size=300),  # large values
    st.lists(st.integers(0, 3600 * 10**6), min_size=1, max_size=300),  # durations
    st.lists(st.sampled_from([0, 1, 7, 10**6, 10**12]), min_size=1, max_size=300),  # ties
    st.lists(  # clusters far apart: several radix levels
        st.tuples(st.sampled_from([0, 2**20, 2**40, 2**55]), st.integers(0, 50)).map(sum),
        min_size=1,
        max_size=300,
    ),
)


@settings(max_examples=300, deadline=None)
@given(deltas_st)
def test_median_p90_equals_numpy_exactly(values: list[int]) -> None:
    deltas = np.array(values, np.int64)
    exactly(median_p90(deltas), numpy_median_p90(deltas))


@pytest.mark.parametrize("n", [1, 2, 3, 10, 33, 1000, 100_001])
@pytest.mark.parametrize("kind", ["uniform", "ties", "skewed", "sorted", "negative"])
def test_median_p90_on_larger_arrays(n: int, kind: str) -> None:
    rng = np.random.default_rng(n)
    deltas = {
        "uniform": rng.integers(0, 86_400 * 10**6, n),
        "ties": rng.integers(0, 4, n) * 10**6,
        "skewed": np.where(rng.random(n) < 0.95, 0, rng.integers(0, I62, n)),
        "sorted": np.sort(rng.integers(0, 10**9, n)),
        "negative": rng.integers(-I62, I62, n),
    }[kind].astype(np.int64)
    exactly(median_p90(deltas), numpy_median_p90(deltas))


def brute_force(
    levels: np.ndarray, times: np.ndarray, group: np.ndarray, n_groups: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per group (and all units last): units reaching each step and np.percentile of the step
    times, the way the funnel summaries computed them before the kernel."""
    n_steps = times.shape[0]
    reached = np.zeros((n_groups + 1, n_steps), np.int64)
    median = np.full((n_groups + 1, n_steps), np.nan)
    p90 = np.full((n_groups + 1, n_steps), np.nan)
    for g in range(n_groups + 1):
        member = np.ones(levels.shape[0], bool) if g == n_groups else group == g
        for k in range(n_steps):
            mask = member & (levels > k)
            reached[g, k] = mask.sum()
            if k and mask.any():
                median[g, k], p90[g, k] = np.percentile(
                    (times[k][mask] - times[k - 1][mask]) / 1e6, [50, 90]
                )
    return reached, median, p90


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.integers(1, 6),  # steps
    st.integers(0, 400),  # units
    st.integers(0, 40),  # groups
    st.sampled_from([10, 10**6, 10**11]),  # spread of the step gaps (microseconds)
    st.integers(0, 2**32 - 1),
)
def test_step_time_quantiles_equal_numpy_per_group(
    n_steps: int, n_units: int, n_groups: int, spread: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    levels = rng.integers(0, n_steps + 1, n_units).astype(np.int64)
    gaps = rng.integers(0, spread, (n_steps, n_units))
    times = (1_735_689_600 * 10**6 + np.cumsum(gaps, axis=0)).astype(np.int64)
    times[np.arange(n_steps)[:, None] >= levels[None, :]] = -1  # not reached
    n_codes = int(rng.integers(1, 50))
    codes = rng.integers(-1, n_codes, n_units).astype(np.int64)  # -1: no value
    lut = rng.integers(-1, max(n_groups, 1), n_codes + 1).astype(np.int64)  # last: code -1
    group = lut[np.where(codes < 0, n_codes, codes)] if n_groups else np.full(n_units, -1)
    got = (
        step_time_quantiles(levels, times, codes, lut, n_groups)
        if n_groups
        else step_time_quantiles(levels, times)
    )
    want = brute_force(levels, times, group, n_groups)
    np.testing.assert_array_equal(got[0], want[0])
    for a, b in zip(got[1:], want[1:], strict=True):
        assert np.array_equal(a, b, equal_nan=True)


def test_steps_split_over_threads_give_the_same_results() -> None:
    rng = np.random.default_rng(3)
    n = 300_000  # above PARALLEL_FROM durations
    levels = rng.integers(0, 6, n).astype(np.int64)
    times = np.cumsum(rng.integers(0, 10**9, (5, n)), axis=0).astype(np.int64)
    codes = rng.integers(-1, 12, n).astype(np.int64)
    lut = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 10, -1], np.int64)
    got = step_time_quantiles(levels, times, codes, lut, 11)
    want = brute_force(levels, times, lut[np.where(codes < 0, 12, codes)], 11)
    np.testing.assert_array_equal(got[0], want[0])
    for a, b in zip(got[1:], want[1:], strict=True):
        assert np.array_equal(a, b, equal_nan=True)


def test_one_group_holding_millions_of_durations() -> None:
    rng = np.random.default_rng(5)
    n = 2_000_000
    levels = rng.integers(1, 4, n).astype(np.int64)
    times = np.cumsum(rng.integers(0, 86_400 * 10**6, (3, n)), axis=0).astype(np.int64)
    got = step_time_quantiles(levels, times)
    for k in (1, 2):
        mask = levels > k
        assert (got[1][0, k], got[2][0, k]) == numpy_median_p90(times[k][mask] - times[k - 1][mask])


# ---- funnels with a breakdown against a reference from funnel_customers ---------------------

event_st = st.tuples(
    st.sampled_from(["view", "cart", "buy", "noise"]),
    st.integers(0, 3000),  # seconds
    st.sampled_from(["ads", "mail", "seo", "social", None]),
)
journeys_st = st.dictionaries(
    st.sampled_from([f"c{i}" for i in range(30)]),
    st.lists(event_st, min_size=1, max_size=10),
    min_size=1,
)


def reference(
    store: Any, spec: Any
) -> tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]]]]:
    """All units' steps and each breakdown value's (top N by units, then 'other') from the
    per-unit table, with np.percentile for the times."""
    units = funnel_customers(store, spec)
    table = units.to_pydict()
    n_steps = len(spec.steps)
    values = [NONE_VALUE if v is None else v for v in table["breakdown"]]
    sizes: dict[str, int] = {}
    for v in values:
        sizes[v] = sizes.get(v, 0) + 1
    order = sorted(sizes, key=lambda v: (-sizes[v], v))
    top = order[: spec.breakdown_limit]
    bucket = [v if v in top else OTHER for v in values]

    def steps_of(rows: list[int]) -> list[dict[str, Any]]:
        level = np.array([table["level"][i] for i in rows], np.int64)
        micros = [  # int64 microseconds, -1 where not reached
            np.array(units.column(f"step_{k + 1}").cast(pa.int64()).fill_null(-1))[rows]
            for k in range(n_steps)
        ]
        counts = [int((level > k).sum()) for k in range(n_steps)]
        out = []
        for k in range(n_steps):
            prev = counts[k - 1] if k else counts[0]
            median = p90 = None
            if k and counts[k]:
                reached = level > k
                later, earlier = micros[k][reached], micros[k - 1][reached]
                median, p90 = (float(x) for x in np.percentile((later - earlier) / 1e6, [50, 90]))
            out.append(
                {
                    "count": counts[k],
                    "dropoff": prev - counts[k],
                    "ci95": list(wilson_interval(counts[k], prev)),
                    "median_seconds_from_previous": median,
                    "p90_seconds_from_previous": p90,
                }
            )
        return out

    everyone = steps_of(list(range(len(values))))
    names = top + ([OTHER] if len(order) > len(top) else [])
    return everyone, {
        name: steps_of([i for i, b in enumerate(bucket) if b == name]) for name in names
    }


def picked(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    keys = ("count", "dropoff", "ci95", "median_seconds_from_previous", "p90_seconds_from_previous")
    return [{k: s[k] for k in keys} for s in steps]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(journeys_st, st.integers(1, 5), st.sampled_from(["ordered", "any_order"]))
def test_breakdown_results_equal_a_numpy_reference(
    data: dict[str, list[tuple[Any, ...]]], limit: int, mode: str
) -> None:
    journeys = {
        cid: [(e, t, {"src": s} if s else {}) for e, t, s in evs] for cid, evs in data.items()
    }
    store = make_store(journeys)
    spec = spec_of(
        ["view", "cart", "buy"], window=3600, mode=mode, breakdown="src", breakdown_limit=limit
    )
    for engine in ("sql", "cache"):
        got = loudou.run_funnel(store, spec, engine=engine).to_dict()
        everyone, by_value = reference(store, spec)
        assert picked(got["steps"]) == everyone
        assert {b["value"]: picked(b["steps"]) for b in got["breakdown"]} == by_value
        assert [b["value"] for b in got["breakdown"]] == list(by_value)
