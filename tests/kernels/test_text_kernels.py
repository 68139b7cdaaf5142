"""The importer's text kernels against Arrow's own functions on random strings (clean_strings:
test_import)."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import given, settings
from hypothesis import strategies as st

from loudou.ingest.columns import _needs_json_escape, join_text

# Ends that trim and that do not: spaces, controls, U+3000, non-ASCII letters, quotes.
_TEXT = st.text(alphabet=st.sampled_from(list('ab é"\\\t\n\x01\u3000\u00a0x')), max_size=6)
_VALUES = st.lists(st.none() | _TEXT, min_size=1, max_size=30)


def _arrays(values: list[str | None], cut: int, kind: str) -> pa.Array:
    """``values`` as a sliced plain, large or dictionary-encoded string array."""
    arr = pa.array(["pad", *values], pa.large_string() if kind == "large" else pa.string())
    arr = arr.slice(1)
    if kind == "dictionary":
        arr = arr.dictionary_encode()
    return arr.slice(0, min(cut, len(values)))


@settings(max_examples=150, deadline=None)
@given(_VALUES, st.integers(0, 30))
def test_json_escape_check_sees_every_value(values: list[str | None], cut: int) -> None:
    arr = _arrays(values, cut, "plain")
    unsafe = any(
        any(c in '"\\' or ord(c) < 32 for c in v) for v in arr.to_pylist() if v is not None
    )
    assert _needs_json_escape(arr) == unsafe


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(_VALUES, st.sampled_from(["plain", "large", "dictionary"])),
        min_size=1,
        max_size=4,
    ),
    st.lists(_TEXT, min_size=5, max_size=5),
    st.booleans(),
)
def test_join_text_equals_arrow_join(
    columns: list[tuple[list[str | None], str]], literals: list[str], nulls: bool
) -> None:
    n = min(len(v) for v, _ in columns)
    arrays = []
    for values, kind in columns:
        vals = values[:n] if nulls else [v or "" for v in values[:n]]
        arrays.append(_arrays(vals, n, kind))
    pieces: list[str | pa.Array] = []
    for lit, arr in zip(literals, arrays, strict=False):
        pieces += [lit, arr]
    pieces.append(literals[-1])
    plain = [p.cast(pa.string()) if isinstance(p, pa.Array) else p for p in pieces]
    expected = pc.binary_join_element_wise(*plain, "")
    got = join_text(pieces)
    assert got.to_pylist() == expected.to_pylist()
    got.validate(full=True)
