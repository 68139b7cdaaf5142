"""Funnel specs: the one description of a funnel shared by YAML files, the CLI, the Python API and
(later) the REST API. Validation lives here so every entry point reports the same errors."""

from __future__ import annotations

import builtins
import re
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from loudou.errors import SpecError
from loudou.model.conditions import Scalar, check_value

Op = Literal["=", "!=", ">", ">=", "<", "<=", "in", "not in", "contains", "is set", "is not set"]
OPS: tuple[str, ...] = (
    "=",
    "!=",
    ">",
    ">=",
    "<",
    "<=",
    "in",
    "not in",
    "contains",
    "is set",
    "is not set",
)
Mode = Literal["ordered", "strict_order", "strict_increase", "any_order"]
CountBy = Literal["customers", "sessions", "totals"]

MAX_STEPS = 32  # ClickHouse windowFunnel's own limit; enough for any real funnel.

# Property and trait names end up inside JSON paths (bound as parameters, never as SQL text);
# the pattern keeps them readable and free of quote characters.
NAME_RE = re.compile(r"^[A-Za-z0-9_$][A-Za-z0-9_$\-. ]{0,127}$")
_DURATION_RE = re.compile(
    r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|secs|m|min|mins|h|hr|hrs|d|day|days|w)?\s*$"
)
_UNIT_SECONDS = {
    None: 1,
    "s": 1,
    "sec": 1,
    "secs": 1,
    "m": 60,
    "min": 60,
    "mins": 60,
    "h": 3600,
    "hr": 3600,
    "hrs": 3600,
    "d": 86400,
    "day": 86400,
    "days": 86400,
    "w": 604800,
}


def parse_duration(value: str | int | float) -> int:
    """'14d', '30m', '2h', '90s' or a number of seconds -> whole seconds (> 0)."""
    if isinstance(value, bool):
        raise SpecError("expected a duration such as 30m, 2h or 14d", "window")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        m = _DURATION_RE.match(str(value))
        if not m:
            raise SpecError(
                f"cannot read duration {value!r}; use a number with s, m, h or d (e.g. 14d)",
                "window",
            )
        seconds = float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
    if seconds <= 0 or seconds != int(seconds):
        raise SpecError(
            f"duration must be a positive whole number of seconds, got {value!r}", "window"
        )
    return int(seconds)


def check_name(name: str, what: str) -> str:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ValueError(
            f"{what}: {name!r} is not a valid name (letters, digits, _ $ - . and spaces, max 128)"
        )
    return name


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Condition(_Model):
    """A test on an event property (``property``) or a customer trait (``trait``)."""

    property: str | None = None
    trait: str | None = None
    op: Op = "="
    value: Scalar | list[Scalar] | None = None

    @model_validator(mode="after")
    def _check(self) -> Condition:
        if (self.property is None) == (self.trait is None):
            raise ValueError("give exactly one of 'property' (event) or 'trait' (customer)")
        check_name(self.field_name, "property" if self.property is not None else "trait")
        if self.op in ("is set", "is not set"):
            if self.value is not None:
                raise ValueError(f"op {self.op!r} takes no value")
        elif self.op in ("in", "not in"):
            if not isinstance(self.value, list) or not self.value:
                raise ValueError(f"op {self.op!r} needs a non-empty list as value")
        elif self.value is None or isinstance(self.value, list):
            raise ValueError(f"op {self.op!r} needs a single value")
        check_value(self.value)
        return self

    @builtins.property  # the field 'property' shadows the builtin here
    def field_name(self) -> str:
        return self.property if self.property is not None else str(self.trait)

    def describe(self) -> str:
        name = f"customer.{self.trait}" if self.trait is not None else str(self.property)
        if self.value is None:
            return f"{name} {self.op}"
        if isinstance(self.value, list):
            return f"{name} {self.op} ({', '.join(str(v) for v in self.value)})"
        return f"{name} {self.op} {self.value}"

    @builtins.property  # the field 'property' shadows the builtin here
    def on_customer(self) -> bool:
        return self.trait is not None


