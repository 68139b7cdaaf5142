"""Tracking endpoints over real HTTP: each endpoint, auth path, bad-input class, de-duplication,
UTM attribution, identity linking and group commit under concurrent clients."""

from __future__ import annotations

import gzip
import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import loudou

from serving import Server, start


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start(tmp_path_factory.mktemp("track") / "t.duckdb")
    yield srv
    srv.stop()


def events_of(server: Server, **params: object) -> list[dict]:
    r = server.get("/v1/events", limit=1000, **params)
    assert r.status_code == 200, r.text
    return r.json()["events"]


def by_id(server: Server, event_id: str) -> dict:
    (found,) = [e for e in events_of(server) if e["event_id"] == event_id]
    return found


def test_each_endpoint_stores_its_message(server: Server) -> None:
    calls = {
        "/v1/track": {"userId": "ep1", "event": "Signed Up", "properties": {"plan": "pro"}},
        "/v1/page": {"userId": "ep1", "name": "Pricing", "properties": {"path": "/pricing"}},
        "/v1/screen": {"userId": "ep1", "name": "Home"},
        "/v1/identify": {"userId": "ep1", "traits": {"email": "a@example.com"}},
        "/v1/group": {"userId": "ep1", "groupId": "acme", "traits": {"size": 10}},
    }
    for i, (path, body) in enumerate(calls.items()):
        r = server.post(path, {**body, "messageId": f"ep-{i}"})
        assert r.status_code == 200, r.text
        assert r.json() == {"success": True, "accepted": 1}
    names = {e["event_id"]: e["event"] for e in events_of(server, customer_id="ep1")}
    assert names == {
        "ep-0": "Signed Up",
        "ep-1": "page_view",
        "ep-2": "screen_view",
        "ep-3": "identify",
        "ep-4": "group",
    }
    assert by_id(server, "ep-0")["properties"]["plan"] == "pro"
    assert by_id(server, "ep-1")["properties"]["name"] == "Pricing"
    assert by_id(server, "ep-4")["properties"]["group_id"] == "acme"
    profile = server.get("/v1/customers/ep1").json()["customer"]
    assert profile["traits"] == {"email": "a@example.com"}


def test_segment_fields_time_and_context(server: Server) -> None:
    body = {
        "anonymousId": "anon-ctx",
        "event": "Viewed",
        "messageId": "ctx-1",
        "timestamp": "2025-03-01T10:00:00+08:00",
        "context": {
            "ip": "10.1.2.3",
            "userAgent": "Mozilla/5.0",
            "page": {"url": "https://shop.example/?utm_source=ignored", "path": "/"},
            "campaign": {"source": "google", "medium": "cpc", "name": "spring_sale"},
        },
        "properties": {"revenue": "12.5", "session_id": "s-9"},
    }
    assert server.post("/v1/track", body).status_code == 200
    e = by_id(server, "ctx-1")
    assert e["ts"] == "2025-03-01T02:00:00Z"  # UTC
    assert (e["channel"], e["campaign"], e["revenue"], e["session_id"]) == (
        "google",
        "spring_sale",
        12.5,
        "s-9",
    )
    p = e["properties"]
    assert p["context_ip"] == "10.1.2.3" and p["context_user_agent"] == "Mozilla/5.0"
    assert p["context_page_path"] == "/" and p["context_campaign_medium"] == "cpc"
    # UTM in the page URL when there is no context.campaign
    url = "https://shop.example/landing?utm_source=newsletter&utm_campaign=may"
    body = {"userId": "u-utm", "messageId": "ctx-2", "context": {"page": {"url": url}}}
    assert server.post("/v1/page", body).status_code == 200
    e = by_id(server, "ctx-2")
    assert (e["channel"], e["campaign"]) == ("newsletter", "may")
    # Segment's clock-skew correction: received - (sentAt - originalTimestamp)
    body = {
        "userId": "u-skew",
        "event": "x",
        "messageId": "ctx-3",
        "originalTimestamp": "2000-01-01T00:00:00Z",
        "sentAt": "2000-01-01T00:00:10Z",
    }
    assert server.post("/v1/track", body).status_code == 200
    assert by_id(server, "ctx-3")["ts"] > "2020"


