"""Named customer segments: a list of rules that must all hold, saved in the store or in YAML.

One rule tests one thing: a trait (age band, gender, region, channel, ...), the sign-up cohort, the
RFM group, visit frequency, interest in a category, or having done an event in the last N days.
Keeping rules declarative means the same definition serves the CLI, YAML files and the REST API.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from loudou.errors import LoudouError
from loudou.model.conditions import check_value
from loudou.model.spec import NAME_RE, Scalar, check_name


class SegmentError(LoudouError):
    """A segment definition is malformed or names an unknown segment."""

    code = "invalid_segment"


# The usual RFM groups from the recency (R) and frequency (F) scores, first match wins.
RFM_GROUPS: tuple[tuple[str, str, str], ...] = (
    ("hibernating", "[1-2][1-2]", "休眠客户"),
    ("at_risk", "[1-2][3-4]", "有流失风险"),
    ("cant_lose", "[1-2]5", "不能失去"),
    ("about_to_sleep", "3[1-2]", "即将休眠"),
    ("need_attention", "33", "需要关注"),
    ("loyal", "[3-4][4-5]", "忠诚客户"),
    ("promising", "41", "有潜力"),
    ("new_customers", "51", "新客户"),
    ("potential_loyalists", "[4-5][2-3]", "潜在忠诚"),
    ("champions", "5[4-5]", "冠军客户"),
)
RFM_NAMES = tuple(name for name, _, _ in RFM_GROUPS) + ("no_purchase",)


def rfm_group(r: int, f: int) -> str:
    """The named group of an (R, F) score pair, both 1..5."""
    key = f"{r}{f}"
    for name, pattern, _ in RFM_GROUPS:
        if re.fullmatch(pattern, key):
            return name
    raise ValueError(f"scores out of range: {key}")


TraitOp = Literal[
    "=", "!=", ">", ">=", "<", "<=", "in", "not in", "contains", "is set", "is not set", "between"
]


class Rule(BaseModel):
    """One test; give exactly one of trait, cohort, rfm, visits, interest, did, did_not."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    trait: str | None = None
    op: TraitOp = "="
    value: Scalar | list[Scalar] | None = None
    cohort: str | None = None  # '2025-01' (month), '2025-W03' (ISO week) or '2025-01-05' (day)
    cohort_of: str | None = None  # trait holding the date (default: first seen)
    rfm: list[str] | None = None
    visits: list[int | None] | None = None  # [min, max] visits (sessions), max null = no limit
    interest: str | None = None
    interest_property: str = "category"
    min_events: int = Field(default=1, ge=1)
    did: str | None = None
    did_not: str | None = None
    days: int | None = Field(default=None, ge=1)  # look-back for visits, interest, did, did_not

    @model_validator(mode="after")
    def _check(self) -> Rule:
        kinds = [
            k
            for k in ("trait", "cohort", "rfm", "visits", "interest", "did", "did_not")
            if getattr(self, k) is not None
        ]
        if len(kinds) != 1:
            raise ValueError(
                "give exactly one of trait, cohort, rfm, visits, interest, did, did_not"
            )
        if self.trait is not None:
            check_name(self.trait, "trait")
            _check_op(self.op, self.value)
        for name in (self.cohort_of, self.interest_property):
            if name is not None:
                check_name(name, "trait")
        if self.cohort is not None and not _COHORT_RE.match(self.cohort):
            raise ValueError("cohort: use 2025-01 (month), 2025-W03 (week) or 2025-01-05 (day)")
        if self.rfm is not None:
            unknown = [g for g in self.rfm if g not in RFM_NAMES]
            if unknown or not self.rfm:
                raise ValueError(f"rfm: groups are {', '.join(RFM_NAMES)}")
        if self.visits is not None and (
            len(self.visits) != 2
            or self.visits[0] is None
            or (self.visits[1] is not None and self.visits[1] < self.visits[0])
        ):
            raise ValueError("visits: give [min, max] with max null or >= min")
        return self

    @property
    def kind(self) -> str:
        for k in ("trait", "cohort", "rfm", "visits", "interest", "did", "did_not"):
            if getattr(self, k) is not None:
                return k
        raise AssertionError("validated")


_COHORT_RE = re.compile(r"^\d{4}-(\d{2}|W\d{2}|\d{2}-\d{2})$")


def _check_op(op: str, value: Any) -> None:
    if op in ("is set", "is not set"):
        if value is not None:
            raise ValueError(f"op {op!r} takes no value")
    elif op in ("in", "not in"):
        if not isinstance(value, list) or not value:
            raise ValueError(f"op {op!r} needs a non-empty list as value")
    elif op == "between":
        if not isinstance(value, list) or len(value) != 2:
            raise ValueError("op 'between' needs [low, high] (both inclusive)")
    elif value is None or isinstance(value, list):
        raise ValueError(f"op {op!r} needs a single value")
    check_value(value)


class Segment(BaseModel):
    """A named group of customers: those for whom every rule holds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    name_zh: str | None = None
    description: str | None = None
    rules: list[Rule] = Field(min_length=1)
    purchase_event: str = "order_completed"  # for RFM

    @model_validator(mode="after")
    def _check(self) -> Segment:
        if not NAME_RE.match(self.name) or "," in self.name:
            raise ValueError("name: letters, digits, _ $ - . and spaces, max 128, no commas")
        return self

    def label(self, lang: str = "en") -> str:
        return self.name_zh if lang == "zh" and self.name_zh else self.name

    @classmethod
    def parse(cls, data: Any, source: str = "segment") -> Segment:
        """Validate a mapping, turning pydantic's errors into one :class:`SegmentError`."""
        if not isinstance(data, dict):
            raise SegmentError("a segment must be a mapping with 'name' and 'rules'", source)
        try:
            return cls.model_validate(data)
        except ValidationError as e:
            first = e.errors()[0]
            loc = ".".join(str(p) for p in first["loc"])
            msg = str(first["msg"]).removeprefix("Value error, ")
            if not loc:  # model-level rules say "field: problem"
                loc, _, msg = msg.partition(": ") if ": " in msg else (source, "", msg)
            raise SegmentError(msg, loc) from None

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_defaults=True)


def load_segments_file(path: str | Path) -> list[Segment]:
    """Segments from YAML: one mapping, a list, or ``{segments: [...]}``."""
    import yaml

    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except OSError as e:
        raise SegmentError(f"cannot read segment file: {e.strerror}", str(p)) from None
    except yaml.YAMLError as e:
        raise SegmentError(f"not valid YAML: {str(e).splitlines()[0]}", str(p)) from None
    if isinstance(data, dict) and "segments" in data:
        data = data["segments"]
    items = data if isinstance(data, list) else [data]
    return [Segment.parse(item, f"{p}[{i}]") for i, item in enumerate(items)]
