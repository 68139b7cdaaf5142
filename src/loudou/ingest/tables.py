"""From raw batches to the store's tables: which column is which, which rows are good, and why the
others are not.

Column matching, per target field: the user's mapping first, then a column with the field's name,
then the field's aliases; names compare exactly first, then ignoring case, spaces and punctuation
('User ID' matches user_id). For events, ``utm_source`` and ``utm_campaign`` fill ``channel`` and
``campaign`` when the file has no such columns. Every other column becomes a property (events) or a
trait (customers); a ``properties`` / ``traits`` column holding JSON objects is merged in, with the
flat columns winning. Empty cells are left out, so an import never erases a stored trait.

Generated event ids hash customer_id, event, ts (UTC microseconds), session_id, channel, campaign,
revenue and the properties JSON (sorted keys): the same row gives the same id in any run and any
format, so re-importing a file adds nothing, while rows that differ in any value stay apart.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from loudou.backends.base import CUSTOMER_SCHEMA, EVENT_SCHEMA, SPEND_SCHEMA, conform
from loudou.errors import ImportError_
from loudou.ingest.columns import Column, decoded, dumps, join_text, json_members
from loudou.ingest.formats import RawBatch
from loudou.ingest.timestamps import BAD, MISSING, TimeZone, parse_times

_CUSTOMER_ALIASES = ("user_id", "userId", "distinct_id", "customerId")
_DAY_US = 86_400_000_000


@dataclass(frozen=True)
class Field:
    """A column of the store's table that a file column can fill."""

    name: str
    required: bool = False
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class KindSpec:
    """What an import kind needs from a file."""

    kind: str
    fields: tuple[Field, ...]
    nested: str | None = None  # a column of JSON objects merged into properties / traits
    keeps_rest: bool = True  # unmatched columns become properties / traits

    def targets(self) -> list[str]:
        names = [f.name for f in self.fields]
        return names + [self.nested] if self.nested else names


KINDS: dict[str, KindSpec] = {
    "events": KindSpec(
        "events",
        (
            Field("event_id", aliases=("uuid", "message_id", "messageId", "insert_id")),
            Field("customer_id", True, _CUSTOMER_ALIASES),
            Field("event", True, ("event_name", "action", "event_type")),
            Field("ts", True, ("timestamp", "time", "event_time", "datetime")),
            Field("session_id", aliases=("sessionId",)),
            Field("channel", aliases=("utm_source",)),
            Field("campaign", aliases=("utm_campaign",)),
            Field("revenue"),
        ),
        nested="properties",
    ),
    "customers": KindSpec(
        "customers", (Field("customer_id", True, _CUSTOMER_ALIASES),), nested="traits"
    ),
    "spend": KindSpec(
        "spend",
        (
            Field("day", True, ("date",)),
            Field("channel", True, ("utm_source", "source")),
            Field("campaign", aliases=("utm_campaign",)),
            Field("amount", True, ("spend", "cost")),
            Field("currency"),
        ),
        keeps_rest=False,
    ),
}


