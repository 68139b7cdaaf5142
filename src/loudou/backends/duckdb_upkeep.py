"""When the DuckDB store checkpoints while a server writes to it (the ``Upkeep`` ability).

Checkpoints (DuckDB moving the WAL into the database file, during which no commit can run) are
scheduled by the store, not left to DuckDB: its own threshold is raised so that a commit never
runs one, and the store checkpoints when the writer has been idle a little while, or between two
commits once the WAL has grown past ``max_wal`` (sustained load leaves no idle time; small
checkpoints keep the wait of queued requests short). Durability does not depend on checkpoints:
every commit syncs the WAL. An idle checkpoint first folds the customers' first/last seen times
gathered in ``seen_log`` into ``customers`` (one scan of ``customers`` for many commits; see store
migration ``_v5``). docs/performance.md has the measured checkpoint times behind these limits.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb

# Idle checkpoints: after IDLE_POLL_S with no job and at least IDLE_MIN_WAL_BYTES of WAL (a
# checkpoint rewrites each table's last row group, so tiny ones are wasteful), or after
# IDLE_ANY_WAL_S with any WAL.
IDLE_POLL_S = 0.05
IDLE_MIN_WAL_BYTES = 1 << 20
IDLE_ANY_WAL_S = 1.0
# Checkpoint between commits even when busy, past this much WAL: small checkpoints stall the
# queue briefly, large ones for long.
MAX_WAL_BYTES = 4 << 20
# A commit runs a checkpoint only past this much WAL (a backstop for writes the writer does not
# see); the store's own checkpoints come long before.
WAL_BACKSTOP = "1GB"


class UpkeepAbilities:
    """Upkeep for DuckDBStore (mixed in): checkpoints and the fold of seen times."""

    con: duckdb.DuckDBPyConnection
    path: str
    fold_seen: Callable[[], None]  # DuckDBStore's
    prepare_writes: Callable[[], None]
    idle_poll: float = IDLE_POLL_S
    max_wal: int = MAX_WAL_BYTES

    def start_writing(self) -> None:
        self.defer_checkpoints(WAL_BACKSTOP)
        self.prepare_writes()  # so that the first requests do not wait for it

    def after_commit(self) -> bool:
        if self.wal_bytes() < self.max_wal:
            return False
        self.checkpoint()
        return True

    def when_idle(self, idle_seconds: float) -> bool:
        if idle_seconds < IDLE_ANY_WAL_S and self.wal_bytes() < IDLE_MIN_WAL_BYTES:
            return False
        self.fold_seen()
        self.checkpoint()
        return True

    def defer_checkpoints(self, threshold: str) -> None:
        """Let the WAL grow to ``threshold`` (e.g. "1GB") before a commit checkpoints it: the
        store checkpoints at times of its choosing. Commits still sync the WAL."""
        if not re.fullmatch(r"\d+(\.\d+)?\s*[KMGT]?i?B", threshold):
            raise ValueError(f"not a size: {threshold!r}")
        self.con.execute(f"SET checkpoint_threshold = '{threshold}'")

    def checkpoint(self) -> None:
        """Move the WAL into the database file now."""
        self.con.execute("CHECKPOINT")

    def wal_bytes(self) -> int:
        """Bytes of WAL not yet checkpointed (0 in memory)."""
        if self.path == ":memory:":
            return 0
        try:
            return os.path.getsize(self.path + ".wal")
        except OSError:
            return 0
