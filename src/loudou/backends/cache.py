"""The columnar event cache: a derived, rebuildable copy of the events table laid out for funnels.

Events sit sorted by (customer, time, row id) in a *base* segment, with event names and property
values dictionary-encoded to small integers. Appends land in a sorted *delta* segment, so a funnel
after an import costs one small sort, not a rebuild; when the delta grows past a fraction of the
base, the two are merged in one linear pass. The store owns filling it (it knows the database);
this module holds the arrays and the pure operations on them.

Row ids are not kept (8 bytes per event that no funnel reads): the base holds the rows with ids
below ``delta_from`` and the delta the rows from there to ``watermark``, so merging needs no ids,
and a property added later is aligned by sorting its rows again the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from loudou.kernels.cache_sort import find_sorted, layout, merge, strictly_sorted, string_buffers
from loudou.kernels.scratch import ScratchPool

COMPACT_FRACTION = 0.05  # merge the delta into the base when it holds more than this share


@dataclass
class Segment:
    """Events of one segment, sorted by (customer index, time, row id), with CSR offsets."""

    off: np.ndarray  # int64 [customers + 1]
    ts: np.ndarray  # int64 microseconds
    code: np.ndarray  # int32 event-name code
    props: np.ndarray  # int32 [cached properties, events]; 0 = null, else 1 + index in values

    @property
    def size(self) -> int:
        return int(self.ts.shape[0])


def empty_segment(customers: int, n_props: int) -> Segment:
    return Segment(
        off=np.zeros(customers + 1, np.int64),
        ts=np.zeros(0, np.int64),
        code=np.zeros(0, np.int32),
        props=np.zeros((n_props, 0), np.int32),
    )


def _spliced(seg: Segment, affected: np.ndarray, part: Segment) -> Segment:
    """``seg`` with the ranges of the ``affected`` customers (sorted codes) taken from ``part``."""
    counts = np.diff(seg.off)
    counts[affected] = np.diff(part.off)[affected]
    off = np.zeros_like(seg.off)
    np.cumsum(counts, out=off[1:])
    pieces: list[tuple[Segment, int, int]] = []
    after = 0  # first customer not yet copied
    for k in affected.tolist():
        pieces.append((seg, int(seg.off[after]), int(seg.off[k])))
        pieces.append((part, int(part.off[k]), int(part.off[k + 1])))
        after = k + 1
    pieces.append((seg, int(seg.off[after]), int(seg.off[-1])))
    return Segment(
        off,
        np.concatenate([s.ts[a:b] for s, a, b in pieces]),
        np.concatenate([s.code[a:b] for s, a, b in pieces]),
        np.concatenate([s.props[:, a:b] for s, a, b in pieces], axis=1),
    )


def encode_values(
    values: pa.Array, dictionary: list[str] | None = None
) -> tuple[np.ndarray, list[str]]:
    """Codes for string values (0 = null), with the dictionary kept in sorted order so that code
    order is value order; an existing dictionary is extended (callers remap old codes)."""
    values = values.cast(pa.string())
    known = set(dictionary or [])
    new = [v for v in pc.unique(values.drop_null()).to_pylist() if v not in known]
    merged = sorted(known | set(new))
    codes = pc.index_in(values, value_set=pa.array(merged, pa.string()))
    out = codes.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int32) + 1
    return out, merged


@dataclass
class EventCache:
    """Base and delta segments plus the dictionaries that give their codes meaning."""

    customers: pa.Array  # customer id by code: the build's (sorted bytewise), then later ones
    events: list[str]
    base: Segment
    delta: Segment
    watermark: int  # next events.rowid not yet in the cache
    delta_from: int  # rows with ids below this sit in the base, the others in the delta
    rows: int = 0  # events in the cache (the table's row count when last brought up to date)
    links: int = 0  # identity links (rows of the identities table) whose re-keying it holds
    prop_names: list[str] = field(default_factory=list)
    prop_values: list[list[str]] = field(default_factory=list)
    traits: dict[str, tuple[list[str], np.ndarray]] = field(default_factory=dict)
    compact_fraction: float = COMPACT_FRACTION
    # queries' work buffers: they live as long as the cache and grow with it
    scratch: ScratchPool = field(default_factory=ScratchPool, repr=False)
    _sorted_customers: int = field(default=-1, repr=False)  # the build's: codes below this
    _added: dict[str, int] = field(default_factory=dict, repr=False)  # id -> code, since then
    _event_index: dict[str, int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.customers = self.customers.cast(pa.string())
        if self._sorted_customers < 0:
            self._sorted_customers = len(self.customers)
            if not strictly_sorted(*string_buffers(self.customers)):
                raise ValueError("event cache: customer ids must be distinct and sorted")
        self._event_index = {e: i for i, e in enumerate(self.events)}

    @property
    def size(self) -> int:
        return self.base.size + self.delta.size

    def event_code(self, name: str) -> int | None:
        return self._event_index.get(name)

    def customer_codes(self, ids: pa.Array | pa.ChunkedArray, add: bool = True) -> np.ndarray:
        """Codes for customer ids: a search among the build's ids (kept sorted, as Arrow: a few
        bytes per customer, far less than a Python dict), then the few added since.
        Unseen ids are added at the end (cached traits are then dropped: they are per customer),
        or get -1 when ``add`` is false. Each distinct id is looked up once."""
        enc = pc.dictionary_encode(ids)
        if isinstance(enc, pa.ChunkedArray):
            enc = enc.combine_chunks()
        distinct = enc.dictionary.cast(pa.string())
        order = pc.sort_indices(distinct)  # looked up in ascending order: see find_sorted
        codes = np.empty(len(distinct), np.int64)
        codes[order.to_numpy()] = find_sorted(
            *string_buffers(self.customers),
            self._sorted_customers,
            *string_buffers(distinct.take(order)),
        )
        missing = np.flatnonzero(codes < 0)
        if missing.size:
            new: list[str] = []
            for i, cid in zip(missing.tolist(), distinct.take(missing).to_pylist(), strict=True):
                code = self._added.get(cid)
                if code is None and add:
                    code = self._added[cid] = len(self.customers) + len(new)
                    new.append(cid)
                codes[i] = -1 if code is None else code
            if new:
                self.customers = pa.concat_arrays([self.customers, pa.array(new, pa.string())])
                self.traits.clear()  # per-customer arrays that no longer cover every customer
        return codes[enc.indices.to_numpy(zero_copy_only=False)]

    def event_codes(self, names: pa.Array) -> np.ndarray:
        enc = (
            pc.dictionary_encode(names).combine_chunks()
            if isinstance(names, pa.ChunkedArray)
            else pc.dictionary_encode(names)
        )
        mapping = np.empty(len(enc.dictionary), np.int32)
        for i, name in enumerate(enc.dictionary.to_pylist()):
            idx = self._event_index.get(name)
            if idx is None:
                idx = len(self.events)
                self.events.append(name)
                self._event_index[name] = idx
            mapping[i] = idx
        return mapping[enc.indices.to_numpy(zero_copy_only=False)]

    # -- appends ----------------------------------------------------------------------------------
    def append(
        self,
        cust: np.ndarray,
        ts: np.ndarray,
        code: np.ndarray,
        rowid: np.ndarray,
        props: np.ndarray,
    ) -> None:
        """Add new rows (any order, row ids from the watermark on) to the delta; compact when
        the delta gets large. Only the new rows are sorted (a counting sort by customer, then
        each customer's few rows); they are merged into the delta in one linear pass."""
        if rowid.size == 0:
            return
        self._grow_base_offsets()
        vals = np.empty((1 + props.shape[0], rowid.shape[0]), np.int32)
        vals[0] = code
        vals[1:] = props
        off, new_ts, new_vals = layout(len(self.customers), cust, rowid, ts, vals)
        d = self.delta
        m_off, m_ts, m_code, m_props = merge(
            d.off, d.ts, d.code, d.props, off, new_ts, new_vals[0], new_vals[1:]
        )
        self.delta = Segment(m_off, m_ts, m_code, m_props)
        self.watermark = max(self.watermark, int(rowid.max()) + 1)
        if self.delta.size > self.compact_fraction * max(self.base.size, 1):
            self.compact()

    def _grow_base_offsets(self) -> None:
        """New customers have empty ranges in both segments: extend the offsets to cover them."""
        for seg in (self.base, self.delta):
            missing = len(self.customers) + 1 - seg.off.shape[0]
            if missing > 0:
                seg.off = np.concatenate([seg.off, np.full(missing, seg.off[-1], np.int64)])

    def replace_customers(self, affected: np.ndarray, base: Segment, delta: Segment) -> None:
        """Put the rows in ``base`` and ``delta`` (laid out over every customer, holding rows of
        the ``affected`` customers only) in place of those customers' rows: an identity link
        re-keyed their events. One copy of each array, instead of a rebuild, which reads every
        event again."""
        self._grow_base_offsets()
        self.base = _spliced(self.base, affected, base)
        self.delta = _spliced(self.delta, affected, delta)

    def compact(self) -> None:
        """Merge the delta into the base in one linear pass per customer."""
        b, d = self.base, self.delta
        self.base = Segment(*merge(b.off, b.ts, b.code, b.props, d.off, d.ts, d.code, d.props))
        self.delta = empty_segment(len(self.customers), len(self.prop_names))
        self.delta_from = self.watermark

    # -- cached property columns ------------------------------------------------------------------
    def add_property(
        self, name: str, base_codes: np.ndarray, delta_codes: np.ndarray, values: list[str]
    ) -> None:
        self.prop_names.append(name)
        self.prop_values.append(values)
        self.base.props = np.vstack([self.base.props, base_codes[None, :].astype(np.int32)])
        self.delta.props = np.vstack([self.delta.props, delta_codes[None, :].astype(np.int32)])

    def extend_property(self, index: int, values: pa.Array) -> np.ndarray:
        """Codes for new values of a cached property, remapping stored codes if the sorted
        dictionary gained entries."""
        old = self.prop_values[index]
        codes, merged = encode_values(values, old)
        if merged != old:
            remap = np.zeros(len(old) + 1, np.int32)
            remap[1:] = (
                np.searchsorted(np.array(merged, dtype=object), np.array(old, dtype=object)) + 1
            )
            self.base.props[index] = remap[self.base.props[index]]
            self.delta.props[index] = remap[self.delta.props[index]]
            self.prop_values[index] = merged
        return codes
