"""The ``loudou`` command line: a thin layer over the Python API.

Input errors print one line (``error: FIELD: problem``) and exit 1; usage errors exit 2.
"""

from __future__ import annotations

import json
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from loudou.errors import LoudouError, SpecError
from loudou.i18n import default_lang, duration, percent, t
from loudou.model.results import FunnelResult
from loudou.model.spec import FunnelSpec, parse_step
from loudou.store import Store, connect, default_path

app = typer.Typer(
    help="loudou (漏斗): customer-funnel analytics. Import events, then ask for funnels.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
import_app = typer.Typer(
    help="Import CSV, TSV, Parquet or JSON Lines files (optionally .gz).", no_args_is_help=True
)
templates_app = typer.Typer(
    help="Stage templates (AIDA, customer, marketing, journey, sales).", no_args_is_help=True
)
app.add_typer(import_app, name="import")
app.add_typer(templates_app, name="templates")

# Piped output keeps whole table rows instead of wrapping at 80 columns.
out = Console() if sys.stdout.isatty() else Console(width=200)
err = Console(stderr=True)

DbOpt = Annotated[
    Path | None,
    typer.Option(
        "--db",
        envvar="LOUDOU_DB",
        help="Database file (default ./loudou.duckdb).",
        show_default=False,
    ),
]
LangOpt = Annotated[
    str | None, typer.Option("--lang", help="Labels in 'en' or 'zh' (default: from the locale).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _lang(lang: str | None) -> str:
    if lang is None:
        return default_lang()
    if lang not in ("en", "zh"):
        raise LoudouError(f"unknown language {lang!r}; use en or zh", "--lang")
    return lang


def _open(db: Path | None, read_only: bool = False) -> Store:
    return connect(db if db is not None else default_path(), read_only=read_only)


# ---- funnel ------------------------------------------------------------------------------------


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


@app.command()
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
        typer.Option(help="Property or trait to split by, at step 1 (customer.X = trait only)."),
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
    loudou funnel --step signup --step "purchase where revenue > 100" --window 7d
    """
    from loudou.query.funnel import run_funnel

    language = _lang(lang)
    options = {
        "window": window,
        "mode": mode,
        "count": count,
        "breakdown": breakdown,
        "breakdown_limit": breakdown_limit,
        "hold_constant": hold or [],
        "exclusions": [_parse_exclusion(x) for x in exclude or []],
        "date_from": date_from,
        "date_to": date_to,
        "name": name,
    }
    store = _open(db, read_only=True)
    try:
        spec = build_spec(spec_file, step or [], template, options, store)
        result = run_funnel(store, spec)
    finally:
        store.close()
    if as_json:
        print(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
    elif as_csv:
        sys.stdout.write(result.to_csv(language))
    else:
        print_funnel(result, language)


@app.command()
def report(
    spec_file: Annotated[list[Path], typer.Argument(help="One or more funnel spec YAML files.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="HTML file to write.")] = Path(
        "report.html"
    ),
    lang: LangOpt = None,
    db: DbOpt = None,
) -> None:
    """Write one self-contained HTML report (chart, table, weakest stage) for the funnels; no CDN."""
    from loudou.model.templates import load_spec_file
    from loudou.query.funnel import run_funnel
    from loudou.report import write_report

    language = _lang(lang)
    store = _open(db, read_only=True)
    try:
        results = [run_funnel(store, load_spec_file(str(p), store)) for p in spec_file]
    finally:
        store.close()
    path = write_report(results, output, lang=language)
    err.print(t("report_written", language, path=path))


# ---- import -------------------------------------------------------------------------------------


def _mapping(pairs: list[str] | None) -> dict[str, str]:
    mapping = {}
    for pair in pairs or []:
        target, sep, source = pair.partition("=")
        if not sep or not target.strip() or not source.strip():
            raise LoudouError(
                f"cannot read {pair!r}; use TARGET=SOURCE, e.g. customer_id=user_id", "--map"
            )
        mapping[target.strip()] = source.strip()
    return mapping


def _import(
    kind: Literal["events", "customers", "spend"],
    file: Path,
    fmt: str | None,
    maps: list[str] | None,
    tz: str,
    rejects: Path | None,
    as_json: bool,
    db: Path | None,
    lang: str | None,
) -> None:
    from loudou.ingest.files import import_file

    language = _lang(lang)
    store = _open(db)
    try:
        summary = import_file(
            store,
            file,
            kind,
            format=fmt,
            mapping=_mapping(maps),
            tz=tz,
            rejects_path=rejects,
            progress=not as_json and err.is_terminal,
        )
    finally:
        store.close()
    if as_json:
        print(json.dumps(summary.to_dict(), ensure_ascii=False))
    else:
        err.print(t("import_summary", language, **summary.to_dict()))
        if summary.rejects_path:
            err.print(t("rejects_at", language, path=summary.rejects_path))


FileArg = Annotated[Path, typer.Argument(help="File: .csv .tsv .parquet .jsonl, optionally .gz.")]
FormatOpt = Annotated[
    str | None,
    typer.Option("--format", help="csv, tsv, parquet or jsonl (default: from the name)."),
]
MapOpt = Annotated[
    list[str] | None,
    typer.Option("--map", help="TARGET=SOURCE column mapping, repeatable, e.g. ts=timestamp."),
]
TzOpt = Annotated[
    str, typer.Option("--tz", help="Time zone of naive timestamps, e.g. Asia/Shanghai.")
]
RejectsOpt = Annotated[
    Path | None,
    typer.Option("--rejects", help="Where to write rejected rows (default FILE.rejects.csv)."),
]


@import_app.command("events")
def import_events(
    file: FileArg,
    fmt: FormatOpt = None,
    maps: MapOpt = None,
    tz: TzOpt = "UTC",
    rejects: RejectsOpt = None,
    as_json: JsonOpt = False,
    db: DbOpt = None,
    lang: LangOpt = None,
) -> None:
    """Import events: customer_id, event, ts required; other columns become properties.

    Re-importing the same file adds nothing (event_id, or a stable hash of the row).
    """
    _import("events", file, fmt, maps, tz, rejects, as_json, db, lang)


@import_app.command("customers")
def import_customers(
    file: FileArg,
    fmt: FormatOpt = None,
    maps: MapOpt = None,
    tz: TzOpt = "UTC",
    rejects: RejectsOpt = None,
    as_json: JsonOpt = False,
    db: DbOpt = None,
    lang: LangOpt = None,
) -> None:
    """Import customers: customer_id required; other columns become traits (latest value wins)."""
    _import("customers", file, fmt, maps, tz, rejects, as_json, db, lang)


@import_app.command("spend")
def import_spend(
    file: FileArg,
    fmt: FormatOpt = None,
    maps: MapOpt = None,
    tz: TzOpt = "UTC",
    rejects: RejectsOpt = None,
    as_json: JsonOpt = False,
    db: DbOpt = None,
    lang: LangOpt = None,
) -> None:
    """Import ad spend: day, channel, amount required; campaign and currency optional."""
    _import("spend", file, fmt, maps, tz, rejects, as_json, db, lang)


# ---- templates ----------------------------------------------------------------------------------


@templates_app.command("list")
def templates_list(as_json: JsonOpt = False, lang: LangOpt = None) -> None:
    """List the stage templates and their stages."""
    from loudou.model.templates import TEMPLATE_NAMES_ZH, TEMPLATES

    language = _lang(lang)
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
    store = _open(db)
    try:
        save_stage_map(store, template, mapping)
    finally:
        store.close()
    err.print(f"saved stage map for {template}: {', '.join(mapping)}")


@templates_app.command("show")
def templates_show(
    template: Annotated[str, typer.Argument(help="Template name.")],
    db: DbOpt = None,
) -> None:
    """Show the stage map saved for a template, as a YAML spec you can edit."""
    import yaml

    from loudou.model.templates import load_stage_map

    store = _open(db, read_only=True)
    try:
        stages = load_stage_map(store, template)
    finally:
        store.close()
    print(
        yaml.safe_dump(
            {"template": template, "stages": stages}, allow_unicode=True, sort_keys=False
        ),
        end="",
    )


# ---- demo -----------------------------------------------------------------------------------------


@app.command()
def demo(
    seed: Annotated[
        int, typer.Option(help="Random seed; the same seed gives the same business.")
    ] = 7,
    customers: Annotated[int, typer.Option(help="Number of customers.")] = 20_000,
    months: Annotated[int, typer.Option(help="Months of history.")] = 6,
    output: Annotated[Path, typer.Option("--output", "-o", help="HTML report to write.")] = Path(
        "report.html"
    ),
    lang: LangOpt = None,
    db: DbOpt = None,
) -> None:
    """Generate a realistic synthetic business, load it, print its funnels and write a report."""
    from loudou import demo as demo_mod
    from loudou.query.funnel import run_funnel
    from loudou.report import write_report

    language = _lang(lang)
    if customers < 10 or months < 1:
        raise LoudouError("need at least 10 customers and 1 month", "--customers")
    show = err.is_terminal
    with err.status("generating…", spinner="dots") if show else nullcontext():
        data = demo_mod.generate(seed=seed, customers=customers, months=months)
    store = _open(db)
    try:
        demo_mod.load(store, data, progress=show)
        n = store.counts()
        err.print(
            t(
                "demo_loaded",
                language,
                db=store.path,
                events=f"{n['events']:,}",
                customers=f"{n['customers']:,}",
            )
        )
        results = [
            run_funnel(store, demo_mod.journey_funnel_spec()),
            run_funnel(store, demo_mod.sales_funnel_spec()),
        ]
    finally:
        store.close()
    for result in results:
        print_funnel(result, language)
        out.print()
    path = write_report(results, output, lang=language)
    err.print(t("report_written", language, path=path))


@app.command()
def info(as_json: JsonOpt = False, db: DbOpt = None) -> None:
    """Show what the database holds."""
    store = _open(db, read_only=True)
    try:
        counts = store.counts()
    finally:
        store.close()
    if as_json:
        print(json.dumps({"db": str(db or default_path()), **counts}))
    else:
        out.print(f"{db or default_path()}: " + ", ".join(f"{v:,} {k}" for k, v in counts.items()))


def main() -> None:
    """Entry point: input errors become one readable line and exit code 1."""
    try:
        app()
    except LoudouError as e:
        err.print(Text("error: ", style="red") + Text(str(e)), highlight=False, soft_wrap=True)
        sys.exit(1)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
