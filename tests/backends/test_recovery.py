"""A call that fails leaves the store usable: the next calls answer as usual."""

from __future__ import annotations

import pytest

from loudou.backends import Store

from journeys import events_table


def test_store_answers_after_a_failed_write(scratch: Store, ns: str) -> None:
    bad = events_table({f"{ns}x": [("view", 0)]}).drop_columns(["properties"])
    for _ in range(3):
        before = scratch.counts()
        with pytest.raises(Exception):  # noqa: B017 (which error is not part of the contract yet)
            scratch.insert_events(bad)
        assert scratch.counts() == before
        assert scratch.get_meta(f"{ns}none") is None
