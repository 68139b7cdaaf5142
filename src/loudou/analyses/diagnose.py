"""Bottleneck diagnosis: rank where and for whom the funnel leaks, with false alarms controlled.

Four kinds of finding (README "Diagnose"):

- ``stage``: the transitions losing the most customers (descriptive, no test, no q-value);
- ``segment``: a group converting below the rest at a transition (pooled two-proportion test);
- ``period``: step-1 days/weeks/months in which a transition converted below its other periods,
  overall and within each group; adjacent bad periods are merged into one span;
- ``loop``: a stage from which customers go back to an earlier stage more often than from the
  other stages. Only moves before a customer first reaches the last step count: a buyer who views
  the pricing page after purchase has finished the funnel, not looped in it.

Every segment, period and loop test goes into one Benjamini–Hochberg family; a finding needs
q <= alpha and the bad direction. Under data with nothing planted all nulls are true, so BH keeps
the chance of reporting anything at all at or below alpha (the tests measure it).
Only customers whose conversion window has closed by the newest event count in the period scan,
so recent periods are not mistaken for bad ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from loudou.analyses.compare import MIN_CUSTOMERS, compare_cell
from loudou.analyses.funnel.rows import FunnelRows, Group, funnel_rows, groups_for
from loudou.analyses.stats import bh_qvalues, two_proportion_test
from loudou.analyses.trends import check_period, mature_cutoff, period_ordinals, period_span
from loudou.backends.base import Store
from loudou.errors import LoudouError
from loudou.model.spec import FunnelSpec

MAX_STAGE_FINDINGS = 3
CARRIER_SHARE = 0.6  # a segment carrying this share of a bad period's loss explains it


@dataclass
class Finding:
    kind: str
    step: int  # 1-based index of from_step
    from_step: str
    to_step: str
    conversion: float
    baseline: float
    lost_customers: float
    entered: int
    segment: dict[str, str] | None = None
    period: dict[str, str] | None = None
    p_value: float | None = None
    q_value: float | None = None
    from_step_zh: str = ""  # the steps' Chinese labels, for sentences (loudou.present.messages)
    to_step_zh: str = ""

    def key(self) -> tuple[Any, ...]:
        seg = None if self.segment is None else tuple(self.segment.values())
        per = None if self.period is None else tuple(self.period.values())
        return (self.kind, self.from_step, self.to_step, seg, per)

    def to_dict(self) -> dict[str, Any]:
        """One finding's numbers; ``loudou diagnose --json`` adds its sentences in English and
        Chinese (``loudou.present.messages``), see docs/analyses.md."""
        return {
            "kind": self.kind,
            "from_step": self.from_step,
            "to_step": self.to_step,
            "segment": self.segment,
            "period": self.period,
            "conversion": self.conversion,
            "baseline": self.baseline,
            "lost_customers": self.lost_customers,
            "q_value": self.q_value,
        }


@dataclass
class Diagnosis:
    funnel: str
    findings: list[Finding]
    tests: int  # hypotheses in the BH family
    alpha: float

    def to_dict(self) -> dict[str, Any]:
        return {"findings": [f.to_dict() for f in self.findings]}

    def to_pandas(self) -> Any:
        import pandas as pd

        return pd.DataFrame([f.to_dict() for f in self.findings])


# ---- stage ------------------------------------------------------------------------------------


def _stage_findings(rows: FunnelRows) -> list[Finding]:
    n = len(rows.spec.steps)
    cells = [(k, *rows.counts(k)) for k in range(1, n)]
    rates = [x / e for _, e, x in cells if e]
    if not rates:
        return []
    typical = float(np.median(rates))
    most = max(e - x for _, e, x in cells)
    out = []
    for k, e, x in sorted(cells, key=lambda c: -(c[1] - c[2])):
        if e == 0 or e - x <= 0 or e - x < most / 2:
            continue
        out.append(_finding(rows, "stage", k, x / e, typical, e - x, e))
    return out[:MAX_STAGE_FINDINGS]


def _finding(
    rows: FunnelRows,
    kind: str,
    k: int,
    conversion: float,
    baseline: float,
    lost: float,
    entered: int,
    to: int | None = None,
    **extra: Any,
) -> Finding:
    """A finding at step k (1-based) towards step ``to`` (1-based, default k + 1)."""
    steps = rows.spec.steps
    first, then = steps[k - 1], steps[(k + 1 if to is None else to) - 1]
    return Finding(
        kind, k, first.label("en"), then.label("en"), conversion, baseline, lost, entered,
        from_step_zh=first.label("zh"), to_step_zh=then.label("zh"), **extra,
    )  # fmt: skip


# ---- segment ----------------------------------------------------------------------------------


def _segment_candidates(rows: FunnelRows, groups: Sequence[Group], min_n: int) -> list[Finding]:
    out = []
    for g in groups:
        for k in range(1, len(rows.spec.steps)):
            c = compare_cell(rows, g, k, min_n)
            if c.too_few:
                continue
            assert c.rate is not None and c.rest_rate is not None and c.won_back is not None
            seg = {"property": g.property, "value": g.value}
            f = _finding(
                rows, "segment", k, c.rate, c.rest_rate, c.won_back, c.entered, segment=seg
            )
            f.p_value = c.p_value
            out.append(f)
    return out


# ---- period -----------------------------------------------------------------------------------


def _span(first: int, last: int, period: str) -> dict[str, str]:
    start, end = period_span(first, last, period)
    return {"start": start.isoformat(), "end": end.isoformat()}


@dataclass
class _PeriodTest:
    k: int
    segment: dict[str, str] | None
    ordinal: int
    entered: int
    converted: int
    rest_rate: float
    p_value: float


def _period_tests(
    rows: FunnelRows, keep: np.ndarray, segment: dict[str, str] | None, period: str, min_n: int
) -> list[_PeriodTest]:
    """Each period against the other periods of the same transition (within ``keep``)."""
    ordinals = period_ordinals(rows.times[:, 0], period)
    out = []
    for k in range(1, len(rows.spec.steps)):
        at = keep & (rows.levels >= k)
        conv = rows.levels >= k + 1
        n_all, x_all = int(at.sum()), int((at & conv).sum())
        values, entered = np.unique(ordinals[at], return_counts=True)
        if values.size < 2:
            continue
        converted = np.bincount(np.searchsorted(values, ordinals[at & conv]), minlength=values.size)
        for o, n, x in zip(values, entered, converted, strict=True):
            rn, rx = n_all - int(n), x_all - int(x)
            if n < min_n or rn < min_n:
                continue
            p = two_proportion_test(int(x), int(n), rx, rn)[1]
            out.append(_PeriodTest(k, segment, int(o), int(n), int(x), rx / rn, p))
    return out


def _merge_periods(
    rows: FunnelRows, tests: list[_PeriodTest], qs: list[float | None], alpha: float, period: str
) -> list[Finding]:
    """Adjacent significant low periods of one transition and segment become one finding."""
    hits = [
        (t, q)
        for t, q in zip(tests, qs, strict=True)
        if q is not None and q <= alpha and t.converted / t.entered < t.rest_rate
    ]
    hits.sort(key=lambda h: (h[0].k, str(h[0].segment), h[0].ordinal))
    out: list[Finding] = []
    run: list[tuple[_PeriodTest, float]] = []

    def flush() -> None:
        if not run:
            return
        n = sum(t.entered for t, _ in run)
        x = sum(t.converted for t, _ in run)
        base = float(np.mean([t.rest_rate for t, _ in run]))
        first = run[0][0]
        f = _finding(
            rows, "period", first.k, x / n, base, n * base - x, n,
            segment=first.segment, period=_span(first.ordinal, run[-1][0].ordinal, period),
        )  # fmt: skip
        f.q_value = max(q for _, q in run)
        out.append(f)
        run.clear()

    for t, q in hits:
        prev = run[-1][0] if run else None
        if prev and (prev.k, prev.segment, prev.ordinal + 1) != (t.k, t.segment, t.ordinal):
            flush()
        run.append((t, q))
    flush()
    return out


# ---- loop -------------------------------------------------------------------------------------


@dataclass
class _LoopTest:
    stage: int  # 0-based
    back_to: int
    entered: int
    looped: int
    rest_rate: float
    p_value: float


def _loop_tests(store: Store, spec: FunnelSpec, min_n: int) -> list[_LoopTest]:
    """Per stage, customers who went back to an earlier stage, against the other stages; each
    customer's moves up to the first time they reach the last stage."""
    from loudou.analyses.transitions import stage_sequences

    seq = stage_sequences(store, spec)
    n = len(spec.steps)
    reached = np.zeros(n, np.int64)
    looped = np.zeros(n, np.int64)
    targets = np.zeros((n, n), np.int64)
    for cust_stages in seq:
        done = np.flatnonzero(cust_stages == n - 1)
        if done.size:
            cust_stages = cust_stages[: done[0] + 1]
        uniq = np.unique(cust_stages)
        reached[uniq] += 1
        a, b = cust_stages[:-1], cust_stages[1:]
        back = b < a
        if back.any():
            looped[np.unique(a[back])] += 1
            np.add.at(targets, (a[back], b[back]), 1)
    out = []
    candidates = [i for i in range(1, n - 1) if reached[i] >= min_n]  # the last stage ends it
    for i in candidates:
        others = [j for j in candidates if j != i]
        rn, rx = int(reached[others].sum()), int(looped[others].sum())
        if rn < min_n or looped[i] + rx == 0:
            continue
        p = two_proportion_test(int(looped[i]), int(reached[i]), rx, rn)[1]
        target = int(np.argmax(targets[i, :i]))
        out.append(_LoopTest(i, target, int(reached[i]), int(looped[i]), rx / rn, p))
    return out


