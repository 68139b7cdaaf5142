"""Saved segments over HTTP: the same JSON as ``loudou segments list|show --json`` (each
definition with how many customers it holds now) and ``segments funnel --json`` for read keys;
saving a segment (``segments create``) takes an admin key."""

from __future__ import annotations

from typing import Any, cast

from fastapi import APIRouter, Depends, Request
from pydantic import Field
from starlette.responses import Response

from loudou.backends.base import Store
from loudou.model.segment import Segment
from loudou.server.analysis import SpecBody
from loudou.server.auth import require
from loudou.server.errors import ApiError, json_response
from loudou.server.reads import (
    answer,
    answer_async,
    body_schema,
    iso_times,
    known_query,
    read_model,
    reading,
    rows_csv,
    spec_of,
)

router = APIRouter(tags=["segments"])
_reader = require("read", "admin", what="read data")
_admin = require("admin", what="save segments")


def _sized(store: Store, seg: Segment) -> dict[str, Any]:
    from loudou.analyses.segments import members

    return {**seg.to_dict(), "customers": len(members(store, seg))}


@router.get(
    "/v1/segments",
    summary="Saved segments with their sizes",
    dependencies=[Depends(_reader), Depends(known_query)],
)
def list_segments(request: Request) -> Response:
    from loudou.analyses.segments import list_segments as saved

    return answer(request, lambda s: {"segments": [_sized(s, g) for g in saved(s)]})


@router.get(
    "/v1/segments/{name}",
    summary="One segment's definition and size",
    dependencies=[Depends(_reader), Depends(known_query)],
)
def show_segment(name: str, request: Request) -> Response:
    return answer(request, lambda s: _sized(s, _load(s, name)))


@router.get(
    "/v1/segments/{name}/export",
    summary="The segment's customers as CSV (id, first and last seen)",
    dependencies=[Depends(_reader), Depends(known_query)],
)
def export_segment(name: str, request: Request) -> Response:
    """What `loudou segments export` writes (times ISO 8601 UTC)."""
    return answer(request, lambda s: _export(s, name))


def _export(store: Store, name: str) -> Response:
    from loudou.analyses.segments import member_table

    table = member_table(store, _load(store, name))
    return rows_csv(iso_times(table.to_pylist()), table.column_names, name)


@router.delete(
    "/v1/segments/{name}", summary="Delete a saved segment", dependencies=[Depends(_admin)]
)
async def delete_segment(name: str, request: Request) -> Response:
    from loudou.analyses.segments import delete_segment as forget

    state = request.app.state.loudou
    with state.reader() as store:
        _load(store, name)  # 404 for an unknown name
    await state.writer.run(lambda store: forget(cast(Store, store), name))
    return json_response({"name": name, "deleted": True})


def _load(store: Store, name: str) -> Segment:
    from loudou.analyses.segments import load_segment

    if not store.get_meta(f"segment:{name}"):
        raise ApiError("not_found", f"no segment named {name!r}", "name")
    return load_segment(store, name)


@router.post(
    "/v1/segments",
    summary="Save a segment (replaces one of the same name)",
    dependencies=[Depends(_admin)],
    status_code=201,
    openapi_extra=body_schema(Segment),
)
async def create_segment(request: Request) -> Response:
    """The body is one segment as in the YAML file: name, optional name_zh and description,
    and rules (all must hold). Answers the saved definition with its size now."""
    from starlette.concurrency import run_in_threadpool

    from loudou.analyses.segments import save_segment
    from loudou.ingest.segment import Problem, parse_body
    from loudou.server.tracking import read_body

    raw = await read_body(request, 64 * 1024)
    data = raw if isinstance(raw, Problem) else parse_body(raw)
    if isinstance(data, Problem):
        raise ApiError(data.code, data.message, data.field)
    seg = Segment.parse(data, "body")
    await request.app.state.loudou.writer.run(lambda store: save_segment(cast(Store, store), seg))

    def sized() -> dict[str, Any]:
        with reading(request) as store:
            return _sized(store, seg)

    return json_response(await run_in_threadpool(sized), 201)


class SegmentFunnelBody(SpecBody):
    segment: str | None = Field(None, description="Only customers in this saved segment.")
    by: str | None = Field(None, description="'segments', 'segment:a,b' or 'rfm'.")


@router.post(
    "/v1/segments/funnel",
    summary="A funnel within a segment and/or broken down by segments",
    dependencies=[Depends(_reader)],
    openapi_extra=body_schema(SegmentFunnelBody),
)
async def segment_funnel(request: Request) -> Response:
    """`loudou segments funnel --json` (a customer may be in several segments)."""
    from loudou.analyses.funnel.rows import segment_funnel as run

    b = await read_model(request, SegmentFunnelBody)
    return await answer_async(
        request, lambda s: run(s, spec_of(s, b.spec), segment=b.segment, by=b.by).to_dict()
    )
