"""Saved segments over HTTP (read or admin keys): the same JSON as ``loudou segments list|show
--json`` (each definition with how many customers it holds now)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from loudou.api.auth import require
from loudou.api.errors import ApiError
from loudou.api.reads import answer
from loudou.model.segment import Segment
from loudou.store.base import Store

router = APIRouter(tags=["segments"])
_reader = require("read", "admin", what="read data")


def _sized(store: Store, seg: Segment) -> dict[str, Any]:
    from loudou.query.segments import members

    return {**seg.to_dict(), "customers": len(members(store, seg))}


@router.get(
    "/v1/segments", summary="Saved segments with their sizes", dependencies=[Depends(_reader)]
)
def list_segments(request: Request) -> Response:
    from loudou.query.segments import list_segments as saved

    return answer(request, lambda s: {"segments": [_sized(s, g) for g in saved(s)]})


@router.get(
    "/v1/segments/{name}",
    summary="One segment's definition and size",
    dependencies=[Depends(_reader)],
)
def show_segment(name: str, request: Request) -> Response:
    return answer(request, lambda s: _sized(s, _load(s, name)))


def _load(store: Store, name: str) -> Segment:
    from loudou.query.segments import load_segment

    if not store.get_meta(f"segment:{name}"):
        raise ApiError("not_found", f"no segment named {name!r}", "name")
    return load_segment(store, name)
