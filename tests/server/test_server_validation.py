"""The fast validator of tracking messages against pydantic's (the reference): for every message,
the batch result equals validating each message with pydantic alone, the same Fields when valid and
the same Problem (field path, code, wording) when not."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

import orjson

from loudou.ingest.segment import (
    MAX_EVENT_BYTES,
    MESSAGE_TYPES,
    Accepted,
    Problem,
    _Clock,
    _fast,
    _Slow,
    _slow,
    to_rows,
    validate_batch,
    validate_one,
)

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
IDS: list[Any] = ["u1", 42, None, "", "x" * 1024, "x" * 1025, 0, 42, -7, 2**40, True, 1.5, [], {}]
TEXT: list[Any] = ["Signed Up", None, "n" * 200, "", "n" * 255, "n" * 256, 3, False, {"a": 1}]
TIMES: list[Any] = [
    None,
    "2025-05-01T10:00:00Z",
    "2025-05-01T10:00:00",
    "2025-05-01 10:00:00.5Z",
    "2025-05-01T10:00:00.123456+05:30",
    "2025-05-01T10:00:00.1234567Z",  # pydantic truncates; fast path leaves it to pydantic
    "2025-05-01t10:00:00z",
    "2025-05-01T10:00Z",
    "2025-05-01",
    "2025-13-01T10:00:00Z",
    "2025-05-01T24:00:00Z",
    "2025-05-01T10:00:00+24:00",
    "2025-05-01T10:00:00-23:59",
    "0001-01-01T00:00:00+01:00",  # before year 1 in UTC
    "9999-12-31T23:59:59Z",
    "2025-06-02T13:00:00Z",  # more than a day ahead
    "2025-06-02T11:00:00Z",  # less than a day ahead
    1748779200,
    "yesterday",
    "",
]
OBJECTS: list[Any] = [{"plan": "pro", "revenue": "12.5"}, None, {}, [], "x", 1]
CONTEXTS: list[Any] = [
    {"ip": "1.2.3.4", "campaign": {"source": "g", "name": "s", "medium": None}},
    {"page": {"url": "https://x.example/?utm_source=nl&utm_campaign=may"}, "sessionId": 7},
    None,
    {},
    "ctx",
]


def message(rng: random.Random) -> dict[str, Any]:
    m: dict[str, Any] = {}
    kind = rng.choice([*MESSAGE_TYPES, *MESSAGE_TYPES, "nope", None, 5])
    if kind is not None:
        m["type"] = kind
    pools = {
        "userId": IDS,
        "anonymousId": IDS,
        "messageId": ["m-1", None, "m" * 255, "m" * 256, "", 5],
        "timestamp": TIMES,
        "originalTimestamp": TIMES,
        "sentAt": TIMES,
        "context": CONTEXTS,
        "event": TEXT,
        "name": TEXT,
        "category": TEXT,
        "properties": OBJECTS,
        "traits": OBJECTS,
        "groupId": IDS,
        "previousId": IDS,
    }
    for key, pool in pools.items():
        if rng.random() < 0.5:  # mostly the first (valid) values, sometimes anything
            m[key] = rng.choice(pool[:3] if rng.random() < 0.8 else pool)
    return m


def reference(data: dict[str, Any]) -> Accepted:
    """validate_batch done by pydantic alone, message by message."""
    shared = data.get("context")
    out = Accepted()
    for i, item in enumerate(data["batch"]):
        if not isinstance(item, dict):
            out.problems.append(Problem("invalid_field", f"batch[{i}]", "must be a JSON object", i))
            continue
        if isinstance(shared, dict) and "context" not in item:
            item = {**item, "context": shared}
        got = _slow(item, f"batch[{i}]", i, NOW)
        (out.problems if isinstance(got, Problem) else out.messages).append(got)  # type: ignore[arg-type]
    return out


def test_fast_path_equals_pydantic_on_random_messages() -> None:
    rng = random.Random(7)
    valid = fast = 0
    for _ in range(60):
        batch: list[Any] = [message(rng) for _ in range(50)]
        batch.append("not an object")
        data: dict[str, Any] = {"batch": batch}
        if rng.random() < 0.5:
            data["context"] = rng.choice(CONTEXTS)
        got, want = validate_batch(data, 1000, NOW), reference(data)
        assert got.messages == want.messages
        assert got.problems == want.problems
        valid += len(got.messages)
        fast += sum(_took_fast(m) for m in batch)
    assert valid > 300  # the generator makes valid messages too, not only problems
    assert fast > 200  # and many of them take the fast path


def _took_fast(item: Any) -> bool:
    if not isinstance(item, dict) or item.get("type") not in MESSAGE_TYPES:
        return False
    try:
        _fast(item, item["type"], _Clock(NOW))
    except _Slow:
        return False
    return True


def test_single_endpoints_equal_pydantic() -> None:
    rng = random.Random(11)
    for _ in range(1500):
        m = message(rng)
        kind = rng.choice(list(MESSAGE_TYPES))
        got = validate_one(m, kind, NOW)
        want = _slow({**m, "type": kind}, "", None, NOW)
        assert (got.problems or got.messages) == [want]


def test_fields_and_rows_of_a_typical_message() -> None:
    body = {
        "type": "track",
        "userId": 42,
        "anonymousId": "a-1",
        "event": "Order Completed",
        "messageId": "m-1",
        "originalTimestamp": "2025-05-01T10:00:00+02:00",
        "sentAt": "2025-05-01T08:00:05Z",  # the client's clock is 5 s ahead
        "properties": {"revenue": "12.5", "sku": "A"},
        "context": {"campaign": {"source": "google", "name": "spring"}, "ip": "10.0.0.9"},
    }
    accepted = validate_batch({"batch": [body]}, 1000, NOW)
    rows = to_rows(accepted.messages, "127.0.0.1")
    ev = rows.events.to_pylist()[0]
    assert ev["customer_id"] == "42" and ev["event"] == "Order Completed"
    assert ev["ts"] == datetime(2025, 6, 1, 11, 59, 55)  # received - (sentAt - original)
    assert (ev["channel"], ev["campaign"], ev["revenue"]) == ("google", "spring", 12.5)
    assert orjson.loads(ev["properties"])["context_ip"] == "10.0.0.9"
    assert rows.links == [("a-1", "42")]


def test_oversized_message_in_a_big_batch() -> None:
    small = {"type": "track", "userId": "u", "event": "e"}
    big = {**small, "properties": {"blob": "x" * MAX_EVENT_BYTES}}
    data = {"batch": [small, big, small]}
    got = validate_batch(data, len(orjson.dumps(data)), NOW)
    assert len(got.messages) == 2
    assert [(p.index, p.code) for p in got.problems] == [(1, "payload_too_large")]
