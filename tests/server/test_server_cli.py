"""The CLI next to a running server: keys, and reads and imports that go through the server
because DuckDB lets no other process open a file the server holds."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx

import loudou
from loudou.backends.remote import RemoteStore

from serving import start


def cli(*args: str, db: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "loudou", *args, "--db", str(db)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_keys_cli_without_server(tmp_path: Path) -> None:
    db = tmp_path / "k.duckdb"
    made = cli("keys", "create", "--role", "read", "--json", db=db)
    assert made.returncode == 0, made.stderr
    data = json.loads(made.stdout)
    assert data["role"] == "read" and data["key"].startswith("ldr_")
    listed = json.loads(cli("keys", "list", "--json", db=db).stdout)
    assert [(k["id"], k["role"], k["revoked_at"]) for k in listed] == [(data["id"], "read", None)]
    assert data["key"] not in json.dumps(listed)
    stored = loudou.connect(db).list_keys()  # type: ignore[attr-defined]
    assert data["key"] not in str(stored) and stored[0].key_hash != data["key"]
    assert cli("keys", "revoke", data["id"], db=db).returncode == 0
    assert json.loads(cli("keys", "list", "--json", db=db).stdout)[0]["revoked_at"]
    bad = cli("keys", "create", "--role", "boss", db=db)
    assert bad.returncode == 1 and bad.stderr.startswith("error: --role:")
    assert cli("keys", "revoke", "nope", db=db).returncode == 1


def test_cli_works_while_serving(tmp_path: Path) -> None:
    db = tmp_path / "live.duckdb"
    srv = start(db)
    try:
        batch = [
            {"type": "track", "userId": f"c{i}", "event": e, "messageId": f"m{i}{e}"}
            for i in range(4)
            for e in (["view", "buy"] if i < 2 else ["view"])
        ]
        assert srv.post("/v1/batch", {"batch": batch}).status_code == 200
        # a read: `loudou funnel --json` answers through the server, the same as the API
        r = cli("funnel", "--step", "view", "--step", "buy", "--json", db=db)
        assert r.returncode == 0, r.stderr
        api = srv.post("/v1/funnels/query", {"steps": ["view", "buy"]}, role="read").json()
        assert json.loads(r.stdout) == api and [s["count"] for s in api["steps"]] == [4, 2]
        # a write: an import goes through the server's writer
        csv = tmp_path / "ev.csv"
        csv.write_text(
            "customer_id,event,ts\nc9,view,2025-01-01T00:00:00Z\nc9,buy,2025-01-01T00:01:00Z\n"
        )
        r = cli("import", "events", str(csv), db=db)
        assert r.returncode == 0, r.stderr
        assert (
            json.loads(cli("funnel", "--step", "view", "--step", "buy", "--json", db=db).stdout)[
                "steps"
            ][1]["count"]
            == 3
        )
        # keys made from the CLI work at once
        made = json.loads(cli("keys", "create", "--role", "write", "--json", db=db).stdout)
        body = {"userId": "k", "event": "e"}
        assert (
            httpx.post(srv.url + "/v1/track", json=body, auth=(made["key"], "")).status_code == 200
        )
        assert cli("keys", "revoke", made["id"], db=db).returncode == 0
        assert (
            httpx.post(srv.url + "/v1/track", json=body, auth=(made["key"], "")).status_code == 401
        )
        # the Python API too; the store protocol endpoints refuse ordinary admin keys
        store = loudou.connect(db)
        assert isinstance(store, RemoteStore) and store.counts()["events"] == 9
        store.close()
        r = srv.post("/v1/store/counts", {}, role="admin")
        assert r.status_code == 403
        again = cli("serve", "--port", "1", db=db)
        assert again.returncode == 1 and "already served" in again.stderr
    finally:
        srv.stop()
    # stopped: the CLI opens the file itself
    assert not isinstance(loudou.connect(db), RemoteStore)
