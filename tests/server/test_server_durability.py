"""A 200 means durable: load running, kill -9 the server, restart, and every acknowledged event is
there exactly once; clients then retry what was not acknowledged and the counts add up."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import httpx

import loudou

from serving import children, make_keys, start


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

    parsers = children(srv.proc.pid)
    assert parsers  # the parser process (loudou serve --parsers 1)
    threads = [threading.Thread(target=client, args=(c,)) for c in range(6)]
    for t in threads:
        t.start()
    time.sleep(1.5)
    srv.kill()  # mid-load, no shutdown
    stop.set()
    for t in threads:
        t.join()
    assert len(acked) > 1000
    deadline = time.monotonic() + 10  # the parser process exits with its server
    while any(Path(f"/proc/{pid}").exists() for pid in parsers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(Path(f"/proc/{pid}").exists() for pid in parsers)

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


def test_a_failed_commit_is_a_503_and_the_server_stays_up(tmp_path: Path) -> None:
    """Writes fail as on a full disk (a file size limit): the requests of that commit get a 503 in
    the one error shape, and the server answers on; every event acknowledged, before or after
    the failures, is there after a kill -9."""
    db = tmp_path / "full.duckdb"
    keys = make_keys(db)
    limit = db.stat().st_size + 96 * 1024
    srv = start(db, keys, max_file_bytes=limit)
    acked: set[str] = set()
    failed: list[httpx.Response] = []
    try:
        with srv.client() as http:
            for n in range(300):
                pad = "x" * (2000 if not failed else 20)  # after a failure, smaller ones may fit
                batch = [
                    {"type": "track", "userId": "f", "event": "e", "messageId": f"f{n}-{i}"}
                    | {"properties": {"pad": pad}}
                    for i in range(10)
                ]
                r = http.post("/v1/batch", json={"batch": batch})
                if r.status_code == 200:
                    acked.update(m["messageId"] for m in batch)
                else:
                    failed.append(r)
                if len(failed) >= 5:
                    break
        assert failed and all(r.status_code == 503 for r in failed), failed[0].text
        assert failed[0].json()["error"]["code"] == "unavailable"
        assert httpx.get(srv.url + "/v1/health").status_code == 200  # still up
    finally:
        srv.kill()
    assert acked
    store = loudou.connect(db)
    stored = set(store.query("SELECT event_id FROM events").column("event_id").to_pylist())  # type: ignore[attr-defined]
    store.close()
    assert acked <= stored


def test_server_parses_itself_when_its_parser_process_dies(tmp_path: Path) -> None:
    srv = start(tmp_path / "p.duckdb")
    try:
        (parser,) = children(srv.proc.pid)
        os.kill(parser, signal.SIGKILL)
        big = [
            {"type": "track", "userId": "u", "event": "e", "messageId": f"pd-{i}"}
            | {"properties": {"pad": "x" * 200}}
            for i in range(100)
        ]
        answers = [srv.post("/v1/batch", {"batch": big}).status_code for _ in range(3)]
        # a request sent to the parser as it died gets a 503 (clients retry); then 200s
        assert answers[-1] == 200 and set(answers) <= {200, 503}
        assert srv.get("/v1/events", customer_id="u", limit=1000).json()["events"]
    finally:
        srv.stop()
