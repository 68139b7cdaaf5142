"""``loudou customers``: the customers who converted or dropped after a step, as CSV."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from loudou.cli.common import DbOpt, SpecArg, err, opened, write_csv

SegmentOpt = Annotated[
    str | None, typer.Option("--segment", help="Only customers in this saved segment.")
]


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
    from loudou.analyses.outcomes import step_outcomes
    from loudou.cli.funnel import build_spec

    with opened(db, read_only=True) as store:
        spec = build_spec(spec_file, [], None, {}, store)
        table = step_outcomes(store, spec, step, outcome, segment)
    write_csv(table.to_pylist(), output, fields=table.column_names)
    if output:
        err.print(f"{table.num_rows:,} customers written to {output}")


def register(app: typer.Typer) -> None:
    app.command()(customers)
