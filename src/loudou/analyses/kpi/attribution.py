"""Multi-touch attribution: which channels (or campaigns) get the credit for conversions.

A *touch* is any event carrying a channel (ad clicks, UTM visits, e-mail clicks, sales calls); an
ad click and the page it lands on in the same session count once (see
:func:`~loudou.analyses.kpi.common.read_touches`). The *path* of a conversion is the customer's touches
strictly before it, after their previous conversion, and at most ``lookback`` before it.

Models (each conversion is one unit of credit, and its revenue is split the same way):

- ``first_touch`` / ``last_touch``: all to the first / last touch of the path;
- ``linear``: equal parts to every touch;
- ``time_decay``: touch weight ``2 ** (-age / half_life)``, age = time from touch to conversion;
- ``position``: 40% first, 40% last, 20% split over the middle (one touch: 100%, two: 50/50);
- ``markov``: first-order Markov chain over all paths, converting or not; a channel's share is
  its *removal effect* (the relative drop in the probability of converting when the channel is
  removed and visits to it end the journey), normalised over channels. Probabilities are absorption
  probabilities solved exactly from the transition matrix, with no simulation.

The kernels in the first half are pure numpy on paths in CSR form (``indptr`` into flat touch
arrays) and are tested on their own; :func:`run_attribution` reads the store.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from loudou.analyses.kpi.common import (
    DEFAULT_EVENTS,
    NONE_LABEL,
    US_PER_SECOND,
    DateRange,
    KpiError,
    KpiEvents,
    duration_option,
    read_purchases,
    read_touches,
    ts_us,
)
from loudou.errors import LoudouError

if TYPE_CHECKING:
    from loudou.backends.base import Store

MODELS = ("first_touch", "last_touch", "linear", "time_decay", "position", "markov")
HEURISTIC_MODELS = MODELS[:-1]
DEFAULT_LOOKBACK = "30d"
DEFAULT_HALF_LIFE = "7d"

# ---- pure kernels --------------------------------------------------------------------------------


@dataclass
class Paths:
    """Paths in CSR form: the touches of path i are ``key[indptr[i]:indptr[i+1]]``.

    ``key`` indexes ``names``; ``age`` is seconds from each touch to its path's conversion.
    ``conversions``, ``values`` and ``nulls`` weigh each path: how many times it converted, the
    revenue of those conversions, and how many times it ended without converting.
    """

    indptr: np.ndarray
    key: np.ndarray
    names: list[str]
    conversions: np.ndarray
    values: np.ndarray
    nulls: np.ndarray
    age: np.ndarray | None = None

    @property
    def n_paths(self) -> int:
        return int(self.indptr.size - 1)

    @classmethod
    def from_lists(
        cls,
        paths: Sequence[Sequence[str]],
        conversions: Sequence[float] | None = None,
        values: Sequence[float] | None = None,
        nulls: Sequence[float] | None = None,
        ages: Sequence[Sequence[float]] | None = None,
    ) -> Paths:
        """Paths from lists of channel names (default: each converted once, value 0, no nulls)."""
        n = len(paths)
        flat = [c for p in paths for c in p]
        codes, uniques = pd.factorize(pd.Series(flat, dtype=object), sort=False)
        indptr = np.zeros(n + 1, dtype=np.int64)
        indptr[1:] = np.cumsum([len(p) for p in paths])
        return cls(
            indptr=indptr,
            key=np.asarray(codes, dtype=np.int64),
            names=[str(u) for u in uniques],
            conversions=np.asarray(conversions if conversions is not None else [1.0] * n, float),
            values=np.asarray(values if values is not None else [0.0] * n, float),
            nulls=np.asarray(nulls if nulls is not None else [0.0] * n, float),
            age=None if ages is None else np.asarray([a for row in ages for a in row], dtype=float),
        )


def _positions(indptr: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per touch: its path, its rank in the path, and the path's length."""
    lengths = np.diff(indptr)
    path = np.repeat(np.arange(lengths.size), lengths)
    rank = np.arange(path.size) - indptr[:-1][path]
    return path, rank, lengths[path]


