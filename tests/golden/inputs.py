"""The fixed data the golden outputs are recorded on: a seeded demo business (served over HTTP and,
as a byte-identical copy, read by the CLI), a small hand-built store for the funnel edge cases, a
scratch store for imports and keys, and the input files (specs, segments, import files).

Everything here is literal data or seeded, so two builds give the same stores. The specs are
written out here rather than taken from ``loudou.demo`` so that the inputs cannot move with the
code under test.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

import loudou
from loudou import demo

from journeys import Journey, events_table

# A small business: big enough that every analysis and KPI has rows (orders, deals, NPS answers,
# referrals), small enough that the whole golden test runs in well under a minute.
DEMO = {"seed": 11, "customers": 1000, "months": 4}


def _step(name: str, name_zh: str, event: str, *where: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "name_zh": name_zh, "event": event, "where": list(where)}


def _prop(key: str, value: Any, op: str = "=") -> dict[str, Any]:
    return {"property": key, "op": op, "value": value}


JOURNEY_SPEC: dict[str, Any] = {
    "name": "Customer journey",
    "name_zh": "客户旅程漏斗",
    "window": "180d",
    "steps": [
        _step("Awareness", "认知", "page_view", _prop("first_visit", True)),
        _step("Consideration", "考虑", "page_view", _prop("page", "pricing")),
        _step("Conversion", "转化", "order_completed", _prop("order_number", 1)),
        _step("Retention", "留存", "order_completed", _prop("order_number", 2, ">=")),
        _step("Advocacy", "推荐", "referral_sent"),
    ],
}
SALES_SPEC: dict[str, Any] = {
    "name": "Sales pipeline",
    "name_zh": "销售漏斗",
    "window": "120d",
    "steps": [
        _step(name, zh, "deal_stage_changed", _prop("to_stage", stage))
        for name, zh, stage in (
            ("Lead", "潜在客户", "lead"),
            ("Qualified", "资格评定", "qualified"),
            ("Intent", "意向客户", "intent"),
            ("Negotiation", "谈判", "negotiation"),
            ("Won", "成交", "won"),
        )
    ],
}
CHECKOUT_SPEC: dict[str, Any] = {
    "name": "Web checkout",
    "name_zh": "网上结账",
    "window": "1d",
    "steps": [
        _step("Checkout", "结账", "page_view", _prop("page", "checkout")),
        _step("Payment", "支付成功", "order_completed"),
    ],
}
# The signup funnel with the spec options the demo specs do not use.
SIGNUP_SPEC: dict[str, Any] = {
    "name": "Signup to order",
    "window": "30d",
    "mode": "strict_increase",
    "breakdown": "device",
    "breakdown_limit": 1,
    "date_from": "2025-02-01",
    "date_to": "2025-03-15",
    "steps": [
        {"event": ["signup", "demo_request"]},
        {
            "event": "trial_start",
            "where": [{"trait": "segment", "op": "in", "value": ["consumer"]}],
        },
        {"event": "order_completed", "where": [_prop("revenue", 100, ">")]},
    ],
    "exclusions": [{"event": "quote_sent", "after_step": 1, "before_step": 3}],
}

SEGMENTS_FILE: dict[str, Any] = {
    "segments": [
        {"name": "jan_signups", "rules": [{"cohort": "2025-01", "cohort_of": "acquisition_date"}]},
        {"name": "frequent", "rules": [{"visits": [5, None], "days": 30}]},
        {
            "name": "blog_fans",
            "rules": [
                {"interest": "blog", "interest_property": "page", "min_events": 2, "days": 90}
            ],
        },
        {
            "name": "lapsed",
            "rules": [{"did": "order_completed"}, {"did_not": "order_completed", "days": 30}],
        },
        {
            "name": "mid_south",
            "name_zh": "南部中年",
            "description": "30 to 45 in the South",
            "rules": [
                {"trait": "age", "op": "between", "value": [30, 45]},
                {"trait": "region", "op": "in", "value": ["South"]},
            ],
        },
    ]
}

# ---- the hand-built store: one behaviour per customer (times: seconds from 2025-01-01) ----------

H, D = 3600, 86400
HAND_JOURNEYS: dict[str, Journey] = {
    # the plain path, one session; page views between steps
    "ann": [
        ("view", 0, {"sku": "A", "price": 12, "device": "mobile", "session_id": "a1"}),
        ("page_view", 600, {"session_id": "a1", "channel": "search", "campaign": "brand"}),
        ("cart", H, {"sku": "A", "price": 12, "session_id": "a1"}),
        ("purchase", 2 * H, {"sku": "A", "revenue": 150.5, "session_id": "a1"}),
    ],
    # changes sku between steps (hold_constant), on desktop
    "bob": [
        ("view", 0, {"sku": "B", "price": 30, "device": "desktop"}),
        ("cart", 3 * H, {"sku": "A", "price": 12}),
        ("purchase", 5 * H, {"sku": "A", "revenue": 12.0}),
    ],
    "cat": [("view", 0, {"sku": "C", "price": 8, "device": "tablet"})],
    # never viewed: not in the funnel
    "dan": [("cart", 0, {"sku": "A", "price": 12}), ("purchase", H, {"revenue": 40.0})],
    # refunds between view and purchase (exclusion)
    "eve": [
        ("view", 0, {"sku": "A", "price": 12, "device": "mobile"}),
        ("refund", 1800),
        ("cart", H, {"sku": "A", "price": 12}),
        ("purchase", 2 * H, {"sku": "A", "revenue": 99.0}),
    ],
    # cart exactly one window later (counts), purchase one second late (does not)
    "fay": [
        ("view", 0, {"sku": "A", "price": 20, "device": "mobile"}),
        ("cart", D, {"sku": "A", "price": 20}),
        ("purchase", D + 1, {"sku": "A", "revenue": 20.0}),
    ],
    # another event inside the chain (strict_order stops there)
    "gus": [
        ("view", 0, {"sku": "A", "price": 15, "device": "desktop"}),
        ("help", 1200),
        ("cart", 2400, {"sku": "A", "price": 15}),
        ("purchase", 3600, {"sku": "A", "revenue": 15.0}),
    ],
    # steps in reverse order (any_order completes, ordered does not)
    "hal": [
        ("purchase", 0, {"revenue": 60.0}),
        ("cart", H, {"sku": "D", "price": 60}),
        ("view", 2 * H, {"sku": "D", "price": 60, "device": "desktop"}),
    ],
    # all three at the same second (ties; strict_increase stops)
    "ivy": [
        ("view", 7 * D, {"sku": "E", "price": 11, "device": "mobile"}),
        ("cart", 7 * D, {"sku": "E", "price": 11}),
        ("purchase", 7 * D, {"sku": "E", "revenue": 11.0}),
    ],
    # two attempts (count: totals), the second completes
    "jon": [
        ("view", 0, {"sku": "F", "price": 50, "device": "desktop"}),
        ("cart", H, {"sku": "F", "price": 50}),
        ("view", 3 * D, {"sku": "F", "price": 50, "device": "desktop"}),
        ("cart", 3 * D + H, {"sku": "F", "price": 50}),
        ("purchase", 3 * D + 2 * H, {"sku": "F", "revenue": 50.0}),
    ],
    # two sessions (count: sessions): the first stops at cart, the second completes
    "kim": [
        ("view", 2 * D, {"sku": "A", "price": 12, "device": "mobile", "session_id": "k1"}),
        ("cart", 2 * D + 600, {"sku": "A", "price": 12, "session_id": "k1"}),
        ("view", 4 * D, {"sku": "A", "price": 12, "device": "mobile", "session_id": "k2"}),
        ("cart", 4 * D + 600, {"sku": "A", "price": 12, "session_id": "k2"}),
        ("purchase", 4 * D + 1200, {"sku": "A", "revenue": 24.0, "session_id": "k2"}),
    ],
    # in February (date ranges, trends)
    "leo": [
        ("view", "2025-02-03 09:00:00", {"sku": "G", "price": 70, "device": "desktop"}),
        ("cart", "2025-02-03 09:30:00", {"sku": "G", "price": 70}),
        ("purchase", "2025-02-04 08:00:00", {"sku": "G", "revenue": 140.0}),
        ("refund", "2025-02-10 08:00:00"),
    ],
    # cheap items (fails "price >= 10")
    "mia": [
        ("view", "2025-02-05 10:00:00", {"sku": "H", "price": 5, "device": "mobile"}),
        ("cart", "2025-02-05 10:05:00", {"sku": "H", "price": 5}),
        ("purchase", "2025-02-05 10:10:00", {"sku": "H", "revenue": 5.0}),
    ],
    # no device property (breakdown "(none)"), no traits
    "ned": [
        ("signup", "2025-01-20 12:00:00"),
        ("view", "2025-01-20 12:01:00", {"sku": "A", "price": 12}),
        ("help", "2025-01-20 12:02:00"),
        ("view", "2025-01-20 12:03:00", {"sku": "A", "price": 12}),
    ],
}
HAND_TRAITS: dict[str, dict[str, Any]] = {
    "ann": {"region": "North", "plan": "pro", "age": 31},
    "bob": {"region": "South", "plan": "free", "age": 45},
    "cat": {"region": "North", "plan": "free", "age": 22},
    "dan": {"region": "East", "plan": "pro", "age": 38},
    "eve": {"region": "North", "plan": "pro", "age": 27},
    "fay": {"region": "South", "plan": "free", "age": 52},
    "gus": {"region": "East", "plan": "pro", "age": 41},
    "hal": {"region": "South", "plan": "free", "age": 19},
    "ivy": {"region": "North", "plan": "pro", "age": 35},
    "jon": {"region": "East", "plan": "free", "age": 29},
    "kim": {"region": "North", "plan": "pro", "age": 33},
    "leo": {"region": "South", "plan": "pro", "age": 60},
    "mia": {"region": "East", "plan": "free", "age": 24},
}
HAND_SPEC: dict[str, Any] = {
    "name": "Shop",
    "name_zh": "商店",
    "window": "1d",
    "steps": [
        {"name": "View", "name_zh": "浏览", "event": "view"},
        {"name": "Cart", "name_zh": "加购", "event": "cart"},
        {"name": "Buy", "name_zh": "购买", "event": "purchase"},
    ],
    "exclusions": [{"event": "refund", "after_step": 1, "before_step": 3}],
    "hold_constant": ["sku"],
}

# ---- import files (scratch store): one row each with a problem --------------------------------

IMPORT_FILES: dict[str, str] = {
    "events.csv": (
        "user_id,event,timestamp,revenue,plan,session_id,utm_source\n"
        "u1,view,2025-03-01 09:00:00,,pro,s1,search\n"
        "u1,cart,2025-03-01 09:05:00,,pro,s1,\n"
        "u1,purchase,2025-03-01 09:10:00,25.5,pro,s1,\n"
        "u2,view,2025-03-02 23:30:00,,free,s2,social\n"
        "u2,cart,2025-03-03 00:10:00,,free,s2,\n"
        "u3,view,not a time,,free,,\n"
        ",view,2025-03-02 10:00:00,,free,,\n"
    ),
    "events.jsonl": (
        '{"customer_id": "u3", "event": "view", "ts": "2025-03-04T08:00:00Z", "sku": "A"}\n'
        '{"customer_id": "u3", "event": "purchase", "ts": 1741076400, "revenue": 9.5}\n'
        '{"customer_id": "u4", "event": "view"}\n'
    ),
    "customers.csv": (
        "customer_id,region,age,signup_date\n"
        "u1,North,31,2025-02-01\n"
        "u2,South,,2025-02-15\n"
        "u3,East,27,\n"
        ",West,40,2025-01-01\n"
    ),
    "spend.csv": (
        "day,channel,campaign,amount,currency\n"
        "2025-03-01,search,brand,120.5,CNY\n"
        "2025-03-01,social,,80,CNY\n"
        "2025-03-02,search,brand,99.5,\n"
        "not a day,search,brand,10,CNY\n"
    ),
    "bad.txt": "nothing to see\n",
}


@dataclass(frozen=True)
class Data:
    """Where the fixed data lives (all under ``folder``)."""

    folder: Path
    demo_db: Path  # the CLI reads and writes this copy of the demo
    demo_copy: Path  # and only reads this one, from a second process (see record.LANES)
    served_db: Path  # ``loudou serve`` holds this one
    hand_db: Path
    scratch_db: Path

    def file(self, name: str) -> Path:
        return self.folder / "in" / name


def _write_store(path: Path, journeys: dict[str, Journey], traits: dict[str, Any]) -> None:
    """``journeys.make_store`` into a file (the CLI opens stores by path)."""
    import pyarrow as pa

    store = loudou.connect(path)
    store.insert_events(events_table(journeys))
    store.upsert_customers(
        pa.table({"customer_id": list(traits), "traits": [json.dumps(v) for v in traits.values()]})
    )
    store.close()


def build_data(folder: Path) -> Data:
    """Build every store and input file under ``folder``."""
    data = Data(
        folder=folder,
        demo_db=folder / "demo.duckdb",
        demo_copy=folder / "demo_copy.duckdb",
        served_db=folder / "served.duckdb",
        hand_db=folder / "hand.duckdb",
        scratch_db=folder / "scratch.duckdb",
    )
    (folder / "in").mkdir(parents=True, exist_ok=True)
    (folder / "out").mkdir(exist_ok=True)
    specs = {
        "journey.yaml": JOURNEY_SPEC,
        "sales.yaml": SALES_SPEC,
        "checkout.yaml": CHECKOUT_SPEC,
        "signup.yaml": SIGNUP_SPEC,
        "hand.yaml": HAND_SPEC,
        "segments.yaml": SEGMENTS_FILE,
        "empty_steps.yaml": {"name": "nothing", "steps": []},
    }
    for name, doc in specs.items():
        data.file(name).write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False))
    data.file("broken.yaml").write_text("steps: [view, cart\n")
    for name, text in IMPORT_FILES.items():
        data.file(name).write_text(text)

    store = loudou.connect(data.served_db)
    demo.load(store, demo.generate(**DEMO))
    store.close()
    shutil.copyfile(data.served_db, data.demo_db)
    shutil.copyfile(data.served_db, data.demo_copy)
    _write_store(data.hand_db, HAND_JOURNEYS, HAND_TRAITS)
    return data
