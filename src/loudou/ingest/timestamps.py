"""Times as files write them -> naive UTC microseconds.

Exports mix ISO 8601 with and without zones, 'YYYY-MM-DD HH:MM:SS', bare dates and epoch numbers in
seconds, milliseconds or microseconds. Everything Arrow can parse is parsed in bulk; only values it
cannot (odd spellings such as '2025/1/2 10:00' or nanosecond fractions) go through Python, one by one.
Naive times are wall-clock times in the user's zone (``--tz``).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from loudou.errors import ImportError_

# Status per value.
OK, MISSING, BAD = 0, 1, 2

_NUMERIC = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"
_INTEGER = r"^[+-]?[0-9]{1,18}$"
_NAIVE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}(:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?)?)?$"
_ZONED = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?"
    r"(Z|[+-][0-9]{2}(:?[0-9]{2})?)$"
)
_OFFSET_TZ = re.compile(r"^[+-][0-9]{2}:[0-9]{2}$")
_EPOCH = datetime(1970, 1, 1)
_EPOCH_UTC = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


class TimeZone:
    """The zone naive times are read in. Arrow does the conversion in bulk when its zone database
    knows the name; otherwise (no system tz database) Python's zoneinfo does it value by value."""

    def __init__(self, name: str, *, arrow: bool = True) -> None:
        self.name = name
        self._arrow = arrow
        self._py: tzinfo = UTC if name == "UTC" else _py_zone(name)

    def to_utc(self, local_us: np.ndarray) -> np.ndarray:
        """Wall-clock microseconds in this zone -> UTC microseconds (gaps shift forward, folds
        take the earlier time)."""
        if self.name == "UTC" or len(local_us) == 0:
            return local_us
        if self._arrow:
            arr = pa.array(local_us, pa.timestamp("us"))
            utc = pc.assume_timezone(arr, self.name, ambiguous="earliest", nonexistent="latest")
            return np.asarray(utc.cast(pa.int64()).to_numpy(zero_copy_only=False))
        out = [
            ((_EPOCH + v * _US).replace(tzinfo=self._py) - _EPOCH_UTC) // _US
            for v in local_us.tolist()
        ]
        return np.array(out, dtype=np.int64)

    def to_local(self, utc_us: np.ndarray) -> np.ndarray:
        """UTC microseconds -> wall-clock microseconds in this zone."""
        if self.name == "UTC" or len(utc_us) == 0:
            return utc_us
        if self._arrow:
            arr = pa.array(utc_us, pa.timestamp("us", self.name))
            local = pc.local_timestamp(arr)
            return np.asarray(local.cast(pa.int64()).to_numpy(zero_copy_only=False))
        out = [
            ((_EPOCH_UTC + v * _US).astimezone(self._py).replace(tzinfo=None) - _EPOCH) // _US
            for v in utc_us.tolist()
        ]
        return np.array(out, dtype=np.int64)


def _py_zone(name: str) -> tzinfo:
    if _OFFSET_TZ.match(name):
        sign = -1 if name[0] == "-" else 1
        return timezone(sign * timedelta(hours=int(name[1:3]), minutes=int(name[4:6])))
    return ZoneInfo(name)


def resolve_tz(name: str) -> TimeZone:
    """Validate a zone name (IANA such as 'Asia/Shanghai', 'UTC', or a fixed offset '+08:00')."""
    text = (name or "").strip()
    if text.upper() in ("UTC", "Z", "GMT", "ETC/UTC", "UTC+00:00", "+00:00"):
        return TimeZone("UTC")
    try:
        _py_zone(text)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ImportError_(
            f"unknown time zone {name!r} given as --tz; use an IANA name such as "
            "'Asia/Shanghai' or 'UTC', or an offset such as '+08:00'",
            "tz",
        ) from None
    try:
        pc.assume_timezone(pa.array([0], pa.timestamp("us")), text)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return TimeZone(text, arrow=False)
    return TimeZone(text)


def parse_times(values: pa.Array, tz: TimeZone) -> tuple[np.ndarray, np.ndarray]:
    """UTC microseconds (int64) and a status (OK / MISSING / BAD) for each value."""
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    t = values.type
    n = len(values)
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        return _from_temporal(values, tz)
    if pa.types.is_integer(t):
        x = values.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False)
        return _epoch_int(x), _status(values)
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        x = values.cast(pa.float64()).fill_null(0.0).to_numpy(zero_copy_only=False)
        us, ok = _epoch_float(x)
        status = _status(values)
        status[(status == OK) & ~ok] = BAD
        return us, status
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return _from_strings(values, tz)
    if pa.types.is_null(t):
        return np.zeros(n, np.int64), np.full(n, MISSING, np.int8)
    status = _status(values)
    status[status == OK] = BAD
    return np.zeros(n, np.int64), status


def _status(values: pa.Array) -> np.ndarray:
    null = np.asarray(values.is_null().to_numpy(zero_copy_only=False))
    return np.where(null, MISSING, OK).astype(np.int8)


def _from_temporal(values: pa.Array, tz: TimeZone) -> tuple[np.ndarray, np.ndarray]:
    t = values.type
    aware = pa.types.is_timestamp(t) and t.tz is not None
    target = pa.timestamp("us", t.tz) if aware else pa.timestamp("us")
    x = values.cast(target, safe=False).cast(pa.int64()).fill_null(0)
    us = np.asarray(x.to_numpy(zero_copy_only=False))
    return (us if aware else tz.to_utc(us)), _status(values)