def _norm(name: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", name.lower()).strip("_")


def _find(names: list[str], wanted: str, used: set[str]) -> str | None:
    if wanted in names and wanted not in used:
        return wanted
    key = _norm(wanted)
    return next((n for n in names if n not in used and _norm(n) == key), None)


@dataclass
class Resolution:
    """Which file column fills which target field, for one batch."""

    fields: dict[str, str]
    nested: str | None = None
    rest: list[str] = field(default_factory=list)

    def label(self, target: str) -> str:
        """The field as a user would find it in their file, for reject reasons."""
        source = self.fields.get(target)
        return target if source in (None, target) else f"{target} (column {source!r})"


def check_mapping(spec: KindSpec, mapping: dict[str, str]) -> None:
    """Mapping keys must be fields of the kind; a typo should not be silently ignored."""
    valid = spec.targets()
    for target, source in mapping.items():
        if target not in valid:
            raise ImportError_(
                f"unknown field {target!r} in the column mapping for {spec.kind}; "
                f"fields: {', '.join(valid)}",
                "mapping",
            )
        if not isinstance(source, str) or not source.strip():
            raise ImportError_(f"the column mapped to {target!r} has no name", "mapping")


def resolve(
    names: list[str], spec: KindSpec, mapping: dict[str, str], *, strict: bool, where: str
) -> Resolution:
    """Match file columns to fields. ``strict`` (first batch) turns a missing mapped or required
    column into an error naming it and the columns found."""
    used: set[str] = set()
    fields: dict[str, str] = {}
    for target, source in mapping.items():
        col = _find(names, source, used)
        if col is None:
            if strict:
                raise ImportError_(
                    f"column {source!r} (mapped to {target}) is not in {where}; "
                    f"columns found: {_listing(names)}",
                    "mapping",
                )
            continue
        fields[target] = col
        used.add(col)
    for f in spec.fields:
        for candidate in (f.name, *f.aliases) if f.name not in fields else ():
            col = _find(names, candidate, used)
            if col is not None:
                fields[f.name] = col
                used.add(col)
                break
    nested = fields.pop(spec.nested, None) if spec.nested else None
    if spec.nested and nested is None:
        nested = _find(names, spec.nested, used)
    if nested:
        used.add(nested)
    missing = [f.name for f in spec.fields if f.required and f.name not in fields]
    if strict and missing:
        raise ImportError_(
            f"{where} has no {missing[0]} column, which {spec.kind} need; columns found: "
            f"{_listing(names)}; map one with a column mapping such as {missing[0]}=<column>",
            missing[0],
        )
    rest = [n for n in names if n not in used] if spec.keeps_rest else []
    return Resolution(fields, nested, rest)


def _listing(names: list[str]) -> str:
    return ", ".join(names) if names else "(none)"


# -- checking rows ---------------------------------------------------------------------------------
class _Checks:
    """Reasons per bad row; a row may fail several checks and all of them are reported."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.reasons: dict[int, list[str]] = {}

    def flag(self, mask: np.ndarray, reason: str | Callable[[int, int], str]) -> None:
        idx = np.flatnonzero(mask).tolist()
        for k, i in enumerate(idx):
            self.reasons.setdefault(i, []).append(
                reason if isinstance(reason, str) else reason(k, i)
            )

    def good(self) -> np.ndarray:
        ok = np.ones(self.n, dtype=bool)
        ok[list(self.reasons)] = False
        return np.flatnonzero(ok)


def _column(batch: RawBatch, res: Resolution, target: str) -> Column | None:
    source = res.fields.get(target)
    return batch.columns.get(source) if source else None


def _text(batch: RawBatch, res: Resolution, target: str, *, labels: bool = False) -> pa.Array:
    """The target's text; with ``labels``, dictionary-encoded text may stay encoded."""
    col = _column(batch, res, target)
    if col is None:
        return pa.nulls(batch.num_rows, pa.string())
    return col.labels() if labels else col.strings()


def _required_text(
    batch: RawBatch, res: Resolution, target: str, checks: _Checks, *, labels: bool = False
) -> pa.Array:
    s = _text(batch, res, target, labels=labels)
    checks.flag(
        np.asarray(s.is_null().to_numpy(zero_copy_only=False)), f"missing {res.label(target)}"
    )
    return s


def _bad_values(col: Column, mask: np.ndarray) -> list[str]:
    return col.take(np.flatnonzero(mask)).texts()


def _times(
    batch: RawBatch, res: Resolution, target: str, tz: TimeZone, checks: _Checks, what: str
) -> np.ndarray:
    label = res.label(target)
    col = _column(batch, res, target)
    if col is None:
        checks.flag(np.ones(batch.num_rows, dtype=bool), f"missing {label}")
        return np.zeros(batch.num_rows, dtype=np.int64)
    us, status = parse_times(col.time_input(), tz)
    checks.flag(status == MISSING, f"missing {label}")
    texts = _bad_values(col, status == BAD)
    checks.flag(status == BAD, lambda k, _: f"{label} {texts[k].strip()!r} is not {what}")
    return us


def _number(
    batch: RawBatch, res: Resolution, target: str, checks: _Checks, *, required: bool
) -> pa.Array:
    label = res.label(target)
    col = _column(batch, res, target)
    if col is None:
        if required:
            checks.flag(np.ones(batch.num_rows, dtype=bool), f"missing {label}")
        return pa.nulls(batch.num_rows, pa.float64())
    values, bad = col.numbers()
    texts = _bad_values(col, bad)
    checks.flag(bad, lambda k, _: f"{label} {texts[k].strip()!r} is not a number")
    if required:
        missing = np.asarray(values.is_null().to_numpy(zero_copy_only=False)) & ~bad
        checks.flag(missing, f"missing {label}")
    return values


# -- properties and traits -------------------------------------------------------------------------
def _nested_object(value: Any, name: str) -> dict[str, Any]:
    if isinstance(value, str) and value.lstrip().startswith("{"):
        try:
            value = json.loads(value)
        except ValueError:
            pass
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if v is not None and v != ""}
    return {} if value is None else {name: value}


