"""Small statistics shared by analyses."""

from __future__ import annotations

import math
from collections.abc import Sequence

Z95 = 1.959963984540054  # scipy.stats.norm.ppf(0.975)


def wilson_interval(successes: int, trials: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a proportion; (0, 1) when there are no trials.

    Preferred over the normal approximation because funnels have small and extreme cells.
    """
    if trials <= 0:
        return (0.0, 1.0)
    p = successes / trials
    z2 = z * z
    denom = 1 + z2 / trials
    centre = (p + z2 / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def normal_sf(z: float) -> float:
    """Upper tail of the standard normal, P(Z > z), via erfc (accurate far into the tail)."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def two_proportion_test(x1: int, n1: int, x2: int, n2: int) -> tuple[float, float]:
    """Pooled two-proportion z-test of x1/n1 against x2/n2: (z, two-sided p).

    Same p-value as a chi-square test on the 2x2 table without continuity correction. When the
    pooled rate is 0 or 1 the groups cannot differ: z = 0, p = 1.
    """
    if n1 <= 0 or n2 <= 0:
        raise ValueError("both groups need at least one trial")
    pooled = (x1 + x2) / (n1 + n2)
    var = pooled * (1 - pooled) * (1 / n1 + 1 / n2)
    if var <= 0:
        return 0.0, 1.0
    z = (x1 / n1 - x2 / n2) / math.sqrt(var)
    return z, min(1.0, 2 * normal_sf(abs(z)))


def bh_qvalues(pvalues: Sequence[float | None]) -> list[float | None]:
    """Benjamini–Hochberg adjusted p-values (q-values); None entries are skipped and stay None.

    A finding with q <= alpha is kept at false discovery rate alpha over all non-None tests.
    """
    idx = [i for i, p in enumerate(pvalues) if p is not None]
    m = len(idx)
    out: list[float | None] = [None] * len(pvalues)
    if not m:
        return out
    order = sorted(idx, key=lambda i: pvalues[i])  # type: ignore[arg-type, return-value]
    running = 1.0
    for rank in range(m, 0, -1):
        i = order[rank - 1]
        p = pvalues[i]
        assert p is not None
        running = min(running, p * m / rank)
        out[i] = min(1.0, running)
    return out
