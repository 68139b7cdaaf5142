"""Converted and dropped customers at a step, for follow-up by sales or e-mail."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pyarrow as pa

from loudou.analyses.funnel.rows import filter_segment, funnel_rows
from loudou.backends.base import Store
from loudou.errors import LoudouError
from loudou.model.spec import FunnelSpec

Outcome = Literal["converted", "dropped"]


def step_outcomes(
    store: Store,
    spec: FunnelSpec,
    step: int,
    outcome: str = "dropped",
    segment: str | None = None,
) -> pa.Table:
    """Units that reached ``step`` (1-based) and went on to the next step (``converted``) or
    did not (``dropped``). At the last step, ``converted`` is everyone who reached it.

    Columns: customer_id, level, reached_at (UTC time of ``step``), next_at (null if dropped).
    """
    n = len(spec.steps)
    if not 1 <= step <= n:
        raise LoudouError(f"step must be between 1 and {n}", "step")
    if outcome not in ("converted", "dropped"):
        raise LoudouError("outcome must be converted or dropped", "outcome")
    if outcome == "dropped" and step == n:
        raise LoudouError("nobody drops after the last step; choose an earlier step", "step")
    rows = filter_segment(store, funnel_rows(store, spec), segment)
    went_on = rows.levels >= step + 1 if step < n else rows.levels >= step
    keep = (rows.levels >= step) & (went_on if outcome == "converted" else ~went_on)
    reached = rows.times[keep, step - 1]
    nxt = rows.times[keep, step] if step < n else np.full(reached.size, -1, np.int64)
    return pa.table(
        {
            "customer_id": pa.array(rows.customer_id[keep].tolist(), pa.string()),
            "level": pa.array(rows.levels[keep], pa.int64()),
            "reached_at": pa.array(reached, pa.int64()).cast(pa.timestamp("us")),
            "next_at": pa.array(nxt, pa.int64(), mask=nxt < 0).cast(pa.timestamp("us")),
        }
    )