class Step(_Model):
    """One funnel step: any of the named events, with all conditions true."""

    event: str | list[str]
    name: str | None = None
    name_zh: str | None = None
    where: list[Condition] = Field(default_factory=list)

    @field_validator("event")
    @classmethod
    def _events(cls, v: str | list[str]) -> str | list[str]:
        names = [v] if isinstance(v, str) else v
        if not names or any(not isinstance(n, str) or not n.strip() for n in names):
            raise ValueError("event must be a non-empty name or list of names")
        return v

    @property
    def events(self) -> list[str]:
        return [self.event] if isinstance(self.event, str) else list(self.event)

    def label(self, lang: str = "en") -> str:
        if lang == "zh" and self.name_zh:
            return self.name_zh
        if self.name:
            return self.name
        text = " | ".join(self.events)
        if self.where:
            text += " where " + " and ".join(c.describe() for c in self.where)
        return text


class Exclusion(_Model):
    """Customers doing this event between two steps of their chain leave the funnel."""

    event: str | list[str]
    where: list[Condition] = Field(default_factory=list)
    after_step: int = 1
    before_step: int = 2

    @property
    def events(self) -> list[str]:
        return [self.event] if isinstance(self.event, str) else list(self.event)


class FunnelSpec(_Model):
    """A funnel: ordered steps, a conversion window and options (DESIGN §4)."""

    name: str = "funnel"
    name_zh: str | None = None
    steps: list[Step]
    window: str | int = "14d"
    mode: Mode = "ordered"
    count: CountBy = "customers"
    breakdown: str | None = None
    breakdown_limit: int = Field(default=10, ge=1, le=1000)
    hold_constant: list[str] = Field(default_factory=list)
    exclusions: list[Exclusion] = Field(default_factory=list)
    date_from: date | datetime | None = None
    date_to: date | datetime | None = None
    session_property: str = "session_id"

    @model_validator(mode="after")
    def _check(self) -> FunnelSpec:
        if not self.steps:
            raise ValueError("steps: a funnel needs at least one step")
        if len(self.steps) > MAX_STEPS:
            raise ValueError(f"steps: at most {MAX_STEPS} steps, got {len(self.steps)}")
        parse_duration(self.window)
        n = len(self.steps)
        for i, ex in enumerate(self.exclusions):
            if not (1 <= ex.after_step < ex.before_step <= n):
                raise ValueError(
                    f"exclusions.{i}: need 1 <= after_step < before_step <= {n}, "
                    f"got {ex.after_step} and {ex.before_step}"
                )
        if len(self.steps) + len(self.exclusions) > 64:
            raise ValueError("exclusions: too many steps and exclusions together (max 64)")
        if self.breakdown is not None:
            check_breakdown(self.breakdown)
        for h in self.hold_constant:
            check_name(h, "hold_constant")
        check_name(self.session_property, "session_property")
        if self.date_from and self.date_to and _as_dt(self.date_to) < _as_dt(self.date_from):
            raise ValueError("date_to: date_to is before date_from")
        return self

    def with_breakdown(self, breakdown: str, field: str = "breakdown") -> FunnelSpec:
        """The same funnel split by ``breakdown``, checked as in a spec (an error names
        ``field``) without reading the whole spec again."""
        try:
            check_breakdown(breakdown)
        except ValueError as e:
            raise SpecError(str(e).partition(": ")[2], field) from None
        return self.model_copy(update={"breakdown": breakdown})

    @property
    def window_seconds(self) -> int:
        return parse_duration(self.window)

    @classmethod
    def parse(cls, data: Any, source: str = "spec") -> FunnelSpec:
        """Validate a dict, turning pydantic's errors into one readable :class:`SpecError`."""
        if not isinstance(data, dict):
            raise SpecError("a funnel spec must be a mapping with at least 'steps'", source)
        data = dict(data)
        steps = data.get("steps")
        if isinstance(steps, list):
            data["steps"] = [parse_step(s) if isinstance(s, str) else s for s in steps]
        try:
            return cls.model_validate(data)
        except ValidationError as e:
            err = e.errors()[0]
            loc = ".".join(str(p) for p in err["loc"])
            msg = str(err["msg"]).removeprefix("Value error, ")
            if not loc:  # model-level rules say "field: problem"
                loc, _, msg = msg.partition(": ") if ": " in msg else (source, "", msg)
            raise SpecError(msg, loc) from None
        except SpecError:
            raise

    @classmethod
    def from_yaml(cls, path: str | Path) -> FunnelSpec:
        """Read a YAML spec file (``template:`` specs included)."""
        from loudou.model.templates import load_spec_file

        return load_spec_file(str(path))

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_defaults=True)


