"""The one set of condition rules (loudou.model.conditions): hand-worked cases of each rule, and
every engine held to them: the SQL engine, the columnar cache and the segment rules give, on random
values and conditions, exactly what the rules say for the texts the store holds."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import loudou
from loudou.analyses.segments import members
from loudou.errors import SpecError
from loudou.model.conditions import Check, as_number, holds_all
from loudou.model.segment import Rule, Segment

from journeys import levels_by_customer, make_store, spec_of


@pytest.mark.parametrize(
    "text,number",
    [
        ("1", 1.0),
        ("-0.5", -0.5),
        (".5", 0.5),
        ("1.", 1.0),
        ("+2e3", 2000.0),
        ("01", 1.0),
        (" 1", None),  # no spaces
        ("1_000", None),
        ("nan", None),
        ("inf", None),
        ("1e999", None),  # not finite
        ("0x10", None),
        ("١", None),  # digits are ASCII digits
        ("", None),
        (None, None),
    ],
)
def test_what_is_a_number(text, number):
    assert as_number(text) == number


@pytest.mark.parametrize(
    "actual,op,value,expected",
    [
        ("1.0", "=", 1, True),  # numbers compare numerically
        ("1", "=", 1.0, True),  # an integral float is the same number
        ("1", "=", "1.0", False),  # text compares as text
        ("abc", "=", 1, False),
        ("abc", "!=", 1, True),  # != holds for every present value that is not =
        (None, "!=", 1, False),  # a missing value satisfies only 'is not set'
        ("10", ">", 9, True),
        ("10", ">", "9", False),  # text order
        ("abc", ">", 1, False),  # not a number: no numeric order
        ("nan", ">", 1, False),
        ("nan", "=", "nan", True),  # as text, nan is just text
        ("true", "=", True, True),
        ("True", "=", True, False),
        ("1.0", "in", [1, "a"], True),  # each item by its own type
        ("a", "in", [1, "a"], True),
        ("1.0", "in", ["1", "a"], False),
        ("b", "not in", [1, "a"], True),
        (None, "not in", ["x"], False),
        ("x12y", "contains", 2.0, True),  # 2.0 reads as "2"
        ("x2.0", "contains", 2.5, False),
        ("WEST", "contains", "wes", True),
        ("true", "contains", True, True),
        ("5", "between", [1, 5], True),
        ("5.5", "between", [1, 5], False),
        (None, "is not set", None, True),
        ("", "is set", None, True),  # an empty text is present
    ],
)
def test_rules_by_hand(actual, op, value, expected):
    assert holds_all(Check.of(op, value), actual) is expected


@pytest.mark.parametrize("value", [float("nan"), float("inf"), [1, float("-inf")]])
def test_non_finite_values_are_refused(value):
    op = "in" if isinstance(value, list) else ">"
    with pytest.raises(SpecError, match="finite"):
        loudou.FunnelSpec.parse(
            {"steps": [{"event": "a", "where": [{"property": "v", "op": op, "value": value}]}]}
        )
    with pytest.raises(ValueError, match="finite"):
        Rule(trait="v", op=op, value=value)


def test_trait_condition_in_an_exclusion():
    """Found in review: the SQL engine joined customers only for conditions in steps, so a trait
    condition in an exclusion failed with a DuckDB binder error; the cache engine answered."""
    journeys = {
        "a": [("view", 0), ("refund", 60), ("buy", 120)],
        "b": [("view", 0), ("refund", 60), ("buy", 120)],
        "c": [("view", 0), ("buy", 120)],
    }
    store = make_store(journeys, {"a": {"vip": "yes"}, "b": {"vip": "no"}})
    exclusion = {
        "event": "refund",
        "where": [{"trait": "vip", "op": "=", "value": "yes"}],
        "after_step": 1,
        "before_step": 2,
    }
    spec = spec_of(["view", "buy"], exclusions=[exclusion])
    for engine in ("sql", "cache"):
        # a (a VIP who refunded in between) leaves the funnel; b and c convert
        assert levels_by_customer(store, spec, engine) == {"b": 2, "c": 2}


# ---- every engine against the rules, on random data ----------------------------------------------

AWKWARD_TEXT = [
    "1", "1.0", "01", " 1", "1e0", "1E+1", "1e999", "nan", "NaN", "inf", "-0", "0", "+5", ".5",
    "5.", "true", "True", "false", "a", "A", "", "ab", "Äb", "ß", "1_000", "2", "12.5",
]  # fmt: skip
json_value = st.one_of(
    st.sampled_from(AWKWARD_TEXT),
    st.integers(-3, 20),
    st.sampled_from([1.0, 1.5, -2.0, 0.0, 2.5, 1e20, 1e-7]),
    st.booleans(),
    st.none(),  # JSON null: missing
)
spec_value = st.one_of(
    st.sampled_from(AWKWARD_TEXT),
    st.integers(-3, 20),
    st.sampled_from([1.0, 2.0, 1.5, 0.0, 12.5, 1e20, 1e-7]),
    st.booleans(),
)
OPS = ["=", "!=", ">", ">=", "<", "<=", "in", "not in", "contains", "is set", "is not set"]


@st.composite
def condition(draw: Any) -> tuple[str, Any]:
    op = draw(st.sampled_from(OPS))
    if op in ("is set", "is not set"):
        return op, None
    if op in ("in", "not in"):
        return op, draw(st.lists(spec_value, min_size=1, max_size=4))
    return op, draw(spec_value)


@st.composite
def customers(draw: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Per customer: events 'e' with a property v (or none), and a trait t (or none)."""
    journeys: dict[str, Any] = {}
    traits: dict[str, Any] = {}
    for i in range(draw(st.integers(1, 8))):
        cid = f"c{i}"
        vs = draw(st.lists(st.one_of(st.just("missing"), json_value), min_size=1, max_size=3))
        journeys[cid] = [
            ("e", k * 60, {} if v == "missing" else {"v": v}) for k, v in enumerate(vs)
        ]
        t = draw(st.one_of(st.just("missing"), json_value))
        if t != "missing":
            traits[cid] = {"t": t}
    return journeys, traits


