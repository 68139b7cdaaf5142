"""``loudou compare`` and ``loudou diagnose``: where and for whom the funnel leaks."""

from __future__ import annotations

import json
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from loudou.cli.common import DbOpt, JsonOpt, LangOpt, err, opened, out, resolve_lang
from loudou.i18n import percent, t

if TYPE_CHECKING:
    from loudou.model.spec import FunnelSpec
    from loudou.query.diagnose import Diagnosis
    from loudou.store import Store

SpecArg = Annotated[Path, typer.Argument(help="Funnel spec YAML file.")]
SegmentOpt = Annotated[
    str | None, typer.Option("--segment", help="Only customers in this saved segment.")
]
MinOpt = Annotated[
    int, typer.Option("--min-customers", help="Smaller cells say 'too few customers'.", min=1)
]
ByHelp = (
    "Property or trait (value at step 1), NAME:18,25,35 (numeric bands), cohort[:TRAIT], "
    "'segments' (all saved), 'segment:a,b' or 'rfm'; repeatable."
)


def spec_from_file(spec_file: Path, store: Store) -> FunnelSpec:
    from loudou.cli.funnel import build_spec

    return build_spec(spec_file, [], None, {}, store)


def working(what: str) -> AbstractContextManager[object]:
    """A spinner on stderr while long work runs, when stderr is a terminal."""
    return err.status(what, spinner="dots") if err.is_terminal else nullcontext()


def _num(x: float | None, fmt: str) -> str:
    return "–" if x is None else format(x, fmt)


def compare(
    spec_file: SpecArg,
    by: Annotated[list[str], typer.Option("--by", help=ByHelp)],
    segment: SegmentOpt = None,
    min_customers: MinOpt = 30,
    limit: Annotated[
        int, typer.Option(help="Top N values of a property; the rest is 'other'.")
    ] = 10,
    as_json: JsonOpt = False,
    lang: LangOpt = None,
    db: DbOpt = None,
) -> None:
    """Each segment's step-to-step conversion against the rest: rate with 95% interval, difference
    in points, p-value, Benjamini–Hochberg q-value and customers won back.

    Example: loudou compare spec.yaml --by region --by segments
    """
    from loudou.query.compare import compare as run_compare

    language = resolve_lang(lang)
    with opened(db, read_only=True) as store:
        spec = spec_from_file(spec_file, store)
        with working("comparing…"):
            result = run_compare(
                store,
                spec,
                by,
                segment=segment,
                min_customers=min_customers,
                limit=limit,
            )
    if as_json:
        print(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
        return
    names = result.steps_zh if language == "zh" else result.steps
    for k in range(1, len(names)):
        tab = Table(title=f"{names[k - 1]} → {names[k]}", title_justify="left")
        for key in ("segment", "entered", "rate", "ci95", "vs_rest", "p", "q", "won_back"):
            tab.add_column(
                t(f"cmp_{key}", language), justify="left" if key == "segment" else "right"
            )
        for s in result.segments:
            c = s.transitions[k - 1]
            label = f"{s.property}={s.value}"
            if c.too_few:
                tab.add_row(label, f"{c.entered:,}", t("too_few", language), *[""] * 5)
                continue
            assert c.rate is not None and c.ci95 is not None
            tab.add_row(
                label,
                f"{c.entered:,}",
                percent(c.rate),
                f"{100 * c.ci95[0]:.1f}–{percent(c.ci95[1])}",
                _num(c.difference_points, "+.1f"),
                _num(c.p_value, ".3g"),
                _num(c.q_value, ".3g"),
                _num(c.won_back, ",.0f"),
            )
        out.print(tab)


def diagnose(
    spec_file: SpecArg,
    by: Annotated[list[str] | None, typer.Option("--by", help=ByHelp)] = None,
    period: Annotated[
        str, typer.Option(help="Scan conversion per day, week or month of step-1 time.")
    ] = "week",
    segment: SegmentOpt = None,
    alpha: Annotated[
        float, typer.Option(help="False discovery rate (Benjamini–Hochberg) for findings.")
    ] = 0.05,
    limit: Annotated[int, typer.Option(help="Show at most this many findings.", min=1)] = 10,
    min_customers: MinOpt = 30,
    as_json: JsonOpt = False,
    lang: LangOpt = None,
    db: DbOpt = None,
) -> None:
    """Find the bottleneck: the stages, segments, periods and loops losing the most customers,
    each with its size and significance. A loop is a move back to an earlier stage before the
    customer first reaches the last step (browsing again after converting is not a loop).

    Example: loudou diagnose spec.yaml --by device --by region --period week --lang zh
    """
    from loudou.query.diagnose import diagnose as run_diagnose

    language = resolve_lang(lang)
    with opened(db, read_only=True) as store:
        spec = spec_from_file(spec_file, store)
        with working("diagnosing…"):
            result = run_diagnose(
                store,
                spec,
                by or [],
                period=period,
                segment=segment,
                alpha=alpha,
                limit=limit,
                min_customers=min_customers,
            )
    if as_json:
        print(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
        return
    print_findings(result, language)


def print_findings(result: Diagnosis, lang: str) -> None:
    """Numbered findings, one per line, in the chosen language."""
    if not result.findings:
        out.print(t("no_findings", lang))
    for i, f in enumerate(result.findings, start=1):
        out.print(f"{i}. [{f.kind}] {f.message(lang)}", highlight=False, markup=False)


def register(app: typer.Typer) -> None:
    app.command()(compare)
    app.command()(diagnose)
