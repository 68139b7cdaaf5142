"""The one set of condition rules. Funnel steps and exclusions (``where``), and saved segments'
trait rules, test a stored value against a spec value by these rules, whatever engine evaluates
them: the SQL builder translates a :class:`Check` into SQL with the same meaning, the columnar
cache and the segment rules call :meth:`Check.holds` once per distinct value. The backend
contract and the engine-agreement tests hold all of them to this module.

Type semantics (docs/funnel-semantics.md, "Conditions"):

- A stored value is text or missing. Event properties and traits are read as text (a JSON number
  as written, ``1.5`` → ``"1.5"``; ``true`` → ``"true"``; JSON null is missing); the ``revenue``
  column reads as the text of its number.
- A value *is a number* when its whole text is a finite decimal: an optional sign, digits with an
  optional fraction (``1``, ``-0.5``, ``.5``, ``1.``), an optional exponent (``1e3``). Nothing
  else is: no spaces, ``nan``, ``inf``, ``1_000`` or hex.
- A missing value satisfies only ``is not set``.
- ``=`` with a number compares numerically (``"1.0" = 1``), and a value that is not a number is
  not equal; with text, exact text; with a boolean, the text ``true`` / ``false``. ``!=`` holds
  for every present value that is not ``=``.
- ``> >= < <=`` with a number hold only for values that are numbers, compared numerically; with
  text (or a boolean) they compare texts by code point.
- ``in`` holds when the value is ``=`` to any item, each item by its own type (``in [1, "a"]``
  matches ``"1.0"`` and ``"a"``); ``not in`` holds for every present value that is not ``in``.
- ``contains``: the value's text contains the spec value's text, both lower-cased. A number's
  text drops an integral float's ``.0`` (``contains 2.0`` looks for ``"2"``).
- ``between [lo, hi]`` (segment rules): ``>= lo`` and ``<= hi``.
- Spec values that are numbers must be finite: NaN and infinities are refused when a spec is read.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

Scalar = str | int | float | bool
Compare = Literal["=", "!=", ">", ">=", "<", "<="]

# The syntax of a number, shared with the SQL translation (RE2 and Python agree on it).
NUMBER_PATTERN = r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?"
_NUMBER_RE = re.compile(NUMBER_PATTERN)


def as_number(text: str | None) -> float | None:
    """The number a stored value is, or None when it is not one (see the module docstring)."""
    if text is None or not _NUMBER_RE.fullmatch(text):
        return None
    x = float(text)
    return x if math.isfinite(x) else None


def is_number(value: object) -> bool:
    """Whether a spec value is a number (booleans are not)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def value_text(value: Scalar) -> str:
    """The text a spec value stands for when compared as text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def check_value(value: object) -> None:
    """Refuse spec values no rule can compare: NaN and infinities."""
    items = value if isinstance(value, list) else [value]
    for v in items:
        if isinstance(v, float) and not math.isfinite(v):
            raise ValueError(f"value {v!r} is not a finite number")


@dataclass(frozen=True)
class Item:
    """One spec value in the form the rules use: a number, or a text."""

    number: float | None
    text: str

    @classmethod
    def of(cls, value: Scalar) -> Item:
        return cls(float(value) if is_number(value) else None, value_text(value))


@dataclass(frozen=True)
class Check:
    """One condition in normal form: ``op`` on ``items`` (``between`` becomes two tests)."""

    op: Literal["is set", "is not set", "compare", "in", "not in", "contains"]
    compare: Compare = "="
    items: tuple[Item, ...] = ()

    @classmethod
    def of(cls, op: str, value: Scalar | list[Scalar] | None) -> tuple[Check, ...]:
        """The tests (all must hold) of one condition ``op value``."""
        if op in ("is set", "is not set"):
            return (cls(op),)  # type: ignore[arg-type]
        if op == "between":
            assert isinstance(value, list) and len(value) == 2
            return (
                cls("compare", ">=", (Item.of(value[0]),)),
                cls("compare", "<=", (Item.of(value[1]),)),
            )
        if op in ("in", "not in"):
            assert isinstance(value, list)
            return (cls(op, items=tuple(Item.of(v) for v in value)),)  # type: ignore[arg-type]
        assert value is not None and not isinstance(value, list)
        if op == "contains":
            return (cls("contains", items=(Item.of(value),)),)
        return (cls("compare", op, (Item.of(value),)),)  # type: ignore[arg-type]

    @property
    def item(self) -> Item:
        return self.items[0]

    def holds(self, text: str | None) -> bool:
        """Whether a stored value (text, or None when missing) satisfies the test."""
        if self.op == "is set":
            return text is not None
        if self.op == "is not set":
            return text is None
        if text is None:
            return False
        if self.op == "contains":
            return self.item.text.lower() in text.lower()
        if self.op in ("in", "not in"):
            number = as_number(text)
            member = any(_equal(text, number, item) for item in self.items)
            return member == (self.op == "in")
        item = self.item
        if self.compare in ("=", "!="):
            return _equal(text, as_number(text), item) == (self.compare == "=")
        if item.number is not None:
            number = as_number(text)
            return number is not None and _ordered(number, self.compare, item.number)
        return _ordered(text, self.compare, item.text)


def _equal(text: str, number: float | None, item: Item) -> bool:
    if item.number is not None:
        return number is not None and number == item.number
    return text == item.text


def _ordered(a: float | str, op: Compare, b: float | str) -> bool:
    if op == ">":
        return a > b  # type: ignore[operator]
    if op == ">=":
        return a >= b  # type: ignore[operator]
    if op == "<":
        return a < b  # type: ignore[operator]
    return a <= b  # type: ignore[operator]


def holds_all(tests: Sequence[Check], text: str | None) -> bool:
    return all(t.holds(text) for t in tests)
