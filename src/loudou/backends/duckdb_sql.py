"""Pure SQL building for the DuckDB store: spec in, (sql, params) out, nothing executed.

User input never becomes SQL text. Values are bound parameters; property names become JSON paths
that are bound as parameters too; the only identifiers written into SQL are our own column names and validated, quoted
property names used as output column aliases.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from loudou.backends.base import EVENT_SCHEMA, NUMERIC_COLUMNS, PROMOTED_COLUMNS
from loudou.errors import StoreError
from loudou.model.conditions import NUMBER_PATTERN, Check, Item
from loudou.model.plan import BreakdownSource, FieldTest, FunnelPlan, Match
from loudou.model.spec import check_name
from loudou.model.times import from_us, naive_utc


def json_path(name: str) -> str:
    """A JSON path for one top-level key; names are validated against NAME_RE (no quotes)."""
    return '$."' + name + '"'


# A literal in SQL text: our own constant, no quote characters (see model.conditions).
_NUMBER_SQL = "'^" + NUMBER_PATTERN + "$'"
assert "'" not in NUMBER_PATTERN


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

    def field_test(self, ft: FieldTest) -> str:
        """SQL for one condition, by the rules of :mod:`loudou.model.conditions`."""
        if ft.on_customer:
            text = self.trait_field(ft.name)
        else:
            text = f"CAST({self.event_field(ft.name)} AS VARCHAR)"
        if ft.name in NUMERIC_COLUMNS and not ft.on_customer:
            number = f"(CASE WHEN isfinite(e.{ft.name}) THEN e.{ft.name} END)"
        else:
            cast = f"TRY_CAST({text} AS DOUBLE)"
            number = (
                f"(CASE WHEN regexp_full_match({text}, {_NUMBER_SQL}) AND isfinite({cast}) "
                f"THEN {cast} END)"
            )
        return " AND ".join(self._test(t, text, number) for t in ft.tests)

    def _test(self, test: Check, text: str, number: str) -> str:
        if test.op == "is set":
            return f"({text} IS NOT NULL)"
        if test.op == "is not set":
            return f"({text} IS NULL)"
        if test.op == "contains":
            return f"contains(lower({text}), {self.bind(test.item.text.lower())})"
        if test.op in ("in", "not in"):
            member = self._member(test.items, text, number)
            if test.op == "in":
                return member
            return f"({text} IS NOT NULL AND NOT COALESCE({member}, FALSE))"
        item = test.item
        if test.compare in ("=", "!="):
            equal = self._member((item,), text, number)
            if test.compare == "=":
                return equal
            return f"({text} IS NOT NULL AND NOT COALESCE({equal}, FALSE))"
        if item.number is not None:
            return f"({number} {test.compare} {self.bind(item.number)})"
        return f"({text} {test.compare} {self.bind(item.text)})"

    def _member(self, items: Sequence[Item], text: str, number: str) -> str:
        """Equal to any item: numbers numerically, texts exactly."""
        numbers = [i.number for i in items if i.number is not None]
        texts = [i.text for i in items if i.number is None]
        parts = []
        if numbers:
            parts.append(f"{number} IN ({', '.join(self.bind(n) for n in numbers)})")
        if texts:
            parts.append(f"{text} IN ({', '.join(self.bind(t) for t in texts)})")
        return "(" + " OR ".join(parts) + ")"

    def match(self, m: Match, extra: list[str] | None = None) -> str:
        names = ", ".join(self.bind(n) for n in m.events)
        parts = [f"e.event IN ({names})"] + [self.field_test(t) for t in m.tests] + (extra or [])
        return "COALESCE(" + " AND ".join(parts) + ", FALSE)"


def funnel_events_sql(plan: FunnelPlan) -> tuple[str, list[Any]]:
    """SQL returning the rows the funnel kernel needs, sorted by (customer, group, time).

    Step k+1 sets bit k of ``mask``; exclusion j sets bit n+j. The date range is part of step 1's
    condition, so later steps may fall after it, as in ClickHouse with the range on condition 1.
    ``strict_order`` keeps every event, because any other event interrupts a chain there.
    """
    b = SqlBuilder()
    first_extra: list[str] = []
    if plan.t_from is not None:
        first_extra.append(f"e.ts >= {b.bind(from_us(plan.t_from))}")
    if plan.t_to is not None:
        first_extra.append(f"e.ts <= {b.bind(from_us(plan.t_to))}")
    bits = [
        f"(CAST({b.match(m, first_extra if i == 0 else None)} AS UBIGINT) << {i})"
        for i, m in enumerate(plan.matches)
    ]
    mask = " | ".join(bits)

    # unit_key: what is counted besides the customer (a session); group_key: held-constant values.
    # A chain must stay within one (customer, unit, group); rows lacking a needed value drop out.
    unit_parts = [b.event_field(plan.unit_property)] if plan.unit_property else []
    group_parts = [b.event_field(h) for h in plan.hold]
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
    if plan.breakdown is not None:
        select.append(f"{breakdown_expr(b, plan.breakdown)} AS breakdown")

    prefilter = "TRUE"
    if plan.mode != "strict_order":
        prefilter = "e.event IN (" + ", ".join(b.bind(n) for n in plan.event_names) + ")"
    where = f"{prefilter} AND {group_ok}"
    join = " LEFT JOIN customers_seen c ON c.customer_id = e.customer_id" if plan.traits else ""
    inner = "SELECT " + ", ".join(select) + f" FROM events e{join} WHERE {where}"  # noqa: S608
    keep = "TRUE" if plan.mode == "strict_order" else "mask <> 0"
    cols = "customer_id, unit_key, group_key, t, mask" + (
        ", breakdown" if plan.breakdown is not None else ""
    )
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


def breakdown_expr(b: SqlBuilder, source: BreakdownSource) -> str:
    """The property's value at the event, else the customer's trait (see BreakdownSource)."""
    parts = []
    if source.property is not None:
        parts.append(f"CAST({b.event_field(source.property)} AS VARCHAR)")
    if source.trait is not None:
        parts.append(b.trait_field(source.trait))
    return parts[0] if len(parts) == 1 else f"COALESCE({', '.join(parts)})"


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
        raise StoreError(f"unknown event column {unknown[0]!r}", "columns")
    clash = [p for p in properties if p in columns]
    if clash:
        raise StoreError(
            f"property {clash[0]!r} clashes with a column of the same name", "properties"
        )
    select = [f"e.{c}" for c in columns]
    for p in properties:
        _checked(p, "property", "properties")
        select.append(f"CAST({b.event_field(p)} AS VARCHAR) AS {quote_ident(p)}")
    where = ["TRUE"]
    if events is not None:
        where.append(
            "e.event IN (" + ", ".join(b.bind(n) for n in events) + ")" if events else "FALSE"
        )
    if since is not None:
        where.append(f"e.ts >= {b.bind(naive_utc(since))}")
    if until is not None:
        where.append(f"e.ts < {b.bind(naive_utc(until))}")
    cols, cond = ", ".join(select), " AND ".join(where)
    sql = f"SELECT {cols} FROM events e WHERE {cond} ORDER BY e.customer_id, e.ts, e.event_id"  # noqa: S608
    return sql, b.params


def read_customers_sql(traits: Sequence[str]) -> tuple[str, list[Any]]:
    b = SqlBuilder()
    select = ["c.customer_id", "c.first_seen", "c.last_seen"]
    for name in traits:
        _checked(name, "trait", "traits")
        if name in ("customer_id", "first_seen", "last_seen"):
            raise StoreError(f"trait {name!r} clashes with a column of the same name", "traits")
        select.append(f"{b.trait_field(name)} AS {quote_ident(name)}")
    # customers_seen: customers with the first/last seen times not yet folded in (seen_log)
    sql = "SELECT " + ", ".join(select) + " FROM customers_seen c ORDER BY c.customer_id"  # noqa: S608
    return sql, b.params


def _checked(name: str, what: str, field: str) -> None:
    """A property or trait name a read may use, else an error naming the argument at fault."""
    try:
        check_name(name, what)
    except ValueError as e:
        raise StoreError(str(e), field) from None


def quote_ident(name: str) -> str:
    """A double-quoted identifier; names are already validated against NAME_RE (no quotes)."""
    return '"' + name.replace('"', '""') + '"'
