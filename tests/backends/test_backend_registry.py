"""``loudou.connect(url)`` picks the backend from the URL: a plain path or ``duckdb:///path`` is
an embedded DuckDB file; an unknown scheme is one readable error naming the field, not a file
called "chdb:" in the working directory."""

from __future__ import annotations

import pytest

import loudou
from loudou.backends import resolve
from loudou.errors import StoreError


def test_a_plain_path_and_a_duckdb_url_open_the_same_file(tmp_path):
    path = tmp_path / "x.duckdb"
    with loudou.connect(path) as store:
        store.set_meta("k", "v")
    with loudou.connect(f"duckdb://{path}") as store:
        assert store.get_meta("k") == "v"
    assert resolve(str(path))[0] is resolve(f"duckdb://{path}")[0]
    assert resolve(f"duckdb://{path}")[1] == str(path)


@pytest.mark.parametrize("url", ["chdb:///tmp/x", "clickhouse://h:8123/db", "postgres://x"])
def test_an_unknown_scheme_is_an_error_naming_the_field(url, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(StoreError) as caught:
        loudou.connect(url)
    assert caught.value.field == "db"
    assert (
        url.split("://")[0] + "://" in caught.value.message and "duckdb://" in caught.value.message
    )
    assert list(tmp_path.iterdir()) == []  # nothing was created
