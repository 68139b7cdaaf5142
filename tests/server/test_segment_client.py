"""Segment compatibility: the real ``segment-analytics-python`` client, pointed at a loudou server,
works unchanged (batching, Basic auth, gzip, every call type)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from serving import Server, start


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start(tmp_path_factory.mktemp("segment") / "seg.duckdb")
    yield srv
    srv.stop()


@pytest.mark.parametrize("gzip", [False, True])
def test_segment_python_client(server: Server, gzip: bool) -> None:
    from segment.analytics import Client

    errors: list[Any] = []
    client = Client(
        write_key=server.keys["write"],
        host=server.url,
        gzip=gzip,
        on_error=lambda e, batch: errors.append(e),
        max_retries=1,
    )
    user, anon = f"seg-user-{gzip}", f"seg-anon-{gzip}"
    when = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)
    client.page(anonymous_id=anon, name="Pricing", properties={"path": "/pricing"}, timestamp=when)
    client.track(
        anonymous_id=anon,
        event="Trial Started",
        properties={"plan": "pro"},
        context={"campaign": {"source": "google", "name": "brand"}},
        timestamp=when,
    )
    client.identify(user_id=user, anonymous_id=anon, traits={"email": "x@example.com"})
    client.track(
        user_id=user, event="Order Completed", properties={"revenue": 49.0}, timestamp=when
    )
    client.screen(user_id=user, name="Home")
    client.group(user_id=user, group_id="acme", traits={"seats": 5})
    client.alias(previous_id=f"old-{gzip}", user_id=user)
    for i in range(150):  # more than one upload (100 per batch)
        client.track(user_id=user, event="tick", properties={"i": i})
    client.flush()
    client.join()
    assert errors == []

    events = server.get("/v1/events", customer_id=user, limit=1000).json()["events"]
    names = [e["event"] for e in events]
    assert names.count("tick") == 150
    for name in (
        "page_view",
        "Trial Started",
        "identify",
        "Order Completed",
        "screen_view",
        "group",
    ):
        assert name in names
    trial = next(e for e in events if e["event"] == "Trial Started")
    assert (trial["channel"], trial["campaign"], trial["ts"]) == (
        "google",
        "brand",
        "2025-05-01T12:00:00Z",
    )
    assert next(e for e in events if e["event"] == "Order Completed")["revenue"] == 49.0
    customer = server.get(f"/v1/customers/{anon}").json()["customer"]
    assert customer["customer_id"] == user and customer["traits"] == {"email": "x@example.com"}
    assert f"old-{gzip}" in customer["aliases"]
    # message ids are the client's: flushing the same messages again would add nothing
    ids = [e["event_id"] for e in events]
    assert len(ids) == len(set(ids))
