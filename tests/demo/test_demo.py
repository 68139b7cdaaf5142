"""The demo generator: deterministic, complete, realistic enough, and its planted effects show."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.compute as pc
import pytest

import loudou
from loudou import demo
from loudou.analyses.funnel import run_funnel
from loudou.backends.base import CUSTOMER_SCHEMA, EVENT_SCHEMA, SPEND_SCHEMA, Store
from loudou.model.results import FunnelResult

SMALL: dict[str, Any] = {"seed": 3, "customers": 500, "months": 2}
# Big enough for the planted effects to stand out of the noise, still about a second to build.
MEDIUM: dict[str, Any] = {"seed": 11, "customers": 5000, "months": 6}

REQUIRED_EVENTS = {
    "ad_click",
    "page_view",
    "content_download",
    "signup",
    "trial_start",
    "demo_request",
    "quote_sent",
    "deal_stage_changed",
    "order_completed",
    "nps_submitted",
    "referral_sent",
}
REQUIRED_TRAITS = {
    "age",
    "age_band",
    "gender",
    "city",
    "region",
    "acquisition_channel",
    "acquisition_date",
}


@pytest.fixture(scope="module")
def small() -> demo.DemoData:
    return demo.generate(**SMALL)


@pytest.fixture(scope="module")
def medium() -> demo.DemoData:
    return demo.generate(**MEDIUM)


@pytest.fixture(scope="module")
def events(medium: demo.DemoData) -> pd.DataFrame:
    return medium.events.to_pandas()


@pytest.fixture(scope="module")
def store(medium: demo.DemoData, tmp_path_factory: pytest.TempPathFactory) -> Store:
    db = loudou.connect(tmp_path_factory.mktemp("demo") / "d.duckdb")
    demo.load(db, medium)
    return db


def traits_of(data: demo.DemoData) -> list[dict[str, Any]]:
    return [json.loads(t) for t in data.customers.column("traits").to_pylist()]


def column_set(data: demo.DemoData, table: str, column: str) -> set[Any]:
    return set(getattr(data, table).column(column).to_pylist())


# ---- determinism and size -----------------------------------------------------------------------


def test_same_seed_gives_identical_tables(small: demo.DemoData) -> None:
    again = demo.generate(**SMALL)
    assert again.events.equals(small.events)
    assert again.customers.equals(small.customers)
    assert again.spend.equals(small.spend)


def test_same_seed_gives_identical_tables_through_the_planted_outage() -> None:
    (outage,) = demo.PLANTED_PERIODS
    months = (outage.first_day + outage.days) // 28 + 1  # long enough to cover the outage
    first, again = (demo.generate(seed=5, customers=400, months=months) for _ in range(2))
    assert (first.end - first.start).days > outage.first_day + outage.days
    assert first.events.equals(again.events) and first.customers.equals(again.customers)


def test_other_seed_gives_other_tables(small: demo.DemoData) -> None:
    other = demo.generate(**{**SMALL, "seed": 4})
    assert not other.events.equals(small.events)
    assert traits_of(other) != traits_of(small)


def test_sizes_and_schemas(small: demo.DemoData) -> None:
    n_days = (small.end - small.start).days
    assert (small.start, small.end, n_days) == (date(2025, 1, 1), date(2025, 3, 1), 59)
    assert small.customers.num_rows == 500
    assert 10_000 <= small.events.num_rows <= 40_000  # ~40 events per customer over two months
    assert small.spend.num_rows == n_days * len(demo.CAMPAIGNS)
    assert small.events.schema.equals(EVENT_SCHEMA)
    assert small.customers.schema.equals(CUSTOMER_SCHEMA)
    assert small.spend.schema.equals(SPEND_SCHEMA)


def test_event_ids_are_unique_and_carry_the_seed(small: demo.DemoData) -> None:
    ids = small.events.column("event_id")
    assert pc.count_distinct(ids).as_py() == small.events.num_rows
    assert all(i.startswith("e3-") for i in ids.to_pylist()[:100])


@pytest.mark.parametrize("bad", [{"customers": 0}, {"months": 0}])
def test_rejects_empty_business(bad: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        demo.generate(**{**SMALL, **bad})


# ---- content ------------------------------------------------------------------------------------


def test_required_events_traits_and_channels_present(small: demo.DemoData) -> None:
    assert column_set(small, "events", "event") >= REQUIRED_EVENTS
    traits = traits_of(small)
    assert all(REQUIRED_TRAITS <= t.keys() for t in traits)
    assert any("signup_date" in t for t in traits)
    assert {t["acquisition_channel"] for t in traits} == set(demo.CHANNELS)
    assert column_set(small, "events", "channel") - {None} >= set(demo.CHANNELS)
    assert {t["gender"] for t in traits} >= {"female", "male"}
    assert {t["age_band"] for t in traits} == set(demo.AGE_BANDS)


def test_properties_are_json_with_the_documented_fields(events: pd.DataFrame) -> None:
    props = events.properties.map(json.loads)
    by_event = props.groupby(events.event)
    stages = {p["to_stage"] for p in by_event.get_group("deal_stage_changed")}
    assert stages == set(demo.DEAL_STAGES)
    scores = [p["score"] for p in by_event.get_group("nps_submitted")]
    assert min(scores) >= 0 and max(scores) <= 10 and len(set(scores)) > 5
    orders = events[events.event == "order_completed"]
    assert orders.revenue.gt(0).all()
    assert events.revenue.notna().sum() == len(orders)  # revenue only on orders
    assert {p["order_number"] for p in props[orders.index]} >= {1, 2, 3}
    clicks = props[events.event == "ad_click"]
    assert all({"utm_source", "utm_campaign"} <= p.keys() for p in clicks)


def test_spend_covers_every_channel_every_day(small: demo.DemoData) -> None:
    spend = small.spend.to_pandas()
    n_days = (small.end - small.start).days
    days = {small.start + timedelta(days=i) for i in range(n_days)}
    covered = set(zip(spend.day, spend.channel, strict=True))
    assert covered == {(d, c) for d in days for c in demo.CHANNELS}
    assert spend.amount.gt(0).all()
    assert set(spend.currency) == {"CNY"}


def test_timestamps_fall_inside_the_period(small: demo.DemoData) -> None:
    ts = small.events.column("ts")
    assert pc.min(ts).as_py().date() >= small.start
    assert pc.max(ts).as_py().date() < small.end


def test_sessions_hold_a_few_events_and_touches_name_their_channel(events: pd.DataFrame) -> None:
    per_session = events.groupby("session_id").size()
    assert 4 <= per_session.mean() <= 12
    touches = events[events.event.isin(["ad_click", "email_clicked", "event_attended"])]
    assert touches.channel.notna().all() and touches.campaign.notna().all()
    crm = events[events.event.isin(["deal_stage_changed", "quote_sent"])]
    assert crm.session_id.isna().all()


def _touches_before_first_order(events: pd.DataFrame, medium: demo.DemoData) -> pd.DataFrame:
    first_order = events[events.event == "order_completed"].groupby("customer_id").ts.min()
    starts = events.dropna(subset=["session_id"]).groupby(["customer_id", "session_id"]).ts.min()
    starts = starts.reset_index().join(first_order.rename("bought"), on="customer_id", how="inner")
    touches = starts[starts.ts < starts.bought].groupby("customer_id").size().rename("touches")
    segment = {
        cid: json.loads(t)["segment"]
        for cid, t in zip(*medium.customers.to_pydict().values(), strict=True)
    }
    return touches.reset_index().assign(segment=lambda d: d.customer_id.map(segment))


def test_buyers_need_several_touches(events: pd.DataFrame, medium: demo.DemoData) -> None:
    touches = _touches_before_first_order(events, medium)
    business = touches[touches.segment == "business"].touches
    consumer = touches[touches.segment == "consumer"].touches
    assert len(business) > 20 and business.between(7, 13).all()
    assert 7 <= consumer.mean() <= 9


def test_journeys_go_back_and_forth_between_pricing_and_content(events: pd.DataFrame) -> None:
    views = events[events.event == "page_view"]
    pages = views.properties.map(lambda p: json.loads(p)["page"])
    kind = pages.map({"pricing": "P", "blog": "C", "case_studies": "C"}).fillna("")
    paths = kind.groupby(views.customer_id).agg("".join).str.replace("P+", "P", regex=True)
    back_and_forth = paths.str.replace("C+", "C", regex=True).str.contains("PCP")
    assert back_and_forth.mean() > 0.05


# ---- in a store ---------------------------------------------------------------------------------


def assert_funnel_shape(result: FunnelResult) -> None:
    counts = [s.count for s in result.steps]
    assert counts == sorted(counts, reverse=True)
    assert counts[0] > 0 and counts[-1] > 0


@pytest.mark.parametrize("make_spec", [demo.journey_funnel_spec, demo.sales_funnel_spec])
def test_funnels_run_on_the_demo(store: Store, make_spec: Any) -> None:
    spec = make_spec()
    assert all(s.name and s.name_zh for s in spec.steps)
    assert_funnel_shape(run_funnel(store, spec))


def test_load_fills_the_store_and_is_idempotent(small: demo.DemoData, tmp_path: Path) -> None:
    db = loudou.connect(tmp_path / "d.duckdb")
    demo.load(db, small, batch_rows=5_000)
    demo.load(db, small)
    counts = db.counts()
    assert counts["events"] == small.events.num_rows
    assert counts["customers"] == small.customers.num_rows
    assert counts["spend"] == small.spend.num_rows


def segment_vs_rest(result: FunnelResult, value: str, step: int) -> tuple[float, float]:
    """Conversion into ``step`` for one breakdown value and for everyone else."""
    seg = next(b.steps for b in result.breakdown if b.value == value)
    entered = result.steps[step - 1].count - seg[step - 1].count
    rest = (result.steps[step].count - seg[step].count) / entered
    return seg[step].conversion_from_previous, rest


@pytest.mark.parametrize("effect", demo.PLANTED_EFFECTS, ids=lambda e: f"{e.trait}={e.value}")
def test_planted_segment_converts_differently(store: Store, effect: demo.PlantedEffect) -> None:
    spec = demo.journey_funnel_spec() if effect.funnel == "journey" else demo.sales_funnel_spec()
    spec = spec.model_copy(update={"breakdown": f"customer.{effect.trait}"})
    result = run_funnel(store, spec)
    segment, rest = segment_vs_rest(result, effect.value, effect.step)
    if effect.factor < 1:
        assert segment < 0.85 * rest
    else:
        assert segment > 1.1 * rest


def test_planted_outage_fails_payments_on_its_platform_only(
    events: pd.DataFrame, medium: demo.DemoData
) -> None:
    """Checkout sessions that end in an order, during the planted outage and outside it."""
    (outage,) = demo.PLANTED_PERIODS
    first = pd.Timestamp(medium.start + timedelta(days=outage.first_day))
    during_days = events.ts.between(first, first + pd.Timedelta(days=outage.days), "left")
    checkout = (events.event == "page_view") & events.properties.str.contains('"page":"checkout"')
    paid = events.session_id.isin(set(events.session_id[events.event == "order_completed"]))
    device = events.properties[checkout].map(lambda p: json.loads(p)["device"])
    rates = {}
    for value in demo.DEVICES:
        on = checkout & (device == value).reindex(events.index, fill_value=False)
        rates[value] = (paid[on & during_days].mean(), paid[on & ~during_days].mean())
    hit, other = rates.pop(outage.value), rates.popitem()[1]
    assert hit[0] < 0.3 * hit[1]  # nine in ten first payments fail (repeat orders still go through)
    assert abs(other[0] - other[1]) < 0.2