def test_retried_message_ids_are_stored_once(server: Server) -> None:
    batch = {
        "batch": [
            {"type": "track", "userId": "dup", "event": "e", "messageId": f"d{i}"} for i in range(5)
        ]
    }
    for _ in range(3):
        assert server.post("/v1/batch", batch).json()["accepted"] == 5
    twice = {"batch": [{"type": "track", "userId": "dup", "event": "e", "messageId": "d0"}] * 2}
    assert server.post("/v1/batch", twice).status_code == 200
    assert len(events_of(server, customer_id="dup")) == 5


def test_auth_paths(server: Server) -> None:
    body = {"userId": "auth", "event": "e"}
    assert server.post("/v1/track", body, role=None).json()["error"]["code"] == "unauthorized"
    r = httpx.post(server.url + "/v1/track", json=body, auth=("ldw_wrong", ""))
    assert r.status_code == 401 and r.json()["error"]["field"] == "authorization"
    assert r.headers["www-authenticate"].startswith("Basic")
    r = httpx.post(server.url + "/v1/track", json=body, headers={"Authorization": "Basic !!"})
    assert r.status_code == 401
    # a read key cannot write; a write key cannot read
    assert server.post("/v1/track", body, role="read").status_code == 403
    r = server.get("/v1/events", role="write")
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    assert server.post("/v1/funnels/query", {"steps": ["e"]}, role="write").status_code == 403
    # the key in the body (what sendBeacon sends) and as a Bearer token
    r = httpx.post(server.url + "/v1/track", json={**body, "writeKey": server.keys["write"]})
    assert r.status_code == 200
    bearer = {"Authorization": f"Bearer {server.keys['read']}"}
    assert httpx.get(server.url + "/v1/events", headers=bearer).status_code == 200
    # admin keys can do both
    assert server.post("/v1/track", body, role="admin").status_code == 200
    assert server.get("/v1/events", role="admin").status_code == 200


def test_revoked_key_gets_401(server: Server) -> None:
    with server.client("admin") as admin:
        made = admin.post("/v1/keys", json={"role": "write", "name": "temp"})
        assert made.status_code == 201
        secret, key_id = made.json()["key"], made.json()["id"]
        listed = admin.get("/v1/keys").json()["keys"]
        assert key_id in [k["id"] for k in listed] and secret not in json.dumps(listed)
        body = {"userId": "rv", "event": "e"}
        assert httpx.post(server.url + "/v1/track", json=body, auth=(secret, "")).status_code == 200
        assert admin.delete(f"/v1/keys/{key_id}").json() == {"id": key_id, "revoked": True}
        assert admin.delete("/v1/keys/nope").status_code == 404
        r = httpx.post(server.url + "/v1/track", json=body, auth=(secret, ""))
        assert r.status_code == 401
    assert server.post("/v1/keys", {"role": "write"}, role="read").status_code == 403


def _raw(server: Server, path: str, content: bytes, **headers: str) -> httpx.Response:
    return httpx.post(
        server.url + path, content=content, auth=(server.keys["write"], ""), headers=headers
    )


@pytest.mark.parametrize(
    ("path", "content", "status", "code", "field"),
    [
        ("/v1/track", b"{not json", 400, "invalid_json", "body"),
        ("/v1/track", b"", 400, "invalid_json", "body"),
        ("/v1/track", b"[1, 2]", 400, "invalid_json", "body"),
        ("/v1/track", b'{"userId": "\xff\xfe", "event": "e"}', 400, "invalid_encoding", "body"),
        ("/v1/track", b'{"userId": "u"}', 400, "invalid_field", "event"),
        ("/v1/track", b'{"event": "e"}', 400, "missing_id", "userId"),
        ("/v1/track", b'{"userId": {"a": 1}, "event": "e"}', 400, "invalid_field", "userId"),
        ("/v1/track", b'{"userId": "u", "event": 5}', 400, "invalid_field", "event"),
        (
            "/v1/track",
            b'{"userId": "u", "event": "e", "properties": []}',
            400,
            "invalid_field",
            "properties",
        ),
        (
            "/v1/track",
            b'{"userId": "u", "event": "e", "timestamp": "soon"}',
            400,
            "invalid_field",
            "timestamp",
        ),
        (
            "/v1/track",
            b'{"userId": "u", "event": "e", "timestamp": "2999-01-01T00:00:00Z"}',
            400,
            "timestamp_in_future",
            "timestamp",
        ),
        ("/v1/alias", b'{"previousId": "a"}', 400, "missing_id", "userId"),
        ("/v1/alias", b'{"userId": "a"}', 400, "invalid_field", "previousId"),
        ("/v1/batch", b'{"batch": 3}', 400, "invalid_field", "batch"),
        ("/v1/batch", b"{}", 400, "invalid_field", "batch"),
    ],
)
def test_bad_input_names_the_field(
    server: Server, path: str, content: bytes, status: int, code: str, field: str
) -> None:
    r = _raw(server, path, content)
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code and r.json()["error"]["field"] == field
    assert r.json()["error"]["message"]


