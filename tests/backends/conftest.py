"""Fixtures of the backend contract suite: every test in tests/backends runs once per backend.

A backend joins the suite by adding one entry to ``BACKENDS`` below: a name and a function that
opens a store on a fresh, empty database inside a given folder (and, when its block ends, closes
the store and stops whatever it started). A future ``chdb`` entry would be
``Backend("chdb", _chdb)`` with ``_chdb`` yielding ``loudou.connect(f"chdb://{folder}/x")``.
Nothing else changes: the tests use the public API only and pass or fail alike on every backend.

Each backend opens two stores per session, because starting a server costs seconds:

- ``journeys_store``: the hand-worked journeys of ``JOURNEYS`` and ``TRAITS`` (written through the
  backend itself), never written again. Funnel and analysis tests read it.
- ``scratch``: an empty store the write tests share; each test writes under its own ``ns`` prefix
  (customer ids, event names, channels, meta keys) and looks only at its own rows, or at changes.

``reference`` is the default backend in memory (``loudou.connect(":memory:")``) holding the same
journeys: funnels and analyses on every backend must give exactly what they give there.
"""

from __future__ import annotations

import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import loudou
from loudou.backends import Store

from batches import traits_rows

# The shared helpers (journeys.py, serving.py) live one folder up, beside the other tests.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from journeys import events_table  # noqa: E402
from serving import start  # noqa: E402


@dataclass(frozen=True)
class Backend:
    """A way to get a store: ``open(folder)`` yields a store on a fresh database in ``folder``."""

    name: str
    open: Callable[[Path], AbstractContextManager[Store]]


@contextmanager
def _duckdb_file(folder: Path) -> Iterator[Store]:
    store = loudou.connect(folder / "x.duckdb")
    try:
        yield store
    finally:
        store.close()


@contextmanager
def _remote(folder: Path) -> Iterator[Store]:
    """The database file while a real ``loudou serve`` holds it: ``connect`` on the same path
    then returns a store that works through the server."""
    from loudou.backends.remote import RemoteStore

    db = folder / "x.duckdb"
    args = ("--parsers", "0")  # no parser process: starts faster
    try:
        server = start(db, args=args)
    except RuntimeError:
        # its free port was taken meanwhile, or it did not answer in 30 s on a busy machine and
        # was killed: once more, when the killed process has let go of the file
        time.sleep(1)
        server = start(db, args=args)
    try:
        store = loudou.connect(db)
        assert isinstance(store, RemoteStore), type(store)
        try:
            yield store
        finally:
            store.close()
    finally:
        server.stop()


# Every backend registered today. Add a new one here and the whole suite runs against it.
BACKENDS = [
    Backend("duckdb", _duckdb_file),
    Backend("remote", _remote),
]

# -- the hand-worked journeys (times UTC; test_funnels.py works the funnels out from them) ------
# Promoted columns (session_id, channel, campaign, revenue) are given among the properties.
JOURNEYS: dict[str, list[tuple[Any, ...]]] = {
    "a": [
        (
            "view",
            "2025-01-01 10:00",
            {"session_id": "s-a1", "device": "mobile", "channel": "ads", "campaign": "spring"},
        ),
        ("signup", "2025-01-01 10:10", {"session_id": "s-a1"}),
        (
            "purchase",
            "2025-01-01 10:20",
            {"session_id": "s-a1", "revenue": 120.5, "sku": "A", "qty": 2},
        ),
        ("view", "2025-02-03 10:00", {"session_id": "s-a2"}),
        ("purchase", "2025-02-03 10:05", {"session_id": "s-a2", "revenue": 30.0, "sku": "B"}),
    ],
    "b": [
        ("view", "2025-01-01 10:00", {"session_id": "s-b1", "device": "desktop"}),
        ("signup", "2025-01-01 10:30", {"session_id": "s-b1"}),
        ("purchase", "2025-01-01 11:30", {"session_id": "s-b1", "revenue": 20.0}),
    ],
    "c": [
        ("view", "2025-01-01 10:00", {"session_id": "s-c1", "device": "mobile"}),
        ("purchase", "2025-01-01 10:05", {"session_id": "s-c1", "revenue": 10.0, "sku": "a"}),
    ],
    "d": [
        ("signup", "2025-01-01 10:00", {"session_id": "s-d1"}),
        ("view", "2025-01-01 10:10", {"session_id": "s-d1", "device": "desktop"}),
        ("purchase", "2025-01-01 10:20", {"session_id": "s-d1", "revenue": 30.0}),
    ],
    "e": [
        ("view", "2025-01-01 10:00", {"session_id": "s-e1", "device": "mobile"}),
        ("help", "2025-01-01 10:05", {"session_id": "s-e1"}),
        ("signup", "2025-01-01 10:10", {"session_id": "s-e1"}),
        ("purchase", "2025-01-01 10:15", {"session_id": "s-e1", "revenue": 200.0, "sku": "B"}),
    ],
    "f": [
        ("view", "2025-01-01 10:00", {"session_id": "s-f1"}),
        ("signup", "2025-01-01 10:00", {"session_id": "s-f1"}),
        ("purchase", "2025-01-01 10:30", {"session_id": "s-f1", "revenue": 40.0}),
    ],
    "g": [
        ("view", "2025-01-01 10:00", {"session_id": "s-g1", "device": "desktop"}),
        ("view", "2025-01-01 12:00", {"session_id": "s-g2", "device": "mobile"}),
        ("signup", "2025-01-01 12:10", {"session_id": "s-g2"}),
    ],
    "h": [
        ("view", "2025-01-02 09:00", {"session_id": "s-h1", "device": "mobile"}),
        ("bounce", "2025-01-02 09:05", {"session_id": "s-h1"}),
        ("signup", "2025-01-02 09:10", {"session_id": "s-h1"}),
        ("purchase", "2025-01-02 09:15", {"session_id": "s-h1", "revenue": 60.0}),
    ],
    "i": [
        ("view", "2025-01-02 09:00", {"session_id": "s-i1"}),
        ("bounce", "2025-01-02 09:30", {"session_id": "s-i1"}),
    ],
    "j": [
        ("view", "2025-01-02 09:00", {"session_id": "s-j1", "device": "desktop"}),
        ("signup", "2025-01-02 09:10", {"session_id": "s-j1"}),
        ("bounce", "2025-01-02 09:20", {"session_id": "s-j1"}),
        ("purchase", "2025-01-02 09:30", {"session_id": "s-j1", "revenue": 80.0}),
        ("view", "2025-03-05 10:00", {"session_id": "s-j2"}),
    ],
    "k": [
        ("view", "2025-01-01 14:00", {"session_id": "s-k1"}),
        ("signup", "2025-01-01 14:10", {"session_id": "s-k2"}),
        ("purchase", "2025-01-01 14:20", {"session_id": "s-k2", "revenue": 15.0}),
    ],
    "m": [
        ("view", "2025-01-01 23:50", {"session_id": "s-m1", "device": "desktop"}),
        ("signup", "2025-01-02 00:10", {"session_id": "s-m1"}),
    ],
}
# Customer traits (f has none).
TRAITS: dict[str, dict[str, Any]] = {
    "a": {"region": "north", "plan": "pro", "age": 30},
    "b": {"region": "south", "plan": "free", "age": 45},
    "c": {"region": "north", "age": 22},
    "d": {"region": "south"},
    "e": {"region": "north", "plan": "pro", "age": 35},
    "g": {"region": "south"},
    "h": {"region": "west"},
    "i": {"region": "west"},
    "j": {"region": "north"},
    "k": {"region": "east"},
    "m": {"region": "south"},
}