def touch_weights(
    indptr: np.ndarray,
    model: str,
    age: np.ndarray | None = None,
    half_life_seconds: float = 7 * 86400,
) -> np.ndarray:
    """The share of its path's conversion each touch gets; shares sum to 1 on every non-empty path.

    ``age`` (seconds before the conversion) is needed for ``time_decay`` only.
    """
    path, rank, length = _positions(indptr)
    if model == "first_touch":
        return (rank == 0).astype(float)
    if model == "last_touch":
        return (rank == length - 1).astype(float)
    if model == "linear":
        return 1.0 / length
    if model == "position":
        middle = np.where(length > 2, 0.2 / np.maximum(length - 2, 1), 0.0)
        ends = np.select([length == 1, length == 2], [1.0, 0.5], 0.4)
        return np.where((rank == 0) | (rank == length - 1), ends, middle)
    if model == "time_decay":
        if age is None:
            raise KpiError("time decay needs the age of every touch", "model")
        if half_life_seconds <= 0:
            raise KpiError("half-life must be positive", "--half-life")
        # Relative to the path's newest touch, so weights never underflow to 0/0.
        youngest = np.full(indptr.size - 1, np.inf)
        np.minimum.at(youngest, path, age)
        w = np.exp2(-(age - youngest[path]) / half_life_seconds)
        total = np.bincount(path, weights=w, minlength=indptr.size - 1)
        return w / total[path]
    raise KpiError(f"unknown model {model!r}; use one of {', '.join(MODELS)}", "--model")


def heuristic_credit(
    paths: Paths, model: str, half_life_seconds: float = 7 * 86400
) -> tuple[np.ndarray, np.ndarray]:
    """Conversions and value credited to each name by a rule-based model."""
    w = touch_weights(paths.indptr, model, paths.age, half_life_seconds)
    path, _, _ = _positions(paths.indptr)
    n = len(paths.names)
    conv = np.bincount(paths.key, weights=w * paths.conversions[path], minlength=n)
    value = np.bincount(paths.key, weights=w * paths.values[path], minlength=n)
    return conv, value


def transition_counts(paths: Paths) -> np.ndarray:
    """Weighted transition counts between states ``0`` = start, ``1..n`` = names, ``n+1`` =
    conversion, ``n+2`` = null (no conversion). Every path starts at start and ends absorbed."""
    n = len(paths.names)
    size = n + 3
    counts = np.zeros((size, size))
    lengths = np.diff(paths.indptr)
    keep = lengths > 0
    weight = paths.conversions + paths.nulls
    path, rank, length = _positions(paths.indptr)
    state = paths.key + 1
    # start -> first touch
    firsts = paths.indptr[:-1][keep]
    np.add.at(counts, (0, state[firsts]), weight[keep])
    # touch -> next touch within a path
    inner = rank < length - 1
    idx = np.flatnonzero(inner)
    np.add.at(counts, (state[idx], state[idx + 1]), weight[path[idx]])
    # last touch -> conversion / null
    lasts = paths.indptr[1:][keep] - 1
    np.add.at(counts, (state[lasts], n + 1), paths.conversions[keep])
    np.add.at(counts, (state[lasts], n + 2), paths.nulls[keep])
    return counts


def transition_matrix(counts: np.ndarray) -> np.ndarray:
    """Row-normalised counts; absorbing states (conversion, null) and unused rows stay zero."""
    totals = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)


def conversion_probability(matrix: np.ndarray, removed: int | None = None) -> float:
    """Probability of being absorbed in conversion starting from the start state, exactly.

    Solves ``(I - Q) x = r`` over the transient states (start and the names), where ``Q`` holds
    transitions among them and ``r`` the one-step conversion probabilities. A removed state
    (``removed`` is a name index, 0-based) is taken out of the transient set: reaching it ends
    the journey without conversion.
    """
    size = matrix.shape[0]
    conv = size - 2
    transient = [s for s in range(conv) if removed is None or s != removed + 1]
    q = matrix[np.ix_(transient, transient)]
    r = matrix[transient, conv]
    x = np.linalg.solve(np.eye(len(transient)) - q, r)
    return float(x[0])