def test_size_limits(server: Server) -> None:
    big = {"userId": "big", "event": "e", "properties": {"blob": "x" * 33_000}}
    r = server.post("/v1/track", big)
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"
    # in a batch, an oversized event is refused by index and the others stored
    ok = {"type": "track", "userId": "big", "event": "ok", "messageId": "big-ok"}
    r = server.post("/v1/batch", {"batch": [ok, {**big, "type": "track"}]})
    assert r.status_code == 200
    assert [(x["index"], x["code"]) for x in r.json()["rejected"]] == [(1, "payload_too_large")]
    huge = {"batch": [{**ok, "properties": {"b": "x" * 30_000}} for _ in range(20)]}
    r = server.post("/v1/batch", huge)
    assert r.status_code == 413 and r.json()["error"]["field"] == "body"
    # gzip bodies are inflated (with the same limit)
    zipped = gzip.compress(json.dumps({"userId": "gz", "event": "zipped"}).encode())
    assert _raw(server, "/v1/track", zipped, **{"Content-Encoding": "gzip"}).status_code == 200
    bomb = gzip.compress(json.dumps({"userId": "gz", "event": "e", "p": "x" * 10**6}).encode())
    assert _raw(server, "/v1/track", bomb, **{"Content-Encoding": "gzip"}).status_code == 413


def test_batch_partial_acceptance(server: Server) -> None:
    batch = [
        {"type": "track", "userId": "bp", "event": "a", "messageId": "bp0"},
        {"type": "track", "userId": "bp", "messageId": "bp1"},
        "not an object",
        {"type": "page", "anonymousId": "bp-anon", "messageId": "bp3"},
        {"type": "unknown", "userId": "bp"},
        {"type": "track", "event": "no id"},
    ]
    r = server.post("/v1/batch", {"batch": batch, "context": {"campaign": {"source": "fb"}}})
    assert r.status_code == 200
    assert r.json()["accepted"] == 2
    got = [(x["index"], x["code"], x["field"]) for x in r.json()["rejected"]]
    assert got == [
        (1, "invalid_field", "batch[1].event"),
        (2, "invalid_field", "batch[2]"),
        (4, "invalid_field", "batch[4].type"),
        (5, "missing_id", "batch[5].userId"),
    ]
    assert by_id(server, "bp0")["channel"] == "fb"  # the batch's shared context applies
    r = server.post("/v1/batch", {"batch": [batch[1], batch[2]]})
    assert r.status_code == 400 and len(r.json()["rejected"]) == 2


def test_identify_and_alias_link_anonymous_history(server: Server) -> None:
    def track(anon: str | None, user: str | None, event: str, mid: str) -> None:
        body = {"anonymousId": anon, "userId": user, "event": event, "messageId": mid}
        assert server.post("/v1/track", {k: v for k, v in body.items() if v}).status_code == 200

    track("visitor-1", None, "view", "il-1")
    track("visitor-1", None, "add_to_cart", "il-2")
    r = server.post(
        "/v1/identify", {"userId": "alice", "anonymousId": "visitor-1", "traits": {"plan": "pro"}}
    )
    assert r.status_code == 200
    track(None, "alice", "purchase", "il-3")
    track("visitor-1", None, "view", "il-4")  # later anonymous events resolve at write time
    # alias: an earlier id (here another device's anonymous id) joins alice
    track("visitor-2", None, "view", "il-5")
    assert (
        server.post("/v1/alias", {"previousId": "visitor-2", "userId": "alice"}).status_code == 200
    )
    mine = events_of(server, customer_id="alice")
    assert {e["event_id"] for e in mine} >= {"il-1", "il-2", "il-3", "il-4", "il-5"}
    assert events_of(server, customer_id="visitor-1") == mine  # an alias finds the customer
    r = server.get("/v1/customers/visitor-2").json()["customer"]
    assert r["customer_id"] == "alice" and r["aliases"] == ["visitor-1", "visitor-2"]
    spec = {"steps": ["view", "add_to_cart", "purchase"], "window": "1d"}
    funnel = server.post("/v1/funnels/query", spec, role="read").json()
    assert funnel["steps"][2]["count"] >= 1  # pre-signup steps count for alice
    assert server.get("/v1/customers/visitor-1", role="read").status_code == 200


