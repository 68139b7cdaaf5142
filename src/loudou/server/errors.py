"""The one error shape of the HTTP API: ``{"error": {"code", "field", "message"}}``, with a stable
``code``; batch responses add ``rejected`` (one entry per refused message, with its ``index``)."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from loudou.errors import LoudouError, SpecError, StoreError
from loudou.ingest.segment import Problem

log = logging.getLogger("loudou.server")

# code -> HTTP status. Codes are part of the API: add, never rename.
STATUS = {
    "invalid_json": 400,
    "invalid_encoding": 400,
    "invalid_field": 400,
    "missing_id": 400,
    "timestamp_in_future": 400,
    "invalid_spec": 400,
    "invalid_input": 400,
    "invalid_cursor": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "payload_too_large": 413,
    "store_error": 500,
    "internal_error": 500,
    "unavailable": 503,
}


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(body, default=str), status, headers=headers, media_type="application/json"
    )


def error_response(
    code: str, field: str | None, message: str, extra: dict[str, Any] | None = None
) -> Response:
    body: dict[str, Any] = {"error": {"code": code, "field": field, "message": message}}
    headers = {"WWW-Authenticate": 'Basic realm="loudou"'} if code == "unauthorized" else None
    return json_response({**body, **(extra or {})}, STATUS.get(code, 400), headers)


def problem_response(problem: Problem, rejected: list[Problem] | None = None) -> Response:
    extra = {"rejected": [p.to_dict() for p in rejected]} if rejected else None
    return error_response(problem.code, problem.field, problem.message, extra)


class ApiError(Exception):
    """Raised by handlers and dependencies; rendered in the one error shape."""

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.field = code, message, field


class CatchAll:
    """ASGI middleware: an unexpected exception becomes a 500 in the one error shape, logged
    here. (Starlette's own handler for ``Exception`` re-raises after answering, and the server
    then drops the connection, which a client such as RemoteStore was about to reuse.)"""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def sending(message: Any) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception:
            if started:
                raise
            log.exception("unexpected error in %s %s", scope.get("method"), scope.get("path"))
            response = error_response(
                "internal_error", None, "unexpected server error; see the log"
            )
            await response(scope, receive, send)


def install(app: Any) -> None:
    """Render every error, including FastAPI's own, in the one shape."""

    @app.exception_handler(ApiError)
    async def _api(_: Request, e: ApiError) -> Response:
        return error_response(e.code, e.field, e.message)

    @app.exception_handler(LoudouError)
    async def _loudou(_: Request, e: LoudouError) -> Response:
        code = e.code if e.code in STATUS else "invalid_input"
        if isinstance(e, StoreError) and e.field != "db":
            code = "invalid_input"  # e.g. an invalid property name in a read
        if isinstance(e, SpecError):
            code = "invalid_spec"
        return error_response(code, e.field, e.message)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, e: RequestValidationError) -> Response:
        first = e.errors()[0]
        loc = [str(p) for p in first.get("loc", ()) if p not in ("query", "path", "body")]
        return error_response("invalid_field", ".".join(loc) or None, str(first.get("msg")))

    @app.exception_handler(Exception)
    async def _bug(_: Request, e: Exception) -> Response:
        return error_response("internal_error", None, "unexpected server error; see the log")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, e: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(e.status_code, "invalid_input")
        return error_response(code, None, str(e.detail))
