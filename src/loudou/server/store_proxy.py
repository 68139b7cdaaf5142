"""The Store protocol over HTTP, for local processes only (the token in ``<db>.server.json``).

While the server holds the database, ``loudou.connect`` in another process gets a ``RemoteStore``
that calls these endpoints: reads run on one of the server's read connections and return Arrow IPC
streams; writes (imports, saved settings) go through the group-commit writer, so they are durable
and ordered with live events. Not in the OpenAPI page: it is an implementation detail of the CLI.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import orjson
import pyarrow as pa
from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from loudou.backends.base import ApiKey
from loudou.backends.wire import ARROW, from_ipc, to_ipc
from loudou.model.plan import plan_funnel
from loudou.model.spec import FunnelSpec
from loudou.server.auth import authorize, header_key
from loudou.server.errors import ApiError, json_response

router = APIRouter(include_in_schema=False)
_TABLE_WRITES = ("insert_events", "upsert_customers", "insert_spend")


def _local(request: Request) -> ApiKey:
    key = authorize(request.app.state.loudou, header_key(request), ("admin",), "use the store")
    if key.key_id != "local":
        raise ApiError(
            "forbidden", "only local processes (via <db>.server.json) may", "authorization"
        )
    return key


def _when(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _day(value: str | None) -> date | None:
    return None if value is None else date.fromisoformat(value)


def _read(store: Any, op: str, a: dict[str, Any]) -> Any:
    """One read on a server read connection: a table, or plain JSON data."""
    if op == "funnel_events":
        return store.funnel_events(plan_funnel(FunnelSpec.model_validate(a["spec"])))
    if op == "read_events":
        return store.read_events(
            a.get("events"),
            since=_when(a.get("since")),
            until=_when(a.get("until")),
            columns=a.get("columns", ("customer_id", "event", "ts")),
            properties=a.get("properties", ()),
        )
    if op == "read_customers":
        return store.read_customers(a.get("traits", ()))
    if op == "read_spend":
        return store.read_spend(_day(a.get("since")), _day(a.get("until")))
    if op == "counts":
        return store.counts()
    if op == "get_meta":
        return {"value": store.get_meta(a["key"])}
    raise ApiError("not_found", f"no store operation {op!r}", "op")


@router.post("/v1/store/{op}", dependencies=[Depends(_local)])
async def store_op(op: str, request: Request) -> Response:
    state = request.app.state.loudou
    body = await request.body()
    if op in _TABLE_WRITES:
        table = from_ipc(body)
        result = await state.writer.run(lambda store: getattr(store, op)(table))
        return json_response({"inserted": result.inserted, "duplicates": result.duplicates})
    args = orjson.loads(body) if body else {}
    if op == "set_meta":
        await state.writer.run(lambda store: store.set_meta(args["key"], args["value"]))
        return json_response({"ok": True})

    def read() -> Any:
        with state.reader() as store:
            return _read(store, op, args)

    result = await run_in_threadpool(read)
    if isinstance(result, pa.Table):
        return Response(to_ipc(result), media_type=ARROW)
    return json_response(result)