def removal_effects(paths: Paths) -> tuple[float, np.ndarray]:
    """P(conversion) of the full chain and each name's removal effect ``1 - P_without / P``."""
    matrix = transition_matrix(transition_counts(paths))
    base = conversion_probability(matrix)
    n = len(paths.names)
    if base <= 0:
        return base, np.zeros(n)
    effects = np.array([1.0 - conversion_probability(matrix, k) / base for k in range(n)])
    return base, np.clip(effects, 0.0, 1.0)


def markov_credit(paths: Paths) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
    """Total conversions and value split by normalised removal effects.

    Returns (conversions, value, P(conversion), removal effects).
    """
    base, effects = removal_effects(paths)
    total = effects.sum()
    share = effects / total if total > 0 else np.zeros_like(effects)
    return (
        share * paths.conversions.sum(),
        share * paths.values.sum(),
        base,
        effects,
    )


def markov_touch_weights(paths: Paths, effects: np.ndarray) -> np.ndarray:
    """Per-path Markov credit: each touch's share of its path is its name's removal effect over
    the sum over the path's touches (equal shares if all are zero). Used where credit is needed
    per conversion (CAC by month or campaign)."""
    path, _, length = _positions(paths.indptr)
    w = effects[paths.key]
    total = np.bincount(path, weights=w, minlength=paths.n_paths)
    return np.where(total[path] > 0, w / np.where(total[path] > 0, total[path], 1), 1.0 / length)


def credit(
    paths: Paths, model: str, half_life_seconds: float = 7 * 86400
) -> tuple[np.ndarray, np.ndarray, dict[str, Any] | None]:
    """Conversions and value per name for any model, and Markov details when it is Markov."""
    if model == "markov":
        conv, value, base, effects = markov_credit(paths)
        detail = {
            "conversion_probability": base,
            "removal_effects": {n: float(e) for n, e in zip(paths.names, effects, strict=True)},
        }
        return conv, value, detail
    conv, value = heuristic_credit(paths, model, half_life_seconds)
    return conv, value, None


def per_path_weights(paths: Paths, model: str, half_life_seconds: float = 7 * 86400) -> np.ndarray:
    """Each touch's share of its own path's conversion, for any model (Markov: see
    :func:`markov_touch_weights`)."""
    if model == "markov":
        _, effects = removal_effects(paths)
        return markov_touch_weights(paths, effects)
    return touch_weights(paths.indptr, model, paths.age, half_life_seconds)


# ---- journeys from events --------------------------------------------------------------------------


@dataclass
class Journeys:
    """Paths built from a store, with who converted when (for CAC and reports)."""

    paths: Paths
    customer: list[str]  # per path
    t: np.ndarray  # conversion time (µs) per path; for null paths the last touch's time
    converted: np.ndarray  # bool per path
    unattributed: int  # conversions in range with no touch in the lookback
    unattributed_revenue: float
    channel_of: dict[str, str] = field(default_factory=dict)  # name -> channel (by campaign)


def key_of(channel: str, campaign: str | None, by: str) -> str:
    if by == "campaign":
        return f"{channel}/{NONE_LABEL if campaign is None or pd.isna(campaign) else campaign}"
    return channel


