"""loudou (漏斗): customer-funnel analytics on an embedded event store.

Typical notebook use::

    import loudou
    db = loudou.connect("loudou.duckdb")
    result = loudou.Funnel(["signup", "purchase where revenue > 100"], window="7d").run(db)
    result.to_pandas(); result.figure()
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loudou.analyses.funnel import Funnel, run_funnel
    from loudou.backends import connect
    from loudou.model.results import FunnelResult, StepResult
    from loudou.model.spec import Condition, Exclusion, FunnelSpec, Step

# Names are loaded on first use: the funnel engine pulls in numba, which is slow to import and which
# commands such as `loudou import` never need.
_LAZY = {
    "Condition": "loudou.model.spec",
    "Exclusion": "loudou.model.spec",
    "FunnelSpec": "loudou.model.spec",
    "Step": "loudou.model.spec",
    "FunnelResult": "loudou.model.results",
    "StepResult": "loudou.model.results",
    "Funnel": "loudou.analyses.funnel",
    "run_funnel": "loudou.analyses.funnel",
    "connect": "loudou.backends",
}

__all__ = [
    "Condition",
    "Exclusion",
    "Funnel",
    "FunnelResult",
    "FunnelSpec",
    "Step",
    "StepResult",
    "connect",
    "run_funnel",
]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'loudou' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*__all__, "__version__"])
