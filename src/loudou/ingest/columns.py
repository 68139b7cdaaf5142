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

from loudou.kernels import text

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


def _buffers(arr: pa.Array) -> tuple[np.ndarray, np.ndarray] | None:
    """Offsets (one more than the values) and data bytes of a string array, without copying;
    None for other layouts."""
    if not isinstance(arr, pa.Array):
        return None
    if pa.types.is_string(arr.type):
        width: type[np.integer[Any]] = np.int32
    elif pa.types.is_large_string(arr.type):
        width = np.int64
    else:
        return None
    _, offsets_buf, data_buf = arr.buffers()
    if offsets_buf is None:
        return None
    offsets = np.frombuffer(offsets_buf, dtype=width)[arr.offset : arr.offset + len(arr) + 1]
    data = np.zeros(0, np.uint8) if data_buf is None else np.frombuffer(data_buf, np.uint8)
    return offsets, data


def _edges(arr: pa.Array) -> tuple[bool, int]:
    """(whether some value may start or end with whitespace, the number of empty values) from
    the raw bytes: a control byte, a space or any non-ASCII byte (it may belong to a Unicode space
    such as U+3000) at either end calls for a trim. Unsure (another layout): (True, 1)."""
    parts = _buffers(arr)
    if parts is None:
        return True, 1
    odd, empty = text.edges(*parts)
    return bool(odd), int(empty)


def _needs_json_escape(arr: pa.Array) -> bool:
    """Whether some value may hold a byte JSON escapes: a control character, '"' or '\\'."""
    parts = _buffers(arr)
    if parts is None:
        return True
    offsets, data = parts
    return len(offsets) > 1 and bool(text.json_unsafe(data, int(offsets[0]), int(offsets[-1])))


def _first_byte_in(s: pa.Array, table: np.ndarray) -> np.ndarray:
    """Mask of values whose first byte is marked in ``table`` (all True when unsure)."""
    parts = _buffers(s)
    if parts is None or not len(parts[1]):
        return np.ones(len(s), dtype=bool)
    offsets, data = parts
    return table[data[np.minimum(offsets[:-1], len(data) - 1)]]


def clean_strings(arr: pa.Array) -> pa.Array:
    """Trimmed text; empty cells become null, because an empty cell means 'no value'. Clean
    columns (the usual case) skip the trim and the search for empty cells: one look at the raw
    bytes rules both out."""
    odd, empty = _edges(arr)
    s = arr
    if odd:
        s = pc.utf8_trim_whitespace(arr)
        empty = _edges(s)[1]
    if not empty:
        return s
    blank = pc.equal(s, "")
    return pc.if_else(blank, pa.scalar(None, s.type), s) if pc.any(blank).as_py() else s


def _blank(arr: pa.Array) -> pa.Array | None:
    """Mask of values that are empty or only whitespace, None when there is none."""
    odd, empty = _edges(arr)
    if not odd and not empty:
        return None
    blank = pc.equal(pc.utf8_trim_whitespace(arr) if odd else arr, "")
    return blank if pc.any(blank).as_py() else None


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


