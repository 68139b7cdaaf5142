"""``loudou kpi ...``: customer value and marketing KPIs (attribution, CAC, CLV, retention, churn,
NPS, sales cycle). Each command prints a table, or the stable JSON document with ``--json``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from loudou.cli.common import DbOpt, JsonOpt, open_store, out

kpi_app = typer.Typer(
    help="Customer value and marketing KPIs: attribution, CAC, CLV, retention, churn, NPS, sales cycle.",
    no_args_is_help=True,
)

FromOpt = Annotated[str | None, typer.Option("--from", help="First day (YYYY-MM-DD).")]
ToOpt = Annotated[str | None, typer.Option("--to", help="Last day, inclusive (YYYY-MM-DD).")]
ByOpt = Annotated[
    str | None,
    typer.Option(
        "--by", help="Group by 'channel' (first touch) or a customer trait, e.g. segment."
    ),
]
PurchaseOpt = Annotated[
    str, typer.Option("--purchase", help="Event that is a purchase (revenue column).")
]


def _print_json(doc: Any) -> None:
    print(json.dumps(doc, ensure_ascii=False, indent=2, allow_nan=False))


def _num(x: float | None, digits: int = 2) -> str:
    if x is None:
        return "—"
    return f"{x:,.{digits}f}"


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f}%"


def _days(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds / 86400:.1f}d"


# ---- attribution ---------------------------------------------------------------------------------


@kpi_app.command("attribution")
def attribution(
    conversion: Annotated[
        str, typer.Option("--conversion", help="Conversion event.")
    ] = "order_completed",
    model: Annotated[
        str,
        typer.Option(
            "--model", help="first_touch, last_touch, linear, time_decay, position or markov."
        ),
    ] = "linear",
    lookback: Annotated[
        str, typer.Option("--lookback", help="Touches at most this long before: 30d, 12h.")
    ] = "30d",
    half_life: Annotated[
        str, typer.Option("--half-life", help="Half-life of time_decay weights.")
    ] = "7d",
    by: Annotated[
        str, typer.Option("--by", help="Credit 'channel' or 'campaign' (channel/campaign).")
    ] = "channel",
    date_from: FromOpt = None,
    date_to: ToOpt = None,
    as_json: JsonOpt = False,
    db: DbOpt = None,
) -> None:
    """Credit conversions and their revenue to channels (or campaigns) by an attribution model.

    JSON: {"channels": [{"channel", "conversions", "revenue", "share"}], ...}.
    """
    from loudou.query.attribution import run_attribution
    from loudou.query.kpi_common import date_range

    rng = date_range(date_from, date_to)
    store = open_store(db, read_only=True)
    try:
        res = run_attribution(store, conversion, model, lookback, half_life, rng, by)
    finally:
        store.close()
    if as_json:
        _print_json(res.to_dict())
        return
    tab = Table(
        title=f"Attribution ({res.model}) of {res.conversion}: {res.conversions:,} conversions, "
        f"{res.unattributed_conversions:,} without a touch in {_days(res.lookback_seconds)}",
        title_justify="left",
    )
    for col in ["channel", *(["campaign"] if by == "campaign" else []), "conversions"]:
        tab.add_column(col, justify="left" if col != "conversions" else "right")
    tab.add_column("revenue", justify="right")
    tab.add_column("share", justify="right")
    for r in res.channels:
        cells = [r.channel, *([r.campaign or ""] if by == "campaign" else [])]
        tab.add_row(*cells, _num(r.conversions), _num(r.revenue), _pct(r.share))
    out.print(tab)


def register(app: typer.Typer) -> None:
    app.add_typer(kpi_app, name="kpi")


def _unused(*_: object) -> None:  # keeps imports used while commands are added
    _ = (sys, Path)
