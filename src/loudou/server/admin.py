"""Health and key management (admin keys)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from loudou.backends.base import ApiKey
from loudou.server.auth import require
from loudou.server.errors import ApiError, json_response
from loudou.server.keys import as_key_store, key_info, new_key

router = APIRouter(tags=["admin"])
_admin = require("admin", what="manage keys")


class NewKey(BaseModel):
    role: Literal["write", "read", "admin"]
    name: str | None = Field(None, max_length=200)


@router.get("/v1/health", summary="Server status (no key needed)")
async def health(request: Request) -> Response:
    state = request.app.state.loudou
    from loudou import __version__

    return json_response(
        {
            "ok": True,
            "db": state.db,
            "version": __version__,
            "commits": state.writer.commits,
            "events_stored": state.writer.rows,
        }
    )


@router.get("/v1/keys", summary="List keys (never their secrets)", dependencies=[Depends(_admin)])
async def list_keys(request: Request) -> Response:
    keys = request.app.state.loudou.ring.keys
    return json_response({"keys": [key_info(k) for k in keys if k.key_id != "local"]})


@router.post("/v1/keys", summary="Create a key; the secret is shown only in this response")
async def create_key(body: NewKey, request: Request, _: Any = Depends(_admin)) -> Response:
    state = request.app.state.loudou
    secret, record = new_key(body.role, body.name)
    await state.writer.run(lambda store: as_key_store(store).add_key(record))
    state.ring.add(record)
    return json_response({"key": secret, **key_info(record)}, 201)


@router.delete("/v1/keys/{key_id}", summary="Revoke a key", dependencies=[Depends(_admin)])
async def revoke_key(key_id: str, request: Request) -> Response:
    state = request.app.state.loudou

    def revoke(store: object) -> list[ApiKey] | None:
        keys = as_key_store(store)
        return keys.list_keys() if keys.revoke_key(key_id) else None

    store_keys = await state.writer.run(revoke)
    if store_keys is None:
        raise ApiError("not_found", f"no key with id {key_id!r}", "key_id")
    state.ring.replace([*store_keys, state.local_key])
    return json_response({"id": key_id, "revoked": True})
