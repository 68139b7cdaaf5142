"""The writer skips the identity join for batches without aliases: that must never store an
event under an alias, whoever linked it (this store, a store opened before, another connection)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import loudou
from loudou.ingest.segment import to_rows, validate_batch

NOW = datetime(2025, 6, 1, tzinfo=UTC)


def send(store: Any, messages: list[dict[str, Any]]) -> None:
    accepted = validate_batch({"batch": messages}, 1000, NOW)
    assert not accepted.problems
    rows = to_rows(accepted.messages, None)
    store.collect(rows.events, rows.customers, rows.links)


def track(n: int, anon: str | None = None, user: str | None = None) -> dict[str, Any]:
    ids = {"anonymousId": anon, "userId": user}
    return {
        "type": "track",
        "event": "e",
        "messageId": f"m{n}",
        **{k: v for k, v in ids.items() if v},
    }


def owners(store: Any) -> dict[str, str]:
    rows = store.con.execute("SELECT event_id, customer_id FROM events").fetchall()
    aliases = {a for (a,) in store.con.execute("SELECT alias_id FROM identities").fetchall()}
    assert not aliases & {c for _, c in rows}  # never stored under an alias
    return dict(rows)


def test_events_under_aliases_are_resolved_whoever_linked_them(tmp_path: Path) -> None:
    db = tmp_path / "id.duckdb"
    a = loudou.connect(db)
    send(a, [track(1, anon="v1")])  # no aliases yet
    send(a, [track(2, anon="v1", user="alice")])  # links v1 -> alice
    send(a, [track(3, anon="v1")])  # under the alias, in a batch without links
    a.close()
    b = loudou.connect(db)  # a new store: the aliases are loaded from the table
    send(b, [track(4, anon="v1"), track(5, anon="v2")])
    # another connection of this process links v2 (not through b's writer)
    c = loudou.connect(db)
    send(c, [{"type": "alias", "previousId": "v2", "userId": "bob", "messageId": "m6"}])
    send(b, [track(7, anon="v2"), track(8, user="carol")])
    assert owners(b) == {
        "m1": "alice",  # re-keyed when v1 was linked
        "m2": "alice",
        "m3": "alice",
        "m4": "alice",
        "m5": "bob",  # re-keyed by c's alias
        "m7": "bob",  # b saw that identities changed
        "m8": "carol",
    }
    c.close()
    b.close()
