"""An unknown event column is an error naming ``columns`` (the argument at fault)."""

from __future__ import annotations

import pytest

from loudou.backends import Store
from loudou.errors import LoudouError


def test_unknown_column_names_columns(journeys_store: Store) -> None:
    with pytest.raises(LoudouError, match="no_such_column") as caught:
        journeys_store.read_events(columns=("customer_id", "no_such_column"))
    assert caught.value.field == "columns"
