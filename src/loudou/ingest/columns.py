"""Source columns of one batch, and the conversions the importer needs from them.

Formats type their values differently: CSV and TSV give text only, Parquet gives Arrow types, JSON
Lines gives Python values that may change type from row to row. Each kind of column answers the same
questions (text, numbers, time input, JSON values, original text), so the row builders do not care
which format a batch came from, and the same data gives the same rows whichever format carried it.
"""

from __future__ import annotations

import json
import math
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# Text a CSV cell must match to become a JSON number or boolean in properties and traits. Integers
# stop at 15 digits (longer digit strings are ids and phone numbers, and would lose precision as
# doubles); a leading zero or '+' keeps text as text ('007', '+86...').
_INT_TEXT = r"^(0|-?[1-9][0-9]{0,14})$"
_FLOAT_TEXT = r"^-?(0|[1-9][0-9]*)(\.[0-9]+([eE][+-]?[0-9]+)?|[eE][+-]?[0-9]+)$"
_BOOL_TEXT = r"^(true|false|TRUE|FALSE|True|False)$"

# Text accepted as a number for revenue and amounts: plain decimals, exponents, and thousands
# separators ('1,234.50').
_NUMBER = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"
_THOUSANDS = r"^[+-]?[0-9]{1,3}(,[0-9]{3})+(\.[0-9]+)?$"


# First bytes of text that may read as a number ('-', digits) or a boolean (t, f in any case).
_NUMBER_START = np.zeros(256, dtype=bool)
_NUMBER_START[[ord(c) for c in "-0123456789"]] = True
_BOOL_START = np.zeros(256, dtype=bool)
_BOOL_START[[ord(c) for c in "tTfF"]] = True


