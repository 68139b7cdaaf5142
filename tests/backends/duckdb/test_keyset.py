"""The in-memory key set and its keys, checked against Python's set and the mmh3 package."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from loudou.backends.keyset import KeySet, StoredKeys, event_keys

from journeys import murmur

# Small halves make repeats (within and across batches) common; (0, 0) is a key like any other.
_HALF = st.integers(0, 3) | st.integers(0, 2**64 - 1)
_KEYS = st.lists(st.tuples(_HALF, _HALF), max_size=60)


def _arrays(keys: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    hi = np.array([k[0] for k in keys], dtype=np.uint64)
    lo = np.array([k[1] for k in keys], dtype=np.uint64)
    return hi, lo


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["add", "discard", "contains"]), _KEYS), max_size=12))
def test_key_set_behaves_like_a_python_set(ops: list[tuple[str, list[tuple[int, int]]]]) -> None:
    keys, ref = KeySet(), set()  # starts at the smallest size, so batches make it grow
    for op, batch in ops:
        hi, lo = _arrays(batch)
        if op == "add":
            expect = []
            for k in batch:
                expect.append(k not in ref)
                ref.add(k)
            assert keys.add(hi, lo).tolist() == expect
        elif op == "discard":
            keys.discard(hi, lo)
            ref.difference_update(batch)
        else:
            assert keys.contains(hi, lo).tolist() == [k in ref for k in batch]
        assert len(keys) == len(ref)
    everything = sorted(ref)
    assert keys.contains(*_arrays(everything)).all()


def test_key_set_grows_and_removes_exactly() -> None:
    rng = np.random.default_rng(5)
    hi = rng.integers(0, 2**64, 50_000, dtype=np.uint64)
    lo = rng.integers(0, 2**64, 50_000, dtype=np.uint64)
    keys = KeySet()
    assert keys.add(hi, lo).all()
    assert len(keys) == 50_000 and keys.nbytes >= 50_000 / 0.75 * 16
    keys.discard(hi[::2], lo[::2])  # removal keeps every other key reachable
    assert keys.contains(hi, lo).tolist() == [i % 2 == 1 for i in range(50_000)]
    assert not keys.add(hi[1::2], lo[1::2]).any()
    assert len(keys) == 25_000


_TEXT = st.text(max_size=150) | st.sampled_from(
    ["", "a", "x" * 8, "x" * 9, "é" * 8, "y" * 16, "z" * 33]
)


@settings(max_examples=60, deadline=None)
@given(st.lists(_TEXT, max_size=40), st.integers(0, 5))
def test_event_keys_are_murmur3_128(ids: list[str], cut: int) -> None:
    """Keys computed here match the mmh3 package's MurmurHash3 x64 128 (seed 0), for chunked and
    sliced Arrow arrays and every tail length."""
    whole = pa.array(ids, pa.string())
    column = pa.chunked_array([whole.slice(0, cut), whole.slice(cut)], pa.string())
    hi, lo = event_keys(column)
    got = [(int(h) << 64) | int(low) for h, low in zip(hi, lo, strict=True)]
    assert got == [murmur(s) for s in ids]


def test_stored_keys_claims_count_only_once_committed() -> None:
    stored = StoredKeys()
    stored.catch_up(0, 0, lambda start: [], lambda row: None)
    hi, lo = _arrays([(1, 1), (2, 2), (1, 1)])
    assert stored.claim(hi, lo).tolist() == [True, True, False]
    stored.rollback()
    assert stored.keys is not None and len(stored.keys) == 0 and stored.absorbed == 0
    assert stored.claim(hi, lo).tolist() == [True, True, False]
    stored.commit()
    assert stored.absorbed == 2
    # rows written by someone else are read from where this cache stopped
    asked = []
    more = _arrays([(3, 3)])
    stored.catch_up(3, 0, lambda start: asked.append(start) or [more], lambda row: None)
    assert asked == [2] and stored.absorbed == 3
    assert stored.claim(*_arrays([(3, 3), (4, 4)])).tolist() == [False, True]
