"""A Store that talks to a running ``loudou serve`` (see ``loudou.backends.discovery``).

DuckDB lets only one process open a database file once a server holds it read-write, so other
processes on the same machine use this instead: the same protocol, carried over loopback HTTP
with the server's local token. Errors come back as the same LoudouError subclasses.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import httpx
import orjson
import pyarrow as pa

from loudou.backends.base import WriteResult
from loudou.backends.wire import ARROW, from_ipc, to_ipc
from loudou.errors import LoudouError, SpecError, StoreError
from loudou.model.plan import FunnelPlan

_ERRORS: dict[str, type[LoudouError]] = {"invalid_spec": SpecError, "store_error": StoreError}


class RemoteStore:
    """The Store protocol over the server's ``/v1/store`` endpoints."""

    def __init__(self, path: str, url: str, token: str) -> None:
        self.path = path
        self.url = url
        self._http = httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=None
        )

    def _call(
        self, op: str, args: dict[str, Any] | None = None, table: pa.Table | None = None
    ) -> httpx.Response:
        if table is not None:
            content, ctype = to_ipc(table), ARROW
        else:
            content, ctype = orjson.dumps(args or {}, default=_json_default), "application/json"
        try:
            r = self._http.post(f"/v1/store/{op}", content=content, headers={"Content-Type": ctype})
        except httpx.HTTPError as exc:
            raise StoreError(f"the server at {self.url} did not answer: {exc}", "db") from None
        if r.status_code >= 400:
            try:
                error = r.json()["error"]
            except (ValueError, KeyError):
                raise StoreError(f"server error {r.status_code}", "db") from None
            kind = _ERRORS.get(error.get("code"), LoudouError)
            raise kind(error.get("message", ""), error.get("field"))
        return r

    def _table(self, op: str, args: dict[str, Any]) -> pa.Table:
        return from_ipc(self._call(op, args).content)

    def _write(self, op: str, batch: pa.Table) -> WriteResult:
        data = self._call(op, table=batch).json()
        return WriteResult(data["inserted"], data["duplicates"])

    def insert_events(self, batch: pa.Table) -> WriteResult:
        return self._write("insert_events", batch)

    def upsert_customers(self, batch: pa.Table) -> WriteResult:
        return self._write("upsert_customers", batch)

    def insert_spend(self, batch: pa.Table) -> WriteResult:
        return self._write("insert_spend", batch)

    def funnel_events(self, plan: FunnelPlan) -> pa.Table:
        return self._table("funnel_events", {"spec": plan.spec.model_dump(mode="json")})

    def read_events(
        self,
        events: Sequence[str] | None = None,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        columns: Sequence[str] = ("customer_id", "event", "ts"),
        properties: Sequence[str] = (),
    ) -> pa.Table:
        args = {
            "events": None if events is None else list(events),
            "since": since,
            "until": until,
            "columns": list(columns),
            "properties": list(properties),
        }
        return self._table("read_events", args)

    def read_customers(self, traits: Sequence[str] = ()) -> pa.Table:
        return self._table("read_customers", {"traits": list(traits)})

    def read_spend(self, since: date | None = None, until: date | None = None) -> pa.Table:
        return self._table("read_spend", {"since": since, "until": until})

    def counts(self) -> dict[str, int]:
        return dict(self._call("counts").json())

    def get_meta(self, key: str) -> str | None:
        value = self._call("get_meta", {"key": key}).json()["value"]
        return None if value is None else str(value)

    def set_meta(self, key: str, value: str) -> None:
        self._call("set_meta", {"key": key, "value": value})

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RemoteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"cannot send {type(value).__name__}")