def objects(batch: RawBatch, res: Resolution, good: np.ndarray, name: str) -> pa.Array:
    """One JSON object text per good row from the leftover columns (and the nested column)."""
    if res.nested:
        return pa.array(_merged_objects(batch, res, good, name), pa.string())
    if not res.rest:
        return pa.array(["{}"] * len(good), pa.string())
    # Flat objects are assembled column by column; members are sorted by key like ``dumps``.
    parts = [(dumps(k), *_rows(batch.columns[k], good).json_text()) for k in sorted(res.rest)]
    if all(text.null_count == 0 for _, _, text in parts):
        return _whole_objects(parts)
    members = [
        json_members(key, join_text(['"', text, '"']) if quoted else decoded(text))
        for key, quoted, text in parts
    ]
    joined = pc.binary_join_element_wise(*members, "")
    return pc.binary_join_element_wise("{", pc.utf8_slice_codeunits(joined, 1), "}", "")


def _whole_objects(parts: list[tuple[str, bool, pa.Array]]) -> pa.Array:
    """Objects whose every key has a value in every row, in one pass: the keys, quotes and
    separators are the same literal text between the values of each row."""
    pieces: list[str | pa.Array] = []
    between = "{"
    for key, quoted, text in parts:
        quote = '"' if quoted else ""
        pieces += [between + key + ":" + quote, text]
        between = quote + ","
    pieces.append(between[:-1] + "}")
    return join_text(pieces)


def _merged_objects(batch: RawBatch, res: Resolution, good: np.ndarray, name: str) -> list[str]:
    keys = res.rest
    cols = [_rows(batch.columns[k], good).json_values() for k in keys]
    nested = _rows(batch.columns[res.nested], good).json_values() if res.nested else None
    rows = zip(*cols, strict=True) if cols else itertools.repeat((), len(good))
    out: list[str] = []
    for i, row in enumerate(rows):
        obj = _nested_object(nested[i], name) if nested is not None else {}
        for key, value in zip(keys, row, strict=True):
            if value is not None:
                obj[key] = value
        out.append(dumps(obj))
    return out


def _rows(col: Column, good: np.ndarray) -> Column:
    """The good rows of a column: the column itself when all rows are good (no copy)."""
    return col if len(good) == len(col) else col.take(good)


def _picker(good: np.ndarray, n: int) -> Callable[[pa.Array], pa.Array]:
    """Selects the good rows of an array; keeps the array as it is when all rows are good."""
    if len(good) == n:
        return lambda arr: arr
    g = pa.array(good, pa.int64())
    return lambda arr: arr.take(g)


# -- builders --------------------------------------------------------------------------------------
@dataclass
class Built:
    """The good rows in the store's schema, and the reasons for the rest (by row index)."""

    table: pa.Table
    rejects: dict[int, list[str]]