# ---- entry point ------------------------------------------------------------------------------


def diagnose(
    store: Store,
    spec: FunnelSpec,
    by: Sequence[str] = (),
    *,
    period: str = "week",
    segment: str | None = None,
    alpha: float = 0.05,
    limit: int = 10,
    min_customers: int = MIN_CUSTOMERS,
    loops: bool = True,
) -> Diagnosis:
    """Findings ranked by customers lost, at most ``limit``, each once."""
    check_period(period)
    if not 0 < alpha < 1:
        raise LoudouError("alpha must be between 0 and 1", "alpha")
    from loudou.analyses.funnel.rows import filter_segment

    base_rows = filter_segment(store, funnel_rows(store, spec), segment)
    stage = _stage_findings(base_rows)
    seg_cands: list[Finding] = []
    cutoff = mature_cutoff(store, spec)
    limit_us = cutoff if cutoff is not None else -1
    per_tests: list[_PeriodTest] = []
    mature = base_rows.times[:, 0] <= limit_us
    per_tests += _period_tests(base_rows, mature, None, period, min_customers)
    for b in by:
        rows, groups = groups_for(store, spec, b, segment)
        seg_cands += _segment_candidates(rows, groups, min_customers)
        mature_b = rows.times[:, 0] <= limit_us
        for g in groups:
            seg = {"property": g.property, "value": g.value}
            per_tests += _period_tests(rows, mature_b & g.mask, seg, period, min_customers)
    loop_tests = _loop_tests(store, spec, min_customers) if loops else []

    pvals: list[float | None] = [f.p_value for f in seg_cands]
    pvals += [t.p_value for t in per_tests] + [t.p_value for t in loop_tests]
    qs = bh_qvalues(pvals)
    q_seg, q_per = qs[: len(seg_cands)], qs[len(seg_cands) : len(seg_cands) + len(per_tests)]
    q_loop = qs[len(seg_cands) + len(per_tests) :]

    found: list[Finding] = []
    for f, q in zip(seg_cands, q_seg, strict=True):
        f.q_value = q
        if q is not None and q <= alpha and f.conversion < f.baseline:
            found.append(f)
    periods = _merge_periods(base_rows, per_tests, q_per, alpha, period)
    found += _explain_periods(periods)
    for t, q in zip(loop_tests, q_loop, strict=True):
        rate = t.looped / t.entered
        if q is not None and q <= alpha and rate > t.rest_rate:
            lost = t.entered * (rate - t.rest_rate)
            f = _finding(base_rows, "loop", t.stage + 1, rate, t.rest_rate, lost, t.entered,
                         to=t.back_to + 1, q_value=q)  # fmt: skip
            found.append(f)

    unique: dict[tuple[Any, ...], Finding] = {}
    for f in sorted(stage + found, key=lambda f: -f.lost_customers):
        unique.setdefault(f.key(), f)
    top = list(unique.values())[:limit]
    return Diagnosis(spec.name, top, len(pvals), alpha)


def _overlap(a: Finding, b: Finding) -> bool:
    assert a.period is not None and b.period is not None
    return a.step == b.step and not (
        a.period["end"] < b.period["start"] or b.period["end"] < a.period["start"]
    )


def _explain_periods(periods: list[Finding]) -> list[Finding]:
    """Report each bad period once: by the segment(s) that carry it when one platform or group
    accounts for most of the loss, else overall (and not again per segment)."""
    overall = [p for p in periods if p.segment is None]
    per_segment = [p for p in periods if p.segment is not None]
    keep = [p for p in per_segment if not any(_overlap(p, o) for o in overall)]
    for o in overall:
        parts = [p for p in per_segment if _overlap(p, o)]
        carriers = [p for p in parts if p.lost_customers >= CARRIER_SHARE * o.lost_customers]
        keep += carriers if carriers else [o]
    return keep
