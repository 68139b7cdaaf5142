"""Funnel analyses and segments over real HTTP: each route's JSON equals the Python API's
``document()`` (what the CLI's ``--json`` prints) on the same data; read keys only; bad input is a
4xx naming the field."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from loudou import demo
from loudou.analyses.compare import compare
from loudou.analyses.correlation import correlate
from loudou.analyses.diagnose import diagnose
from loudou.analyses.funnel.rows import segment_funnel
from loudou.analyses.outcomes import step_outcomes
from loudou.analyses.paths import top_paths
from loudou.analyses.segments import list_segments, members
from loudou.analyses.timing import time_to_convert
from loudou.analyses.transitions import transition_matrix
from loudou.analyses.trends import trends
from loudou.backends.base import Store
from loudou.present.render import document

from demo_served import SEGMENT, as_json, journey_spec, served_demo
from serving import Server

SPEC = journey_spec()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Store]]:
    with served_demo(tmp_path_factory.mktemp("analysis")) as pair:
        yield pair


def spec() -> Any:
    return demo.journey_funnel_spec()


# route, body, the same analysis through the Python API (with the CLI's defaults)
CASES: list[tuple[str, dict[str, Any], Callable[[Store], Any]]] = [
    (
        "/v1/funnels/compare",
        {"spec": SPEC, "by": ["region", "segments"]},
        lambda s: compare(s, spec(), ["region", "segments"], min_customers=30, limit=10),
    ),
    (
        "/v1/funnels/compare",
        {"spec": SPEC, "by": ["device"], "segment": "east", "min_customers": 5, "limit": 2},
        lambda s: compare(s, spec(), ["device"], segment="east", min_customers=5, limit=2),
    ),
    (
        "/v1/funnels/diagnose",
        {"spec": SPEC, "by": ["region", "device"]},
        lambda s: diagnose(s, spec(), ["region", "device"], period="week", alpha=0.05, limit=10),
    ),
    (
        "/v1/funnels/diagnose",
        {"spec": SPEC, "period": "month", "alpha": 0.2, "limit": 3},
        lambda s: diagnose(s, spec(), [], period="month", alpha=0.2, limit=3),
    ),
    ("/v1/funnels/trends", {"spec": SPEC}, lambda s: trends(s, spec(), "week")),
    (
        "/v1/funnels/trends",
        {"spec": SPEC, "period": "day", "segment": "east"},
        lambda s: trends(s, spec(), "day", "east"),
    ),
    ("/v1/funnels/time-to-convert", {"spec": SPEC}, lambda s: time_to_convert(s, spec())),
    (
        "/v1/funnels/time-to-convert",
        {"spec": SPEC, "from_step": 2, "to_step": 3, "bins": 5},
        lambda s: time_to_convert(s, spec(), 2, 3, bins=5),
    ),
    ("/v1/funnels/transitions", {"spec": SPEC}, lambda s: transition_matrix(s, spec())),
    (
        "/v1/funnels/correlate",
        {"spec": SPEC, "step": 2, "properties": ["page"], "min_customers": 10},
        lambda s: correlate(s, spec(), 2, properties=["page"], min_customers=10),
    ),
    ("/v1/paths", {"after": "signup"}, lambda s: top_paths(s, "signup")),
    (
        "/v1/paths",
        {"after": "ad_click", "before": "order_completed", "depth": 2, "exclude": ["page_view"]},
        lambda s: top_paths(s, "ad_click", "order_completed", depth=2, exclude=["page_view"]),
    ),
]


@pytest.mark.parametrize(("path", "body", "expected"), CASES, ids=[c[0] for c in CASES])
def test_route_equals_python_api(
    served: tuple[Server, Store], path: str, body: dict[str, Any], expected: Callable[..., Any]
) -> None:
    server, store = served
    r = server.post(path, body, role="read")
    assert r.status_code == 200, r.text
    assert r.json() == as_json(document(expected(store)))


def test_customers_pages_the_csv_rows(served: tuple[Server, Store]) -> None:
    server, store = served
    table = step_outcomes(store, spec(), 2, "dropped")
    assert table.num_rows > 10
    seen: list[dict[str, Any]] = []
    while len(seen) < table.num_rows:
        body = {"spec": SPEC, "step": 2, "offset": len(seen), "limit": 7}
        page = server.post("/v1/funnels/customers", body, role="admin").json()
        assert page["total"] == table.num_rows and page["outcome"] == "dropped"
        assert page["customers"], "a page before the end is never empty"
        seen += page["customers"]
    want = table.to_pylist()
    assert [c["customer_id"] for c in seen] == [w["customer_id"] for w in want]
    assert [c["reached_at"] for c in seen] == [w["reached_at"].isoformat() + "Z" for w in want]
    assert all(c["next_at"] is None for c in seen)  # dropped: never reached step 3
    done = server.post(
        "/v1/funnels/customers", {"spec": SPEC, "step": 3, "outcome": "converted"}, role="read"
    ).json()
    assert [c["customer_id"] for c in done["customers"]] == step_outcomes(
        store, spec(), 3, "converted"
    ).column("customer_id").to_pylist()
    assert all(c["next_at"] is not None for c in done["customers"])


def test_segments_list_and_show(served: tuple[Server, Store]) -> None:
    server, store = served
    saved = list_segments(store)
    expected = [{**s.to_dict(), "customers": len(members(store, s))} for s in saved]
    got = server.get("/v1/segments").json()["segments"]
    assert got[: len(expected)] == expected  # (a later test saves one more)
    one = server.get("/v1/segments/east").json()
    assert one == expected[0] and one["name_zh"] == SEGMENT["name_zh"]
    # by hand: the customers whose region trait is East
    east = [c for c in store.read_customers(["region"]).to_pylist() if c["region"] == "East"]
    assert one["customers"] == len(east) > 0
    r = server.get("/v1/segments/nowhere")
    assert r.status_code == 404 and r.json()["error"]["field"] == "name"


ROUTES = sorted({c[0] for c in CASES} | {"/v1/funnels/customers"})


@pytest.mark.parametrize("path", ROUTES)
def test_write_keys_and_strangers_are_refused(served: tuple[Server, Store], path: str) -> None:
    server, _ = served
    assert server.post(path, {"spec": SPEC}, role="write").status_code == 403
    assert server.post(path, {"spec": SPEC}, role=None).status_code == 401
    assert server.get("/v1/segments", role="write").status_code == 403


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/funnels/compare", {"spec": SPEC}, "by"),
        ("/v1/funnels/compare", {"spec": SPEC, "by": ["region"], "min_customers": 0}, "min_"),
        ("/v1/funnels/compare", {"spec": SPEC, "by": ["region"], "bye": 1}, "bye"),
        ("/v1/funnels/compare", {"spec": SPEC, "by": ["segment:nope"]}, "segment"),
        ("/v1/funnels/compare", {"spec": {"steps": []}, "by": ["region"]}, "steps"),
        ("/v1/funnels/diagnose", {"spec": SPEC, "alpha": 2}, "alpha"),
        ("/v1/funnels/diagnose", {"spec": SPEC, "period": "year"}, "period"),
        ("/v1/funnels/trends", {"spec": SPEC, "segment": "nope"}, "segment"),
        ("/v1/funnels/trends", {"period": "week"}, "spec"),
        ("/v1/funnels/time-to-convert", {"spec": SPEC, "from_step": 3, "to_step": 2}, "from_step"),
        ("/v1/funnels/customers", {"spec": SPEC, "step": 9}, "step"),
        ("/v1/funnels/customers", {"spec": SPEC, "step": 1, "outcome": "maybe"}, "outcome"),
        ("/v1/funnels/correlate", {"spec": SPEC, "step": 0}, "step"),
        ("/v1/funnels/transitions", {"spec": "view"}, "spec"),
        ("/v1/paths", {"depth": 2}, "after"),
        ("/v1/paths", {"after": "signup", "depth": 0}, "depth"),
    ],
)
def test_bad_input_names_the_field(
    served: tuple[Server, Store], path: str, body: dict[str, Any], field: str
) -> None:
    r = served[0].post(path, body, role="read")
    assert 400 <= r.status_code < 500, r.text
    assert r.json()["error"]["field"].startswith(field), r.text


def test_body_must_be_a_json_object(served: tuple[Server, Store]) -> None:
    server = served[0]
    with server.client("read") as c:
        r = c.post("/v1/funnels/trends", content=b"{not json")
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"
    r = server.post("/v1/funnels/trends", [SPEC], role="read")
    assert r.status_code == 400 and r.json()["error"]["field"] == "body"


def test_segment_funnel_equals_python_api(served: tuple[Server, Store]) -> None:
    server, store = served
    for body in ({"segment": "east"}, {"by": "segments"}, {"segment": "east", "by": "rfm"}):
        r = server.post("/v1/segments/funnel", {"spec": SPEC, **body}, role="read")
        assert r.status_code == 200, r.text
        assert r.json() == as_json(segment_funnel(store, spec(), **body).to_dict())
    r = server.post("/v1/segments/funnel", {"spec": SPEC, "by": "region"}, role="read")
    assert r.status_code == 400 and r.json()["error"]["field"] == "by"


def test_admin_saves_a_segment(served: tuple[Server, Store]) -> None:
    server, store = served
    body = {"name": "mobile_north", "rules": [{"trait": "device", "value": "mobile"}]}
    body["rules"].append({"trait": "region", "value": "North"})
    for role, status in (("read", 403), ("write", 403), (None, 401)):
        assert server.post("/v1/segments", body, role=role).status_code == status
    r = server.post("/v1/segments", body, role="admin")
    assert r.status_code == 201, r.text
    # by hand: customers with both traits
    both = [
        c
        for c in store.read_customers(["device", "region"]).to_pylist()
        if c["device"] == "mobile" and c["region"] == "North"
    ]
    assert r.json() == {**body, "customers": len(both)} and len(both) > 0
    assert server.get("/v1/segments/mobile_north").json() == r.json()
    names = [s["name"] for s in server.get("/v1/segments").json()["segments"]]
    assert names[-1] == "mobile_north"
    bad = server.post("/v1/segments", {"name": "x", "rules": [{"rfm": ["royalty"]}]}, role="admin")
    assert bad.status_code == 400 and bad.json()["error"]["field"].startswith("rules"), bad.text
    nameless = server.post("/v1/segments", {"rules": []}, role="admin")
    assert nameless.status_code == 400 and nameless.json()["error"]["field"] == "name"


def test_openapi_documents_the_routes(served: tuple[Server, Store]) -> None:
    doc = served[0].get("/openapi.json", role=None)
    paths = doc.json()["paths"]
    assert set(ROUTES) | {"/v1/segments", "/v1/segments/{name}", "/v1/kpi/clv"} <= set(paths)
    assert "#/$defs/" not in doc.text  # body schemas inline their nested models
    rule = paths["/v1/segments"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert "rfm" in rule["properties"]["rules"]["items"]["properties"]


def test_customers_as_csv_is_the_whole_list(served: tuple[Server, Store]) -> None:
    import csv
    import io

    server, store = served
    body = {"spec": SPEC, "step": 2, "format": "csv", "limit": 3}  # limit pages JSON only
    r = server.post("/v1/funnels/customers", body, role="read")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "dropped_step_2.csv" in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    want = step_outcomes(store, spec(), 2, "dropped").to_pylist()
    assert [row["customer_id"] for row in rows] == [w["customer_id"] for w in want]
    assert rows[0]["reached_at"] == want[0]["reached_at"].isoformat() + "Z"
    assert {row["next_at"] for row in rows} == {""}


def test_segment_export_and_delete(served: tuple[Server, Store]) -> None:
    import csv
    import io

    server, store = served
    r = server.get("/v1/segments/east/export")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    # by hand: the customers whose region trait is East, in the store's order
    east = [c for c in store.read_customers(["region"]).to_pylist() if c["region"] == "East"]
    assert [row["customer_id"] for row in rows] == [c["customer_id"] for c in east]
    assert rows[0]["first_seen"] == east[0]["first_seen"].isoformat() + "Z"
    assert server.get("/v1/segments/nowhere/export").status_code == 404

    body = {"name": "short_lived", "rules": [{"trait": "region", "value": "West"}]}
    assert server.post("/v1/segments", body, role="admin").status_code == 201
    assert server.client("read").delete("/v1/segments/short_lived").status_code == 403
    with server.client("admin") as admin:
        assert admin.delete("/v1/segments/short_lived").json() == {
            "name": "short_lived",
            "deleted": True,
        }
        assert admin.delete("/v1/segments/short_lived").status_code == 404
    assert server.get("/v1/segments/short_lived").status_code == 404
    names = [s["name"] for s in server.get("/v1/segments").json()["segments"]]
    assert "short_lived" not in names and "east" in names
