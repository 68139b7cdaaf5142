"""Funnel specs: YAML, inline steps, templates and their error messages."""

from __future__ import annotations

import pytest

from loudou.errors import SpecError
from loudou.model.spec import FunnelSpec, parse_duration, parse_step
from loudou.model.templates import load_spec_file, save_stage_map, spec_from_data, template_spec

ISSUE_EXAMPLE = """
name: signup to big purchase
window: 7d            # s, m, h, d
mode: ordered         # ordered | strict_order | strict_increase | any_order
count: customers      # customers | sessions | totals
breakdown: region     # optional
steps:
  - {name: Sign-up, name_zh: 注册, event: signup}
  - name: Big purchase
    name_zh: 大额购买
    event: purchase
    where:
      - {property: revenue, op: ">", value: 100}
exclusions:
  - {event: refund, after_step: 1, before_step: 2}
"""


def test_issue_example_yaml(tmp_path):
    path = tmp_path / "f.yaml"
    path.write_text(ISSUE_EXAMPLE, encoding="utf-8")
    spec = FunnelSpec.from_yaml(path)
    assert spec.window_seconds == 7 * 86400
    assert [s.label("zh") for s in spec.steps] == ["注册", "大额购买"]
    assert spec.steps[1].where[0].property == "revenue"
    assert spec.exclusions[0].before_step == 2


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("30m", 1800), ("2h", 7200), ("14d", 1209600), (60, 60), ("1w", 604800)],
)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["", "3x", "-1d", "0s", "1.5s", True])
def test_bad_durations(bad):
    with pytest.raises(SpecError, match="window"):
        parse_duration(bad)


def test_inline_steps():
    step = parse_step("view|add_to_cart where price >= 10 and customer.city = 'New York'")
    assert step["event"] == ["view", "add_to_cart"]
    assert step["where"] == [
        {"property": "price", "op": ">=", "value": 10},
        {"trait": "city", "op": "=", "value": "New York"},
    ]
    assert parse_step("buy where sku in (a1, 7)")["where"][0]["value"] == ["a1", 7]
    assert parse_step("buy where coupon is not set")["where"][0] == {
        "property": "coupon",
        "op": "is not set",
    }


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"steps": []}, "steps", "at least one step"),
        ({"steps": [{"event": "a"}], "mode": "fast"}, "mode", "ordered"),
        ({"steps": [{"event": "a"}], "count": "people"}, "count", "customers"),
        ({"steps": [{"event": "a"}], "window": "soon"}, "window", "duration"),
        (
            {"steps": [{"event": "a", "where": [{"property": "x", "op": "in", "value": 3}]}]},
            "steps.0.where.0",
            "list",
        ),
        (
            {"steps": [{"event": "a", "where": [{"property": "x'; DROP", "value": 1}]}]},
            "steps.0.where.0",
            "valid name",
        ),
        (
            {
                "steps": [{"event": "a"}],
                "exclusions": [{"event": "r", "after_step": 2, "before_step": 1}],
            },
            "exclusions.0",
            "after_step",
        ),
        ({"steps": [{"event": "a"}], "colour": "red"}, "colour", "Extra inputs"),
        ({"steps": [{"event": f"e{i}"} for i in range(33)]}, "steps", "at most 32"),
    ],
)
def test_spec_errors_name_the_field(data, field, message):
    with pytest.raises(SpecError) as info:
        FunnelSpec.parse(data)
    assert info.value.field == field
    assert message in info.value.message


def test_yaml_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("steps: [a, b\n", encoding="utf-8")
    with pytest.raises(SpecError, match="not valid YAML"):
        load_spec_file(str(bad))
    with pytest.raises(SpecError, match="cannot read"):
        load_spec_file(str(tmp_path / "missing.yaml"))


def test_templates_build_labelled_steps_and_drop_unmapped_stages():
    spec = template_spec(
        "customer", {"awareness": "ad_click|page_view", "purchase": "order_completed"}
    )
    assert [s.label() for s in spec.steps] == ["Awareness", "Purchase"]
    assert [s.label("zh") for s in spec.steps] == ["意识", "购买"]
    assert spec.steps[0].events == ["ad_click", "page_view"]
    with pytest.raises(SpecError, match="no stage 'desire'"):
        template_spec("customer", {"desire": "x"})
    with pytest.raises(SpecError, match="unknown template"):
        template_spec("nope", {"a": "b"})


def test_saved_stage_map_is_reused():
    import loudou

    store = loudou.connect(":memory:")
    save_stage_map(store, "sales", {"lead": "lead_created", "won": "deal_won"})
    spec = spec_from_data({"template": "sales", "window": "30d"}, store)
    assert [s.events for s in spec.steps] == [["lead_created"], ["deal_won"]]
    assert spec.name_zh == "销售漏斗"
    with pytest.raises(SpecError, match="no stage map saved"):
        spec_from_data({"template": "aida"}, store)
