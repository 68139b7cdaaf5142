"""Shared pieces of the KPI analyses: which events mean what, date ranges, and store reads.

Every KPI reads events through the generic :meth:`Store.read_events`; nothing here writes SQL.
Times inside the KPI kernels are int64 microseconds since the epoch (UTC), like the funnel kernels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from loudou.errors import LoudouError
from loudou.model.times import naive_utc, to_us

if TYPE_CHECKING:
    from loudou.backends.base import Store

US_PER_SECOND = 1_000_000
US_PER_DAY = 86_400 * US_PER_SECOND
NONE_LABEL = "(none)"


class KpiError(LoudouError):
    """A KPI request that cannot be answered as asked (bad option, no data to fit on)."""

    code = "invalid_kpi"


@dataclass(frozen=True)
class KpiEvents:
    """Which events carry which business facts. Defaults follow the demo and DESIGN §3."""

    purchase: str = "order_completed"  # revenue in the promoted ``revenue`` column
    nps: str = "nps_submitted"
    nps_score: str = "score"  # property of the NPS answer, 0–10
    deal_stage: str = "deal_stage_changed"
    stage_property: str = "to_stage"
    lead_stage: str = "lead"
    won_stage: str = "won"
    referral: str = "referral_sent"

    def __post_init__(self) -> None:
        """Property names become column reads: refuse bad ones here, naming the option."""
        from loudou.model.spec import check_name

        for name, option in (
            (self.nps_score, "--score"),
            (self.stage_property, "--stage-property"),
        ):
            try:
                check_name(name, "property")
            except ValueError as e:
                raise KpiError(str(e), option) from None


DEFAULT_EVENTS = KpiEvents()


@dataclass(frozen=True)
class DateRange:
    """``since <= ts < until``; either end may be open. Build from CLI dates with :func:`date_range`."""

    since: datetime | None = None
    until: datetime | None = None

    def to_dict(self) -> dict[str, str | None]:
        return {
            "from": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
        }

    def since_us(self) -> int | None:
        return None if self.since is None else to_us(self.since)

    def until_us(self) -> int | None:
        return None if self.until is None else to_us(self.until)


def _as_datetime(value: date | datetime | str, field: str, end: bool = False) -> datetime:
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise KpiError(f"cannot read date {value!r}; use YYYY-MM-DD", field) from None
        plain_date = len(value.strip()) <= 10
        value = parsed.date() if plain_date else parsed
    if isinstance(value, datetime):
        return naive_utc(value)
    d = datetime(value.year, value.month, value.day)
    return d + timedelta(days=1) if end else d


def duration_option(value: str | int, field: str) -> int:
    """A duration option ('30d', '12h' or seconds) as whole seconds; errors name ``field``
    (``parse_duration`` names a spec's 'window')."""
    from loudou.errors import SpecError
    from loudou.model.spec import parse_duration

    try:
        return parse_duration(value)
    except SpecError as e:
        raise KpiError(e.message, field) from None


def date_range(
    date_from: date | datetime | str | None = None, date_to: date | datetime | str | None = None
) -> DateRange:
    """A range from a first day and a last day (inclusive, like ``loudou funnel --to``)."""
    since = None if date_from is None else _as_datetime(date_from, "--from")
    until = None if date_to is None else _as_datetime(date_to, "--to", end=True)
    if since is not None and until is not None and until <= since:
        raise KpiError("the range is empty: --to is before --from", "--to")
    return DateRange(since, until)


def ts_us(table: pa.Table, column: str = "ts") -> np.ndarray:
    """A timestamp column as int64 microseconds."""
    col = table.column(column)
    if col.num_chunks == 0 or len(col) == 0:
        return np.zeros(0, dtype=np.int64)
    return np.asarray(pc.cast(col, pa.timestamp("us")).cast(pa.int64()).to_numpy(), np.int64)


def quantiles(values: np.ndarray) -> dict[str, float | None]:
    """Median, p25, p75 (linear interpolation) and mean; ``None`` for no values."""
    v = np.asarray(values, dtype=float)
    if v.size == 0:
        return {"n": 0, "mean": None, "p25": None, "median": None, "p75": None}
    p25, med, p75 = np.percentile(v, [25, 50, 75])
    return {
        "n": int(v.size),
        "mean": float(v.mean()),
        "p25": float(p25),
        "median": float(med),
        "p75": float(p75),
    }


# ---- store reads ---------------------------------------------------------------------------------


def read_purchases(store: Store, events: KpiEvents, until: datetime | None = None) -> pd.DataFrame:
    """Purchases (all of history before ``until``): customer_id, t (µs), revenue (null -> 0).

    History before a range matters (who is new, repeat purchases), so callers filter themselves.
    """
    table = store.read_events(
        [events.purchase], until=until, columns=("customer_id", "ts", "revenue")
    )
    return pd.DataFrame(
        {
            "customer_id": table.column("customer_id").to_pylist(),
            "t": ts_us(table),
            "revenue": np.nan_to_num(
                table.column("revenue").to_numpy(zero_copy_only=False).astype(float)
            ),
        }
    )


def read_touches(
    store: Store, since: datetime | None = None, until: datetime | None = None
) -> pd.DataFrame:
    """Touches: events carrying a channel, sorted by customer and time.

    Consecutive touches of one customer in the same session from the same channel and campaign
    (an ad click and the page it lands on) count once, at the first one's time.
    """
    table = store.read_events(
        None,
        since=since,
        until=until,
        columns=("customer_id", "ts", "session_id", "channel", "campaign"),
    )
    table = table.filter(pc.is_valid(table.column("channel")))
    df = pd.DataFrame(
        {
            "customer_id": table.column("customer_id").to_pylist(),
            "t": ts_us(table),
            "session_id": table.column("session_id").to_pylist(),
            "channel": table.column("channel").to_pylist(),
            "campaign": table.column("campaign").to_pylist(),
        }
    )
    if df.empty:
        return df
    same = (
        (df["customer_id"] == df["customer_id"].shift())
        & df["session_id"].notna()
        & (df["session_id"] == df["session_id"].shift())
        & (df["channel"] == df["channel"].shift())
        & (df["campaign"].fillna("\x1f") == df["campaign"].shift().fillna("\x1f"))
    )
    return df.loc[~same].reset_index(drop=True)


def read_traits(store: Store, trait: str) -> dict[str, str]:
    """customer_id -> trait value as text (customers without it are left out)."""
    table = store.read_customers([trait])
    ids = table.column("customer_id").to_pylist()
    values = table.column(trait).to_pylist()
    return {c: str(v) for c, v in zip(ids, values, strict=True) if v is not None}


def first_touch_channels(touches: pd.DataFrame) -> dict[str, str]:
    """customer_id -> channel of the customer's first touch ever."""
    if touches.empty:
        return {}
    first = touches.drop_duplicates("customer_id", keep="first")
    return dict(zip(first["customer_id"], first["channel"], strict=True))


def group_labels(
    store: Store, by: str | None, customers: Sequence[str], touches: pd.DataFrame | None = None
) -> list[str] | None:
    """The group of each customer for ``--by``: ``channel`` is the first-touch channel, anything
    else a customer trait (``customer.X`` also works). ``None`` when not grouping."""
    if by is None:
        return None
    if by == "channel":
        if touches is None:
            touches = read_touches(store)
        mapping = first_touch_channels(touches)
    else:
        trait = by.removeprefix("customer.")
        try:
            mapping = read_traits(store, trait)
        except LoudouError as e:
            raise KpiError(e.message, "by") from None
        if not mapping and customers:  # most likely a typo: grouping everyone as "(none)" hides it
            raise KpiError(
                f"no customer has the trait {trait!r} (group by 'channel' or a customer trait)",
                "by",
            )
    return [mapping.get(c, NONE_LABEL) for c in customers]


def clean(value: float | None) -> float | None:
    """JSON-safe float: NaN and infinities become null."""
    if value is None:
        return None
    v = float(value)
    return v if np.isfinite(v) else None
