"""DuckDB's checkpoints, run as the store's upkeep by the group writer: never inside a commit, when
idle, or between commits past a WAL size; commits stay durable (every one syncs the WAL)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path

from loudou.backends.duckdb import DuckDBStore
from loudou.ingest.segment import parse_request
from loudou.server.writer import GroupWriter


def _rows(prefix: str, n: int = 50):
    body = (
        '{"batch": ['
        + ",".join(
            f'{{"type": "track", "event": "view", "userId": "u{i % 7}", "messageId": "{prefix}{i}"}}'
            for i in range(n)
        )
        + "]}"
    )
    parsed = parse_request("batch", body.encode(), datetime.now(UTC), None)
    assert parsed.rows is not None
    return parsed.rows


def _wal(path: Path) -> int:
    wal = Path(str(path) + ".wal")
    return wal.stat().st_size if wal.exists() else 0


def _wait(check, seconds: float = 10.0) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if check():
            return True
        time.sleep(0.02)
    return False


def test_an_idle_writer_checkpoints_and_commits_do_not(tmp_path):
    path = tmp_path / "x.duckdb"
    store = DuckDBStore(str(path))
    store.idle_poll = 0.05
    writer = GroupWriter(store)
    try:
        threshold = store.query("SELECT current_setting('checkpoint_threshold') AS t").column(0)
        assert threshold[0].as_py() != "16.0 MiB"  # raised: commits leave the WAL alone

        async def send() -> None:
            await asyncio.gather(*(writer.write(_rows(f"m{k}-")) for k in range(5)))

        asyncio.run(send())
        assert writer.rows == 250 and _wal(path) > 0 and writer.upkeeps == 0
        assert _wait(lambda: writer.upkeeps == 1)  # a second of idling with a small WAL
        assert _wal(path) == 0
        asyncio.run(send())  # all repeats: committed, nothing new
        assert writer.rows == 250
    finally:
        writer.close()
        store.close()
    assert DuckDBStore(str(path), read_only=True).counts()["events"] == 250


def test_a_busy_writer_checkpoints_between_commits_past_the_wal_limit(tmp_path):
    path = tmp_path / "x.duckdb"
    store = DuckDBStore(str(path))
    store.idle_poll, store.max_wal = 60, 1  # never idle long enough
    writer = GroupWriter(store)
    try:

        async def send() -> None:
            for k in range(3):
                await writer.write(_rows(f"b{k}-"))

        asyncio.run(send())
        assert _wait(lambda: writer.upkeeps == 3)
        assert writer.commits == 3 and _wal(path) == 0
    finally:
        writer.close()
        store.close()


def test_an_idle_writer_folds_first_and_last_seen_into_customers(tmp_path):
    """The server's commits log first/last seen (seen_log); an idle checkpoint folds the log
    into customers, and readers see the same times before and after."""
    path = tmp_path / "x.duckdb"
    store = DuckDBStore(str(path))
    store.idle_poll = 0.05
    writer = GroupWriter(store)
    try:
        asyncio.run(writer.write(_rows("f-", 21)))  # customers u0 .. u6
        logged = store.query("SELECT count(*) AS n FROM seen_log").column(0)[0].as_py()
        before = store.read_customers().to_pylist()
        assert logged == 7 and len(before) == 7 and all(r["first_seen"] for r in before)
        assert _wait(lambda: writer.upkeeps == 1)
        assert store.query("SELECT count(*) AS n FROM seen_log").column(0)[0].as_py() == 0
        assert store.read_customers().to_pylist() == before
        table = store.query("SELECT customer_id, first_seen, last_seen FROM customers ORDER BY 1")
        assert table.to_pylist() == [
            {k: r[k] for k in ("customer_id", "first_seen", "last_seen")} for r in before
        ]
    finally:
        writer.close()
        store.close()
