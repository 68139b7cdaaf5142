"""Segment membership: which customers a :class:`Segment` holds, RFM scores, and the saved list.

Rules are evaluated over all customers of the store with the generic reads (``read_customers``,
``read_events``), so nothing here builds SQL. "Last N days" counts back from ``as_of``, which
defaults to the newest ``last_seen`` in the store, so old exports and demos behave like live data.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa

from loudou.backends.base import Store
from loudou.model.conditions import Check, Scalar, holds_all
from loudou.model.segment import RFM_NAMES, Rule, Segment, SegmentError, rfm_group

INDEX_KEY = "segments"


# ---- saved segments -----------------------------------------------------------------------------


def list_segments(store: Store) -> list[Segment]:
    """Saved segments in the order they were first saved."""
    return [load_segment(store, n) for n in _index(store)]


def _index(store: Store) -> list[str]:
    raw = store.get_meta(INDEX_KEY)
    return list(json.loads(raw)) if raw else []


def save_segment(store: Store, segment: Segment) -> None:
    """Save (or replace) a segment under its name."""
    store.set_meta(f"segment:{segment.name}", json.dumps(segment.to_dict(), ensure_ascii=False))
    names = _index(store)
    if segment.name not in names:
        store.set_meta(INDEX_KEY, json.dumps([*names, segment.name], ensure_ascii=False))


def delete_segment(store: Store, name: str) -> None:
    """Forget a saved segment (the meta store has no delete: the entry is blanked)."""
    load_segment(store, name)
    store.set_meta(f"segment:{name}", "")
    names = [n for n in _index(store) if n != name]
    store.set_meta(INDEX_KEY, json.dumps(names, ensure_ascii=False))


def load_segment(store: Store, name: str) -> Segment:
    raw = store.get_meta(f"segment:{name}")
    if not raw:
        known = ", ".join(_index(store)) or "none saved yet"
        raise SegmentError(f"no segment named {name!r} (known: {known})", "segment")
    return Segment.parse(json.loads(raw), name)


# ---- evaluation ---------------------------------------------------------------------------------


def data_end(store: Store) -> datetime | None:
    """Time of the newest event in the store (the default 'now' of look-backs)."""
    last = store.read_customers().column("last_seen")
    value = pa.compute.max(last).as_py()
    return value if isinstance(value, datetime) else None


def members(store: Store, segment: Segment, as_of: datetime | None = None) -> np.ndarray:
    """Sorted customer ids (object array) of the customers in the segment."""
    table = store.read_customers()
    ids = np.asarray(table.column("customer_id").to_pylist(), dtype=object)
    keep = np.ones(ids.size, dtype=bool)
    now = as_of or data_end(store)
    for rule in segment.rules:
        keep &= rule_mask(store, rule, ids, table, now, segment.purchase_event)
    return ids[keep]


def member_table(store: Store, segment: Segment) -> pa.Table:
    """The segment's customers: customer_id, first_seen, last_seen (for exports)."""
    table = store.read_customers()
    ids = np.asarray(table.column("customer_id").to_pylist(), dtype=object)
    keep = np.isin(ids, members(store, segment))
    return table.filter(keep).select(["customer_id", "first_seen", "last_seen"])


def rule_mask(
    store: Store,
    rule: Rule,
    ids: np.ndarray,
    customers: pa.Table,
    now: datetime | None,
    purchase_event: str = "order_completed",
) -> np.ndarray:
    """Boolean mask over ``ids`` (all customers, sorted) of those passing one rule."""
    kind = rule.kind
    if kind == "trait":
        assert rule.trait is not None
        values = store.read_customers([rule.trait]).column(rule.trait).to_pylist()
        tests = Check.of(rule.op, rule.value)
        return np.array([holds_all(tests, v) for v in values], dtype=bool)
    if kind == "cohort":
        return _cohort_mask(store, rule, customers)
    if kind == "rfm":
        scores = rfm_scores(store, purchase_event, now)
        wanted = set(rule.rfm or [])
        return np.isin(
            ids,
            [c for c, g in zip(scores["customer_id"], scores["group"], strict=True) if g in wanted],
        )
    since = now - timedelta(days=rule.days) if (rule.days and now) else None
    until = now + timedelta(microseconds=1) if now else None
    if kind == "visits":
        return _visits_mask(store, rule, ids, since, until)
    if kind == "interest":
        prop = rule.interest_property
        ev = store.read_events(
            since=since, until=until, columns=("customer_id",), properties=(prop,)
        )
        df = ev.to_pandas()
        hit = df[df[prop].astype("string").str.lower() == str(rule.interest).lower()]
        counts = hit.groupby("customer_id").size()
        return np.isin(ids, counts.index[counts >= rule.min_events].to_numpy())
    event = rule.did if kind == "did" else rule.did_not
    assert event is not None
    done = store.read_events([event], since=since, until=until, columns=("customer_id",))
    did = np.isin(ids, np.unique(np.asarray(done.column("customer_id").to_pylist(), dtype=object)))
    return did if kind == "did" else ~did


