"""Bad input raises a LoudouError naming the field at fault, whatever the backend."""

from __future__ import annotations

from typing import Any

import pytest

import loudou
from loudou import kpi
from loudou.backends import Store
from loudou.errors import LoudouError


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"steps": []}, "steps"),
        ({"mode": "sideways"}, "mode"),
        ({"count": "accounts"}, "count"),
        ({"window": "0d"}, "window"),
        ({"window": "soon"}, "window"),
        ({"exclusions": [{"event": "bounce", "after_step": 2, "before_step": 1}]}, "exclusions.0"),
        ({"breakdown": "bad'name"}, "breakdown"),
        ({"date_from": "2025-02-01", "date_to": "2025-01-01"}, "date_to"),
        (
            {"steps": ["view", {"event": "buy", "where": [{"property": "x", "op": "in"}]}]},
            "steps.1.where.0",
        ),
    ],
)
def test_bad_spec_names_the_field(
    journeys_store: Store, options: dict[str, Any], field: str
) -> None:
    body = {"steps": ["view", "purchase"], **options}
    with pytest.raises(LoudouError) as caught:
        loudou.run_funnel(journeys_store, loudou.FunnelSpec.parse(body))
    assert caught.value.field == field, caught.value


def test_bad_inline_step_names_the_field(journeys_store: Store) -> None:
    with pytest.raises(LoudouError) as caught:
        loudou.Funnel(["view", "purchase where revenue >"]).run(journeys_store)
    assert caught.value.field == "where"


def test_unknown_saved_segment(journeys_store: Store) -> None:
    spec = loudou.FunnelSpec.parse({"steps": ["view", "purchase"], "breakdown": "segment:nope"})
    with pytest.raises(LoudouError, match="nope") as caught:
        loudou.run_funnel(journeys_store, spec)
    assert caught.value.field == "segment"


def test_bad_names_in_reads(journeys_store: Store) -> None:
    with pytest.raises(LoudouError) as caught:
        journeys_store.read_events(properties=("bad'name",))
    assert caught.value.field == "properties"
    with pytest.raises(LoudouError) as caught:
        journeys_store.read_customers(("bad'name",))
    assert caught.value.field == "traits"


def test_kpi_option_errors(journeys_store: Store) -> None:
    with pytest.raises(LoudouError) as caught:
        kpi.repeat(journeys_store, by="no_such_trait", events=kpi.KpiEvents(purchase="purchase"))
    assert caught.value.field == "by"  # analyses name their parameters (the CLI says --by)
    with pytest.raises(LoudouError) as caught:
        kpi.retention(journeys_store, period="fortnight")
    assert caught.value.field == "--period"
