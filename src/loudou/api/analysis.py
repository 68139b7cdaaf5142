"""Funnel analyses over HTTP (read or admin keys): compare, diagnose, trends, time to convert,
converted/dropped customers, the stage transition matrix, top paths and correlation. Each route
returns the same JSON as the matching ``loudou ... --json`` command, with the same defaults."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import Field
from starlette.responses import Response

from loudou.api.auth import require
from loudou.api.reads import Body, answer_async, body_schema, iso_times, read_model, rows_csv
from loudou.model.spec import FunnelSpec
from loudou.store.base import Store

router = APIRouter(tags=["analysis"])
_reader = require("read", "admin", what="read data")
Spec = Field(description="A funnel spec: the YAML spec's fields as JSON (or a template).")
Segment = Field(None, description="Only customers in this saved segment.")
Period = Field("week", description="day, week or month of step-1 time.")
MinCustomers = Field(30, ge=1, description="Smaller cells say 'too few customers'.")


def spec_of(store: Store, data: dict[str, Any]) -> FunnelSpec:
    from loudou.model.templates import spec_from_data

    return spec_from_data(data, store, "spec")


class SpecBody(Body):
    spec: dict[str, Any] = Spec


class CompareBody(SpecBody):
    by: list[str] = Field(
        min_length=1,
        description="Property or trait, NAME:18,25,35, cohort[:TRAIT], 'segments', "
        "'segment:a,b' or 'rfm'.",
    )
    segment: str | None = Segment
    min_customers: int = MinCustomers
    limit: int = Field(10, ge=1, description="Top N values of a property; the rest is 'other'.")


class DiagnoseBody(SpecBody):
    by: list[str] = Field(default_factory=list, description="As in compare; may be empty.")
    period: str = Period
    segment: str | None = Segment
    alpha: float = Field(0.05, description="False discovery rate (Benjamini–Hochberg).")
    limit: int = Field(10, ge=1, description="At most this many findings.")
    min_customers: int = MinCustomers


class TrendsBody(SpecBody):
    period: str = Period
    segment: str | None = Segment


class TimeToConvertBody(SpecBody):
    from_step: int = Field(1, description="1-based step to start from.")
    to_step: int | None = Field(None, description="1-based step to end at (default: last).")
    bins: int = Field(20, ge=1, description="Histogram bins.")
    segment: str | None = Segment


class CustomersBody(SpecBody):
    step: int = Field(description="1-based step the customers reached.")
    outcome: str = Field("dropped", description="'dropped' or 'converted' (to the next step).")
    segment: str | None = Segment
    offset: int = Field(0, ge=0, description="Customers to skip (paging).")
    limit: int = Field(1000, ge=1, le=100_000, description="Customers per page.")
    format: Literal["json", "csv"] = Field(
        "json", description="'csv': every customer as a CSV download (no paging)."
    )


class PathsBody(Body):
    after: str | None = Field(None, description="Paths starting at this event.")
    before: str | None = Field(None, description="Paths ending at this event.")
    depth: int = Field(4, ge=1, description="Events shown besides the anchors.")
    limit: int = Field(10, ge=1, description="Top N paths.")
    exclude: list[str] = Field(default_factory=list, description="Events to ignore.")
    keep_repeats: bool = Field(False, description="Keep consecutive repeats of an event.")


class CorrelateBody(SpecBody):
    step: int = Field(1, description="1-based step; converting to the next.")
    properties: list[str] = Field(
        default_factory=list, description="Event properties whose values to test."
    )
    top: int = Field(10, ge=1, description="Top N each way.")
    min_customers: int = Field(30, ge=1, description="Skip rarer features.")
    segment: str | None = Segment


def _route(path: str, model: type[Body], summary: str) -> Any:
    return router.post(
        path, summary=summary, dependencies=[Depends(_reader)], openapi_extra=body_schema(model)
    )


@_route("/v1/funnels/compare", CompareBody, "Each segment's conversion against the rest")
async def compare(request: Request) -> Response:
    """`loudou compare --json`: rate with 95% interval, points vs the rest, p and BH q-values."""
    from loudou.query.compare import compare as run

    b = await read_model(request, CompareBody)
    return await answer_async(
        request,
        lambda s: run(
            s,
            spec_of(s, b.spec),
            b.by,
            segment=b.segment,
            min_customers=b.min_customers,
            limit=b.limit,
        ).to_dict(),
    )


@_route("/v1/funnels/diagnose", DiagnoseBody, "Bottleneck findings ranked by customers lost")
async def diagnose(request: Request) -> Response:
    """`loudou diagnose --json`: stage, segment, period and loop findings (messages in EN and ZH)."""
    from loudou.query.diagnose import diagnose as run

    b = await read_model(request, DiagnoseBody)
    return await answer_async(
        request,
        lambda s: run(
            s,
            spec_of(s, b.spec),
            b.by,
            period=b.period,
            segment=b.segment,
            alpha=b.alpha,
            limit=b.limit,
            min_customers=b.min_customers,
        ).to_dict(),
    )


@_route("/v1/funnels/trends", TrendsBody, "Conversion per day, week or month of step-1 time")
async def trends(request: Request) -> Response:
    """`loudou trends --json`."""
    from loudou.query.trends import trends as run

    b = await read_model(request, TrendsBody)
    return await answer_async(
        request, lambda s: run(s, spec_of(s, b.spec), b.period, b.segment).to_dict()
    )


@_route("/v1/funnels/time-to-convert", TimeToConvertBody, "Time between two steps")
async def time_to_convert(request: Request) -> Response:
    """`loudou time-to-convert --json`: percentiles and histogram data (seconds)."""
    from loudou.query.timing import time_to_convert as run

    b = await read_model(request, TimeToConvertBody)
    return await answer_async(
        request,
        lambda s: run(
            s, spec_of(s, b.spec), b.from_step, b.to_step, bins=b.bins, segment=b.segment
        ).to_dict(),
    )


@_route("/v1/funnels/customers", CustomersBody, "Customers who converted or dropped after a step")
async def customers(request: Request) -> Response:
    """The rows `loudou customers` writes (times ISO 8601 UTC): JSON paged by offset, or the
    whole list as CSV with `"format": "csv"`."""
    b = await read_model(request, CustomersBody)
    return await answer_async(request, lambda s: _customers(s, b))


def _customers(store: Store, b: CustomersBody) -> dict[str, Any] | Response:
    from loudou.query.outcomes import step_outcomes

    table = step_outcomes(store, spec_of(store, b.spec), b.step, b.outcome, b.segment)
    if b.format == "csv":
        name = f"{b.outcome}_step_{b.step}"
        return rows_csv(iso_times(table.to_pylist()), table.column_names, name)
    rows = iso_times(table.slice(b.offset, b.limit).to_pylist())
    return {
        "step": b.step,
        "outcome": b.outcome,
        "total": table.num_rows,
        "offset": b.offset,
        "customers": rows,
    }


@_route("/v1/funnels/transitions", SpecBody, "Stage transition matrix")
async def transitions(request: Request) -> Response:
    """`loudou transitions --json`: forward and backward moves and repeats between stages."""
    from loudou.query.transitions import transition_matrix

    b = await read_model(request, SpecBody)
    return await answer_async(request, lambda s: transition_matrix(s, spec_of(s, b.spec)).to_dict())


@_route("/v1/funnels/correlate", CorrelateBody, "What raises or lowers the odds of converting")
async def correlate(request: Request) -> Response:
    """`loudou correlate --json`: odds ratios with 95% intervals and q-values."""
    from loudou.query.correlation import correlate as run

    b = await read_model(request, CorrelateBody)
    return await answer_async(
        request,
        lambda s: run(
            s,
            spec_of(s, b.spec),
            b.step,
            properties=b.properties,
            top=b.top,
            min_customers=b.min_customers,
            segment=b.segment,
        ).to_dict(),
    )


@_route("/v1/paths", PathsBody, "Top paths after, before or between events (Sankey data)")
async def paths(request: Request) -> Response:
    """`loudou paths --json`."""
    from loudou.query.paths import top_paths

    b = await read_model(request, PathsBody)
    return await answer_async(
        request,
        lambda s: top_paths(
            s,
            b.after,
            b.before,
            depth=b.depth,
            limit=b.limit,
            exclude=b.exclude,
            collapse=not b.keep_repeats,
        ).to_dict(),
    )