def build_journeys(
    touches: pd.DataFrame,
    conversions: pd.DataFrame,
    lookback_us: int,
    rng: DateRange = DateRange(),
    by: str = "channel",
    with_nulls: bool = False,
) -> Journeys:
    """Paths of the conversions in ``rng`` (and, with ``with_nulls``, of journeys that ended in
    the range without converting: the touches after a customer's last conversion, within the
    lookback of the last of them).

    ``touches``: customer_id, t, channel, campaign sorted by customer and time (all history);
    ``conversions``: customer_id, t, revenue (all history up to the range end).
    """
    if by not in ("channel", "campaign"):
        raise KpiError(f"unknown grouping {by!r}; use channel or campaign", "by")
    since_us, until_us = rng.since_us(), rng.until_us()
    since = int(np.iinfo(np.int64).min) if since_us is None else since_us
    until = int(np.iinfo(np.int64).max) if until_us is None else until_us
    touch_keys = [
        key_of(ch, cp, by)
        for ch, cp in zip(touches.get("channel", []), touches.get("campaign", []), strict=True)
    ]
    key_codes, key_names = pd.factorize(pd.Series(touch_keys, dtype=object), sort=True)
    channel_of = {
        key_of(ch, cp, by): ch
        for ch, cp in zip(touches.get("channel", []), touches.get("campaign", []), strict=True)
    }
    all_customers = pd.concat(
        [touches.get("customer_id", pd.Series(dtype=object)), conversions["customer_id"]]
    )
    codes, customers = pd.factorize(all_customers, sort=False)
    tc = np.asarray(codes[: len(touches)], dtype=np.int64)
    tt = np.asarray(touches["t"].to_numpy() if len(touches) else [], dtype=np.int64)
    order = np.lexsort((tt, tc))
    tc, tt, tk = tc[order], tt[order], np.asarray(key_codes, dtype=np.int64)[order]
    cc = np.asarray(codes[len(touches) :], dtype=np.int64)
    ct = conversions["t"].to_numpy(dtype=np.int64)
    cv = conversions["revenue"].to_numpy(dtype=float)
    corder = np.lexsort((ct, cc))
    cc, ct, cv = cc[corder], ct[corder], cv[corder]
    first_of_customer = np.r_[True, cc[1:] != cc[:-1]] if cc.size else np.zeros(0, bool)
    prev = np.where(first_of_customer, np.iinfo(np.int64).min, np.r_[0, ct[:-1]])

    t_lo = np.searchsorted(tc, cc, "left")
    t_hi = np.searchsorted(tc, cc, "right")
    starts: list[int] = []
    stops: list[int] = []
    path_customer: list[int] = []
    path_t: list[int] = []
    conv_w: list[float] = []
    val_w: list[float] = []
    null_w: list[float] = []
    unattributed, unattributed_rev = 0, 0.0
    in_range = (ct >= since) & (ct < until)
    for i in np.flatnonzero(in_range):
        lo_i, hi_i = int(t_lo[i]), int(t_hi[i])
        seg = tt[lo_i:hi_i]
        lo = lo_i + max(
            int(np.searchsorted(seg, prev[i], "right")),
            int(np.searchsorted(seg, ct[i] - lookback_us, "left")),
        )
        hi = lo_i + int(np.searchsorted(seg, ct[i], "left"))
        if hi <= lo:
            unattributed += 1
            unattributed_rev += float(cv[i])
            continue
        starts.append(lo)
        stops.append(hi)
        path_customer.append(int(cc[i]))
        path_t.append(int(ct[i]))
        conv_w.append(1.0)
        val_w.append(float(cv[i]))
        null_w.append(0.0)
    n_converted = len(starts)

    if with_nulls and tc.size:
        # The last conversion before the range end, per customer with touches.
        last_conv = np.full(len(customers), np.iinfo(np.int64).min, dtype=np.int64)
        before_end = ct < until
        np.maximum.at(last_conv, cc[before_end], ct[before_end])
        bounds = np.flatnonzero(np.r_[True, tc[1:] != tc[:-1]])
        ends = np.r_[bounds[1:], tc.size]
        for lo_np, hi_np in zip(bounds, ends, strict=True):
            lo_i, hi_i = int(lo_np), int(hi_np)
            code = int(tc[lo_i])
            seg = tt[lo_i:hi_i]
            hi = lo_i + int(np.searchsorted(seg, until, "left"))
            if hi <= lo_i:
                continue
            last_t = int(tt[hi - 1])
            if last_t < since:
                continue
            lo = lo_i + max(
                int(np.searchsorted(seg, last_conv[code], "right")),
                int(np.searchsorted(seg, last_t - lookback_us, "left")),
            )
            if hi <= lo:
                continue
            starts.append(lo)
            stops.append(hi)
            path_customer.append(code)
            path_t.append(last_t)
            conv_w.append(0.0)
            val_w.append(0.0)
            null_w.append(1.0)

    lengths = np.asarray(stops, dtype=np.int64) - np.asarray(starts, dtype=np.int64)
    indptr = np.zeros(len(starts) + 1, dtype=np.int64)
    indptr[1:] = np.cumsum(lengths)
    take = (
        np.concatenate([np.arange(a, b) for a, b in zip(starts, stops, strict=True)])
        if starts
        else np.zeros(0, dtype=np.int64)
    )
    owner = np.repeat(np.asarray(path_t, dtype=np.int64), lengths)
    paths = Paths(
        indptr=indptr,
        key=tk[take],
        names=[str(k) for k in key_names],
        conversions=np.asarray(conv_w, dtype=float),
        values=np.asarray(val_w, dtype=float),
        nulls=np.asarray(null_w, dtype=float),
        age=(owner - tt[take]) / US_PER_SECOND,
    )
    converted = np.zeros(len(starts), dtype=bool)
    converted[:n_converted] = True
    return Journeys(
        paths=paths,
        customer=[str(customers[c]) for c in path_customer],
        t=np.asarray(path_t, dtype=np.int64),
        converted=converted,
        unattributed=unattributed,
        unattributed_revenue=unattributed_rev,
        channel_of=channel_of,
    )


