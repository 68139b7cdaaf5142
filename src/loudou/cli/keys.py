"""``loudou keys``: create, list and revoke API keys (directly, or through a running server)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from loudou.backends import default_path
from loudou.cli.common import DbOpt, JsonOpt, err, open_store, out
from loudou.errors import LoudouError

keys_app = typer.Typer(help="API keys: write keys send events; read and admin keys query.")


def _via_server(db: str | None, method: str, path: str, body: Any = None) -> Any | None:
    """The server's answer if one serves this database (its local token authorizes), else None."""
    from loudou.backends import served_by

    info = served_by(db if db is not None else default_path())
    if info is None:
        return None
    import httpx

    r = httpx.request(
        method,
        info.url + path,
        json=body,
        headers={"Authorization": f"Bearer {info.token}"},
        timeout=30,
    )
    data = r.json()
    if r.status_code >= 400:
        e = data.get("error", {})
        raise LoudouError(e.get("message", r.text), e.get("field"))
    return data


@keys_app.command("create")
def create(
    role: Annotated[str, typer.Option(help="write (send events), read (query) or admin.")],
    name: Annotated[str | None, typer.Option(help="A note to recognise the key by.")] = None,
    as_json: JsonOpt = False,
    db: DbOpt = None,
) -> None:
    """Create a key. The secret is printed once; only its hash is stored."""
    from loudou.server.keys import as_key_store, key_info, new_key

    data = _via_server(db, "POST", "/v1/keys", {"role": role, "name": name})
    if data is None:
        secret, record = new_key(role, name)
        store = open_store(db)
        try:
            as_key_store(store).add_key(record)
        finally:
            store.close()
        data = {"key": secret, **key_info(record)}
    if as_json:
        print(json.dumps({"key": data["key"], "role": data["role"], "id": data["id"]}))
    else:
        out.print(data["key"], highlight=False, soft_wrap=True)
        err.print(f"{data['role']} key {data['id']} created; it is shown only once.")


@keys_app.command("list")
def list_(as_json: JsonOpt = False, db: DbOpt = None) -> None:
    """List keys: id, role, name, created, revoked (never the secrets)."""
    from loudou.server.keys import as_key_store, key_info

    data = _via_server(db, "GET", "/v1/keys")
    if data is None:
        store = open_store(db, read_only=True)
        try:
            keys = [key_info(k) for k in as_key_store(store).list_keys()]
        finally:
            store.close()
    else:
        keys = data["keys"]
    if as_json:
        print(json.dumps(keys))
        return
    table = Table()
    for column in ("id", "role", "name", "created_at", "revoked_at"):
        table.add_column(column)
    for k in keys:
        table.add_row(
            *(str(k[c] or "") for c in ("id", "role", "name", "created_at", "revoked_at"))
        )
    out.print(table)


@keys_app.command("revoke")
def revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id (see 'loudou keys list').")],
    db: DbOpt = None,
) -> None:
    """Revoke a key: requests with it get 401 from then on."""
    from loudou.server.keys import as_key_store

    if _via_server(db, "DELETE", f"/v1/keys/{key_id}") is None:
        store = open_store(db)
        try:
            if not as_key_store(store).revoke_key(key_id):
                raise LoudouError(f"no key with id {key_id!r}", "key_id")
        finally:
            store.close()
    err.print(f"key {key_id} revoked")


def register(app: typer.Typer) -> None:
    app.add_typer(keys_app, name="keys")
