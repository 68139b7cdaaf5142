"""Pure SQL building for the DuckDB store: spec in, (sql, params) out, nothing executed.

User input never becomes SQL text. Values are bound parameters; property names become JSON paths
that are bound as parameters too; the only identifiers written into SQL are our own column names and validated, quoted
property names used as output column aliases.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from loudou.model.spec import Condition, FunnelSpec, Scalar, check_name
from loudou.store.base import EVENT_SCHEMA, PROMOTED_COLUMNS


def json_path(name: str) -> str:
    """A JSON path for one top-level key; names are validated against NAME_RE (no quotes)."""
    return '$."' + name + '"'


class SqlBuilder:
    """Accumulates SQL fragments and their bound parameters in order."""

    def __init__(self) -> None:
        self.params: list[Any] = []

    def bind(self, value: Any) -> str:
        """Bind a value; numbered placeholders let fragments be built in any order."""
        self.params.append(value)
        return f"${len(self.params)}"

    def event_field(self, name: str) -> str:
        if name in PROMOTED_COLUMNS:
            return f"e.{name}"
        return f"json_extract_string(e.properties, {self.bind(json_path(name))})"

    def trait_field(self, name: str) -> str:
        return f"json_extract_string(c.traits, {self.bind(json_path(name))})"

    def condition(self, cond: Condition) -> str:
        raw = (
            self.trait_field(cond.field_name)
            if cond.on_customer
            else self.event_field(cond.field_name)
        )
        op, value = cond.op, cond.value
        if op == "is set":
            return f"({raw} IS NOT NULL)"
        if op == "is not set":
            return f"({raw} IS NULL)"
        if op in ("in", "not in"):
            assert isinstance(value, list)
            numeric = all(_is_number(v) for v in value)
            lhs = f"TRY_CAST({raw} AS DOUBLE)" if numeric else f"CAST({raw} AS VARCHAR)"
            items = ", ".join(self.bind(_sql_value(v, numeric)) for v in value)
            neg = "NOT " if op == "not in" else ""
            return f"({lhs} {neg}IN ({items}))"
        assert value is not None and not isinstance(value, list)
        if op == "contains":
            return f"contains(lower(CAST({raw} AS VARCHAR)), lower({self.bind(str(value))}))"
        if _is_number(value):
            return f"(TRY_CAST({raw} AS DOUBLE) {op} {self.bind(float(value))})"
        return f"(CAST({raw} AS VARCHAR) {op} {self.bind(_sql_value(value, False))})"

    def step(
        self, events: list[str], where: list[Condition], extra: list[str] | None = None
    ) -> str:
        names = ", ".join(self.bind(n) for n in events)
        parts = [f"e.event IN ({names})"] + [self.condition(c) for c in where] + (extra or [])
        return "COALESCE(" + " AND ".join(parts) + ", FALSE)"


def _is_number(v: Scalar) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _sql_value(v: Scalar, numeric: bool) -> Any:
    if numeric:
        return float(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def date_bounds(spec: FunnelSpec) -> tuple[datetime | None, datetime | None, bool]:
    """(start, end, end_inclusive): a plain date_to covers its whole day."""
    start = end = None
    inclusive = True
    if spec.date_from is not None:
        d = spec.date_from
        start = d if isinstance(d, datetime) else datetime(d.year, d.month, d.day)
    if spec.date_to is not None:
        d = spec.date_to
        if isinstance(d, datetime):
            end = d
        else:
            end = datetime(d.year, d.month, d.day) + timedelta(days=1)
            inclusive = False
    return start, end, inclusive


def _naive_utc(d: datetime) -> datetime:
    if d.tzinfo is not None:
        from datetime import UTC

        d = d.astimezone(UTC).replace(tzinfo=None)
    return d


def funnel_events_sql(spec: FunnelSpec) -> tuple[str, list[Any]]:
    """SQL returning the rows the funnel kernel needs, sorted by (customer, group, time).

    Step k+1 sets bit k of ``mask``; exclusion j sets bit n+j. The date range is part of step 1's
    condition, so later steps may fall after it, as in ClickHouse with the range on condition 1.
    ``strict_order`` keeps every event, because any other event interrupts a chain there.
    """
    b = SqlBuilder()
    bits: list[str] = []
    start, end, inclusive = date_bounds(spec)
    first_extra: list[str] = []
    if start is not None:
        first_extra.append(f"e.ts >= {b.bind(_naive_utc(start))}")
    if end is not None:
        first_extra.append(f"e.ts {'<=' if inclusive else '<'} {b.bind(_naive_utc(end))}")

    for k, step in enumerate(spec.steps):
        cond = b.step(step.events, step.where, first_extra if k == 0 else None)
        bits.append(f"(CAST({cond} AS UBIGINT) << {k})")
    n = len(spec.steps)
    for j, ex in enumerate(spec.exclusions):
        cond = b.step(ex.events, ex.where)
        bits.append(f"(CAST({cond} AS UBIGINT) << {n + j})")
    mask = " | ".join(bits)

    # unit_key: what is counted besides the customer (a session); group_key: held-constant values.
    # A chain must stay within one (customer, unit, group); rows lacking a needed value drop out.
    unit_parts = [b.event_field(spec.session_property)] if spec.count == "sessions" else []
    group_parts = [b.event_field(h) for h in spec.hold_constant]
    unit_key, group_key = _key(unit_parts), _key(group_parts)
    group_ok = " AND ".join(f"{p} IS NOT NULL" for p in unit_parts + group_parts) or "TRUE"

    select = [
        "e.customer_id AS customer_id",
        "e.rowid AS r",
        f"{unit_key} AS unit_key",
        f"{group_key} AS group_key",
        "epoch_us(e.ts) AS t",
        f"({mask}) AS mask",
    ]
    if spec.breakdown is not None:
        select.append(f"{breakdown_expr(b, spec.breakdown)} AS breakdown")

    prefilter = "TRUE"
    if spec.mode != "strict_order":
        names = sorted(
            {n for s in spec.steps for n in s.events}
            | {n for x in spec.exclusions for n in x.events}
        )
        prefilter = "e.event IN (" + ", ".join(b.bind(n) for n in names) + ")"
    where = f"{prefilter} AND {group_ok}"
    join = (
        " LEFT JOIN customers_seen c ON c.customer_id = e.customer_id"
        if needs_customers(spec)
        else ""
    )
    inner = "SELECT " + ", ".join(select) + f" FROM events e{join} WHERE {where}"  # noqa: S608
    keep = "TRUE" if spec.mode == "strict_order" else "mask <> 0"
    cols = "customer_id, unit_key, group_key, t, mask" + (", breakdown" if spec.breakdown else "")
    sql = (
        f"SELECT {cols} FROM ({inner}) q WHERE {keep} "  # noqa: S608 (no user text)
        "ORDER BY customer_id, unit_key, group_key, t, r"
    )
    return sql, b.params


def _key(parts: list[str]) -> str:
    if not parts:
        return "''"
    # chr(31) (unit separator) joins the parts of a key; it does not occur in real ids.
    return "concat_ws(chr(31), " + ", ".join(f"CAST({p} AS VARCHAR)" for p in parts) + ")"


def breakdown_expr(b: SqlBuilder, breakdown: str) -> str:
    """``customer.x`` is a trait, ``event.x`` an event property, a bare name tries both."""
    if breakdown.startswith("customer."):
        return b.trait_field(breakdown.removeprefix("customer."))
    if breakdown.startswith("event."):
        return f"CAST({b.event_field(breakdown.removeprefix('event.'))} AS VARCHAR)"
    ev = f"CAST({b.event_field(breakdown)} AS VARCHAR)"
    return f"COALESCE({ev}, {b.trait_field(breakdown)})"


def needs_customers(spec: FunnelSpec) -> bool:
    return any(c.on_customer for s in spec.steps for c in s.where) or spec.breakdown is not None


__all__ = ["SqlBuilder", "funnel_events_sql", "json_path"]


def read_events_sql(
    events: Sequence[str] | None,
    since: datetime | None,
    until: datetime | None,
    columns: Sequence[str],
    properties: Sequence[str],
) -> tuple[str, list[Any]]:
    """Generic event read for analyses that do their own math (KPIs, segments)."""
    b = SqlBuilder()
    unknown = [c for c in columns if c not in EVENT_SCHEMA.names]
    if unknown:
        raise ValueError(f"unknown event column {unknown[0]!r}")
    clash = [p for p in properties if p in columns]
    if clash:
        raise ValueError(f"property {clash[0]!r} clashes with a column of the same name")
    select = [f"e.{c}" for c in columns]
    for p in properties:
        check_name(p, "property")
        select.append(f"CAST({b.event_field(p)} AS VARCHAR) AS {quote_ident(p)}")
    where = ["TRUE"]
    if events is not None:
        where.append(
            "e.event IN (" + ", ".join(b.bind(n) for n in events) + ")" if events else "FALSE"
        )
    if since is not None:
        where.append(f"e.ts >= {b.bind(_naive_utc(since))}")
    if until is not None:
        where.append(f"e.ts < {b.bind(_naive_utc(until))}")
    cols, cond = ", ".join(select), " AND ".join(where)
    sql = f"SELECT {cols} FROM events e WHERE {cond} ORDER BY e.customer_id, e.ts, e.event_id"  # noqa: S608
    return sql, b.params


def read_customers_sql(traits: Sequence[str]) -> tuple[str, list[Any]]:
    b = SqlBuilder()
    select = ["c.customer_id", "c.first_seen", "c.last_seen"]
    for name in traits:
        check_name(name, "trait")
        if name in ("customer_id", "first_seen", "last_seen"):
            raise ValueError(f"trait {name!r} clashes with a column of the same name")
        select.append(f"{b.trait_field(name)} AS {quote_ident(name)}")
    # customers_seen: customers with the first/last seen times not yet folded in (seen_log)
    sql = "SELECT " + ", ".join(select) + " FROM customers_seen c ORDER BY c.customer_id"  # noqa: S608
    return sql, b.params


def quote_ident(name: str) -> str:
    """A double-quoted identifier; names are already validated against NAME_RE (no quotes)."""
    return '"' + name.replace('"', '""') + '"'