# ---- results ----------------------------------------------------------------------------------------


@dataclass
class AttributionRow:
    channel: str
    conversions: float
    revenue: float
    share: float
    campaign: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "channel": self.channel,
            "conversions": self.conversions,
            "revenue": self.revenue,
            "share": self.share,
        }
        if self.campaign is not None:
            d["campaign"] = self.campaign
        return d


@dataclass
class AttributionResult:
    """Credit per channel (or campaign). ``to_dict`` is the stable ``--json`` document."""

    model: str
    conversion: str
    lookback_seconds: int
    half_life_seconds: int | None
    by: str
    range: DateRange
    conversions: int  # conversions in the range
    revenue: float
    unattributed_conversions: int
    unattributed_revenue: float
    channels: list[AttributionRow]
    markov: dict[str, Any] | None = None
    segment_by: str | None = None
    segments: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "conversion": self.conversion,
            "lookback_seconds": self.lookback_seconds,
            "half_life_seconds": self.half_life_seconds,
            "by": self.by,
            **self.range.to_dict(),
            "total_conversions": self.conversions,
            "total_revenue": self.revenue,
            "unattributed_conversions": self.unattributed_conversions,
            "unattributed_revenue": self.unattributed_revenue,
            "channels": [r.to_dict() for r in self.channels],
            **({"markov": self.markov} if self.markov is not None else {}),
            "segment_by": self.segment_by,
            "segments": [
                {**seg, "channels": [r.to_dict() for r in seg["channels"]]} for seg in self.segments
            ],
        }

    def to_pandas(self) -> pd.DataFrame:
        return pd.DataFrame([r.to_dict() for r in self.channels])


def read_conversions(store: Store, event: str, until: datetime | None) -> pd.DataFrame:
    """Conversion events (all history before ``until``): customer_id, t, revenue (null -> 0)."""
    if event == DEFAULT_EVENTS.purchase:
        return read_purchases(store, KpiEvents(purchase=event), until)
    table = store.read_events([event], until=until, columns=("customer_id", "ts", "revenue"))
    return pd.DataFrame(
        {
            "customer_id": table.column("customer_id").to_pylist(),
            "t": ts_us(table),
            "revenue": np.nan_to_num(
                table.column("revenue").to_numpy(zero_copy_only=False).astype(float)
            ),
        }
    )


