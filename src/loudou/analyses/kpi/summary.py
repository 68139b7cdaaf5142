"""One-call KPI summary (the numbers users steer by), as printed by ``loudou demo`` and
``loudou kpi summary``: CAC, CLV and LTV:CAC per channel, NPS, repeat rate, sales cycle."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from loudou.analyses.kpi.common import DEFAULT_EVENTS, DateRange, KpiEvents

if TYPE_CHECKING:
    from loudou.backends.base import Store


def kpi_summary(
    store: Store, rng: DateRange = DateRange(), events: KpiEvents = DEFAULT_EVENTS
) -> dict[str, Any]:
    """CAC (first touch) with LTV = revenue to date + 12-month predicted CLV, NPS, repeat purchase
    rate and both sales cycles; each part is the ``to_dict`` of its own analysis."""
    from loudou.analyses.kpi.cac import run_cac
    from loudou.analyses.kpi.nps import run_nps
    from loudou.analyses.kpi.retention import run_repeat
    from loudou.analyses.kpi.sales_cycle import run_sales_cycle

    cac = run_cac(store, rng=rng, events=events).to_dict()
    nps = run_nps(store, rng, events=events).to_dict()
    repeat = run_repeat(store, rng, events=events).to_dict()
    cycle = run_sales_cycle(store, rng, events=events).to_dict()
    return {"cac": cac, "nps": nps, "repeat": repeat, "sales_cycle": cycle}
