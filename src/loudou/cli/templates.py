"""``loudou templates list|map|show``."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from loudou.cli.common import DbOpt, JsonOpt, LangOpt, err, opened, out, resolve_lang
from loudou.errors import LoudouError

templates_app = typer.Typer(
    help="Stage templates (AIDA, customer, marketing, journey, sales).", no_args_is_help=True
)


@templates_app.command("list")
def templates_list(as_json: JsonOpt = False, lang: LangOpt = None) -> None:
    """List the stage templates and their stages."""
    from loudou.model.templates import TEMPLATE_NAMES_ZH, TEMPLATES

    language = resolve_lang(lang)
    if as_json:
        data = {
            n: [{"stage": k, "name": en, "name_zh": zh} for k, en, zh in st]
            for n, st in TEMPLATES.items()
        }
        print(json.dumps(data, ensure_ascii=False, indent=2))
        return
    for name, stages in TEMPLATES.items():
        labels = " → ".join(f"{zh if language == 'zh' else en} ({k})" for k, en, zh in stages)
        out.print(f"[bold]{name}[/bold] {TEMPLATE_NAMES_ZH[name]}: {labels}")


@templates_app.command("map")
def templates_map(
    template: Annotated[str, typer.Argument(help="Template name, e.g. customer.")],
    stages: Annotated[
        list[str], typer.Argument(help="STAGE=STEP pairs: awareness='ad_click|page_view'.")
    ],
    db: DbOpt = None,
) -> None:
    """Save which events make each stage of a template, for 'loudou funnel --template NAME'."""
    from loudou.model.templates import save_stage_map

    mapping = {}
    for pair in stages:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise LoudouError(f"cannot read {pair!r}; use STAGE=EVENT", "stages")
        mapping[key.strip()] = value.strip()
    with opened(db) as store:
        save_stage_map(store, template, mapping)
    err.print(f"saved stage map for {template}: {', '.join(mapping)}")


@templates_app.command("show")
def templates_show(
    template: Annotated[str, typer.Argument(help="Template name.")],
    db: DbOpt = None,
) -> None:
    """Show the stage map saved for a template, as a YAML spec you can edit."""
    import yaml

    from loudou.model.templates import load_stage_map

    with opened(db, read_only=True) as store:
        stages = load_stage_map(store, template)
    print(
        yaml.safe_dump(
            {"template": template, "stages": stages}, allow_unicode=True, sort_keys=False
        ),
        end="",
    )


def register(app: typer.Typer) -> None:
    app.add_typer(templates_app, name="templates")