def _visits_mask(
    store: Store, rule: Rule, ids: np.ndarray, since: datetime | None, until: datetime | None
) -> np.ndarray:
    """Visits are distinct sessions; events without a session count one visit per day."""
    ev = store.read_events(since=since, until=until, columns=("customer_id", "ts", "session_id"))
    df = ev.to_pandas()
    key = df["session_id"].astype("string").fillna("day:" + df["ts"].dt.strftime("%Y-%m-%d"))
    visits = key.groupby(df["customer_id"]).nunique()
    counts = visits.reindex(ids, fill_value=0).to_numpy()
    assert rule.visits is not None
    low, high = rule.visits
    ok = counts >= (low or 0)
    if high is not None:
        ok &= counts <= high
    return np.asarray(ok, dtype=bool)


def _cohort_mask(store: Store, rule: Rule, customers: pa.Table) -> np.ndarray:
    assert rule.cohort is not None
    if rule.cohort_of:
        raw = store.read_customers([rule.cohort_of]).column(rule.cohort_of).to_pylist()
        days = [_as_date(v) for v in raw]
    else:
        days = [v.date() if v else None for v in customers.column("first_seen").to_pylist()]
    return np.array([d is not None and cohort_label(d, rule.cohort) == rule.cohort for d in days])


def cohort_label(day: date, like: str) -> str:
    """The cohort of a day in the same form as ``like``: month, ISO week or day."""
    if "W" in like:
        year, week, _ = day.isocalendar()
        return f"{year}-W{week:02d}"
    return day.strftime("%Y-%m") if len(like) == 7 else day.isoformat()


def _as_date(value: object) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def trait_matches(actual: str | None, op: str, expected: Scalar | list[Scalar] | None) -> bool:
    """One trait test, by the funnel's condition rules (:mod:`loudou.model.conditions`)."""
    return holds_all(Check.of(op, expected), actual)


# ---- RFM ----------------------------------------------------------------------------------------


def rfm_scores(
    store: Store, purchase_event: str = "order_completed", as_of: datetime | None = None
) -> pd.DataFrame:
    """Recency, frequency and monetary value per customer with scores 1–5 and the named group.

    Scores are quintiles of the percentile rank among buyers (ties share a score; recent is 5).
    Customers without a purchase get group ``no_purchase`` and no scores.
    """
    now = as_of or data_end(store)
    until = now + timedelta(microseconds=1) if now else None
    ev = store.read_events(
        [purchase_event], until=until, columns=("customer_id", "ts", "revenue")
    ).to_pandas()
    per = ev.groupby("customer_id").agg(
        last=("ts", "max"), frequency=("ts", "size"), monetary=("revenue", "sum")
    )
    customers = pd.Index(
        store.read_customers().column("customer_id").to_pylist(), name="customer_id"
    )
    out = pd.DataFrame(index=customers.union(per.index))
    out = out.join(per)
    buyers = out["frequency"].notna()
    if now is not None and buyers.any():
        out.loc[buyers, "recency_days"] = (now - out.loc[buyers, "last"]).dt.total_seconds() / 86400
    else:
        out["recency_days"] = np.nan
    for col, score, sign in (
        ("recency_days", "r", -1),
        ("frequency", "f", 1),
        ("monetary", "m", 1),
    ):
        pct = (sign * out.loc[buyers, col].astype(float)).rank(method="average", pct=True)
        out[score] = pd.Series(np.clip(np.ceil(5 * pct), 1, 5), index=pct.index).astype("Int64")
    out["group"] = [
        rfm_group(int(r), int(f)) if b else "no_purchase"
        for r, f, b in zip(out["r"].fillna(0), out["f"].fillna(0), buyers, strict=True)
    ]
    assert set(out["group"]) <= set(RFM_NAMES)
    return out.drop(columns=["last"]).reset_index()
