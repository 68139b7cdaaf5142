"""A 200 means durable: load running, kill -9 the server, restart, and every acknowledged event is
there exactly once; clients then retry what was not acknowledged and the counts add up."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx

import loudou

from serving import start


def test_kill_9_keeps_every_acknowledged_event(tmp_path: Path) -> None:
    db = tmp_path / "crash.duckdb"
    srv = start(db)
    acked: set[str] = set()
    unacked: list[list[dict]] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client(c: int) -> None:
        with srv.client() as http:
            n = 0
            while not stop.is_set():
                batch = [
                    {"type": "track", "userId": f"k{c}", "event": "e", "messageId": f"k{c}-{n}-{i}"}
                    for i in range(50)
                ]
                n += 1
                try:
                    ok = http.post("/v1/batch", json={"batch": batch}).status_code == 200
                except httpx.HTTPError:
                    ok = False
                with lock:
                    if ok:
                        acked.update(m["messageId"] for m in batch)
                    else:
                        unacked.append(batch)
                if not ok:
                    return

    threads = [threading.Thread(target=client, args=(c,)) for c in range(6)]
    for t in threads:
        t.start()
    time.sleep(1.5)
    srv.kill()  # mid-load, no shutdown
    stop.set()
    for t in threads:
        t.join()
    assert len(acked) > 1000

    store = loudou.connect(db)  # replays the WAL
    stored = store.query("SELECT event_id FROM events").column("event_id").to_pylist()  # type: ignore[attr-defined]
    store.close()
    assert acked <= set(stored)  # every acknowledged event survived
    assert len(stored) == len(set(stored))  # and none twice

    # at-least-once delivery: clients resend what was not acknowledged (some of it was stored)
    srv = start(db, keys=srv.keys)
    try:
        for batch in unacked:
            assert srv.post("/v1/batch", {"batch": batch}).status_code == 200
    finally:
        srv.stop()
    sent = acked | {m["messageId"] for b in unacked for m in b}
    store = loudou.connect(db)
    assert store.counts()["events"] == len(sent)  # exactly once
    store.close()
