"""The run functions of the registered analyses (``loudou.analyses.registry``): each takes the store,
the funnel spec and the validated parameters, and calls its analysis. The analyses keep plain
keyword arguments for the Python API; these adapters are the only place that reads a Params."""

from __future__ import annotations

from typing import TYPE_CHECKING

from loudou.backends.base import Store
from loudou.model.spec import FunnelSpec

if TYPE_CHECKING:
    from loudou.analyses.compare import CompareResult
    from loudou.analyses.correlation import CorrelationResult
    from loudou.analyses.diagnose import Diagnosis
    from loudou.analyses.paths import PathsResult
    from loudou.analyses.registry import (
        CompareParams,
        CorrelateParams,
        DiagnoseParams,
        PathsParams,
        TimeToConvertParams,
        TransitionsParams,
        TrendsParams,
    )
    from loudou.analyses.timing import TimeToConvert
    from loudou.analyses.transitions import TransitionMatrix
    from loudou.analyses.trends import TrendResult


def compare(store: Store, spec: FunnelSpec | None, p: CompareParams) -> CompareResult:
    from loudou.analyses.compare import compare as run

    assert spec is not None
    return run(store, spec, p.by, segment=p.segment, min_customers=p.min_customers, limit=p.limit)


def diagnose(store: Store, spec: FunnelSpec | None, p: DiagnoseParams) -> Diagnosis:
    from loudou.analyses.diagnose import diagnose as run

    assert spec is not None
    return run(
        store, spec, p.by, period=p.period, segment=p.segment, alpha=p.alpha, limit=p.limit,
        min_customers=p.min_customers,
    )  # fmt: skip


def trends(store: Store, spec: FunnelSpec | None, p: TrendsParams) -> TrendResult:
    from loudou.analyses.trends import trends as run

    assert spec is not None
    return run(store, spec, p.period, p.segment)


def time_to_convert(store: Store, spec: FunnelSpec | None, p: TimeToConvertParams) -> TimeToConvert:
    from loudou.analyses.timing import time_to_convert as run

    assert spec is not None
    return run(store, spec, p.from_step, p.to_step, bins=p.bins, segment=p.segment)


def transitions(store: Store, spec: FunnelSpec | None, p: TransitionsParams) -> TransitionMatrix:
    from loudou.analyses.transitions import transition_matrix

    assert spec is not None
    return transition_matrix(store, spec)


def correlate(store: Store, spec: FunnelSpec | None, p: CorrelateParams) -> CorrelationResult:
    from loudou.analyses.correlation import correlate as run

    assert spec is not None
    return run(
        store, spec, p.step, properties=p.properties, top=p.top, min_customers=p.min_customers,
        segment=p.segment,
    )  # fmt: skip


def paths(store: Store, spec: FunnelSpec | None, p: PathsParams) -> PathsResult:
    from loudou.analyses.paths import top_paths

    return top_paths(
        store, p.after, p.before, depth=p.depth, limit=p.limit, exclude=p.exclude,
        collapse=not p.keep_repeats,
    )  # fmt: skip
