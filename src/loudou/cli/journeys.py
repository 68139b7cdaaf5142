"""Journey views: ``loudou trends``, ``time-to-convert``, ``customers``, ``transitions``,
``paths`` and ``correlate``."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from loudou.cli.analyze import SegmentOpt, SpecArg, spec_from_file
from loudou.cli.common import DbOpt, JsonOpt, LangOpt, err, opened, out, resolve_lang
from loudou.i18n import duration, percent

PeriodOpt = Annotated[str, typer.Option(help="day, week or month of step-1 time.")]


def _dump(doc: dict[str, Any]) -> None:
    print(json.dumps(doc, ensure_ascii=False, indent=2))


def _label(names: list[str], names_zh: list[str], lang: str) -> list[str]:
    return names_zh if lang == "zh" else names


def trends(
    spec_file: SpecArg,
    period: PeriodOpt = "week",
    segment: SegmentOpt = None,
    as_json: JsonOpt = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV rows.")] = False,
    db: DbOpt = None,
) -> None:
    """Each transition's conversion per day, week or month of step-1 time, with 95% intervals.

    'complete' says every customer of the period has had the whole conversion window.
    """
    from loudou.query.trends import trends as run

    with opened(db, read_only=True) as store:
        result = run(store, spec_from_file(spec_file, store), period, segment)
    if as_json:
        _dump(result.to_dict())
        return
    rows = result.rows()
    if as_csv:
        write_csv(rows, None)
        return
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


def time_to_convert(
    spec_file: SpecArg,
    from_step: Annotated[int, typer.Option("--from-step", help="1-based step to start from.")] = 1,
    to_step: Annotated[
        int | None, typer.Option("--to-step", help="1-based step to end at (default: last).")
    ] = None,
    bins: Annotated[int, typer.Option(help="Histogram bins.", min=1)] = 20,
    segment: SegmentOpt = None,
    as_json: JsonOpt = False,
    db: DbOpt = None,
) -> None:
    """Distribution of the time between two steps: percentiles and histogram data."""
    from loudou.query.timing import time_to_convert as run

    with opened(db, read_only=True) as store:
        spec = spec_from_file(spec_file, store)
        result = run(store, spec, from_step, to_step, bins=bins, segment=segment)
    if as_json:
        _dump(result.to_dict())
        return
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


def customers(
    spec_file: SpecArg,
    step: Annotated[int, typer.Option("--step", help="1-based step the customers reached.")],
    outcome: Annotated[
        str, typer.Option(help="'dropped' (did not reach the next step) or 'converted'.")
    ] = "dropped",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="CSV file (default: standard output).")
    ] = None,
    segment: SegmentOpt = None,
    db: DbOpt = None,
) -> None:
    """Export the customers who converted or dropped after a step as CSV, for follow-up."""
    from loudou.query.outcomes import step_outcomes

    with opened(db, read_only=True) as store:
        table = step_outcomes(store, spec_from_file(spec_file, store), step, outcome, segment)
    write_csv(table.to_pylist(), output, fields=table.column_names)
    if output:
        err.print(f"{table.num_rows:,} customers written to {output}")


def write_csv(
    rows: list[dict[str, Any]], output: Path | None, fields: list[str] | None = None
) -> None:
    """Rows as CSV to ``output`` or standard output (times as ISO text, nulls empty)."""
    handle = output.open("w", newline="", encoding="utf-8") if output else sys.stdout
    try:
        names = fields or (list(rows[0]) if rows else [])
        writer = csv.DictWriter(handle, fieldnames=names)
        writer.writeheader()
        writer.writerows(rows)
    finally:
        if output:
            handle.close()


def transitions(
    spec_file: SpecArg, as_json: JsonOpt = False, lang: LangOpt = None, db: DbOpt = None
) -> None:
    """Stage transition matrix over all events mapped to the spec's steps: forward moves,
    backward moves and repeats (rows: from, columns: to)."""
    from loudou.query.transitions import transition_matrix

    language = resolve_lang(lang)
    with opened(db, read_only=True) as store:
        result = transition_matrix(store, spec_from_file(spec_file, store))
    if as_json:
        _dump(result.to_dict())
        return
    names = _label(result.stages, result.stages_zh, language)
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


def paths(
    after: Annotated[str | None, typer.Option(help="Paths starting at this event.")] = None,
    before: Annotated[str | None, typer.Option(help="Paths ending at this event.")] = None,
    depth: Annotated[int, typer.Option(help="Events shown besides the anchors.", min=1)] = 4,
    limit: Annotated[int, typer.Option(help="Top N paths.", min=1)] = 10,
    exclude: Annotated[
        list[str] | None, typer.Option(help="Event to ignore, repeatable (noise).")
    ] = None,
    keep_repeats: Annotated[
        bool, typer.Option(help="Keep consecutive repeats of an event.")
    ] = False,
    as_json: JsonOpt = False,
    db: DbOpt = None,
) -> None:
    """Top paths after an event, before one, or between two, with Sankey-ready nodes and links."""
    from loudou.query.paths import top_paths

    with opened(db, read_only=True) as store:
        result = top_paths(
            store, after, before, depth=depth, limit=limit, exclude=exclude or (),
            collapse=not keep_repeats,
        )  # fmt: skip
    if as_json:
        _dump(result.to_dict())
        return
    tab = Table(title=f"{result.customers:,} customers", title_justify="left")
    for col in ("customers", "share", "path"):
        tab.add_column(col, justify="left" if col == "path" else "right")
    for p, c in result.paths:
        share = percent(c / result.customers) if result.customers else "–"
        tab.add_row(f"{c:,}", share, " → ".join(p))
    out.print(tab)


def correlate(
    spec_file: SpecArg,
    step: Annotated[int, typer.Option("--step", help="1-based step; converting to the next.")] = 1,
    prop: Annotated[
        list[str] | None, typer.Option("--property", help="Event property whose values to test.")
    ] = None,
    top: Annotated[int, typer.Option(help="Top N each way.", min=1)] = 10,
    min_customers: Annotated[int, typer.Option(help="Skip rarer features.", min=1)] = 30,
    segment: SegmentOpt = None,
    as_json: JsonOpt = False,
    db: DbOpt = None,
) -> None:
    """Events and property values seen before a step that raise or lower the odds of converting
    to the next: odds ratios with 95% intervals and q-values (step events skipped)."""
    from loudou.query.correlation import correlate as run

    with opened(db, read_only=True) as store:
        spec = spec_from_file(spec_file, store)
        result = run(
            store, spec, step, properties=prop or (), top=top, min_customers=min_customers,
            segment=segment,
        )  # fmt: skip
    if as_json:
        _dump(result.to_dict())
        return
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


def register(app: typer.Typer) -> None:
    app.command()(trends)
    app.command("time-to-convert")(time_to_convert)
    app.command()(customers)
    app.command()(transitions)
    app.command()(paths)
    app.command()(correlate)