def test_concurrent_clients_add_up_and_share_commits(server: Server) -> None:
    before = httpx.get(server.url + "/v1/health").json()["commits"]
    clients, requests, per = 8, 15, 20
    failures: list[str] = []

    def client(c: int) -> None:
        with server.client() as http:
            for r in range(requests):
                batch = [
                    {
                        "type": "track",
                        "userId": f"cc{c}",
                        "event": "e",
                        "messageId": f"cc{c}-{r}-{i}",
                    }
                    for i in range(per)
                ]
                resp = http.post("/v1/batch", json={"batch": batch})
                if resp.status_code != 200:
                    failures.append(resp.text)

    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures
    with server.client("read") as http:
        total = 0
        for c in range(clients):
            total += len(
                http.get("/v1/events", params={"customer_id": f"cc{c}", "limit": 1000}).json()[
                    "events"
                ]
            )
    assert total == clients * requests * per
    commits = httpx.get(server.url + "/v1/health").json()["commits"] - before
    assert 1 <= commits < clients * requests  # group commit: requests shared transactions


def test_server_survives_garbage(server: Server) -> None:
    for content in (b"\x00" * 100, b'{"batch": [' * 5000, b"9" * 20_000, b'"\\ud800"'):
        assert _raw(server, "/v1/batch", content).status_code in (400, 413)
    assert httpx.get(server.url + "/v1/health").status_code == 200


def test_docs_and_openapi(server: Server) -> None:
    docs = httpx.get(server.url + "/docs")
    assert docs.status_code == 200
    assets = re.findall(r"""(?:src|href)=['"]([^'"]+)['"]""", docs.text)
    assert assets and all(a.startswith("/") for a in assets), assets  # no CDN
    for asset in assets:
        assert httpx.get(server.url + asset).status_code == 200
    paths = httpx.get(server.url + "/openapi.json").json()["paths"]
    for p in ("/v1/track", "/v1/identify", "/v1/page", "/v1/screen", "/v1/alias", "/v1/batch"):
        assert "post" in paths[p]
    assert "/v1/funnels/query" in paths and "/v1/customers/{customer_id}" in paths


def test_server_file_and_direct_open_after_stop(tmp_path: Path) -> None:
    srv = start(tmp_path / "s.duckdb", args=("--access-log",))
    info = json.loads((tmp_path / "s.duckdb.server.json").read_text())
    assert (
        info["url"] == srv.url and (tmp_path / "s.duckdb.server.json").stat().st_mode & 0o077 == 0
    )
    srv.post("/v1/track", {"userId": "x", "event": "e"})
    # keys never reach the log, whether right, wrong, in a header or in the body
    wrong = "ldw_" + "s3cr3t" * 6
    httpx.post(srv.url + "/v1/track", json={"userId": "x", "event": "e"}, auth=(wrong, ""))
    httpx.post(srv.url + "/v1/track", json={"userId": "x", "event": "e", "writeKey": wrong})
    httpx.post(srv.url + "/v1/track", content=b'{"writeKey": "' + wrong.encode() + b'", bad')
    srv.post("/v1/track", {"userId": "x", "event": "e", "writeKey": srv.keys["write"]}, role=None)
    srv.stop()
    assert srv.proc.stdout is not None and srv.proc.stderr is not None
    log = srv.proc.stdout.read().decode() + srv.proc.stderr.read().decode()
    assert "POST /v1/track" in log  # the access log is on
    for secret in (wrong, *srv.keys.values()):
        assert secret not in log
    info_token = info["token"]
    assert info_token not in log
    assert not (tmp_path / "s.duckdb.server.json").exists()
    assert loudou.connect(tmp_path / "s.duckdb").counts()["events"] == 2


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)
_FIELDS = [
    "userId",
    "anonymousId",
    "event",
    "properties",
    "traits",
    "timestamp",
    "messageId",
    "context",
    "type",
    "previousId",
    "groupId",
    "name",
]
_MESSAGE = st.dictionaries(st.sampled_from(_FIELDS), _JSON, max_size=8)


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=st.one_of(
        _JSON, _MESSAGE, st.fixed_dictionaries({"batch": st.lists(_MESSAGE, max_size=5)})
    )
)
def test_any_json_gets_a_json_answer_never_a_5xx(server: Server, body: object) -> None:
    with server.client() as http:
        for path in ("/v1/track", "/v1/batch", "/v1/identify"):
            r = http.post(path, content=json.dumps(body).encode())
            assert r.status_code in (200, 400, 413), r.text
            assert "success" in r.json() or r.json()["error"]["code"]


