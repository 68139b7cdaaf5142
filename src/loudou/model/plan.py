"""A funnel spec translated once into what every engine evaluates: which events match which step
or exclusion under which condition tests, the window, the counting unit, the held properties,
where the breakdown value comes from, and the date bounds of step 1 in microseconds.

The SQL builder (``backends.duckdb_sql``) and the cache engine (``analyses.funnel.cached``) both read a
:class:`FunnelPlan`; neither looks at the spec's conditions or options again, so there is one
reading of a spec, and the condition rules are those of :mod:`loudou.model.conditions`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cached_property

from loudou.model.conditions import Check, holds_all
from loudou.model.spec import Condition, Exclusion, FunnelSpec, Step
from loudou.model.times import to_us

# Bit order of a plan's matches: step k is bit k-1, exclusion j is bit n_steps + j.


@dataclass(frozen=True)
class FieldTest:
    """The tests of one condition on one field: an event property or a customer trait."""

    on_customer: bool
    name: str
    tests: tuple[Check, ...]

    @classmethod
    def of(cls, cond: Condition) -> FieldTest:
        return cls(cond.on_customer, cond.field_name, Check.of(cond.op, cond.value))

    def holds(self, text: str | None) -> bool:
        return holds_all(self.tests, text)

    def holds_each(self, texts: list[str | None]) -> list[bool]:
        return [self.holds(t) for t in texts]


@dataclass(frozen=True)
class Match:
    """Events with any of ``events`` as name for which every field test holds."""

    events: tuple[str, ...]
    tests: tuple[FieldTest, ...]

    @classmethod
    def of(cls, part: Step | Exclusion) -> Match:
        return cls(tuple(part.events), tuple(FieldTest.of(c) for c in part.where))


@dataclass(frozen=True)
class BreakdownSource:
    """Where a unit's breakdown value comes from: an event property at the chain's step-1 event,
    else a customer trait (a bare name tries both, in that order)."""

    property: str | None
    trait: str | None

    @classmethod
    def of(cls, breakdown: str) -> BreakdownSource:
        if breakdown.startswith("customer."):
            return cls(None, breakdown.removeprefix("customer."))
        if breakdown.startswith("event."):
            return cls(breakdown.removeprefix("event."), None)
        return cls(breakdown, breakdown)


@dataclass(frozen=True)
class FunnelPlan:
    """Everything an engine needs to compute a funnel's units (see the module docstring)."""

    spec: FunnelSpec
    steps: tuple[Match, ...]
    exclusions: tuple[Match, ...]
    after_step: tuple[int, ...]  # per exclusion
    before_step: tuple[int, ...]
    window_us: int
    unit_property: str | None  # count=sessions: the session property, one unit per value
    hold: tuple[str, ...]  # hold_constant properties
    breakdown: BreakdownSource | None
    t_from: int | None  # step 1 at or after this time (µs UTC)
    t_to: int | None  # step 1 at or before this time (µs UTC)

    @property
    def mode(self) -> str:
        return self.spec.mode

    @property
    def count(self) -> str:
        return self.spec.count

    @property
    def matches(self) -> tuple[Match, ...]:
        """Steps then exclusions: match i sets bit i of an event's mask."""
        return self.steps + self.exclusions

    @property
    def group_properties(self) -> tuple[str, ...]:
        """Properties a chain must keep equal: the unit's, then the held ones."""
        return ((self.unit_property,) if self.unit_property else ()) + self.hold

    @cached_property
    def event_names(self) -> list[str]:
        return sorted({n for m in self.matches for n in m.events})

    @cached_property
    def properties(self) -> list[str]:
        """Event properties the plan reads (conditions, unit, held, breakdown), in first use."""
        names = [t.name for m in self.matches for t in m.tests if not t.on_customer]
        names += self.group_properties
        if self.breakdown is not None and self.breakdown.property is not None:
            names.append(self.breakdown.property)
        return list(dict.fromkeys(names))

    @cached_property
    def traits(self) -> list[str]:
        """Customer traits the plan reads (conditions of steps and exclusions, breakdown)."""
        names = [t.name for m in self.matches for t in m.tests if t.on_customer]
        if self.breakdown is not None and self.breakdown.trait is not None:
            names.append(self.breakdown.trait)
        return list(dict.fromkeys(names))


def plan_funnel(spec: FunnelSpec) -> FunnelPlan:
    """The one translation of a spec (already validated) into a plan."""
    t_from, t_to = date_bounds_us(spec)
    return FunnelPlan(
        spec=spec,
        steps=tuple(Match.of(s) for s in spec.steps),
        exclusions=tuple(Match.of(x) for x in spec.exclusions),
        after_step=tuple(x.after_step for x in spec.exclusions),
        before_step=tuple(x.before_step for x in spec.exclusions),
        window_us=spec.window_seconds * 1_000_000,
        unit_property=spec.session_property if spec.count == "sessions" else None,
        hold=tuple(spec.hold_constant),
        breakdown=BreakdownSource.of(spec.breakdown) if spec.breakdown is not None else None,
        t_from=t_from,
        t_to=t_to,
    )


def date_bounds_us(spec: FunnelSpec) -> tuple[int | None, int | None]:
    """Inclusive bounds of step 1's time: a plain ``date_to`` covers its whole day."""
    lo = hi = None
    if spec.date_from is not None:
        lo = to_us(_start_of(spec.date_from))
    if spec.date_to is not None:
        d = spec.date_to
        hi = to_us(d) if isinstance(d, datetime) else to_us(_start_of(d) + timedelta(days=1)) - 1
    return lo, hi


def _start_of(d: date | datetime) -> datetime:
    return d if isinstance(d, datetime) else datetime(d.year, d.month, d.day)
