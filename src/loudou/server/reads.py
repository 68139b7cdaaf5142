"""What the analysis, segment and KPI routes share: a bounded JSON body checked against a model,
and running an analysis on a read connection with errors naming the API's own field names."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.responses import Response

from loudou.backends.base import Store
from loudou.errors import LoudouError
from loudou.model.spec import FunnelSpec
from loudou.server.errors import ApiError, json_response

MAX_BODY_BYTES = 256 * 1024
M = TypeVar("M", bound=BaseModel)


class Body(BaseModel):
    """A request body: unknown fields are refused (a typo must not silently use a default)."""

    model_config = ConfigDict(extra="forbid")


def body_schema(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` documenting a body read by :func:`read_model` (nested models inlined:
    pydantic's ``#/$defs/...`` references would not resolve inside the OpenAPI document)."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return inline(defs[ref.removeprefix("#/$defs/")])
            return {k: inline(v) for k, v in node.items()}
        return [inline(v) for v in node] if isinstance(node, list) else node

    content = {"application/json": {"schema": inline(schema)}}
    return {"requestBody": {"required": True, "content": content}}


async def read_model(request: Request, model: type[M]) -> M:
    """The body as ``model``; a 400 naming the first bad field otherwise (413 when too big)."""
    from loudou.ingest.segment import Problem, parse_body
    from loudou.server.tracking import read_body

    raw = await read_body(request, MAX_BODY_BYTES)
    data = raw if isinstance(raw, Problem) else parse_body(raw)
    if isinstance(data, Problem):
        raise ApiError(data.code, data.message, data.field)
    if not isinstance(data, dict):
        raise ApiError("invalid_field", "send a JSON object", "body")
    try:
        return model.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "body"
        raise ApiError("invalid_field", str(first["msg"]), field) from None


def known_query(request: Request) -> None:
    """A dependency refusing query parameters the route does not take (``?timeunit=week`` must
    not silently answer for the default ``time_unit``)."""
    route = request.scope.get("route")
    todo, known = [getattr(route, "dependant", None)], set()
    while todo:
        dependant = todo.pop()
        if dependant is not None:
            known |= {p.alias for p in dependant.query_params}
            todo += dependant.dependencies
    for name in request.query_params:
        if name not in known:
            allowed = ", ".join(sorted(known)) or "none"
            raise ApiError("invalid_field", f"unknown parameter; this route takes {allowed}", name)


def api_field(field: str | None) -> str | None:
    """The analyses name CLI options (``--p-alive-below``); say the API's ``p_alive_below``."""
    if field is None or not field.startswith("--"):
        return field
    return field[2:].replace("-", "_")


@contextmanager
def reading(request: Request) -> Iterator[Store]:
    """A read connection for one request; input errors renamed to the API's field names."""
    with request.app.state.loudou.reader() as store:
        try:
            yield store
        except LoudouError as e:
            e.field = api_field(e.field)
            raise


def answer(request: Request, work: Callable[[Store], Any]) -> Response:
    """``work(store)`` on a read connection, as JSON unless it made its own response (call from
    a thread, not the event loop)."""
    with reading(request) as store:
        result = work(store)
    return result if isinstance(result, Response) else json_response(result)


def csv_response(text: str, name: str) -> Response:
    """A CSV download (what the CLI's ``--csv`` / ``--output`` writes)."""
    headers = {"Content-Disposition": f'attachment; filename="{name}.csv"'}
    return Response(text, 200, headers=headers, media_type="text/csv; charset=utf-8")


def iso_times(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows with their (naive UTC) times as ISO 8601 text ending in Z, as elsewhere in the API."""
    from datetime import datetime

    for row in rows:
        for key, value in row.items():
            if isinstance(value, datetime):
                row[key] = value.isoformat() + "Z"
    return rows


def rows_csv(rows: list[dict[str, Any]], fields: list[str], name: str) -> Response:
    """Rows (times already ISO text) as a CSV download, nulls empty."""
    import csv
    import io

    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=fields, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return csv_response(text.getvalue(), name)


async def answer_async(request: Request, work: Callable[[Store], Any]) -> Response:
    """:func:`answer` from an async handler: the analysis runs in the thread pool."""
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(answer, request, work)


def spec_of(store: Store, data: dict[str, Any]) -> FunnelSpec:
    """A funnel spec from a request body (a template's stage map may come from the store)."""
    from loudou.model.templates import spec_from_data

    return spec_from_data(data, store, "spec")
