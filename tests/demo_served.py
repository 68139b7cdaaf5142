"""A served copy of a small demo business, for the analysis and KPI route tests: the server gets
one file, the test reads a byte-identical copy in-process (DuckDB lets one process write a file)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import loudou
from loudou import demo
from loudou.analyses.segments import save_segment
from loudou.backends.base import Store
from loudou.model.segment import Segment

from serving import Server, make_keys, start

SEGMENT = {"name": "east", "name_zh": "华东", "rules": [{"trait": "region", "value": "East"}]}


@contextmanager
def served_demo(folder: Path) -> Iterator[tuple[Server, Store]]:
    """The server on the demo data (with one saved segment and keys), and a read-only copy."""
    db, copy = folder / "demo.duckdb", folder / "copy.duckdb"
    store = loudou.connect(db)
    demo.load(store, demo.generate(seed=11, customers=2500, months=4))
    save_segment(store, Segment.parse(SEGMENT))
    store.close()
    keys = make_keys(db)
    shutil.copyfile(db, copy)
    reference = loudou.connect(copy, read_only=True)
    server = start(db, keys)
    try:
        yield server, reference
    finally:
        server.stop()
        reference.close()


def as_json(doc: Any) -> Any:
    """What ``--json`` prints, read back (tuples become lists, dates text)."""
    return json.loads(json.dumps(doc, ensure_ascii=False, default=str))


def journey_spec() -> dict[str, Any]:
    """The demo's journey funnel as an API body's ``spec``."""
    return demo.journey_funnel_spec().model_dump(mode="json", exclude_defaults=True)
