"""Stage templates (DESIGN §1). A user maps each stage to events once, saves the map in the store,
and reuses it for every funnel built from the template."""

from __future__ import annotations

import json
from typing import Any, Protocol

from loudou.errors import SpecError
from loudou.model.spec import FunnelSpec, parse_step


class MetaStore(Protocol):
    """What templates need of a store: its settings (any ``loudou.backends.base.Store`` has them)."""

    def get_meta(self, key: str) -> str | None: ...

    def set_meta(self, key: str, value: str) -> None: ...


# template -> [(stage key, English label, Chinese label)]
TEMPLATES: dict[str, list[tuple[str, str, str]]] = {
    "aida": [
        ("attention", "Attention", "注意"),
        ("interest", "Interest", "兴趣"),
        ("desire", "Desire", "欲望"),
        ("action", "Action", "行动"),
    ],
    "customer": [
        ("awareness", "Awareness", "意识"),
        ("interest", "Interest", "兴趣"),
        ("consideration", "Consideration", "考虑"),
        ("intent", "Intent", "意图"),
        ("purchase", "Purchase", "购买"),
        ("loyalty", "Loyalty", "忠诚"),
    ],
    "marketing": [
        ("awareness", "Awareness", "意识"),
        ("interest", "Interest", "兴趣"),
        ("consideration", "Consideration", "考虑"),
        ("intent", "Intent", "意图"),
        ("evaluation", "Evaluation", "评估"),
        ("purchase", "Purchase", "购买"),
    ],
    "journey": [
        ("awareness", "Awareness", "认知"),
        ("consideration", "Consideration", "考虑"),
        ("conversion", "Conversion", "转化"),
        ("retention", "Retention", "留存"),
        ("advocacy", "Advocacy", "推荐"),
    ],
    "sales": [
        ("lead", "Lead", "潜在客户"),
        ("qualified", "Qualified", "资格评定"),
        ("intent", "Intent", "意向客户"),
        ("negotiation", "Negotiation", "谈判"),
        ("won", "Won", "成交"),
    ],
}
TEMPLATE_NAMES_ZH = {
    "aida": "AIDA 模型",
    "customer": "客户漏斗",
    "marketing": "营销管理漏斗",
    "journey": "客户旅程漏斗",
    "sales": "销售漏斗",
}


def stages_of(name: str) -> list[tuple[str, str, str]]:
    if name not in TEMPLATES:
        raise SpecError(
            f"unknown template {name!r}; choose one of {', '.join(TEMPLATES)}", "template"
        )
    return TEMPLATES[name]


def template_spec(name: str, stages: dict[str, Any], /, **options: Any) -> FunnelSpec:
    """A funnel from a template: stages in template order; stages left unmapped are dropped.

    Each stage maps to an inline step (``"view|visit where channel = ads"``), a list of event names,
    or a step dict (which may override ``name``/``name_zh`` to rename the stage).
    """
    known = stages_of(name)
    keys = {k for k, _, _ in known}
    unknown = sorted(set(stages) - keys)
    if unknown:
        raise SpecError(
            f"template {name!r} has no stage {unknown[0]!r}; its stages are {', '.join(k for k, _, _ in known)}",
            "stages",
        )
    steps = []
    for key, en, zh in known:
        if key not in stages:
            continue
        value = stages[key]
        step: dict[str, Any]
        if isinstance(value, str):
            step = parse_step(value)
        elif isinstance(value, list):
            step = {"event": value}
        elif isinstance(value, dict):
            step = dict(value)
        else:
            raise SpecError(
                f"stage {key!r} must map to an event, a list of events or a step", "stages"
            )
        step.setdefault("name", en)
        step.setdefault("name_zh", zh)
        steps.append(step)
    if not steps:
        raise SpecError(f"map at least one stage of template {name!r} to events", "stages")
    data = {"name": name, "name_zh": TEMPLATE_NAMES_ZH.get(name), **options, "steps": steps}
    return FunnelSpec.parse(data, "template")


def save_stage_map(store: MetaStore, name: str, stages: dict[str, Any]) -> None:
    """Remember a template's stage map in the store (validated first)."""
    template_spec(name, stages)
    store.set_meta(f"template:{name}", json.dumps(stages, ensure_ascii=False))


def load_stage_map(store: MetaStore, name: str) -> dict[str, Any]:
    stages_of(name)
    raw = store.get_meta(f"template:{name}")
    if raw is None:
        raise SpecError(
            f"no stage map saved for template {name!r}; run 'loudou templates map {name} STAGE=EVENT ...'",
            "template",
        )
    value: dict[str, Any] = json.loads(raw)
    return value


def spec_from_data(data: Any, store: MetaStore | None = None, source: str = "spec") -> FunnelSpec:
    """A spec mapping (YAML or JSON); ``template: NAME`` with ``stages:`` (or the map saved in the
    store) builds the steps from a template."""
    if isinstance(data, dict) and "template" in data:
        options = {k: v for k, v in data.items() if k not in ("template", "stages")}
        name = str(data["template"])
        stages = data.get("stages")
        if stages is None:
            if store is None:
                raise SpecError("give 'stages' or use a database with a saved stage map", source)
            stages = load_stage_map(store, name)
        if not isinstance(stages, dict):
            raise SpecError("'stages' must map stage names to events", "stages")
        return template_spec(name, stages, **options)
    return FunnelSpec.parse(data, source)


def load_spec_file(path: str, store: MetaStore | None = None) -> FunnelSpec:
    from pathlib import Path

    import yaml

    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except OSError as e:
        raise SpecError(f"cannot read spec file: {e.strerror}", str(p)) from None
    except yaml.YAMLError as e:
        raise SpecError(f"not valid YAML: {str(e).splitlines()[0]}", str(p)) from None
    return spec_from_data(data, store, str(p))
