"""Top paths: what customers do after one event, before one, or between two, as Sankey-ready data.

Each customer gives one path, from their first ``after`` event (or ending at their first
``before`` event, or from the first ``after`` to the next ``before``). Consecutive repeats of an
event collapse into one node unless asked otherwise, so page-view streaks do not flood the view.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from loudou.backends.base import Store
from loudou.errors import LoudouError

END = "(end)"
MORE = "…"


@dataclass
class PathsResult:
    after: str | None
    before: str | None
    customers: int
    paths: list[tuple[tuple[str, ...], int]]  # top paths and their customers
    links: Counter[tuple[int, str, str]]  # (position, from, to) -> customers, over all paths

    def to_dict(self) -> dict[str, Any]:
        """The ``loudou paths --json`` document: top paths plus Sankey nodes and links."""
        nodes: dict[tuple[int, str], int] = {}
        for pos, a, b in sorted(self.links):
            nodes.setdefault((pos, a), len(nodes))
            nodes.setdefault((pos + 1, b), len(nodes))
        return {
            "after": self.after,
            "before": self.before,
            "customers": self.customers,
            "paths": [
                {
                    "path": list(p),
                    "customers": c,
                    "share": c / self.customers if self.customers else 0.0,
                }
                for p, c in self.paths
            ],
            "sankey": {
                "nodes": [{"name": e, "position": pos} for (pos, e) in nodes],
                "links": [
                    {"source": nodes[(pos, a)], "target": nodes[(pos + 1, b)], "value": v}
                    for (pos, a, b), v in sorted(self.links.items())
                ],
            },
        }


def _collapse(seq: list[str]) -> list[str]:
    return [e for i, e in enumerate(seq) if i == 0 or e != seq[i - 1]]


def customer_path(
    events: Sequence[str], after: str | None, before: str | None, depth: int, collapse: bool
) -> list[str] | None:
    """One customer's path (None if it has none), at most ``depth`` events besides the anchors."""
    seq = list(events)
    if after is not None:
        if after not in seq:
            return None
        seq = seq[seq.index(after) :]
        if before is not None:
            if before not in seq[1:]:
                return None
            seq = seq[: seq.index(before, 1) + 1]
    elif before is not None:
        if before not in seq:
            return None
        seq = seq[: seq.index(before) + 1]
    if collapse:
        seq = _collapse(seq)
    if after is not None and before is not None:
        middle = seq[1:-1]
        return [seq[0], *middle[:depth], *([MORE] if len(middle) > depth else []), seq[-1]]
    if before is not None:
        return ([MORE] if len(seq) > depth + 1 else []) + seq[-(depth + 1) :]
    return seq[: depth + 1] + ([END] if len(seq) <= depth else [])


def top_paths(
    store: Store,
    after: str | None = None,
    before: str | None = None,
    *,
    depth: int = 4,
    limit: int = 10,
    exclude: Sequence[str] = (),
    collapse: bool = True,
) -> PathsResult:
    """The ``limit`` most common paths, and links between positions over all paths."""
    if after is None and before is None:
        raise LoudouError(
            "give the event paths start after, the event they end before, or both", "after"
        )
    if depth < 1 or limit < 1:
        raise LoudouError("depth and limit must be at least 1", "depth")
    table = store.read_events(columns=("customer_id", "event"))
    cust = np.asarray(table.column("customer_id").to_pylist(), dtype=object)
    names = np.asarray(table.column("event").to_pylist(), dtype=object)
    if exclude:
        keep = ~np.isin(names, list(exclude))
        cust, names = cust[keep], names[keep]
    starts = np.flatnonzero(np.r_[True, cust[1:] != cust[:-1]]) if cust.size else np.zeros(0, int)
    bounds = np.r_[starts, cust.size]
    counts: Counter[tuple[str, ...]] = Counter()
    links: Counter[tuple[int, str, str]] = Counter()
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        path = customer_path(names[a:b].tolist(), after, before, depth, collapse)
        if path is None:
            continue
        counts[tuple(path)] += 1
        for pos in range(len(path) - 1):
            links[(pos, path[pos], path[pos + 1])] += 1
    total = sum(counts.values())
    top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
    return PathsResult(after, before, total, top, links)
