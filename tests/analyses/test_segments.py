"""Named segments: every rule kind on hand-made customers, saving, YAML, and use as a funnel filter
and breakdown (checked against the funnel run on a store holding only the segment's customers)."""

from __future__ import annotations

from datetime import datetime

import pytest

from loudou.analyses.funnel.rows import segment_funnel
from loudou.analyses.segments import (
    delete_segment,
    list_segments,
    load_segment,
    members,
    rfm_scores,
    save_segment,
    trait_matches,
)
from loudou.model.segment import Segment, SegmentError, load_segments_file, rfm_group

from journeys import counts, make_store, spec_of

DAY = 86400
# data end is the last event: day 100 (d5's purchase)
JOURNEYS = {
    # five buyers: d1 bought most recently and most often ... d5 least recently? see RFM test
    "d1": [("visit", 0, {"session_id": "a"}), ("order_completed", 99 * DAY, {"revenue": 10})]
    + [("order_completed", i * DAY, {"revenue": 10}) for i in (90, 91, 92, 93)],
    "d2": [("order_completed", i * DAY, {"revenue": 10}) for i in (80, 81, 82, 83)],
    "d3": [("order_completed", i * DAY, {"revenue": 10}) for i in (60, 61, 62)],
    "d4": [("order_completed", i * DAY, {"revenue": 100}) for i in (40, 41)],
    "d5": [("order_completed", 100 * DAY - 20 * DAY, {"revenue": 5})],
    "v1": [
        ("visit", 95 * DAY, {"session_id": "s1", "category": "Shoes"}),
        ("visit", 95 * DAY + 60, {"session_id": "s1", "category": "shoes"}),
        ("visit", 96 * DAY, {"session_id": "s2", "category": "bags"}),
        ("visit", 97 * DAY, {"category": "shoes"}),
        ("order_completed", 100 * DAY, {"revenue": 1}),
    ],
    "v2": [("visit", 10 * DAY, {"session_id": "s3", "category": "shoes"})],
}
TRAITS = {
    "d1": {"age": 22, "gender": "female", "region": "West", "signup_date": "2025-01-03"},
    "d2": {"age": 35, "gender": "male", "region": "East", "signup_date": "2025-02-10"},
    "d3": {"age": 45, "gender": "female", "region": "West"},
    "d4": {"age": "unknown", "region": "North"},
    "v1": {"age": 24, "gender": "female", "region": "west"},
}


@pytest.fixture(scope="module")
def store():
    return make_store(JOURNEYS, TRAITS)


def ids(store, rules, **kw):
    return sorted(members(store, Segment.parse({"name": "t", "rules": rules, **kw})))


def test_trait_rules_and_age_bands(store):
    assert ids(store, [{"trait": "age", "op": "between", "value": [18, 24]}]) == ["d1", "v1"]
    assert ids(store, [{"trait": "region", "op": "in", "value": ["West", "North"]}]) == [
        "d1",
        "d3",
        "d4",
    ]
    both = [{"trait": "gender", "value": "female"}, {"trait": "age", "op": ">=", "value": 30}]
    assert ids(store, both) == ["d3"]
    assert ids(store, [{"trait": "region", "op": "contains", "value": "WES"}]) == ["d1", "d3", "v1"]
    assert ids(store, [{"trait": "gender", "op": "is not set"}]) == ["d4", "d5", "v2"]
    # a missing trait satisfies only 'is not set'
    assert ids(store, [{"trait": "gender", "op": "!=", "value": "male"}]) == ["d1", "d3", "v1"]


@pytest.mark.parametrize(
    "actual,op,value,expected",
    [
        ("10", ">", 9, True),
        ("10", ">", "9", False),  # text compares as text
        ("abc", ">", 1, False),
        ("true", "=", True, True),
        ("3.0", "in", [3], True),
        (None, "not in", ["x"], False),
    ],
)
def test_trait_matches(actual, op, value, expected):
    assert trait_matches(actual, op, value) is expected


