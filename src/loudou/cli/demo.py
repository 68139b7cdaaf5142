"""``loudou demo`` and ``loudou info``."""

from __future__ import annotations

import json
from contextlib import nullcontext
from pathlib import Path
from typing import Annotated

import typer

from loudou.backends import default_path
from loudou.cli.common import DbOpt, JsonOpt, LangOpt, err, opened, out, resolve_lang
from loudou.cli.funnel import print_funnel
from loudou.errors import LoudouError
from loudou.present.i18n import t


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
    from loudou.analyses.funnel import run_funnel
    from loudou.analyses.kpi.summary import kpi_summary
    from loudou.cli.kpi import print_summary
    from loudou.present.render import show as show_result
    from loudou.present.report import write_report

    language = resolve_lang(lang)
    if customers < 10 or months < 1:
        raise LoudouError("need at least 10 customers and 1 month", "--customers")
    show = err.is_terminal
    with err.status("generating…", spinner="dots") if show else nullcontext():
        data = demo_mod.generate(seed=seed, customers=customers, months=months)
    with opened(db) as store:
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
        results = [run_funnel(store, spec) for spec in demo_mod.funnel_specs().values()]
        diagnoses = demo_mod.diagnoses(store, limit=5).values()
        kpis = kpi_summary(store)
    for result, diagnosis in zip(results, diagnoses, strict=True):
        print_funnel(result, language)
        out.print(t("top_findings", language))
        show_result(diagnosis, language, out)
        out.print()
    print_summary(kpis, language)
    out.print()
    path = write_report(results, output, lang=language)
    err.print(t("report_written", language, path=path))


def info(as_json: JsonOpt = False, db: DbOpt = None) -> None:
    """Show what the database holds."""
    with opened(db, read_only=True) as store:
        counts = store.counts()
    if as_json:
        print(json.dumps({"db": str(db or default_path()), **counts}))
    else:
        out.print(f"{db or default_path()}: " + ", ".join(f"{v:,} {k}" for k, v in counts.items()))


def register(app: typer.Typer) -> None:
    app.command()(demo)
    app.command()(info)