def _epoch_int(x: np.ndarray) -> np.ndarray:
    """Epoch numbers in s, ms, us or ns (told apart by magnitude) -> microseconds."""
    a = np.abs(x)
    with np.errstate(over="ignore"):
        out = np.where(a > 10**11, x * 1000, x * 1_000_000)
    out = np.where(a > 10**14, x, out)
    return np.where(a > 10**17, x // 1000, out)


def _epoch_float(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.abs(x)
    scale = np.select([a > 1e17, a > 1e14, a > 1e11], [1e-3, 1.0, 1e3], 1e6)
    with np.errstate(invalid="ignore", over="ignore"):
        y = np.rint(x * scale)
        ok = np.isfinite(y) & (np.abs(y) < 9e18)
    return np.where(ok, y, 0).astype(np.int64), ok


def _match(s: pa.Array, pattern: str) -> np.ndarray:
    return np.asarray(
        pc.match_substring_regex(s, pattern).fill_null(False).to_numpy(zero_copy_only=False)
    )


def _all_iso(values: pa.Array, tz: TimeZone) -> tuple[np.ndarray, np.ndarray] | None:
    """Columns of one ISO 8601 spelling, all zoned or all naive (the usual export), in one cast
    each; None when some value needs the general path (a cast stops at the first misfit)."""
    for target in (pa.timestamp("us", "UTC"), pa.timestamp("us")):
        try:
            parsed = values.cast(target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
        x = parsed.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False)
        us = np.asarray(x) if target.tz else tz.to_utc(np.asarray(x))
        return us, _status(values)
    return None


def _from_strings(values: pa.Array, tz: TimeZone) -> tuple[np.ndarray, np.ndarray]:
    quick = _all_iso(values, tz)
    if quick is not None:
        return quick
    s = pc.utf8_trim_whitespace(values)
    n = len(s)
    us = np.zeros(n, np.int64)
    status = np.full(n, BAD, np.int8)
    status[
        np.asarray(pc.or_kleene(s.is_null(), pc.equal(s, "")).to_numpy(zero_copy_only=False))
    ] = MISSING
    numeric = _match(s, _NUMERIC)
    integer = numeric & _match(s, _INTEGER)
    naive = _match(s, _NAIVE)
    zoned = _match(s, _ZONED)
    leftover = (status == BAD) & ~numeric & ~naive & ~zoned

    idx = np.flatnonzero(integer)
    if len(idx):
        x = s.take(idx).cast(pa.int64()).to_numpy(zero_copy_only=False)
        us[idx], status[idx] = _epoch_int(x), OK
    idx = np.flatnonzero(numeric & ~integer)
    if len(idx):
        x = s.take(idx).cast(pa.float64()).to_numpy(zero_copy_only=False)
        conv, ok = _epoch_float(x)
        us[idx], status[idx] = conv, np.where(ok, OK, BAD)
    for mask, target in ((naive, pa.timestamp("us")), (zoned, pa.timestamp("us", "UTC"))):
        idx = np.flatnonzero(mask)
        if not len(idx):
            continue
        try:
            x = s.take(idx).cast(target).cast(pa.int64()).to_numpy(zero_copy_only=False)
        except pa.ArrowInvalid:  # e.g. month 13 somewhere: sort the subset out value by value
            leftover[idx] = True
            continue
        us[idx], status[idx] = (tz.to_utc(x) if target.tz is None else x), OK

    idx = np.flatnonzero(leftover)
    if len(idx):
        _parse_slowly(s.take(idx).to_pylist(), idx, us, status, tz)
    return us, status


def _parse_slowly(
    texts: list[str], idx: np.ndarray, us: np.ndarray, status: np.ndarray, tz: TimeZone
) -> None:
    """Per-value fallback for spellings Arrow does not read; fills ``us`` and ``status`` in place."""
    local_pos: list[int] = []
    local_us: list[int] = []
    for i, text in zip(idx.tolist(), texts, strict=True):
        parsed = parse_one(text)
        if parsed is None:
            continue
        is_local, value = parsed
        if is_local:
            local_pos.append(i)
            local_us.append(value)
        else:
            us[i], status[i] = value, OK
    if local_pos:
        us[local_pos] = tz.to_utc(np.array(local_us, dtype=np.int64))
        status[local_pos] = OK


_YMD = re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(.*)$")
_UTC_SUFFIX = re.compile(r"\s*(?:Z|UTC|GMT)$", re.IGNORECASE)
_SPACED_OFFSET = re.compile(r"\s+([+-]\d{2}:?\d{2})$")
_LONG_FRACTION = re.compile(r"(\.\d{6})\d+")


def parse_one(text: str) -> tuple[bool, int] | None:
    """One time string -> (is_local, microseconds), or None when it is not a time."""
    t = text.strip()
    m = _YMD.match(t)
    if m:
        t = f"{m[1]}-{int(m[2]):02d}-{int(m[3]):02d}{m[4]}"
    t = _UTC_SUFFIX.sub("+00:00", t)
    t = _SPACED_OFFSET.sub(r"\1", t)
    t = _LONG_FRACTION.sub(r"\1", t)
    try:
        dt = datetime.fromisoformat(t)
    except ValueError:
        return None
    if dt.tzinfo is None:
        return True, (dt - _EPOCH) // _US
    return False, (dt - _EPOCH_UTC) // _US