def _event_ids(given: pa.Array, parts: list[pa.Array]) -> pa.Array:
    """The file's id where it has one, else a hash of the row's canonical values (hashed only
    for the rows that need it: hashing is the slow part of an import)."""
    missing = given.is_null()
    if not pc.any(missing).as_py():
        return given
    rows = pa.array(np.flatnonzero(missing.to_numpy(zero_copy_only=False)), pa.int64())
    texts = [p.take(rows).cast(pa.string()).fill_null("") for p in parts]
    keys = pc.binary_join_element_wise(*texts, "\x1f").cast(pa.binary())
    hashed = [hashlib.blake2b(k, digest_size=16).hexdigest() for k in keys.to_pylist()]
    return pc.replace_with_mask(given.cast(pa.string()), missing, pa.array(hashed, pa.string()))


def build_events(batch: RawBatch, res: Resolution, tz: TimeZone) -> Built:
    """Events with ids: the file's event_id where given, else a stable hash of the row."""
    checks = _Checks(batch.num_rows)
    customer = _required_text(batch, res, "customer_id", checks)
    event = _required_text(batch, res, "event", checks, labels=True)
    ts = _times(batch, res, "ts", tz, checks, "a time")
    revenue = _number(batch, res, "revenue", checks, required=False)
    good = checks.good()
    pick = _picker(good, batch.num_rows)
    ts = ts if len(good) == batch.num_rows else ts[good]
    cols = {
        "customer_id": pick(customer),
        "event": pick(event),
        "ts": pa.array(ts, pa.timestamp("us")),
        "session_id": pick(_text(batch, res, "session_id")),
        "channel": pick(_text(batch, res, "channel", labels=True)),
        "campaign": pick(_text(batch, res, "campaign", labels=True)),
        "revenue": pick(revenue),
    }
    props = objects(batch, res, good, "properties")
    parts = [cols[k] for k in ("customer_id", "event")] + [pa.array(ts, pa.int64())]
    parts += [cols[k] for k in ("session_id", "channel", "campaign", "revenue")] + [props]
    ids = _event_ids(pick(_text(batch, res, "event_id")), parts)
    table = conform(pa.table({"event_id": ids, **cols, "properties": props}), EVENT_SCHEMA)
    return Built(table, checks.reasons)


def build_customers(batch: RawBatch, res: Resolution, tz: TimeZone) -> Built:
    """Customers with their traits; every column but the id is a trait."""
    checks = _Checks(batch.num_rows)
    customer = _required_text(batch, res, "customer_id", checks)
    good = checks.good()
    traits = objects(batch, res, good, "traits")
    table = pa.table(
        {"customer_id": customer.take(pa.array(good, pa.int64())), "traits": traits},
        schema=CUSTOMER_SCHEMA,
    )
    return Built(table, checks.reasons)


def build_spend(batch: RawBatch, res: Resolution, tz: TimeZone) -> Built:
    """Spend rows; ``day`` is the calendar date in ``tz`` (a bare date stays the same date)."""
    checks = _Checks(batch.num_rows)
    us = _times(batch, res, "day", tz, checks, "a date")
    channel = _required_text(batch, res, "channel", checks)
    amount = _number(batch, res, "amount", checks, required=True)
    good = checks.good()
    g = pa.array(good, pa.int64())
    days = np.floor_divide(tz.to_local(us[good]), _DAY_US).astype(np.int32)
    currency = pc.utf8_upper(_text(batch, res, "currency").take(g)).fill_null("USD")
    table = pa.table(
        {
            "day": pa.array(days, pa.int32()).cast(pa.date32()),
            "channel": channel.take(g),
            "campaign": _text(batch, res, "campaign").take(g).fill_null(""),
            "amount": amount.take(g),
            "currency": currency,
        },
        schema=SPEND_SCHEMA,
    )
    return Built(table, checks.reasons)


BUILDERS: dict[str, Callable[[RawBatch, Resolution, TimeZone], Built]] = {
    "events": build_events,
    "customers": build_customers,
    "spend": build_spend,
}