def rows_from_credit(
    names: list[str], conv: np.ndarray, value: np.ndarray, by: str, channel_of: dict[str, str]
) -> list[AttributionRow]:
    total = float(conv.sum())
    rows = []
    for name, c, v in zip(names, conv, value, strict=True):
        channel, campaign = name, None
        if by == "campaign":
            channel = channel_of.get(name, name.split("/", 1)[0])
            campaign = name[len(channel) + 1 :]
        rows.append(
            AttributionRow(
                channel=channel,
                campaign=campaign,
                conversions=float(c),
                revenue=float(v),
                share=float(c) / total if total > 0 else 0.0,
            )
        )
    rows.sort(key=lambda r: (-r.conversions, r.channel, r.campaign or ""))
    return rows


def _attribute(
    touches: pd.DataFrame,
    conversions: pd.DataFrame,
    model: str,
    lookback_s: int,
    half_life_s: int,
    rng: DateRange,
    by: str,
) -> dict[str, Any]:
    journeys = build_journeys(
        touches,
        conversions,
        lookback_s * US_PER_SECOND,
        rng,
        by=by,
        with_nulls=model == "markov",
    )
    paths = journeys.paths
    conv, value, detail = credit(paths, model, half_life_s)
    used = np.zeros(len(paths.names), dtype=bool)
    used[paths.key] = True
    rows = rows_from_credit(
        [n for n, u in zip(paths.names, used, strict=True) if u],
        conv[used],
        value[used],
        by,
        journeys.channel_of,
    )
    return {
        "conversions": int(paths.conversions.sum()) + journeys.unattributed,
        "revenue": float(paths.values.sum()) + journeys.unattributed_revenue,
        "unattributed_conversions": journeys.unattributed,
        "unattributed_revenue": journeys.unattributed_revenue,
        "channels": rows,
        "markov": detail,
    }


def run_attribution(
    store: Store,
    conversion: str = DEFAULT_EVENTS.purchase,
    model: str = "linear",
    lookback: str | int = DEFAULT_LOOKBACK,
    half_life: str | int = DEFAULT_HALF_LIFE,
    rng: DateRange = DateRange(),
    by: str = "channel",
    segment: str | None = None,
) -> AttributionResult:
    """Attribute the ``conversion`` events in ``rng`` to the channels (or campaigns) that led there.

    Channels seen in the paths but credited nothing are listed with zero. With ``segment`` (a
    customer trait), the same attribution is also run within each value of the trait.
    """
    if model not in MODELS:
        raise KpiError(f"unknown model {model!r}; use one of {', '.join(MODELS)}", "--model")
    lookback_s = duration_option(lookback, "--lookback")
    half_life_s = duration_option(half_life, "--half-life")
    until = rng.until
    touches = read_touches(store, until=until)
    conversions = read_conversions(store, conversion, until)
    overall = _attribute(touches, conversions, model, lookback_s, half_life_s, rng, by)
    segments = []
    if segment is not None:
        from loudou.analyses.kpi.common import read_traits

        try:
            traits = read_traits(store, segment.removeprefix("customer."))
        except LoudouError as e:
            raise KpiError(e.message, "--segment") from None
        t_seg = touches["customer_id"].map(traits).fillna(NONE_LABEL) if len(touches) else None
        c_seg = conversions["customer_id"].map(traits).fillna(NONE_LABEL)
        for value in sorted(set(c_seg)):
            part = _attribute(
                touches[t_seg == value] if t_seg is not None else touches,
                conversions[c_seg == value],
                model,
                lookback_s,
                half_life_s,
                rng,
                by,
            )
            if part["conversions"]:
                segments.append({"segment": value, **part})
    return AttributionResult(
        model=model,
        conversion=conversion,
        lookback_seconds=lookback_s,
        half_life_seconds=half_life_s if model == "time_decay" else None,
        by=by,
        range=rng,
        conversions=overall["conversions"],
        revenue=overall["revenue"],
        unattributed_conversions=overall["unattributed_conversions"],
        unattributed_revenue=overall["unattributed_revenue"],
        channels=overall["channels"],
        markov=overall["markov"],
        segment_by=segment,
        segments=segments,
    )
