"""``loudou segments list|create|show|export|funnel``: named customer segments saved in the store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from loudou.cli.common import DbOpt, JsonOpt, LangOpt, err, opened, out, resolve_lang, write_csv
from loudou.model.segment import Rule, Segment, SegmentError, load_segments_file

segments_app = typer.Typer(
    help="Named customer segments (traits, cohorts, RFM, visits, interests, recent events).",
    no_args_is_help=True,
)


def describe_rule(rule: Rule) -> str:
    """A short readable form of one rule, for listings."""
    data = rule.model_dump(exclude_defaults=True)
    return ", ".join(f"{k}={v}" for k, v in data.items())


def _trait_rule(text: str) -> dict[str, Any]:
    from loudou.model.spec import parse_condition

    c = parse_condition(text)
    return {"trait": c.field_name, "op": c.op, "value": c.value}


def _inline_rule(text: str) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        data = None
    if not isinstance(data, dict):
        raise SegmentError(
            f"cannot read rule {text!r}; e.g. '{{did: purchase, days: 30}}'", "--rule"
        )
    return data


@segments_app.command("create")
def create(
    name: Annotated[
        str | None, typer.Argument(help="Segment name (not needed with --file).")
    ] = None,
    file: Annotated[
        Path | None, typer.Option("--file", "-f", help="YAML file with one or more segments.")
    ] = None,
    trait: Annotated[
        list[str] | None,
        typer.Option("--trait", help="Trait condition, repeatable: 'region = West', 'age >= 30'."),
    ] = None,
    rule: Annotated[
        list[str] | None,
        typer.Option(
            "--rule",
            help="Rule as YAML, repeatable: '{rfm: [champions, loyal]}', '{did: purchase, days: 30}', "
            "'{visits: [3, null], days: 30}', '{interest: shoes}', '{cohort: 2025-01}'.",
        ),
    ] = None,
    name_zh: Annotated[str | None, typer.Option(help="Chinese name.")] = None,
    description: Annotated[str | None, typer.Option(help="What the segment is for.")] = None,
    db: DbOpt = None,
) -> None:
    """Save a segment (all rules must hold); saving under an existing name replaces it."""
    if file is not None:
        if name or trait or rule:
            raise SegmentError("give --file or a name with rules, not both", "--file")
        segs = load_segments_file(file)
    else:
        if not name:
            raise SegmentError("give a segment name or --file", "name")
        rules = [_trait_rule(t) for t in trait or []] + [_inline_rule(r) for r in rule or []]
        if not rules:
            raise SegmentError("give at least one --trait or --rule", "rules")
        data = {"name": name, "name_zh": name_zh, "description": description, "rules": rules}
        segs = [Segment.parse({k: v for k, v in data.items() if v is not None})]
    from loudou.analyses.segments import save_segment

    with opened(db) as store:
        for s in segs:
            save_segment(store, s)
    err.print("saved: " + ", ".join(s.name for s in segs))


def _sizes(segs: list[Segment], db: str | None) -> list[int]:
    from loudou.analyses.segments import members

    with opened(db, read_only=True) as store:
        return [len(members(store, s)) for s in segs]


@segments_app.command("list")
def list_(as_json: JsonOpt = False, lang: LangOpt = None, db: DbOpt = None) -> None:
    """List saved segments with their rules and how many customers each holds now."""
    from loudou.analyses.segments import list_segments

    language = resolve_lang(lang)
    with opened(db, read_only=True) as store:
        segs = list_segments(store)
    sizes = _sizes(segs, db)
    if as_json:
        doc = [{**s.to_dict(), "customers": n} for s, n in zip(segs, sizes, strict=True)]
        print(json.dumps({"segments": doc}, ensure_ascii=False, indent=2))
        return
    tab = Table(title="segments" if language == "en" else "客户分群")
    for col in ("name", "customers", "rules"):
        tab.add_column(col, justify="right" if col == "customers" else "left")
    for s, n in zip(segs, sizes, strict=True):
        tab.add_row(s.label(language), f"{n:,}", "; ".join(describe_rule(r) for r in s.rules))
    out.print(tab)


@segments_app.command("show")
def show(
    name: Annotated[str, typer.Argument(help="Segment name.")],
    as_json: JsonOpt = False,
    db: DbOpt = None,
) -> None:
    """Show a segment's definition and size."""
    from loudou.analyses.segments import load_segment, members

    with opened(db, read_only=True) as store:
        seg = load_segment(store, name)
        n = len(members(store, seg))
    if as_json:
        print(json.dumps({**seg.to_dict(), "customers": n}, ensure_ascii=False, indent=2))
        return
    out.print(f"{seg.name}" + (f" ({seg.name_zh})" if seg.name_zh else "") + f": {n:,} customers")
    if seg.description:
        out.print(seg.description)
    for r in seg.rules:
        out.print(f"  - {describe_rule(r)}")


@segments_app.command("export")
def export(
    name: Annotated[str, typer.Argument(help="Segment name.")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="CSV file (default: standard output).")
    ] = None,
    db: DbOpt = None,
) -> None:
    """Export the segment's customers (id, first and last seen) as CSV, for e-mail or sales."""
    from loudou.analyses.segments import load_segment, member_table

    with opened(db, read_only=True) as store:
        rows = member_table(store, load_segment(store, name)).to_pylist()
    write_csv(rows, output, ["customer_id", "first_seen", "last_seen"])
    if output:
        err.print(f"{len(rows):,} customers written to {output}")


@segments_app.command("delete")
def delete(name: Annotated[str, typer.Argument(help="Segment name.")], db: DbOpt = None) -> None:
    """Delete a saved segment."""
    from loudou.analyses.segments import delete_segment

    with opened(db) as store:
        delete_segment(store, name)
    err.print(f"deleted: {name}")


@segments_app.command("funnel")
def funnel(
    spec_file: Annotated[Path, typer.Argument(help="Funnel spec YAML file.")],
    segment: Annotated[
        str | None, typer.Option("--segment", help="Only customers in this saved segment.")
    ] = None,
    by: Annotated[
        str | None,
        typer.Option(
            "--by", help="Break down by saved segments: 'segments', 'segment:a,b' or 'rfm'."
        ),
    ] = None,
    as_json: JsonOpt = False,
    lang: LangOpt = None,
    db: DbOpt = None,
) -> None:
    """A funnel filtered to a segment and/or broken down by segments (a customer may be in several)."""
    from loudou.analyses.funnel.rows import segment_funnel
    from loudou.cli.funnel import build_spec, print_funnel

    language = resolve_lang(lang)
    with opened(db, read_only=True) as store:
        spec = build_spec(spec_file, [], None, {}, store)
        result = segment_funnel(store, spec, segment=segment, by=by)
    if as_json:
        print(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
    else:
        print_funnel(result, language)


def register(app: typer.Typer) -> None:
    app.add_typer(segments_app, name="segments")