def _string_bytes(arr: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Start and end offsets of each value and the data bytes of a string array, without
    copying; None for other layouts or no data. These only rule work out: a null may span any
    bytes, and an empty value's first/last byte is a neighbour's, so at worst a batch takes the
    general path."""
    if not isinstance(arr, pa.Array) or len(arr) == 0:
        return None
    if pa.types.is_string(arr.type):
        width: type[np.integer[Any]] = np.int32
    elif pa.types.is_large_string(arr.type):
        width = np.int64
    else:
        return None
    _, offsets_buf, data_buf = arr.buffers()
    if offsets_buf is None or data_buf is None or data_buf.size == 0:
        return None
    offsets = np.frombuffer(offsets_buf, dtype=width)[arr.offset : arr.offset + len(arr) + 1]
    data = np.frombuffer(data_buf, dtype=np.uint8)
    last = len(data) - 1
    return np.minimum(offsets[:-1], last), np.clip(offsets[1:] - 1, 0, last), data


def _may_need_trim(arr: pa.Array) -> bool:
    """Whether some value may start or end with whitespace: a control byte, a space, or any
    non-ASCII byte (it may belong to a Unicode space such as U+3000)."""
    parts = _string_bytes(arr)
    if parts is None:
        return not _empty_data(arr)
    first, last, data = parts
    return any(int(e.min()) <= 32 or int(e.max()) >= 128 for e in (data[first], data[last]))


def _empty_data(arr: pa.Array) -> bool:
    """A string array whose values are all empty or null."""
    if not isinstance(arr, pa.Array):
        return False
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        return False
    data = arr.buffers()[2]
    return data is None or data.size == 0


def _needs_json_escape(arr: pa.Array) -> bool:
    """Whether some value may hold a byte JSON escapes: a control character, '"' or '\\'."""
    parts = _string_bytes(arr)
    if parts is None:
        return not _empty_data(arr)
    first, last, data = parts
    region = data[int(first[0]) : int(last[-1]) + 1]
    if not len(region):
        return False
    return bool(int(region.min()) < 32 or (region == ord('"')).any() or (region == ord("\\")).any())


def _first_byte_in(s: pa.Array, table: np.ndarray) -> np.ndarray:
    """Mask of values whose first byte is marked in ``table`` (all True when unsure)."""
    parts = _string_bytes(s)
    if parts is None:
        return np.ones(len(s), dtype=bool)
    first, _, data = parts
    return table[data[first]]


def clean_strings(arr: pa.Array) -> pa.Array:
    """Trimmed text; empty cells become null, because an empty cell means 'no value'. Clean
    columns (the usual case) skip the trim: a look at first and last bytes rules it out."""
    s = pc.utf8_trim_whitespace(arr) if _may_need_trim(arr) else arr
    empty = pc.equal(s, "")
    return pc.if_else(empty, pa.scalar(None, s.type), s) if pc.any(empty).as_py() else s


def parse_numbers(s: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """float64 values (null where missing) and a mask of present values that are not numbers."""
    plain = pc.match_substring_regex(s, _NUMBER)
    thousands = pc.match_substring_regex(s, _THOUSANDS)
    ok = pc.or_(plain, thousands)
    text = pc.if_else(thousands, pc.replace_substring(s, ",", ""), s)
    values = pc.if_else(ok, text, pa.scalar(None, s.type)).cast(pa.float64())
    finite = np.isfinite(np.asarray(values.fill_null(0.0).to_numpy(zero_copy_only=False)))
    bad = ~np.asarray(ok.fill_null(True).to_numpy(zero_copy_only=False)) | ~finite  # '1e999'
    return pc.if_else(pa.array(bad), pa.scalar(None, pa.float64()), values), bad


def to_text(value: Any) -> str:
    """A value as one cell of text: JSON for structures, ISO 8601 for times."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, int | float | Decimal):
        return str(value)
    return dumps(value)


def json_default(value: Any) -> Any:
    """JSON for the non-JSON values Parquet can hold."""
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


_ENCODER = json.JSONEncoder(
    sort_keys=True,
    ensure_ascii=False,
    separators=(",", ":"),
    default=json_default,
    allow_nan=False,
)


def dumps(value: Any) -> str:
    """Compact JSON with sorted keys: the stored form, and the input of generated event ids."""
    try:
        return _ENCODER.encode(value)
    except ValueError:  # NaN or infinity somewhere inside: JSON has no such numbers
        return _ENCODER.encode(_without_nan(value))


def _without_nan(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _without_nan(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_without_nan(v) for v in value]
    return value


def _is_blank(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    return isinstance(value, float) and not math.isfinite(value)


def _mask(arr: pa.Array, pattern: str, start: np.ndarray | None = None) -> np.ndarray:
    """Positions of values matching ``pattern``; with ``start``, only values whose first byte
    is marked there are tried (the regular expression is the slow part)."""
    if start is None:
        m = pc.match_substring_regex(arr, pattern).fill_null(False)
        return np.flatnonzero(np.asarray(m.to_numpy(zero_copy_only=False)))
    idx = np.flatnonzero(_first_byte_in(arr, start))
    if not len(idx):
        return idx
    m = pc.match_substring_regex(arr.take(pa.array(idx)), pattern).fill_null(False)
    return idx[np.asarray(m.to_numpy(zero_copy_only=False))]


def _flags(n: int, idx: np.ndarray) -> pa.Array:
    mask = np.zeros(n, dtype=bool)
    mask[idx] = True
    return pa.array(mask)


def json_strings(s: pa.Array) -> pa.Array:
    """Text as JSON string literals, in bulk; the rare value with control characters goes
    through Python's encoder, so the result equals what ``dumps`` would write."""
    if not _needs_json_escape(s):  # nothing to escape: the usual case
        return pc.binary_join_element_wise('"', s, '"', "")
    esc = pc.replace_substring(pc.replace_substring(s, "\\", "\\\\"), '"', '\\"')
    out = pc.binary_join_element_wise('"', esc, '"', "")
    ctrl = pc.match_substring_regex(s, "[\\x00-\\x1f]").fill_null(False)
    if pc.any(ctrl).as_py():
        texts = pc.filter(s, ctrl).to_pylist()
        out = pc.replace_with_mask(out, ctrl, pa.array([dumps(t) for t in texts], pa.string()))
    return out


def json_members(key_json: str, values: pa.Array) -> pa.Array:
    """',"key":value' per row, '' where the value is left out: rows join by plain concatenation
    (Arrow's null-skipping join drops all-null rows in some versions, so it is not used)."""
    return pc.binary_join_element_wise("," + key_json + ":", values, "").fill_null("")


def _replace(arr: pa.Array, idx: np.ndarray, values: list[str]) -> pa.Array:
    if not len(idx):
        return arr
    mask = np.zeros(len(arr), dtype=bool)
    mask[idx] = True
    return pc.replace_with_mask(arr, pa.array(mask), pa.array(values, pa.string()))


class Column:
    """One source column of a batch."""

    def __len__(self) -> int:
        raise NotImplementedError

    def take(self, idx: np.ndarray) -> Column:
        raise NotImplementedError

    def strings(self) -> pa.Array:
        """Trimmed text, null where missing or empty (ids, names, channels)."""
        raise NotImplementedError

    def time_input(self) -> pa.Array:
        """What the time parser should see: typed times stay typed."""
        return self.strings()

    def numbers(self) -> tuple[pa.Array, np.ndarray]:
        """float64 values and a mask of present values that are not numbers."""
        return parse_numbers(self.strings())

    def json_values(self) -> list[Any]:
        """Values for properties and traits; None means 'leave the key out'."""
        raise NotImplementedError

    def texts(self) -> list[str]:
        """Values as written, for the rejects file."""
        raise NotImplementedError

    def json_text(self) -> tuple[bool, pa.Array]:
        """Each value as the JSON text ``dumps`` would write, null where the key is left out.
        With True first, the values are plain text still to be put in quotes (nothing in them
        needs escaping), which saves the assembly a pass. Subclasses do it in bulk."""
        values = [None if v is None else dumps(v) for v in self.json_values()]
        return False, pa.array(values, pa.string())


class TextColumn(Column):
    """CSV/TSV text. Numbers and booleans are recognised for properties, as spreadsheet tools do."""

    def __init__(self, arr: pa.Array) -> None:
        self.arr = arr
        self._strings: pa.Array | None = None

    def __len__(self) -> int:
        return len(self.arr)

    def take(self, idx: np.ndarray) -> TextColumn:
        return TextColumn(self.arr.take(idx))

    def strings(self) -> pa.Array:
        if self._strings is None:  # asked for by several checks of one batch
            self._strings = clean_strings(self.arr)
        return self._strings

    def json_values(self) -> list[Any]:
        s = self.strings()
        values: list[Any] = s.to_pylist()
        for i in _mask(s, _INT_TEXT, _NUMBER_START).tolist():
            values[i] = int(values[i])
        for i in _mask(s, _FLOAT_TEXT, _NUMBER_START).tolist():
            f = float(values[i])
            if math.isfinite(f):
                values[i] = f
        for i in _mask(s, _BOOL_TEXT, _BOOL_START).tolist():
            values[i] = values[i].lower() == "true"
        return values

    def texts(self) -> list[str]:
        return ["" if v is None else v for v in self.arr.to_pylist()]

    def json_text(self) -> tuple[bool, pa.Array]:
        s = self.strings()
        ints = _mask(s, _INT_TEXT, _NUMBER_START)
        bools = _mask(s, _BOOL_TEXT, _BOOL_START)
        idx = _mask(s, _FLOAT_TEXT, _NUMBER_START)
        if not (len(ints) or len(bools) or len(idx)) and not _needs_json_escape(s):
            return True, s
        out = json_strings(s)
        if len(ints):
            out = pc.if_else(_flags(len(s), ints), s, out)
        if len(bools):
            out = pc.if_else(_flags(len(s), bools), pc.utf8_lower(s), out)
        if len(idx):
            floats = [float(t) for t in s.take(pa.array(idx)).to_pylist()]
            keep = [i for i, f in zip(idx.tolist(), floats, strict=True) if math.isfinite(f)]
            out = _replace(
                out, np.array(keep, dtype=np.int64), [repr(f) for f in floats if math.isfinite(f)]
            )
        return False, out


class ArrowColumn(Column):
    """A typed column (Parquet): types are kept, so numbers stay numbers and times stay times."""

    def __init__(self, arr: pa.Array) -> None:
        if pa.types.is_dictionary(arr.type):
            arr = arr.dictionary_decode()
        self.arr = arr

    def __len__(self) -> int:
        return len(self.arr)

    def take(self, idx: np.ndarray) -> ArrowColumn:
        return ArrowColumn(self.arr.take(idx))

    def _is_text(self) -> bool:
        return pa.types.is_string(self.arr.type) or pa.types.is_large_string(self.arr.type)

    def strings(self) -> pa.Array:
        if self._is_text():
            return clean_strings(self.arr)
        t = self.arr.type
        if pa.types.is_integer(t) or pa.types.is_boolean(t) or pa.types.is_null(t):
            return self.arr.cast(pa.string())
        values = [None if _is_blank(v) else to_text(v) for v in self.arr.to_pylist()]
        return clean_strings(pa.array(values, pa.string()))

    def time_input(self) -> pa.Array:
        return self.arr if not self._is_text() else self.strings()

    def numbers(self) -> tuple[pa.Array, np.ndarray]:
        t = self.arr.type
        if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
            values = self.arr.cast(pa.float64())
            finite = np.isfinite(np.asarray(values.fill_null(0.0).to_numpy(zero_copy_only=False)))
            # NaN is how pandas writes 'no value': treat it as missing, not as a bad number.
            values = pc.if_else(pa.array(finite), values, pa.scalar(None, pa.float64()))
            return values, np.zeros(len(values), dtype=bool)
        return parse_numbers(self.strings())

    def json_values(self) -> list[Any]:
        return [None if _is_blank(v) else v for v in self.arr.to_pylist()]

    def texts(self) -> list[str]:
        return ["" if v is None else to_text(v) for v in self.arr.to_pylist()]

    def json_text(self) -> tuple[bool, pa.Array]:
        t = self.arr.type
        if self._is_text():  # kept as written, but blank means 'no value'
            trimmed = pc.utf8_trim_whitespace(self.arr) if _may_need_trim(self.arr) else self.arr
            blank = pc.equal(trimmed, "")
            s = self.arr
            if pc.any(blank).as_py():
                s = pc.if_else(blank, pa.scalar(None, self.arr.type), self.arr)
            return (False, json_strings(s)) if _needs_json_escape(s) else (True, s)
        if pa.types.is_integer(t) or pa.types.is_boolean(t):
            return False, self.arr.cast(pa.string())
        if pa.types.is_floating(t):
            values = [None if _is_blank(v) else repr(v) for v in self.arr.to_pylist()]
            return False, pa.array(values, pa.string())
        return super().json_text()


class ObjectColumn(Column):
    """JSON values, which may change type from row to row ('3' in one line, 3 in the next)."""

    def __init__(self, values: list[Any]) -> None:
        self.values = values

    def __len__(self) -> int:
        return len(self.values)

    def take(self, idx: np.ndarray) -> ObjectColumn:
        v = self.values
        return ObjectColumn([v[i] for i in idx.tolist()])

    def strings(self) -> pa.Array:
        texts = [None if v is None else to_text(v) for v in self.values]
        return clean_strings(pa.array(texts, pa.string()))

    def json_values(self) -> list[Any]:
        return [None if _is_blank(v) else v for v in self.values]

    def texts(self) -> list[str]:
        return ["" if v is None else to_text(v) for v in self.values]