def _is_text_type(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def _one_text_layout(arr: pa.Array) -> pa.Array:
    """Text as ``string`` (plain or as dictionary values): pyarrow keeps a file's large_string
    and string_view, and several of Arrow's kernels refuse them, or refuse to mix them with
    ``string`` literals. A batch holds far less than the 2 GB a ``string`` array can."""
    t = arr.type
    if pa.types.is_dictionary(t):
        if _is_other_text(t.value_type):
            return arr.cast(pa.dictionary(t.index_type, pa.string()))
        return arr
    return arr.cast(pa.string()) if _is_other_text(t) else arr


def _is_other_text(t: pa.DataType) -> bool:
    return pa.types.is_large_string(t) or pa.types.is_string_view(t)


def _text_json(s: pa.Array) -> tuple[bool, pa.Array]:
    """Typed text for JSON, kept as written but blank meaning 'no value' (null): (True, text still
    to be put in quotes) when nothing in it needs escaping, else (False, JSON string literals)."""
    blank = _blank(s)
    if blank is not None:
        s = pc.if_else(blank, pa.scalar(None, s.type), s)
    return (False, json_strings(s)) if _needs_json_escape(s) else (True, s)


def _recoded(arr: pa.DictionaryArray, values: pa.Array) -> pa.DictionaryArray:
    """``arr``'s indices over new dictionary ``values`` (one per old value); rows whose value
    became null become null (the dictionary itself keeps no null: Arrow cannot join such
    dictionaries)."""
    if values is arr.dictionary:
        return arr
    indices = arr.indices
    if values.null_count:
        keep = pc.take(values.is_valid(), indices)
        indices = pc.if_else(keep, indices, pa.scalar(None, indices.type))
        values = values.fill_null("")
    return pa.DictionaryArray.from_arrays(indices, values)


def decoded(arr: pa.Array) -> pa.Array:
    """Dictionary-encoded values as a plain array (others as they are)."""
    return arr.dictionary_decode() if pa.types.is_dictionary(arr.type) else arr


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


def join_text(pieces: list[str | pa.Array]) -> pa.Array:
    """Row by row, the concatenation of ``pieces``: literal text and string arrays of one length
    (``binary_join_element_wise(*pieces, "")``). Arrays without nulls, plain or dictionary-encoded,
    are joined in one pass over their buffers; others go through Arrow."""
    arrays = [p for p in pieces if not isinstance(p, str)]
    n = len(arrays[0]) if arrays else 0
    literals: list[bytes] = [b""]
    values: list[tuple[np.ndarray, np.ndarray, np.ndarray | None]] = []
    for piece in pieces:
        if isinstance(piece, str):
            literals[-1] += piece.encode()
            continue
        parts = _joinable(piece)
        if parts is None:  # nulls make the row null, as in Arrow
            texts = [p if isinstance(p, str) else p.cast(pa.string()) for p in pieces]
            return pc.binary_join_element_wise(*texts, "")
        values.append(parts)
        literals.append(b"")
    rows = np.empty((len(values), n), np.int64)
    offsets: list[np.ndarray] = []
    data: list[np.ndarray] = []
    first = size = 0
    for j, (offs, buf, index) in enumerate(values):
        rows[j] = first + (np.arange(n) if index is None else index)
        start = int(offs[0])
        offsets.append(offs[:-1].astype(np.int64) - start + size)
        data.append(buf[start : int(offs[-1])])
        first += len(offs) - 1
        size += int(offs[-1]) - start
    offsets.append(np.array([size], np.int64))
    literal_at = np.cumsum([0, *(len(t) for t in literals)]).astype(np.int64)
    out_at, out = text.join(
        rows,
        np.concatenate(offsets),
        np.concatenate(data) if data else np.zeros(0, np.uint8),
        np.frombuffer(b"".join(literals), np.uint8),
        literal_at,
    )
    kind = pa.string() if out_at[-1] < 2**31 else pa.large_string()
    width = np.int32 if kind == pa.string() else np.int64
    buffers = [None, pa.py_buffer(out_at.astype(width)), pa.py_buffer(out)]
    return pa.Array.from_buffers(kind, n, buffers)


def _joinable(arr: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray | None] | None:
    """(offsets, data, dictionary indices or None) of a string array without nulls."""
    if arr.null_count:
        return None
    if pa.types.is_dictionary(arr.type):
        parts = _buffers(arr.dictionary)
        if parts is None or arr.dictionary.null_count:
            return None
        return *parts, arr.indices.to_numpy().astype(np.int64, copy=False)
    parts = _buffers(arr)
    return None if parts is None else (*parts, None)


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

    def labels(self) -> pa.Array:
        """Like strings(), but dictionary-encoded text may stay encoded (event names, channels:
        the store takes either, and decoding would cost more than reading the file)."""
        return self.strings()

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
        # Dictionary-encoded text (Parquet's small dictionaries) stays encoded for labels() and
        # json_text(), which work on the dictionary's values; other questions see it decoded.
        arr = _one_text_layout(arr)
        if pa.types.is_dictionary(arr.type) and not _is_text_type(arr.type.value_type):
            arr = arr.dictionary_decode()
        self.given = arr
        self.encoded: pa.DictionaryArray | None = None
        self._arr: pa.Array | None = arr
        if pa.types.is_dictionary(arr.type):
            self.encoded, self._arr = arr, None

    @property
    def arr(self) -> pa.Array:
        """The values, decoded."""
        if self._arr is None:
            self._arr = self.given.dictionary_decode()
        return self._arr

    def __len__(self) -> int:
        return len(self.given)

    def take(self, idx: np.ndarray) -> ArrowColumn:
        return ArrowColumn(self.given.take(idx))

    def labels(self) -> pa.Array:
        if self.encoded is None:
            return self.strings()
        return _recoded(self.encoded, clean_strings(self.encoded.dictionary))

    def _is_text(self) -> bool:
        return self.encoded is not None or _is_text_type(self.given.type)

    def strings(self) -> pa.Array:
        if self.encoded is not None:
            return decoded(self.labels())  # cleaned once per dictionary value
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
        if self.encoded is not None:  # the dictionary's values, once each
            quoted, values = _text_json(self.encoded.dictionary)
            return quoted, _recoded(self.encoded, values)
        t = self.arr.type
        if self._is_text():
            return _text_json(self.arr)
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
