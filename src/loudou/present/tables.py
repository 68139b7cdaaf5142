"""Terminal views of the funnel analyses' results (registered in :mod:`loudou.present.render`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from loudou.present.i18n import duration, percent, t
from loudou.present.messages import finding_message
from loudou.present.views import csv_rows, terminal

if TYPE_CHECKING:
    from loudou.analyses.compare import CompareResult
    from loudou.analyses.correlation import CorrelationResult
    from loudou.analyses.diagnose import Diagnosis
    from loudou.analyses.paths import PathsResult
    from loudou.analyses.timing import TimeToConvert
    from loudou.analyses.transitions import TransitionMatrix
    from loudou.analyses.trends import TrendResult


def _num(x: float | None, fmt: str) -> str:
    return "–" if x is None else format(x, fmt)


@terminal("loudou.analyses.compare.CompareResult")
def compare_tables(result: CompareResult, lang: str, out: Console) -> None:
    names = result.steps_zh if lang == "zh" else result.steps
    for k in range(1, len(names)):
        tab = Table(title=f"{names[k - 1]} → {names[k]}", title_justify="left")
        for key in ("segment", "entered", "rate", "ci95", "vs_rest", "p", "q", "won_back"):
            tab.add_column(t(f"cmp_{key}", lang), justify="left" if key == "segment" else "right")
        for s in result.segments:
            c = s.transitions[k - 1]
            label = f"{s.property}={s.value}"
            if c.too_few:
                tab.add_row(label, f"{c.entered:,}", t("too_few", lang), *[""] * 5)
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


@terminal("loudou.analyses.diagnose.Diagnosis")
def findings(result: Diagnosis, lang: str, out: Console) -> None:
    """Numbered findings, one per line, in the chosen language."""
    if not result.findings:
        out.print(t("no_findings", lang))
    for i, f in enumerate(result.findings, start=1):
        line = f"{i}. [{f.kind}] {finding_message(f, lang)}"
        out.print(line, highlight=False, markup=False)


@terminal("loudou.analyses.trends.TrendResult")
def trend_tables(result: TrendResult, lang: str, out: Console) -> None:
    for s in result.transitions:
        tab = Table(title=f"{s.from_step} → {s.to_step}", title_justify="left")
        for col in ("period", "entered", "converted", "rate", "95% CI", "complete"):
            tab.add_column(col, justify="left" if col == "period" else "right")
        for p in s.points:
            ci = "–" if p.ci95 is None else f"{100 * p.ci95[0]:.1f}–{percent(p.ci95[1])}"
            rate = "–" if p.rate is None else percent(p.rate)
            done = "yes" if p.complete else "no"
            tab.add_row(str(p.start), f"{p.entered:,}", f"{p.converted:,}", rate, ci, done)
        out.print(tab)


@csv_rows("loudou.analyses.trends.TrendResult")
def trend_rows(result: TrendResult) -> list[dict[str, Any]]:
    return result.rows()


@terminal("loudou.analyses.timing.TimeToConvert")
def time_histogram(result: TimeToConvert, lang: str, out: Console) -> None:
    out.print(f"{result.from_step} → {result.to_step}: {result.count:,} converted")
    if result.count:
        out.print(
            f"mean {duration(result.mean_seconds)}; "
            + ", ".join(f"p{q} {duration(v)}" for q, v in result.percentiles.items())
        )
        top = max(result.counts)
        for lo, hi, c in zip(result.bin_edges, result.bin_edges[1:], result.counts, strict=False):
            bar = "█" * (round(40 * c / top) if top else 0)
            out.print(f"{duration(lo):>9} – {duration(hi):<9} {c:>7,} {bar}", highlight=False)


@terminal("loudou.analyses.transitions.TransitionMatrix")
def transition_table(result: TransitionMatrix, lang: str, out: Console) -> None:
    names = result.stages_zh if lang == "zh" else result.stages
    tab = Table(title="from \\ to", title_justify="left")
    tab.add_column("")
    for name in names:
        tab.add_column(name, justify="right")
    for i, name in enumerate(names):
        tab.add_row(name, *[f"{int(v):,}" for v in result.moves[i]])
    out.print(tab)
    doc = result.to_dict()
    out.print(
        f"forward {doc['forward_moves']:,}, backward {doc['backward_moves']:,}, "
        f"repeat {doc['repeat_moves']:,}"
    )


@terminal("loudou.analyses.paths.PathsResult")
def path_table(result: PathsResult, lang: str, out: Console) -> None:
    tab = Table(title=f"{result.customers:,} customers", title_justify="left")
    for col in ("customers", "share", "path"):
        tab.add_column(col, justify="left" if col == "path" else "right")
    for p, c in result.paths:
        share = percent(c / result.customers) if result.customers else "–"
        tab.add_row(f"{c:,}", share, " → ".join(p))
    out.print(tab)


@terminal("loudou.analyses.correlation.CorrelationResult")
def correlation_tables(result: CorrelationResult, lang: str, out: Console) -> None:
    for title, feats in (("raise the odds", result.raises()), ("lower the odds", result.lowers())):
        tab = Table(title=f"{result.from_step} → {result.to_step}: {title}", title_justify="left")
        for col in ("feature", "with", "conv. with", "conv. without", "odds ratio", "95% CI", "q"):
            tab.add_column(col, justify="left" if col == "feature" else "right")
        for f in feats:
            d = f.to_dict()
            tab.add_row(
                f.name,
                f"{f.exposed:,}",
                percent(d["conversion_with"]),
                percent(d["conversion_without"]),
                f"{f.odds_ratio:.2f}",
                f"{f.ci95[0]:.2f}–{f.ci95[1]:.2f}",
                "–" if f.q_value is None else f"{f.q_value:.2g}",
            )
        out.print(tab)
