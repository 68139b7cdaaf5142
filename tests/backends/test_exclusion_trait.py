"""A trait condition inside an exclusion (issue 14, point 1: the SQL engine failed to bind it)."""

from __future__ import annotations

import loudou
from loudou.backends import Store


def test_trait_condition_in_an_exclusion(journeys_store: Store, reference: Store) -> None:
    """Bounces of western customers between view and signup exclude: h (09:05, between 09:00 and
    09:10) and i (no signup, bounce within the hour); j's bounce is northern and after signup."""
    exclusion = {
        "event": "bounce",
        "where": [{"trait": "region", "value": "west"}],
        "after_step": 1,
        "before_step": 2,
    }
    spec = loudou.FunnelSpec.parse(
        {"steps": ["view", "signup", "purchase"], "window": "1h", "exclusions": [exclusion]}
    )
    result = loudou.run_funnel(journeys_store, spec)
    assert [s.count for s in result.steps] == [10, 8, 5]
    assert result.to_dict() == loudou.run_funnel(reference, spec).to_dict()