def test_parser_process_answers_as_the_server_would(server: Server) -> None:
    """A batch over 8 KB is parsed in the parser process, small ones in the server's: the same
    messages give the same rejections and the same stored rows either way."""
    kinds = ["track", "page", "identify", "group", "screen"]
    messages = []
    for i in range(120):
        m = {
            "type": kinds[i % 5],
            "userId": f"pp-{i % 7}",
            "anonymousId": f"pa-{i % 3}",
            "event": f"E{i % 4}",
            "groupId": "g",
            "timestamp": f"2025-04-0{1 + i % 9}T10:00:0{i % 10}+02:00",
            "properties": {"revenue": i, "url": f"https://x.example/?utm_source=s{i % 2}"},
            "traits": {"n": i},
            "context": {"ip": "10.0.0.1", "campaign": {"source": "ad"}} if i % 2 else None,
        }
        if i % 17 == 0:
            m["timestamp"] = "2999-01-01T00:00:00Z"  # rejected: in the future
        if i % 23 == 0:
            m["userId"] = ["bad"]  # rejected: wrong type
        messages.append(m)

    def sent(prefix: str) -> list[dict]:
        return [{**m, "messageId": f"{prefix}-{i}"} for i, m in enumerate(messages)]

    big = {"batch": sent("big")}
    assert len(json.dumps(big)) > 8 * 1024
    r = server.post("/v1/batch", big)
    assert r.status_code == 200, r.text
    small_rejected = []
    for start_at in range(0, 120, 10):  # under 8 KB each
        part = sent("small")[start_at : start_at + 10]
        got = server.post("/v1/batch", {"batch": part}).json()
        small_rejected += [{**p, "index": p["index"] + start_at} for p in got["rejected"]]
    for p in small_rejected:
        p["field"] = re.sub(r"\[\d+\]", f"[{p['index']}]", p["field"])
    bad = {i for i in range(120) if i % 17 == 0 or i % 23 == 0}
    assert r.json()["rejected"] == small_rejected
    assert [p["index"] for p in small_rejected] == sorted(bad)
    stored = {
        e["event_id"]: e
        for c in range(7)
        for e in events_of(server, customer_id=f"pp-{c}")
        if e["event_id"][:4] in ("big-", "smal")
    }
    assert len(stored) == 2 * (120 - len(bad))
    for i in range(120):
        if f"big-{i}" in stored:
            a, b = stored[f"big-{i}"], stored[f"small-{i}"]
            assert {**a, "event_id": ""} == {**b, "event_id": ""}


def test_browser_requests_get_cors_headers(server: Server) -> None:
    """Tracking answers skip FastAPI's routing (TrackingFastPath) but not CORS: a page on another
    origin may post events and read the answer, and its preflight is allowed."""
    origin = {"Origin": "https://shop.example"}
    with server.client() as http:
        r = http.post("/v1/track", json={"userId": "cors-1", "event": "view"}, headers=origin)
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "*"
        bad = http.post("/v1/track", json={"event": "view"}, headers=origin)
        assert bad.status_code == 400 and bad.headers["access-control-allow-origin"] == "*"
        assert bad.json()["error"]["code"] == "missing_id"
        pre = http.options(
            "/v1/batch",
            headers={
                **origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        )
        assert pre.status_code == 200 and "POST" in pre.headers["access-control-allow-methods"]
    # other methods on a tracking path still get FastAPI's answer, in the API's error shape
    r = server.get("/v1/track")
    assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"


def test_fast_path_renders_unexpected_errors_in_the_one_shape() -> None:
    """A bug inside a tracking request (here: an app without server state) is a 500 with the
    API's error body, not a dropped connection."""
    import asyncio

    from loudou.server.tracking import TrackingFastPath

    async def fallback(scope: object, receive: object, send: object) -> None:
        raise AssertionError("tracking paths must not reach the app")

    class Bare:  # an app object whose state holds no server: reading it fails
        state = type("State", (), {})()

    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/track",
        "headers": [],
        "query_string": b"",
        "app": Bare(),
    }
    asyncio.run(TrackingFastPath(fallback)(scope, receive, send))  # type: ignore[arg-type]
    assert sent[0]["status"] == 500
    assert json.loads(sent[1]["body"])["error"]["code"] == "internal_error"
