"""The query API (read or admin keys): funnels, one customer's profile and timeline, events."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Annotated, Any

import orjson
import pyarrow as pa
from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from loudou.errors import SpecError
from loudou.model.times import naive_utc
from loudou.server.auth import require
from loudou.server.errors import ApiError, json_response

router = APIRouter(tags=["query"])
_reader = require("read", "admin", what="read data")
Limit = Annotated[int, Query(ge=1, le=1000, description="Rows per page.")]
MAX_SPEC_BYTES = 256 * 1024
Cursor = Annotated[str | None, Query(description="`next` of the previous page.")]


@router.post(
    "/v1/funnels/query",
    summary="Run a funnel spec (the YAML spec's fields, as JSON)",
    dependencies=[Depends(_reader)],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"type": "object", "required": ["steps"]}}},
        }
    },
)
async def funnel_query(request: Request) -> Response:
    """Returns the same JSON as `loudou funnel --json`. A `template` with `stages` works too."""
    from starlette.concurrency import run_in_threadpool

    from loudou.ingest.segment import Problem, parse_body
    from loudou.server.tracking import read_body

    body = await read_body(request, MAX_SPEC_BYTES)
    spec = body if isinstance(body, Problem) else parse_body(body)
    if isinstance(spec, Problem):
        raise ApiError(spec.code, spec.message, spec.field)
    if not isinstance(spec, dict):
        raise SpecError("send a funnel spec as a JSON object with at least 'steps'", "spec")
    return json_response(await run_in_threadpool(_run_funnel, request, spec))


def _run_funnel(request: Request, spec: dict[str, Any]) -> dict[str, Any]:
    from loudou.analyses.funnel.rows import any_funnel
    from loudou.model.templates import spec_from_data

    with request.app.state.loudou.reader() as store:
        return any_funnel(store, spec_from_data(spec, store, "spec")).to_dict()


def _cursor(text: str | None) -> tuple[datetime, str] | None:
    if text is None:
        return None
    try:
        ts, event_id = orjson.loads(base64.urlsafe_b64decode(text.encode()))
        return datetime.fromisoformat(ts), str(event_id)
    except (ValueError, TypeError):
        raise ApiError("invalid_cursor", "not a cursor this API gave out", "cursor") from None


def _page(table: pa.Table, limit: int) -> dict[str, Any]:
    """Events as JSON objects (properties parsed, times ISO 8601 UTC) and the next cursor."""
    rows = table.to_pylist()
    for row in rows:
        row["properties"] = orjson.loads(row["properties"]) if row["properties"] else {}
        row["ts"] = row["ts"].isoformat() + "Z"
    nxt = None
    if len(rows) == limit:
        last = table.slice(limit - 1).to_pylist()[0]
        nxt = base64.urlsafe_b64encode(
            orjson.dumps([last["ts"].isoformat(), last["event_id"]])
        ).decode()
    return {"events": rows, "next": nxt}


def _time(value: datetime | None) -> datetime | None:
    return None if value is None else naive_utc(value)


@router.get(
    "/v1/customers/{customer_id}",
    summary="A customer's traits and event timeline (paged, oldest first)",
    dependencies=[Depends(_reader)],
)
def customer(
    customer_id: str, request: Request, limit: Limit = 100, cursor: Cursor = None
) -> Response:
    """An anonymous id linked to a customer finds that customer."""
    after = _cursor(cursor)
    with request.app.state.loudou.reader() as store:
        found = store.get_customer(store.resolve_id(customer_id))
        if found is None:
            raise ApiError("not_found", f"no customer {customer_id!r}", "customer_id")
        page = _page(
            store.browse_events(customer_id=found["customer_id"], after=after, limit=limit), limit
        )
    found["traits"] = orjson.loads(found["traits"])
    for key in ("first_seen", "last_seen"):
        found[key] = found[key].isoformat() + "Z" if found[key] else None
    return json_response({"customer": found, **page})


@router.get(
    "/v1/events",
    summary="Events, filtered and paged (oldest first)",
    dependencies=[Depends(_reader)],
)
def events(
    request: Request,
    event: Annotated[list[str] | None, Query(description="Event names (repeatable).")] = None,
    customer_id: Annotated[str | None, Query()] = None,
    since: Annotated[datetime | None, Query(description="ts >= since (ISO 8601).")] = None,
    until: Annotated[datetime | None, Query(description="ts < until (ISO 8601).")] = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> Response:
    after = _cursor(cursor)
    with request.app.state.loudou.reader() as store:
        if customer_id is not None:
            customer_id = store.resolve_id(customer_id)
        table = store.browse_events(
            customer_id=customer_id,
            events=event,
            since=_time(since),
            until=_time(until),
            after=after,
            limit=limit,
        )
    return json_response(_page(table, limit))