def _texts(table: Any, name: str) -> dict[str, list[str | None]]:
    out: dict[str, list[str | None]] = {}
    for cid, text in zip(
        table.column("customer_id").to_pylist(), table.column(name).to_pylist(), strict=True
    ):
        out.setdefault(cid, []).append(text)
    return out


ALL_VALUES: list[Any] = [*AWKWARD_TEXT, -3, 0, 1, 2, 12, 1.0, 1.5, -2.0, 2.5, 1e20, 1e-7]
ALL_VALUES += [True, False, None, "missing"]


@pytest.fixture(scope="module")
def every_value():
    """One customer per awkward value, held both as event property v and as trait t."""
    journeys, traits = {}, {}
    for i, v in enumerate(ALL_VALUES):
        journeys[f"c{i:02d}"] = [("e", 0, {} if v == "missing" else {"v": v})]
        if v != "missing":
            traits[f"c{i:02d}"] = {"t": v}
    store = make_store(journeys, traits)
    yield store, list(journeys)
    store.close()


def _where(on_trait: bool, op: str, value: Any) -> dict[str, Any]:
    where = {"trait" if on_trait else "property": "t" if on_trait else "v", "op": op}
    if value is not None:
        where["value"] = value
    return where


def _reference(store: Any, on_trait: bool, checks: Any, ids: list[str]) -> set[str]:
    """The rules applied to the texts the store holds."""
    if on_trait:
        texts = _texts(store.read_customers(["t"]), "t")
        return {c for c in ids if holds_all(checks, texts.get(c, [None])[0])}
    texts = _texts(store.read_events(["e"], columns=("customer_id",), properties=("v",)), "v")
    return {c for c in ids if any(holds_all(checks, x) for x in texts[c])}


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(cond=condition(), on_trait=st.booleans())
def test_every_engine_follows_the_rules_on_every_value(every_value, cond, on_trait):
    store, ids = every_value
    op, value = cond
    checks = Check.of(op, value)
    want = _reference(store, on_trait, checks, ids)
    spec = loudou.FunnelSpec.parse(
        {"steps": [{"event": "e", "where": [_where(on_trait, op, value)]}]}
    )
    for engine in ("sql", "cache"):
        assert set(levels_by_customer(store, spec, engine)) == want, engine
    if on_trait:  # the segment rule on the trait holds for the same customers
        segment = Segment.parse({"name": "s", "rules": [_where(True, op, value)]})
        assert set(np.asarray(members(store, segment)).tolist()) == want


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=customers(), cond=condition(), on_trait=st.booleans())
def test_engines_agree_on_random_customers(data, cond, on_trait):
    """Conditions in a step and in an exclusion, on random customers and traits."""
    journeys, traits = data
    store = make_store(journeys, traits or None)
    op, value = cond
    where = _where(on_trait, op, value)
    want = _reference(store, on_trait, Check.of(op, value), list(journeys))
    spec = loudou.FunnelSpec.parse({"steps": [{"event": "e", "where": [where]}]})
    for engine in ("sql", "cache"):
        assert set(levels_by_customer(store, spec, engine)) == want, engine
    spec2 = loudou.FunnelSpec.parse(
        {
            "steps": ["e", "e"],
            "mode": "strict_increase",
            "exclusions": [{"event": "e", "where": [where], "after_step": 1, "before_step": 2}],
        }
    )
    assert levels_by_customer(store, spec2, "sql") == levels_by_customer(store, spec2, "cache")
    store.close()


def test_json_texts_the_rules_see():
    """What the store hands the rules for JSON values (documented in docs/funnel-semantics.md)."""
    store = make_store({"c": [("e", 0, {"v": 1.0}), ("e", 1, {"v": True}), ("e", 2, {"v": None})]})
    got = store.read_events(["e"], columns=(), properties=("v",)).column("v").to_pylist()
    assert got == ["1.0", "true", None]
    assert json.dumps(1.0) == "1.0"