def load_journeys(store: Store) -> None:
    store.insert_events(events_table(JOURNEYS))
    store.upsert_customers(traits_rows(list(TRAITS.items())))


class _Opener:
    """Opens the stores of every backend the session's tests use, all at once in the background
    as soon as the first test asks for one: a server start is seconds of mostly waiting, and the
    tests of the backends that are ready run meanwhile. Closes them all at the end."""

    def __init__(self, backends: list[Backend], folder: Callable[[str], Path]) -> None:
        self._pool = ThreadPoolExecutor(max(1, 2 * len(backends)))
        self._lock = threading.Lock()
        self._entered: list[AbstractContextManager[Store]] = []
        self.pairs = {
            b.name: self._pool.submit(
                self._pair, b, folder(f"{b.name}-journeys"), folder(f"{b.name}-scratch")
            )
            for b in backends
        }

    def _open(self, backend: Backend, folder: Path) -> Store:
        cm = backend.open(folder)
        store = cm.__enter__()
        with self._lock:
            self._entered.append(cm)
        return store

    def _pair(self, backend: Backend, journeys_at: Path, scratch_at: Path) -> tuple[Store, Store]:
        scratch = self._pool.submit(self._open, backend, scratch_at)
        journeys = self._open(backend, journeys_at)
        load_journeys(journeys)
        return journeys, scratch.result()

    def close(self) -> None:
        self._pool.shutdown(wait=True)  # every opening has ended, whether or not it worked
        with ThreadPoolExecutor(max(1, len(self._entered))) as pool:
            list(pool.map(lambda cm: cm.__exit__(None, None, None), self._entered))


@pytest.fixture(scope="session")
def _opener(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[_Opener]:
    used = {
        item.callspec.params["backend"].name
        for item in request.session.items
        if "backend" in getattr(getattr(item, "callspec", None), "params", {})
    }
    opener = _Opener([b for b in BACKENDS if b.name in used], tmp_path_factory.mktemp)
    yield opener
    opener.close()


@pytest.fixture(scope="session", params=BACKENDS, ids=[b.name for b in BACKENDS])
def backend(request: pytest.FixtureRequest) -> Backend:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def _stores(backend: Backend, _opener: _Opener) -> tuple[Store, Store]:
    return _opener.pairs[backend.name].result()


@pytest.fixture
def journeys_store(_stores: tuple[Store, Store]) -> Store:
    """The backend's store holding JOURNEYS and TRAITS; read it, never write to it."""
    return _stores[0]


@pytest.fixture
def scratch(_stores: tuple[Store, Store]) -> Store:
    """The backend's shared store for write tests: write under ``ns`` only."""
    return _stores[1]


@pytest.fixture
def ns() -> str:
    """A prefix of this test's own: ids, names and keys it writes to ``scratch`` start with it."""
    return f"t{uuid.uuid4().hex[:10]}-"


@pytest.fixture(scope="session")
def reference() -> Iterator[Store]:
    """The default backend (DuckDB in memory) holding the same journeys."""
    store = loudou.connect(":memory:")
    load_journeys(store)
    yield store
    store.close()


@pytest.fixture(scope="session")
def journeys() -> dict[str, list[tuple[Any, ...]]]:
    return JOURNEYS


@pytest.fixture(scope="session")
def traits() -> dict[str, dict[str, Any]]:
    return TRAITS
