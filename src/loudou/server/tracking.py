"""Segment-compatible tracking endpoints: ``/v1/track``, ``identify``, ``page``, ``screen``,
``alias``, ``group``, ``batch`` (and ``import``, Segment's other name for batch).

A 200 means every accepted message is durable. In a batch the valid messages are stored and the
invalid ones listed in ``rejected`` by index; a batch with no valid message is a 400.

The routes are declared to FastAPI (for /docs), but requests reach ``ingest`` through
``TrackingFastPath``, which skips FastAPI's routing and request machinery: about half of the
event loop's time per tracking request, and the event loop is one of the server's bottlenecks.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from loudou.ingest.segment import (
    MAX_BATCH_BYTES,
    MAX_EVENT_BYTES,
    MESSAGE_TYPES,
    Batch,
    Parsed,
    Problem,
)
from loudou.server.auth import authorize, header_key
from loudou.server.errors import ApiError, error_response, json_response, problem_response
from loudou.server.parsers import ParserGone

log = logging.getLogger("loudou.tracking")
router = APIRouter(tags=["tracking"])
_WRITERS = ("write", "admin")
_PATHS: dict[str, str] = {}  # path -> message kind, filled where the routes are declared


async def read_body(request: Request, limit: int) -> bytes | Problem:
    """The body, refusing to read more than ``limit`` bytes (gzip bodies are inflated)."""
    too_big = Problem("payload_too_large", "body", f"is over the limit of {limit} bytes")
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        return too_big
    gzip = request.headers.get("content-encoding", "").lower() == "gzip"
    inflate = zlib.decompressobj(16 + zlib.MAX_WBITS) if gzip else None
    chunks, size = [], 0
    async for chunk in request.stream():
        if inflate is not None:
            try:
                chunk = inflate.decompress(chunk, limit + 1 - size)
            except zlib.error:
                return Problem("invalid_encoding", "body", "is not valid gzip")
        size += len(chunk)
        if size > limit:
            return too_big
        chunks.append(chunk)
    return b"".join(chunks)


async def ingest(request: Request, kind: str) -> Response:
    state = request.app.state.loudou
    received = datetime.now(UTC)
    secret = header_key(request)
    if secret is not None:  # refuse bad keys before reading anything
        authorize(state, secret, _WRITERS, "send events")
    with state.writer.expecting():  # the writer may wait for these rows to share a commit
        body = await read_body(request, MAX_BATCH_BYTES if kind == "batch" else MAX_EVENT_BYTES)
        if isinstance(body, Problem):
            parsed = Parsed(problem=body)
        else:
            client = request.client.host if request.client else None
            try:
                parsed = await state.parsers.parse(kind, body, received, client)
            except ParserGone:
                raise ApiError("unavailable", "could not parse the events; retry", None) from None
    if secret is None:
        authorize(state, parsed.key, _WRITERS, "send events")
    if parsed.problem is not None:
        return problem_response(parsed.problem)
    rejected = parsed.problems
    if parsed.rows is None and rejected:
        return problem_response(rejected[0], rejected if kind == "batch" else None)
    if parsed.rows is None:  # an empty batch: nothing wrong, nothing to store
        return json_response({"success": True, "accepted": 0, "rejected": []})
    try:
        await state.writer.write(parsed.rows)
    except Exception:
        raise ApiError("unavailable", "could not store the events; retry", None) from None
    result: dict[str, Any] = {"success": True, "accepted": parsed.accepted}
    if kind == "batch":
        result["rejected"] = [p.to_dict() for p in rejected]
    return json_response(result)


def _endpoint(kind: str) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        return await ingest(request, kind)

    endpoint.__name__ = f"ingest_{kind}"
    endpoint.__doc__ = (
        f"Segment `{kind}` message(s). Key: HTTP Basic user name (write or admin key), or "
        "`writeKey` in the body. 200 means durable; a `messageId` is stored once."
    )
    return endpoint


def _body_schema(model: Any) -> dict[str, Any]:
    schema = model.model_json_schema()
    schema.get("properties", {}).pop("type", None)
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


for _kind, _model in MESSAGE_TYPES.items():
    _PATHS[f"/v1/{_kind}"] = _kind
    router.add_api_route(
        f"/v1/{_kind}",
        _endpoint(_kind),
        methods=["POST"],
        summary=f"Segment {_kind}",
        openapi_extra=_body_schema(_model),
    )
for _path in ("/v1/batch", "/v1/import"):
    _PATHS[_path] = "batch"
    router.add_api_route(
        _path,
        _endpoint("batch"),
        methods=["POST"],
        summary="Segment batch (valid messages stored, invalid reported by index)",
        openapi_extra=_body_schema(Batch),
        include_in_schema=_path == "/v1/batch",
    )


class TrackingFastPath:
    """ASGI middleware answering ``POST`` to the tracking paths with ``ingest`` directly, errors
    in the API's one shape as the app's handlers would; everything else goes to the app. Added
    inside the CORS middleware, so browsers get the same headers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = _PATHS.get(scope["path"]) if scope["type"] == "http" else None
        if kind is None or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        try:
            response = await ingest(Request(scope, receive), kind)
        except ApiError as e:
            response = error_response(e.code, e.field, e.message)
        except Exception:
            log.exception("tracking request failed")
            response = error_response(
                "internal_error", None, "unexpected server error; see the log"
            )
        await response(scope, receive, send)