def check_breakdown(breakdown: str) -> None:
    """A property or trait name (``customer.x``, ``event.x`` or bare), or saved segments
    (``segment:a,b``, see loudou.analyses.funnel.rows.any_funnel)."""
    if breakdown.startswith("segment:"):
        for name in filter(None, (x.strip() for x in breakdown[8:].split(","))):
            check_name(name, "breakdown")
    else:
        check_name(breakdown.removeprefix("customer.").removeprefix("event."), "breakdown")


def _as_dt(d: date | datetime) -> datetime:
    return d if isinstance(d, datetime) else datetime(d.year, d.month, d.day)


# ---- inline steps: "purchase where revenue > 100 and customer.region = north" ---------------

_COND_RE = re.compile(
    r"^\s*(?P<name>[^\s=!<>]+)\s*"
    r"(?P<op>is\s+not\s+set|is\s+set|not\s+in|in|contains|!=|>=|<=|=|>|<)\s*(?P<value>.*?)\s*$",
    re.IGNORECASE,
)


def _parse_value(text: str) -> Scalar:
    t = text.strip()
    if len(t) >= 2 and t[0] == t[-1] and t[0] in "'\"":
        return t[1:-1]
    if t.lower() in ("true", "false"):
        return t.lower() == "true"
    try:
        return int(t)
    except ValueError:
        pass
    try:
        return float(t)
    except ValueError:
        return t


def parse_condition(text: str) -> Condition:
    m = _COND_RE.match(text)
    if not m:
        raise SpecError(f"cannot read condition {text!r}; e.g. 'revenue > 100'", "where")
    name, op, raw = m.group("name"), " ".join(m.group("op").lower().split()), m.group("value")
    value: Scalar | list[Scalar] | None
    if op in ("is set", "is not set"):
        if raw:
            raise SpecError(f"{op!r} takes no value in {text!r}", "where")
        value = None
    elif op in ("in", "not in"):
        inner = raw.strip()
        if inner.startswith("(") and inner.endswith(")"):
            inner = inner[1:-1]
        value = [_parse_value(v) for v in inner.split(",") if v.strip()]
    else:
        if not raw:
            raise SpecError(f"missing value in {text!r}", "where")
        value = _parse_value(raw)
    key = "property"
    if name.startswith("customer."):
        key, name = "trait", name.removeprefix("customer.")
    try:
        return Condition.model_validate({key: name, "op": op, "value": value})
    except ValidationError as e:
        raise SpecError(str(e.errors()[0]["msg"]).removeprefix("Value error, "), "where") from None


def parse_step(text: str) -> dict[str, Any]:
    """``"view|add_to_cart where price >= 10 and customer.city = Paris"`` -> a step dict."""
    head, _, tail = text.partition(" where ")
    events = [e.strip() for e in head.split("|") if e.strip()]
    if not events:
        raise SpecError(f"step {text!r} names no event", "steps")
    conds = (
        [parse_condition(c) for c in re.split(r"\s+and\s+", tail.strip(), flags=re.I)]
        if tail
        else []
    )
    return {
        "event": events[0] if len(events) == 1 else events,
        "where": [c.model_dump(exclude_none=True) for c in conds],
    }
