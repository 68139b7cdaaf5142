"""The KPI analyses in one place, for notebooks::

    import loudou
    from loudou import kpi

    db = loudou.connect("loudou.duckdb")
    kpi.attribution(db, model="markov").to_pandas()
    kpi.clv(db, time_unit="week", observation_end="2025-06-30").customers
    kpi.cac(db, rng=kpi.date_range("2025-01-01", "2025-03-31")).to_dict()

Each function takes the store first and returns a result with ``to_dict()`` (the ``--json``
document of the matching ``loudou kpi`` command).
"""

from __future__ import annotations

from loudou.analyses.kpi.attribution import run_attribution as attribution
from loudou.analyses.kpi.cac import run_cac as cac
from loudou.analyses.kpi.clv import run_clv as clv
from loudou.analyses.kpi.common import DateRange, KpiEvents, date_range
from loudou.analyses.kpi.nps import run_nps as nps
from loudou.analyses.kpi.retention import run_churn as churn
from loudou.analyses.kpi.retention import run_churn_risk as churn_risk
from loudou.analyses.kpi.retention import run_repeat as repeat
from loudou.analyses.kpi.retention import run_retention as retention
from loudou.analyses.kpi.sales_cycle import run_sales_cycle as sales_cycle
from loudou.analyses.kpi.summary import kpi_summary as summary

__all__ = [
    "DateRange",
    "KpiEvents",
    "attribution",
    "cac",
    "churn",
    "churn_risk",
    "clv",
    "date_range",
    "nps",
    "repeat",
    "retention",
    "sales_cycle",
    "summary",
]
