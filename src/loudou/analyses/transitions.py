"""The stage transition matrix: how customers really move between a funnel's stages.

Every event matching a step is mapped to a stage (the latest stage it matches), and each
customer's consecutive stage events give one move: forward, a repeat (same stage) or backward.
Journeys are not linear; this shows it, and diagnose's loop findings are read from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from loudou.backends.base import Store
from loudou.model.plan import plan_funnel
from loudou.model.spec import FunnelSpec


def _plain(spec: FunnelSpec) -> FunnelSpec:
    """The same steps counted per customer, with no exclusions, breakdown or held values."""
    plain = ("count", "hold_constant", "breakdown", "exclusions", "mode")
    return spec.model_copy(
        update={k: FunnelSpec.model_fields[k].get_default(call_default_factory=True) for k in plain}
    )


def stage_sequences(store: Store, spec: FunnelSpec) -> list[np.ndarray]:
    """Per customer (in id order), the 0-based stages of their step events in time order."""
    n = len(spec.steps)
    table = store.funnel_events(plan_funnel(_plain(spec)))
    if table.num_rows == 0:
        return []
    mask = table.column("mask").to_numpy().astype(np.uint64) & np.uint64((1 << n) - 1)
    keep = mask != 0
    stage = np.full(mask.size, -1, np.int64)
    for k in range(n):  # the latest stage an event matches wins
        stage[(mask & np.uint64(1 << k)) != 0] = k
    cust = np.asarray(table.column("customer_id").to_pylist(), dtype=object)[keep]
    t = table.column("t").to_numpy()[keep]
    stage = stage[keep]
    order = np.lexsort((t, cust))
    cust, stage = cust[order], stage[order]
    starts = np.flatnonzero(np.r_[True, cust[1:] != cust[:-1]])
    return np.split(stage, starts[1:])


@dataclass
class TransitionMatrix:
    stages: list[str]
    stages_zh: list[str]
    moves: np.ndarray  # [from, to]: number of consecutive stage events
    customers: np.ndarray  # [from, to]: customers making that move at least once

    def to_dict(self) -> dict[str, Any]:
        n = len(self.stages)
        total = int(self.moves.sum())
        back = int(np.tril(self.moves, -1).sum())
        repeat = int(np.trace(self.moves))
        return {
            "stages": self.stages,
            "moves": self.moves.tolist(),
            "customers": self.customers.tolist(),
            "forward_moves": total - back - repeat,
            "backward_moves": back,
            "repeat_moves": repeat,
            "links": [
                {
                    "from": self.stages[i],
                    "to": self.stages[j],
                    "moves": int(self.moves[i, j]),
                    "customers": int(self.customers[i, j]),
                    "direction": "forward" if j > i else "backward" if j < i else "repeat",
                }
                for i in range(n)
                for j in range(n)
                if self.moves[i, j]
            ],
        }


def transition_matrix(store: Store, spec: FunnelSpec) -> TransitionMatrix:
    """Moves between stages over all step events, including backward moves and repeats."""
    n = len(spec.steps)
    moves = np.zeros((n, n), np.int64)
    customers = np.zeros((n, n), np.int64)
    for seq in stage_sequences(store, spec):
        if seq.size < 2:
            continue
        a, b = seq[:-1], seq[1:]
        np.add.at(moves, (a, b), 1)
        pairs = np.unique(a * n + b)
        customers[pairs // n, pairs % n] += 1
    return TransitionMatrix(
        [s.label("en") for s in spec.steps], [s.label("zh") for s in spec.steps], moves, customers
    )
