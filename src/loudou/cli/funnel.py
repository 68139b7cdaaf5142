"""``loudou funnel`` and ``loudou report``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from loudou.backends import Store
from loudou.cli.common import DbOpt, JsonOpt, LangOpt, err, opened, out, resolve_lang
from loudou.errors import SpecError
from loudou.model.results import FunnelResult
from loudou.model.spec import FunnelSpec, parse_step
from loudou.present.i18n import duration, percent, t


def _parse_exclusion(text: str) -> dict[str, Any]:
    """``refund:1-2`` -> exclude customers doing 'refund' between steps 1 and 2."""
    event, sep, span = text.rpartition(":")
    after, dash, before = span.partition("-")
    if not sep or not dash or not after.isdigit() or not before.isdigit() or not event:
        raise SpecError(
            f"cannot read {text!r}; use EVENT:AFTER-BEFORE, e.g. refund:1-2", "--exclude"
        )
    return {"event": event, "after_step": int(after), "before_step": int(before)}


def build_spec(
    spec_file: Path | None,
    steps: list[str],
    template: str | None,
    options: dict[str, Any],
    store: Store | None,
) -> FunnelSpec:
    """One spec from a YAML file, a saved template map or inline steps; command-line options win."""
    from loudou.model.templates import load_spec_file, spec_from_data

    given = {k: v for k, v in options.items() if v not in (None, [], ())}
    if spec_file is not None:
        if steps or template:
            raise SpecError("give a spec file, --template or --step, not several", "steps")
        spec = load_spec_file(str(spec_file), store)
        return FunnelSpec.parse({**spec.model_dump(mode="json", exclude_defaults=True), **given})
    if template is not None:
        if steps:
            raise SpecError("give --template or --step, not both", "steps")
        return spec_from_data({"template": template, **given}, store, "--template")
    if not steps:
        raise SpecError("give a spec file, --template NAME or at least one --step", "steps")
    return FunnelSpec.parse({"steps": [parse_step(s) for s in steps], **given}, "--step")


def print_funnel(result: FunnelResult, lang: str) -> None:
    from loudou.model.results import StepResult

    def table(title: str, steps: list[StepResult]) -> Table:
        tab = Table(title=title, title_justify="left")
        for key in (
            "stage",
            "count",
            "conversion",
            "ci95",
            "from_start",
            "dropoff",
            "median",
            "p90",
        ):
            tab.add_column(t(key, lang), justify="left" if key == "stage" else "right")
        for i, s in enumerate(steps, start=1):
            tab.add_row(
                f"{i}. {s.label(lang)}",
                f"{s.count:,}",
                percent(s.conversion_from_previous),
                f"{100 * s.ci95[0]:.1f}–{percent(s.ci95[1])}",
                percent(s.conversion_from_start),
                f"{s.dropoff:,}",
                duration(s.median_seconds_from_previous),
                duration(s.p90_seconds_from_previous),
            )
        return tab

    name = result.funnel_zh if lang == "zh" and result.funnel_zh else result.funnel
    header = (
        f"{name}  ({t('window', lang)} {duration(result.window_seconds)}, "
        f"{t('mode', lang)} {result.mode}, {t('counting', lang)} {result.count_by})"
    )
    out.print(table(header, result.steps))
    for b in result.breakdown:
        out.print(table(t("breakdown", lang, name=result.breakdown_by, value=b.value), b.steps))
    out.print(bottleneck_sentence(result, lang))


def bottleneck_sentence(result: FunnelResult, lang: str) -> str:
    k = result.weakest_step()
    if k is None:
        return t("no_data", lang)
    prev, step = result.steps[k - 1], result.steps[k]
    return t(
        "bottleneck",
        lang,
        prev=prev.label(lang),
        step=step.label(lang),
        rate=percent(step.conversion_from_previous),
        lost=f"{step.dropoff:,}",
    )


def funnel(
    spec_file: Annotated[
        Path | None, typer.Argument(help="Funnel spec YAML file.", show_default=False)
    ] = None,
    step: Annotated[
        list[str] | None,
        typer.Option(
            "--step",
            "-s",
            help="Inline step, repeatable: 'purchase where revenue > 100', 'view|visit'.",
        ),
    ] = None,
    template: Annotated[
        str | None, typer.Option(help="Use a template's saved stage map (see 'loudou templates').")
    ] = None,
    window: Annotated[
        str | None, typer.Option(help="Conversion window: 30m, 2h, 14d (default 14d).")
    ] = None,
    mode: Annotated[
        str | None,
        typer.Option(help="ordered (default), strict_order, strict_increase or any_order."),
    ] = None,
    count: Annotated[
        str | None, typer.Option(help="customers (default), sessions or totals.")
    ] = None,
    breakdown: Annotated[
        str | None,
        typer.Option(
            help="Property or trait to split by, at step 1 (customer.X = trait only); or saved "
            "segments: 'segment:a,b', 'segments' (all) or 'rfm' (a customer may be in several).",
        ),
    ] = None,
    segment: Annotated[
        str | None,
        typer.Option("--segment", help="Only customers in this saved segment (loudou segments)."),
    ] = None,
    breakdown_limit: Annotated[
        int | None, typer.Option(help="Top N breakdown values; the rest is 'other'.")
    ] = None,
    hold: Annotated[
        list[str] | None, typer.Option(help="Event property that must stay the same across steps.")
    ] = None,
    exclude: Annotated[
        list[str] | None,
        typer.Option(help="EVENT:AFTER-BEFORE, e.g. refund:1-2, drops customers doing it."),
    ] = None,
    date_from: Annotated[
        str | None, typer.Option("--from", help="First step-1 date (YYYY-MM-DD).")
    ] = None,
    date_to: Annotated[
        str | None, typer.Option("--to", help="Last step-1 date, inclusive.")
    ] = None,
    name: Annotated[str | None, typer.Option(help="Funnel name.")] = None,
    as_json: JsonOpt = False,
    as_csv: Annotated[
        bool, typer.Option("--csv", help="Print CSV rows instead of a table.")
    ] = False,
    lang: LangOpt = None,
    db: DbOpt = None,
) -> None:
    """Compute a funnel: per step the count, conversion with 95% interval, drop-off and time taken.

    Examples: loudou funnel spec.yaml --json;
    loudou funnel --step signup --step "purchase where revenue > 100" --window 7d;
    loudou funnel spec.yaml --segment vip --breakdown customer.region;
    loudou funnel spec.yaml --breakdown segment:vip,churn_risk
    """
    from loudou.analyses.funnel.rows import SEGMENT_PREFIX, any_funnel, is_segment_by

    language = resolve_lang(lang)
    by_segments = breakdown if breakdown and is_segment_by(breakdown) else None
    if by_segments and not by_segments.removeprefix(SEGMENT_PREFIX).strip(" ,"):
        raise SpecError("name saved segments after 'segment:', e.g. segment:vip,new", "--breakdown")
    options = {
        "window": window,
        "mode": mode,
        "count": count,
        "breakdown": None if by_segments else breakdown,
        "breakdown_limit": breakdown_limit,
        "hold_constant": hold or [],
        "exclusions": [_parse_exclusion(x) for x in exclude or []],
        "date_from": date_from,
        "date_to": date_to,
        "name": name,
    }
    with opened(db, read_only=True) as store:
        spec = build_spec(spec_file, step or [], template, options, store)
        result = any_funnel(store, spec, segment=segment, by=by_segments)
    if as_json:
        print(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
    elif as_csv:
        sys.stdout.write(result.to_csv(language))
    else:
        print_funnel(result, language)


def report(
    spec_file: Annotated[list[Path], typer.Argument(help="One or more funnel spec YAML files.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="HTML file to write.")] = Path(
        "report.html"
    ),
    lang: LangOpt = None,
    db: DbOpt = None,
) -> None:
    """Write one self-contained HTML report (chart, table, weakest stage) for the funnels; no CDN."""
    from loudou.analyses.funnel import run_funnel
    from loudou.model.templates import load_spec_file
    from loudou.present.report import write_report

    language = resolve_lang(lang)
    with opened(db, read_only=True) as store:
        results = [run_funnel(store, load_spec_file(str(p), store)) for p in spec_file]
    path = write_report(results, output, lang=language)
    err.print(t("report_written", language, path=path))


def register(app: typer.Typer) -> None:
    app.command()(funnel)
    app.command()(report)