def test_cohorts(store):
    assert ids(store, [{"cohort": "2025-02", "cohort_of": "signup_date"}]) == ["d2"]
    assert ids(store, [{"cohort": "2025-W01", "cohort_of": "signup_date"}]) == ["d1"]
    # first seen: v2 and d1 on 2025-01-01 (day 0), d4 on day 40 = 2025-02-10
    assert ids(store, [{"cohort": "2025-01-01"}]) == ["d1"]
    assert ids(store, [{"cohort": "2025-02"}]) == ["d4"]


def test_rfm_scores_by_hand(store):
    s = rfm_scores(store).set_index("customer_id")
    # buyers d1..d5, v1; as of day 100. recency days: d1 1, d2 17, d3 38, d4 59, d5 20, v1 0
    assert s.loc["d2", "recency_days"] == pytest.approx(17)
    # percentile ranks among 6 buyers, score = ceil(5 * rank / 6); recent = high rank
    # recency order (most recent last): d4, d3, d5, d2, d1, v1 -> ranks 1..6
    expect_r = {"d4": 1, "d3": 2, "d5": 3, "d2": 4, "d1": 5, "v1": 5}
    # frequency: v1 1, d5 1 (tied: rank 1.5 -> 2), d4 2 (3 -> 3), d3 3 (4 -> 4), d2 4 and d1 5 -> 5
    expect_f = {"v1": 2, "d5": 2, "d4": 3, "d3": 4, "d2": 5, "d1": 5}
    for c in expect_r:
        assert (s.loc[c, "r"], s.loc[c, "f"]) == (expect_r[c], expect_f[c]), c
    assert s.loc["d1", "group"] == "champions"  # R5 F5
    assert s.loc["d4", "group"] == "at_risk"  # R1 F3
    assert s.loc["d3", "group"] == "at_risk"  # R2 F4
    assert s.loc["d5", "group"] == "about_to_sleep"  # R3 F2
    assert s.loc["d2", "group"] == "loyal"  # R4 F5
    assert (
        s.loc["v2", "group"] == "no_purchase"
        and s.loc["v2", "frequency"] != s.loc["v2", "frequency"]
    )
    assert s.loc["d4", "monetary"] == 200
    assert ids(store, [{"rfm": ["champions", "loyal"]}]) == ["d1", "d2"]


def test_rfm_group_map_covers_all_scores():
    assert {rfm_group(r, f) for r in range(1, 6) for f in range(1, 6)} >= {
        "champions",
        "hibernating",
        "at_risk",
        "loyal",
    }
    assert rfm_group(5, 1) == "new_customers" and rfm_group(1, 5) == "cant_lose"


def test_behaviour_rules(store):
    # last 10 days: v1 has sessions s1, s2 and two session-less days (4 visits); d1 five
    # session-less days; each session-less day is one visit
    assert ids(store, [{"visits": [3, None], "days": 10}]) == ["d1", "v1"]
    assert ids(store, [{"visits": [5, 5], "days": 10}]) == ["d1"]
    assert ids(store, [{"visits": [1, 1]}]) == ["d5", "v2"]
    assert ids(store, [{"interest": "shoes", "min_events": 2}]) == ["v1"]
    assert ids(store, [{"interest": "SHOES"}]) == ["v1", "v2"]
    # since day 80 inclusive: d2 (days 80-83) and d5 (day 80) count
    assert ids(store, [{"did": "order_completed", "days": 20}]) == ["d1", "d2", "d5", "v1"]
    assert ids(store, [{"did_not": "order_completed", "days": 20}]) == ["d3", "d4", "v2"]
    as_of = datetime(2025, 3, 1)  # day 59: look back 20 days -> d4 (day 40, 41)
    seg = Segment.parse({"name": "x", "rules": [{"did": "order_completed", "days": 20}]})
    assert sorted(members(store, seg, as_of)) == ["d4"]


