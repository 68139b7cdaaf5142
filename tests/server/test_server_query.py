"""The query API over real HTTP: funnels equal the engine's JSON, customer timelines and event
pages walk every row once, errors keep the one documented shape."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

import loudou

from serving import Server, start

JOURNEYS = {  # customer -> [(event, second of 2025-01-01, properties)]
    "ann": [("view", 0, {"price": 5}), ("cart", 60, {}), ("buy", 120, {"revenue": 30})],
    "bob": [("view", 10, {"price": 50}), ("cart", 20, {})],
    "cyd": [("view", 30, {}), ("buy", 90_000, {})],  # buys after a 1-day window
    "dan": [("cart", 5, {})],
}


def _batch() -> list[dict[str, Any]]:
    out = []
    for cid, evs in JOURNEYS.items():
        for i, (event, sec, props) in enumerate(evs):
            out.append(
                {
                    "type": "track",
                    "userId": cid,
                    "event": event,
                    "properties": props,
                    "messageId": f"{cid}-{i}",
                    "timestamp": _iso(sec),
                }
            )
    return out


def _iso(sec: int) -> str:
    from datetime import datetime, timedelta

    return (datetime(2025, 1, 1) + timedelta(seconds=sec)).isoformat() + "Z"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start(tmp_path_factory.mktemp("query") / "q.duckdb")
    assert srv.post("/v1/batch", {"batch": _batch()}).json()["accepted"] == 8
    srv.post("/v1/identify", {"userId": "ann", "traits": {"region": "north"}})
    yield srv
    srv.stop()


SPEC = {"name": "shop", "steps": ["view", "cart", "buy"], "window": "1d", "breakdown": "region"}


def test_funnel_query_equals_engine(server: Server, tmp_path) -> None:
    r = server.post("/v1/funnels/query", SPEC, role="read")
    assert r.status_code == 200, r.text
    got = r.json()
    assert [s["count"] for s in got["steps"]] == [3, 2, 1]  # by hand: ann,bob,cyd / ann,bob / ann
    # the same document as the engine computes on a copy of the data (what `funnel --json` prints)
    copy = loudou.connect(tmp_path / "copy.duckdb")
    from journeys import events_table

    copy.insert_events(
        events_table({c: [(e, s, p) for e, s, p in evs] for c, evs in JOURNEYS.items()})
    )
    copy.upsert_customers(
        __import__("pyarrow").table({"customer_id": ["ann"], "traits": ['{"region": "north"}']})
    )
    expected = loudou.run_funnel(copy, loudou.FunnelSpec.parse(SPEC)).to_dict()
    assert got == json.loads(json.dumps(expected))
    # templates with stages work too
    tpl = {"template": "aida", "stages": {"attention": "view", "action": "buy"}, "window": "1d"}
    assert [
        s["count"] for s in server.post("/v1/funnels/query", tpl, role="read").json()["steps"]
    ] == [3, 1]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"steps": []}, "steps"),
        ({"steps": ["view"], "window": "soon"}, "window"),
        ({"steps": ["view"], "mode": "sideways"}, "mode"),
        ([1, 2], "spec"),
    ],
)
def test_funnel_query_errors_name_the_field(server: Server, body: Any, field: str) -> None:
    r = server.post("/v1/funnels/query", body, role="read")
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "invalid_spec"
    assert r.json()["error"]["field"].startswith(field)


def test_customer_timeline_pages(server: Server) -> None:
    seen, cursor = [], None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        r = server.get("/v1/customers/ann", **params)
        assert r.status_code == 200
        page = r.json()
        assert page["customer"]["traits"] == {"region": "north"}
        seen += [e["event_id"] for e in page["events"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert seen[:3] == ["ann-0", "ann-1", "ann-2"] and len(seen) == 4  # + the identify event
    assert server.get("/v1/customers/nobody").json()["error"]["code"] == "not_found"
    assert (
        server.get("/v1/customers/ann", cursor="garbage").json()["error"]["code"]
        == "invalid_cursor"
    )


def test_events_filters_and_pages(server: Server) -> None:
    def all_pages(**params: Any) -> list[dict[str, Any]]:
        rows, cursor = [], None
        while True:
            page = server.get(
                "/v1/events", limit=3, **params, **({"cursor": cursor} if cursor else {})
            ).json()
            rows += page["events"]
            cursor = page["next"]
            if cursor is None:
                return rows

    everything = all_pages()
    assert len(everything) == 9 and len({e["event_id"] for e in everything}) == 9
    assert [e["ts"] for e in everything] == sorted(e["ts"] for e in everything)
    views = all_pages(event="view")
    assert sorted(e["customer_id"] for e in views) == ["ann", "bob", "cyd"]
    both = all_pages(
        event=["view", "buy"], since="2025-01-01T00:00:20Z", until="2025-01-02T00:00:00Z"
    )
    assert [(e["customer_id"], e["event"]) for e in both] == [("cyd", "view"), ("ann", "buy")]
    assert all_pages(customer_id="bob")[0]["properties"] == {"context_ip": "127.0.0.1", "price": 50}
    r = server.get("/v1/events", limit=5000)
    assert r.status_code == 400 and r.json()["error"] == {
        "code": "invalid_field",
        "field": "limit",
        "message": r.json()["error"]["message"],
    }
    assert server.get("/v1/nowhere").json()["error"]["code"] == "not_found"


def test_template_spec_may_rename_the_funnel(server: Server) -> None:
    spec = {"template": "aida", "stages": {"attention": "view"}, "name": "My funnel"}
    r = server.post("/v1/funnels/query", spec, role="read")
    assert r.status_code == 200 and r.json()["funnel"] == "My funnel"
