"""Customer value and marketing KPIs over HTTP (read or admin keys). Each ``GET /v1/kpi/...``
takes the options of the matching ``loudou kpi ...`` command as query parameters (same names in
snake_case, same defaults) and returns the same JSON as its ``--json``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from loudou.analyses.kpi.common import DEFAULT_EVENTS, KpiEvents, date_range
from loudou.backends.base import Store
from loudou.server.auth import require
from loudou.server.reads import answer, csv_response, known_query

router = APIRouter(
    prefix="/v1/kpi",
    tags=["kpi"],
    dependencies=[Depends(require("read", "admin", what="read data")), Depends(known_query)],
)

From = Annotated[str | None, Query(alias="from", description="First day (YYYY-MM-DD).")]
To = Annotated[str | None, Query(alias="to", description="Last day, inclusive (YYYY-MM-DD).")]
By = Annotated[
    str | None, Query(description="Group by 'channel' (first touch) or a customer trait.")
]
Model = Annotated[
    str, Query(description="first_touch, last_touch, linear, time_decay, position or markov.")
]
Lookback = Annotated[str, Query(description="Touches at most this long before: 30d, 12h.")]
Purchase = Annotated[str, Query(description="Event that is a purchase (revenue column).")]
Period = Annotated[str, Query(description="month or week.")]
Basis = Annotated[str, Query(description="'activity' (any event) or 'purchase'.")]
ObservationEnd = Annotated[
    str | None, Query(description="Last day of history (default: last purchase).")
]
TimeUnit = Annotated[str, Query(description="Count purchases per day, week or month.")]
Months = Annotated[int, Query(description="Months of predicted CLV.")]


@router.get("/attribution", summary="Conversions and revenue credited to channels")
def attribution(
    request: Request,
    conversion: Annotated[str, Query(description="Conversion event.")] = DEFAULT_EVENTS.purchase,
    model: Model = "linear",
    lookback: Lookback = "30d",
    half_life: Annotated[str, Query(description="Half-life of time_decay weights.")] = "7d",
    by: Annotated[str, Query(description="Credit 'channel' or 'campaign'.")] = "channel",
    segment: Annotated[
        str | None, Query(description="Also attribute within each value of this trait.")
    ] = None,
    date_from: From = None,
    date_to: To = None,
) -> Response:
    """`loudou kpi attribution --json`: {"channels": [{channel, conversions, revenue, share}]}."""
    from loudou.analyses.kpi.attribution import run_attribution

    return answer(
        request,
        lambda s: run_attribution(
            s, conversion, model, lookback, half_life, date_range(date_from, date_to), by, segment
        ).to_dict(),
    )


@router.get("/cac", summary="Acquisition cost per channel and month, LTV:CAC and payback")
def cac(
    request: Request,
    model: Model = "first_touch",
    by: Annotated[str, Query(description="Per 'channel' or 'campaign'.")] = "channel",
    lookback: Lookback = "30d",
    ltv: Annotated[str, Query(description="predicted (to date + CLV) or historical.")] = (
        "predicted"
    ),
    margin: Annotated[float, Query(description="Gross margin applied to LTV.")] = 1.0,
    horizon: Months = 12,
    date_from: From = None,
    date_to: To = None,
    purchase: Purchase = DEFAULT_EVENTS.purchase,
) -> Response:
    """`loudou kpi cac --json`."""
    from loudou.analyses.kpi.cac import run_cac

    return answer(
        request,
        lambda s: run_cac(
            s,
            model,
            date_range(date_from, date_to),
            by,
            lookback,
            ltv=ltv,
            margin=margin,
            horizon_months=horizon,
            events=KpiEvents(purchase=purchase),
        ).to_dict(),
    )


@router.get("/clv", summary="Historical and predictive CLV (BG/NBD + Gamma-Gamma), paged")
def clv(
    request: Request,
    time_unit: TimeUnit = "day",
    observation_end: ObservationEnd = None,
    horizon: Annotated[int, Query(description="Months to predict.")] = 12,
    discount: Annotated[float, Query(description="Monthly discount rate.")] = 0.01,
    by: By = None,
    page: Annotated[int, Query(ge=1, description="Page of customers.")] = 1,
    page_size: Annotated[int, Query(ge=1, le=10_000, description="Customers per page.")] = 100,
    purchase: Purchase = DEFAULT_EVENTS.purchase,
) -> Response:
    """`loudou kpi clv --json`: bgnbd {r, alpha, a, b}, gamma_gamma {p, q, v}, customers."""
    from loudou.analyses.kpi.clv import run_clv

    return answer(
        request,
        lambda s: run_clv(
            s, time_unit, observation_end, horizon, discount, by, KpiEvents(purchase=purchase)
        ).to_dict(page, page_size),
    )


@router.get("/retention", summary="Cohort retention matrix")
def retention(
    request: Request,
    period: Period = "month",
    basis: Basis = "activity",
    date_from: From = None,
    date_to: To = None,
    purchase: Purchase = DEFAULT_EVENTS.purchase,
) -> Response:
    """`loudou kpi retention --json`."""
    from loudou.analyses.kpi.retention import run_retention

    return answer(
        request,
        lambda s: run_retention(
            s, period, basis, date_range(date_from, date_to), KpiEvents(purchase=purchase)
        ).to_dict(),
    )


@router.get("/repeat", summary="Repeat purchase rate and time between purchases")
def repeat(
    request: Request,
    by: By = None,
    date_from: From = None,
    date_to: To = None,
    purchase: Purchase = DEFAULT_EVENTS.purchase,
) -> Response:
    """`loudou kpi repeat --json`."""
    from loudou.analyses.kpi.retention import run_repeat

    return answer(
        request,
        lambda s: run_repeat(
            s, date_range(date_from, date_to), by, KpiEvents(purchase=purchase)
        ).to_dict(),
    )


@router.get("/churn", summary="Churn rate per period")
def churn(
    request: Request,
    period: Period = "month",
    basis: Basis = "purchase",
    date_from: From = None,
    date_to: To = None,
    purchase: Purchase = DEFAULT_EVENTS.purchase,
) -> Response:
    """`loudou kpi churn --json`: {"period", "basis", "periods"}."""
    from loudou.analyses.kpi.retention import run_churn

    return answer(
        request,
        lambda s: {
            "period": period,
            "basis": basis,
            "periods": run_churn(
                s, period, basis, date_range(date_from, date_to), KpiEvents(purchase=purchase)
            ),
        },
    )


@router.get("/churn-risk", summary="Churn-risk list (流失预警) ranked by value at risk")
def churn_risk(
    request: Request,
    observation_end: ObservationEnd = None,
    p_alive_below: Annotated[float, Query(description="Flag buyers with P(alive) under this.")] = (
        0.5
    ),
    inactive_days: Annotated[
        float | None,
        Query(description="Flag buyers silent longer (default: 2x the median purchase gap)."),
    ] = None,
    time_unit: TimeUnit = "day",
    by: By = None,
    limit: Annotated[int, Query(ge=1, description="Customers listed (JSON).")] = 50,
    purchase: Purchase = DEFAULT_EVENTS.purchase,
    format: Annotated[
        Literal["json", "csv"], Query(description="'csv': the whole list, as `--csv`.")
    ] = "json",
) -> Response:
    """`loudou kpi churn-risk --json` (or `--csv`)."""
    from loudou.analyses.kpi.retention import run_churn_risk

    def work(s: Store) -> Any:
        res = run_churn_risk(
            s,
            observation_end,
            p_alive_below,
            inactive_days,
            time_unit,
            by=by,
            events=KpiEvents(purchase=purchase),
        )
        return (
            csv_response(res.to_csv() or "", "churn_risk")
            if format == "csv"
            else res.to_dict(limit)
        )

    return answer(request, work)


@router.get("/nps", summary="Net Promoter Score with a 95% interval, by segment and over time")
def nps(
    request: Request,
    by: By = None,
    period: Period = "month",
    date_from: From = None,
    date_to: To = None,
    event: Annotated[str, Query(description="Survey answer event.")] = DEFAULT_EVENTS.nps,
    score: Annotated[str, Query(description="Property holding 0-10.")] = DEFAULT_EVENTS.nps_score,
    referral: Annotated[str, Query(description="Referral event (advocacy).")] = (
        DEFAULT_EVENTS.referral
    ),
) -> Response:
    """`loudou kpi nps --json`."""
    from loudou.analyses.kpi.nps import run_nps

    return answer(
        request,
        lambda s: run_nps(
            s,
            date_range(date_from, date_to),
            by,
            period,
            KpiEvents(nps=event, nps_score=score, referral=referral),
        ).to_dict(),
    )


@router.get("/sales-cycle", summary="Days from first touch to purchase and from lead to won")
def sales_cycle(
    request: Request,
    by: By = None,
    date_from: From = None,
    date_to: To = None,
    purchase: Purchase = DEFAULT_EVENTS.purchase,
    stage_event: Annotated[str, Query(description="CRM stage change event.")] = (
        DEFAULT_EVENTS.deal_stage
    ),
    stage_property: Annotated[str, Query(description="Property naming the new stage.")] = (
        DEFAULT_EVENTS.stage_property
    ),
    lead: Annotated[str, Query(description="Stage that opens a deal.")] = "lead",
    won: Annotated[str, Query(description="Stage that wins a deal.")] = "won",
) -> Response:
    """`loudou kpi sales-cycle --json`."""
    from loudou.analyses.kpi.sales_cycle import run_sales_cycle

    return answer(
        request,
        lambda s: run_sales_cycle(
            s,
            date_range(date_from, date_to),
            by,
            KpiEvents(
                purchase=purchase,
                deal_stage=stage_event,
                stage_property=stage_property,
                lead_stage=lead,
                won_stage=won,
            ),
        ).to_dict(),
    )


@router.get("/summary", summary="CAC, CLV and LTV:CAC per channel, NPS, repeat rate, sales cycle")
def summary(request: Request, date_from: From = None, date_to: To = None) -> Response:
    """`loudou kpi summary --json`."""
    from loudou.analyses.kpi.summary import kpi_summary

    return answer(request, lambda s: kpi_summary(s, date_range(date_from, date_to)))
