"""loudou (漏斗): customer-funnel analytics on an embedded event store.

Typical notebook use::

    import loudou
    db = loudou.connect("loudou.duckdb")
    result = loudou.Funnel(["signup", "purchase where revenue > 100"], window="7d").run(db)
    result.to_pandas(); result.figure()
"""

from loudou.model.results import FunnelResult, StepResult
from loudou.model.spec import Condition, Exclusion, FunnelSpec, Step
from loudou.query.funnel import Funnel, run_funnel
from loudou.store import connect

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
