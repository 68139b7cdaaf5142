"""Cross-check against ClickHouse itself (embedded via chdb): per customer, our level must equal
windowFunnel's on random data with many timestamp ties, for 10k customers."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import loudou
from loudou.backends.base import EVENT_SCHEMA

from journeys import levels_by_customer, spec_of

chdb_session = pytest.importorskip("chdb.session")

STEPS = ["a", "b|c", "c", "d where v >= 1", "e"]
CH_CONDS = "event = 'a', event IN ('b', 'c'), event = 'c', event = 'd' AND v >= 1, event = 'e'"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    rng = np.random.default_rng(20251123)
    n_customers = 10_000
    per = rng.integers(1, 25, n_customers)
    n = int(per.sum())
    cust = np.repeat(np.arange(n_customers), per)
    names = np.array(["a", "b", "c", "d", "e", "x"])
    event = names[rng.choice(6, n, p=[0.25, 0.15, 0.15, 0.15, 0.1, 0.2])]
    # whole minutes over four hours: plenty of ties and plenty of gaps longer than the window
    ts_us = (1_735_689_600 + rng.integers(0, 240, n) * 60) * 1_000_000
    v = rng.integers(0, 3, n)
    ids = np.array([f"u{c:05d}" for c in range(n_customers)])[cust]
    raw = pa.table({"customer_id": ids, "event": event, "ts": ts_us.astype(np.uint64), "v": v})
    path = tmp_path_factory.mktemp("ch") / "events.parquet"
    pq.write_table(raw, path)

    store = loudou.connect(":memory:")
    store.insert_events(
        pa.table(
            {
                "event_id": [f"e{i}" for i in range(n)],
                "customer_id": ids,
                "event": event,
                "ts": pa.array(ts_us, pa.timestamp("us")),
                "session_id": pa.nulls(n, pa.string()),
                "channel": pa.nulls(n, pa.string()),
                "campaign": pa.nulls(n, pa.string()),
                "revenue": pa.nulls(n, pa.float64()),
                "properties": [json.dumps({"v": int(x)}) for x in v],
            },
            schema=EVENT_SCHEMA,
        )
    )
    sess = chdb_session.Session()
    sess.query(
        "CREATE TABLE ev (customer_id String, event String, ts UInt64, v Int64) "
        "ENGINE = MergeTree ORDER BY (customer_id, ts)"
    )
    sess.query(f"INSERT INTO ev SELECT customer_id, event, ts, v FROM file('{path}', Parquet)")
    yield store, sess
    sess.close()


def clickhouse_levels(sess, window_s: int, option: str) -> dict[str, int]:
    opt = f", '{option}'" if option else ""
    df = sess.query(
        f"SELECT customer_id, windowFunnel({window_s * 1_000_000}{opt})(ts, {CH_CONDS}) AS lvl "
        "FROM ev GROUP BY customer_id",
        "DataFrame",
    )
    return {c: int(lv) for c, lv in zip(df["customer_id"], df["lvl"], strict=True) if lv > 0}


@pytest.mark.parametrize("mode", ["ordered", "strict_order", "strict_increase"])
@pytest.mark.parametrize("window_s", [600, 3600, 14400])
def test_levels_equal_clickhouse_window_funnel(data, mode, window_s):
    store, sess = data
    ours = levels_by_customer(store, spec_of(STEPS, window=window_s, mode=mode))
    theirs = clickhouse_levels(sess, window_s, "" if mode == "ordered" else mode)
    assert len(theirs) > 5_000
    assert ours == theirs
    assert len(set(theirs.values())) >= 3  # several levels occur: the data is not trivial
    if window_s == 14400 and mode == "ordered":
        assert set(theirs.values()) == set(range(1, len(STEPS) + 1))
