"""KPI routes over real HTTP: each equals the Python API's ``to_dict()`` (the ``loudou kpi ...
--json`` document) on the same data, with the CLI's defaults; read keys only; bad input is a 4xx
naming the query parameter."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from loudou import kpi
from loudou.backends.base import Store

from demo_served import as_json, served_demo
from serving import Server


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Store]]:
    with served_demo(tmp_path_factory.mktemp("kpi")) as pair:
        yield pair


JAN = kpi.date_range("2025-01-01", "2025-01-31")
# route, query parameters, the same KPI through the Python API
CASES: list[tuple[str, dict[str, Any], Callable[[Store], Any]]] = [
    ("attribution", {}, lambda s: kpi.attribution(s).to_dict()),
    (
        "attribution",
        {"model": "markov", "lookback": "14d", "segment": "region"},
        lambda s: kpi.attribution(s, model="markov", lookback="14d", segment="region").to_dict(),
    ),
    (
        "attribution",
        {"model": "time_decay", "half_life": "2d", "by": "campaign", "from": "2025-01-01"},
        lambda s: kpi.attribution(
            s, model="time_decay", half_life="2d", by="campaign", rng=kpi.date_range("2025-01-01")
        ).to_dict(),
    ),
    ("cac", {}, lambda s: kpi.cac(s).to_dict()),
    (
        "cac",
        {
            "model": "linear",
            "ltv": "historical",
            "margin": 0.5,
            "from": "2025-01-01",
            "to": "2025-01-31",
        },
        lambda s: kpi.cac(s, "linear", JAN, ltv="historical", margin=0.5).to_dict(),
    ),
    ("clv", {}, lambda s: kpi.clv(s).to_dict()),
    (
        "clv",
        {
            "time_unit": "week",
            "horizon": 6,
            "discount": 0.02,
            "by": "channel",
            "page": 2,
            "page_size": 5,
        },
        lambda s: kpi.clv(s, "week", None, 6, 0.02, "channel").to_dict(2, 5),
    ),
    ("retention", {}, lambda s: kpi.retention(s).to_dict()),
    (
        "retention",
        {"period": "week", "basis": "purchase", "to": "2025-03-31"},
        lambda s: kpi.retention(
            s, "week", "purchase", kpi.date_range(None, "2025-03-31")
        ).to_dict(),
    ),
    ("repeat", {"by": "segment"}, lambda s: kpi.repeat(s, by="segment").to_dict()),
    (
        "churn",
        {"period": "week", "basis": "activity"},
        lambda s: {
            "period": "week",
            "basis": "activity",
            "periods": kpi.churn(s, "week", "activity"),
        },
    ),
    ("churn-risk", {}, lambda s: kpi.churn_risk(s).to_dict(50)),
    (
        "churn-risk",
        {"p_alive_below": 0.8, "inactive_days": 20, "limit": 3, "by": "channel"},
        lambda s: kpi.churn_risk(s, None, 0.8, 20, by="channel").to_dict(3),
    ),
    ("nps", {}, lambda s: kpi.nps(s).to_dict()),
    (
        "nps",
        {"by": "channel", "period": "week"},
        lambda s: kpi.nps(s, by="channel", period="week").to_dict(),
    ),
    ("sales-cycle", {}, lambda s: kpi.sales_cycle(s).to_dict()),
    ("sales-cycle", {"by": "segment"}, lambda s: kpi.sales_cycle(s, by="segment").to_dict()),
    ("summary", {}, lambda s: kpi.summary(s)),
    ("summary", {"from": "2025-01-01", "to": "2025-01-31"}, lambda s: kpi.summary(s, JAN)),
]


@pytest.mark.parametrize(("name", "params", "expected"), CASES, ids=[c[0] for c in CASES])
def test_route_equals_python_api(
    served: tuple[Server, Store], name: str, params: dict[str, Any], expected: Callable[..., Any]
) -> None:
    server, store = served
    r = server.get(f"/v1/kpi/{name}", **params)
    assert r.status_code == 200, r.text
    assert r.json() == as_json(expected(store))


def test_clv_pages_cover_every_buyer_once(served: tuple[Server, Store]) -> None:
    server, _ = served
    first = server.get("/v1/kpi/clv", page_size=40).json()
    total, ids = first["total_customers"], [c["customer_id"] for c in first["customers"]]
    assert total > 40
    for page in range(2, -(-total // 40) + 1):
        ids += [
            c["customer_id"]
            for c in server.get("/v1/kpi/clv", page=page, page_size=40).json()["customers"]
        ]
    assert len(ids) == len(set(ids)) == total


NAMES = sorted({c[0] for c in CASES})


@pytest.mark.parametrize("name", NAMES)
def test_write_keys_and_strangers_are_refused(served: tuple[Server, Store], name: str) -> None:
    server, _ = served
    assert server.get(f"/v1/kpi/{name}", role="write").status_code == 403
    assert server.get(f"/v1/kpi/{name}", role=None).status_code == 401
    assert server.get(f"/v1/kpi/{name}", role="admin").status_code == 200


@pytest.mark.parametrize(
    ("name", "params", "field"),
    [
        ("attribution", {"model": "psychic"}, "model"),
        ("attribution", {"lookback": "forever"}, "lookback"),
        ("attribution", {"from": "last tuesday"}, "from"),
        ("attribution", {"model": "time_decay", "half_life": "0d"}, "half_life"),
        ("cac", {"lookback": "0s"}, "lookback"),
        ("cac", {"from": "2025-02-01", "to": "2025-01-01"}, "to"),
        ("cac", {"margin": 2}, "margin"),
        ("cac", {"margin": "lots"}, "margin"),
        ("clv", {"time_unit": "year"}, "time_unit"),
        ("clv", {"page": 0}, "page"),
        ("clv", {"horizon": 0}, "horizon"),
        ("churn-risk", {"p_alive_below": 2}, "p_alive_below"),
        ("retention", {"period": "decade"}, "period"),
        ("nps", {"score": "bad name!"}, "score"),
        ("sales-cycle", {"stage_property": "x;drop"}, "stage_property"),
        ("summary", {"to": "soon"}, "to"),
    ],
)
def test_bad_input_names_the_field(
    served: tuple[Server, Store], name: str, params: dict[str, Any], field: str
) -> None:
    r = served[0].get(f"/v1/kpi/{name}", **params)
    assert 400 <= r.status_code < 500, r.text
    assert r.json()["error"]["field"] == field, r.text


def test_unknown_query_parameters_are_refused(served: tuple[Server, Store]) -> None:
    server = served[0]
    r = server.get("/v1/kpi/clv", timeunit="week")  # a typo must not answer for the default
    assert r.status_code == 400 and r.json()["error"]["field"] == "timeunit"
    assert "time_unit" in r.json()["error"]["message"]
    r = server.get("/v1/kpi/clv", **{"from": "2025-01-01"})  # CLV has no date range
    assert r.status_code == 400 and r.json()["error"]["field"] == "from"
    assert server.get("/v1/kpi/clv", role="write", timeunit="week").status_code == 403
    assert server.get("/v1/segments", sort="name").json()["error"]["field"] == "sort"


def test_churn_risk_as_csv(served: tuple[Server, Store]) -> None:
    server, store = served
    r = server.get("/v1/kpi/churn-risk", format="csv", limit=2)  # the whole list, as --csv
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.text == kpi.churn_risk(store).to_csv()
    assert server.get("/v1/kpi/churn-risk", format="xml").json()["error"]["field"] == "format"
