"""Which engine computes a funnel's units: the store's columnar cache (``analyses.funnel.cached``) or SQL
rows (``Store.funnel_events`` then ``analyses.funnel.units.compute_units``). Both give identical units."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pyarrow as pa

from loudou.analyses.funnel.units import Units, compute_units
from loudou.backends.base import CachedStore, Store
from loudou.kernels.scratch import Scratch
from loudou.model.plan import plan_funnel
from loudou.model.spec import FunnelSpec


def funnel_units(store: Store, spec: FunnelSpec, engine: str = "auto") -> Units:
    """The funnel's units, from the columnar cache (``"cache"``; ``"auto"`` when the store has one
    and judges it worth using, see ``use_event_cache``) or from SQL rows (``"sql"``). Both give
    identical results; the tests check it."""
    with units_in_use(store, spec, engine) as (units, scratch):
        return units if scratch is None else units.copy()  # borrowed: the caller's own arrays


def _cache_store(store: Store, engine: str) -> CachedStore | None:
    """The store when the funnel should run on its cache (see :func:`funnel_units`), else None."""
    if engine not in ("auto", "cache", "sql"):
        raise ValueError(f"unknown engine {engine!r}")
    if engine == "cache" and not isinstance(store, CachedStore):
        raise ValueError(f"engine='cache': a {type(store).__name__} has no event cache")
    if isinstance(store, CachedStore) and (
        engine == "cache" or (engine == "auto" and store.use_event_cache())
    ):
        return store
    return None


@contextmanager
def units_in_use(
    store: Store, spec: FunnelSpec, engine: str
) -> Iterator[tuple[Units, Scratch | None]]:
    """:func:`funnel_units` for summarising on the spot: from the cache, the units are views of
    its reusable work buffers (valid inside the block only) and come with the query's scratch,
    so a funnel on a large cache allocates no fresh arrays as long as its customers."""
    plan = plan_funnel(spec)
    cached = _cache_store(store, engine)
    if cached is not None:
        from loudou.analyses.funnel.cached import borrowed_units

        with borrowed_units(cached, plan) as (units, scratch):
            if units is not None:
                yield units, scratch
                return
        if engine == "cache":
            raise ValueError("this funnel cannot run on the cache")
    yield compute_units(store.funnel_events(plan), plan), None


def funnel_customers(store: Store, spec: FunnelSpec) -> pa.Table:
    """One row per counted unit that entered the funnel: who reached which step, and when.

    Columns: ``customer_id``, ``unit_key`` (session id for count=sessions, else ''), ``level``
    (last step reached), ``step_1`` .. ``step_n`` (UTC times of the chain's steps, null when not
    reached), and ``breakdown`` when the spec has one. Excluded customers are left out. This is
    what segment comparisons and converted/dropped exports start from.
    """
    units = funnel_units(store, spec)
    entered = units.levels > 0
    picked = units.select(entered)
    ids = units.ids()
    cols: dict[str, pa.Array | pa.ChunkedArray] = {
        "customer_id": ids.take(pa.array(picked.customer, pa.int64()))
        if len(picked.customer)
        else pa.array([], pa.string()),
        "unit_key": picked.unit_key,
        "level": pa.array(picked.levels, pa.int64()),
    }
    for k in range(len(spec.steps)):
        times = picked.times[:, k]
        cols[f"step_{k + 1}"] = pa.array(times, pa.int64(), mask=times < 0).cast(pa.timestamp("us"))
    if spec.breakdown and picked.breakdown is not None:
        cols["breakdown"] = pa.array(picked.breakdown_values(), pa.string())
    return pa.table(cols)
