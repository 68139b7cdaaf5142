"""The funnel analysis: ``run_funnel`` and the notebook builder ``Funnel``.

Semantics are in docs/funnel-semantics.md; the kernels replay ClickHouse ``windowFunnel``. The
work is split by stage: ``units`` (kernel pass over SQL rows), ``cached`` (the cache engine),
``engine`` (which of the two), ``steps`` (results from units), ``rows`` (segment breakdowns).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from loudou.analyses.funnel.engine import funnel_customers, funnel_units
from loudou.analyses.funnel.rows import any_funnel, is_segment_by
from loudou.analyses.funnel.steps import NONE_VALUE, OTHER, plain_funnel, summarize
from loudou.analyses.funnel.units import Units
from loudou.backends.base import Store
from loudou.model.results import FunnelResult
from loudou.model.spec import FunnelSpec, Step, parse_step

__all__ = [
    "NONE_VALUE",
    "OTHER",
    "Funnel",
    "Units",
    "funnel_customers",
    "funnel_units",
    "run_funnel",
    "summarize",
]


def run_funnel(store: Store, spec: FunnelSpec, engine: str = "auto") -> FunnelResult:
    """Compute a funnel on a store (``engine``: see :func:`funnel_units`). A breakdown naming
    saved segments ('segments', 'segment:a,b', 'rfm') splits by those segments instead of a
    property (see :func:`loudou.analyses.funnel.rows.any_funnel`)."""
    if spec.breakdown and is_segment_by(spec.breakdown):
        return any_funnel(store, spec)
    return plain_funnel(store, spec, engine)


class Funnel:
    """Notebook-friendly builder: ``Funnel(["signup", "purchase where revenue > 100"], window="7d")``.

    Steps may be inline strings, dicts as in YAML, or :class:`Step` objects; other keyword
    arguments are FunnelSpec fields (mode, count, breakdown, exclusions, hold_constant, ...).
    """

    def __init__(
        self,
        steps: Sequence[str | dict[str, Any] | Step],
        window: str | int = "14d",
        **options: Any,
    ) -> None:
        raw = [
            parse_step(s) if isinstance(s, str) else s.model_dump() if isinstance(s, Step) else s
            for s in steps
        ]
        self.spec = FunnelSpec.parse({"steps": raw, "window": window, **options})

    @classmethod
    def from_spec(cls, spec: FunnelSpec) -> Funnel:
        obj = cls.__new__(cls)
        obj.spec = spec
        return obj

    def run(self, store: Store) -> FunnelResult:
        return run_funnel(store, self.spec)