def test_save_list_load_and_yaml(store, tmp_path):
    path = tmp_path / "segs.yaml"
    path.write_text(
        "segments:\n"
        "  - {name: young, name_zh: 年轻, rules: [{trait: age, op: between, value: [18, 24]}]}\n"
        "  - {name: buyers, rules: [{did: order_completed}]}\n",
        encoding="utf-8",
    )
    segs = load_segments_file(path)
    for s in segs:
        save_segment(store, s)
    save_segment(store, segs[0])  # replacing keeps one entry
    assert [s.name for s in list_segments(store)] == ["young", "buyers"]
    assert load_segment(store, "young").label("zh") == "年轻"
    with pytest.raises(SegmentError, match="no segment named 'nope'"):
        load_segment(store, "nope")
    delete_segment(store, "buyers")
    assert [s.name for s in list_segments(store)] == ["young"]
    with pytest.raises(SegmentError):
        load_segment(store, "buyers")
    save_segment(store, segs[1])
    assert [s.name for s in list_segments(store)] == ["young", "buyers"]


@pytest.mark.parametrize(
    "data,field",
    [
        ({"name": "x", "rules": [{"trait": "a", "rfm": ["loyal"]}]}, "rules.0"),
        ({"name": "x", "rules": [{"rfm": ["best"]}]}, "rules.0"),
        ({"name": "x", "rules": []}, "rules"),
        ({"name": "a,b", "rules": [{"did": "x"}]}, "name"),
        ({"name": "x", "rules": [{"trait": "a", "op": "in", "value": 3}]}, "rules.0"),
        ({"name": "x", "rules": [{"cohort": "Jan"}]}, "rules.0"),
        ([1], "segment"),
    ],
)
def test_bad_segments_name_the_field(data, field):
    with pytest.raises(SegmentError) as e:
        Segment.parse(data)
    assert e.value.field == field


def test_segment_as_filter_and_breakdown_equals_funnel_on_segment_alone(store):
    spec = spec_of(["visit", "order_completed"], window="200d")
    save_segment(
        store,
        Segment.parse(
            {"name": "west", "rules": [{"trait": "region", "op": "in", "value": ["West", "west"]}]}
        ),
    )
    result = segment_funnel(store, spec, segment="west")
    alone = make_store({c: JOURNEYS[c] for c in ("d1", "d3", "v1")})
    assert [s.count for s in result.steps] == counts(alone, spec)
    split = segment_funnel(store, spec, by="segment:west,young")
    assert [b.value for b in split.breakdown] == ["west", "young"]
    young = make_store({c: JOURNEYS[c] for c in ("d1", "v1")})
    assert [s.count for s in split.breakdown[1].steps] == counts(young, spec)


def test_compare_by_age_bands_and_cohort(store):
    from loudou.analyses.compare import compare

    spec = spec_of(["order_completed"] * 2, window="200d")  # any customer with an order enters
    result = compare(store, spec, ["age:18,25,40", "cohort", "cohort:signup_date"], min_customers=1)
    groups = {(s.property, s.value): s.customers for s in result.segments}
    # buyers: d1 (22), d2 (35), d3 (45), d4 ('unknown'), d5 (no age), v1 (24)
    assert {k: v for k, v in groups.items() if k[0] == "age"} == {
        ("age", "18-24"): 2,
        ("age", "25-39"): 1,
        ("age", "40+"): 1,
        ("age", "(none)"): 2,
    }
    # first seen: d1 2025-01, d2 2025-03 (day 80), d3 2025-03 (day 60), d4 2025-02, d5 2025-03, v1 2025-04
    assert {k[1]: v for k, v in groups.items() if k[0] == "cohort"} == {
        "2025-01": 1,
        "2025-02": 1,
        "2025-03": 3,
        "2025-04": 1,
    }
    assert {k[1]: v for k, v in groups.items() if k[0] == "cohort:signup_date"} == {
        "2025-01": 1,
        "2025-02": 1,
        "(none)": 4,
    }
