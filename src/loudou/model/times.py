"""Times as the store keeps them: naive UTC datetimes, and microseconds since the epoch (what the
kernels and the columnar cache hold). A naive time is taken as UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1)


def naive_utc(d: datetime) -> datetime:
    """``d`` as a naive UTC time (an aware time is converted; a naive one is UTC already)."""
    return d if d.tzinfo is None else d.astimezone(UTC).replace(tzinfo=None)


def to_us(d: datetime) -> int:
    """Microseconds since the epoch."""
    return (naive_utc(d) - EPOCH) // timedelta(microseconds=1)


def from_us(t: int) -> datetime:
    """The naive UTC time of a microsecond count."""
    return EPOCH + timedelta(microseconds=int(t))
