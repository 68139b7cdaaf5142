"""Converted or dropped customers over HTTP (read or admin keys): JSON pages or a CSV download.
The other funnel analyses' routes are generated from the registry (``loudou.server.generated``)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import Field
from starlette.responses import Response

from loudou.backends.base import Store
from loudou.server.auth import require
from loudou.server.reads import (
    Body,
    answer_async,
    body_schema,
    iso_times,
    read_model,
    rows_csv,
    spec_of,
)

router = APIRouter(tags=["analysis"])
_reader = require("read", "admin", what="read data")
Spec = Field(description="A funnel spec: the YAML spec's fields as JSON (or a template).")
Segment = Field(None, description="Only customers in this saved segment.")


class SpecBody(Body):
    spec: dict[str, Any] = Spec


class CustomersBody(SpecBody):
    step: int = Field(description="1-based step the customers reached.")
    outcome: str = Field("dropped", description="'dropped' or 'converted' (to the next step).")
    segment: str | None = Segment
    offset: int = Field(0, ge=0, description="Customers to skip (paging).")
    limit: int = Field(1000, ge=1, le=100_000, description="Customers per page.")
    format: Literal["json", "csv"] = Field(
        "json", description="'csv': every customer as a CSV download (no paging)."
    )


def _route(path: str, model: type[Body], summary: str) -> Any:
    return router.post(
        path, summary=summary, dependencies=[Depends(_reader)], openapi_extra=body_schema(model)
    )


@_route("/v1/funnels/customers", CustomersBody, "Customers who converted or dropped after a step")
async def customers(request: Request) -> Response:
    """The rows `loudou customers` writes (times ISO 8601 UTC): JSON paged by offset, or the
    whole list as CSV with `"format": "csv"`."""
    b = await read_model(request, CustomersBody)
    return await answer_async(request, lambda s: _customers(s, b))


def _customers(store: Store, b: CustomersBody) -> dict[str, Any] | Response:
    from loudou.analyses.outcomes import step_outcomes

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
