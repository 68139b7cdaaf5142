"""``loudou kpi ...``: customer value and marketing KPIs (attribution, CAC, CLV, retention, churn,
NPS, sales cycle). Each command prints a table, or the stable JSON document with ``--json``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from loudou.cli.common import DbOpt, JsonOpt, LangOpt, opened, out, resolve_lang

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
    segment: Annotated[
        str | None,
        typer.Option("--segment", help="Also attribute within each value of this customer trait."),
    ] = None,
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
    with opened(db, read_only=True) as store:
        res = run_attribution(store, conversion, model, lookback, half_life, rng, by, segment)
    if as_json:
        _print_json(res.to_dict())
        return
    out.print(
        f"Attribution ({res.model}) of {res.conversion}: {res.conversions:,} conversions, "
        f"{res.unattributed_conversions:,} without a touch in {_days(res.lookback_seconds)}"
    )
    tab = Table()
    for col in ["channel", *(["campaign"] if by == "campaign" else []), "conversions"]:
        tab.add_column(col, justify="left" if col != "conversions" else "right")
    tab.add_column("revenue", justify="right")
    tab.add_column("share", justify="right")
    for r in res.channels:
        cells = [r.channel, *([r.campaign or ""] if by == "campaign" else [])]
        tab.add_row(*cells, _num(r.conversions), _num(r.revenue), _pct(r.share))
    out.print(tab)
    for seg in res.segments:
        out.print(
            f"{res.segment_by} = {seg['segment']}: "
            + ", ".join(
                f"{r.channel}{'/' + r.campaign if r.campaign else ''} {_pct(r.share)}"
                for r in seg["channels"]
            )
        )


# ---- CAC -----------------------------------------------------------------------------------------

ModelOpt = Annotated[
    str,
    typer.Option(
        "--model", help="first_touch, last_touch, linear, time_decay, position or markov."
    ),
]


@kpi_app.command("cac")
def cac_command(
    model: ModelOpt = "first_touch",
    by: Annotated[
        str, typer.Option("--by", help="Per 'channel' or 'campaign' (channel/campaign).")
    ] = "channel",
    lookback: Annotated[
        str, typer.Option("--lookback", help="Touches at most this long before the first order.")
    ] = "30d",
    ltv: Annotated[
        str, typer.Option("--ltv", help="LTV basis: predicted (to date + CLV) or historical.")
    ] = "predicted",
    margin: Annotated[float, typer.Option("--margin", help="Gross margin applied to LTV.")] = 1.0,
    horizon: Annotated[int, typer.Option("--horizon", help="Months of predicted CLV.")] = 12,
    date_from: FromOpt = None,
    date_to: ToOpt = None,
    purchase: PurchaseOpt = "order_completed",
    as_json: JsonOpt = False,
    db: DbOpt = None,
) -> None:
    """Customer acquisition cost per channel (or campaign) and month, blended CAC, LTV:CAC and
    payback. Spend comes from 'loudou import spend'; new customers are credited by --model."""
    from loudou.query.cac import run_cac
    from loudou.query.kpi_common import KpiEvents, date_range

    rng = date_range(date_from, date_to)
    with opened(db, read_only=True) as store:
        res = run_cac(
            store,
            model,
            rng,
            by,
            lookback,
            ltv=ltv,
            margin=margin,
            horizon_months=horizon,
            events=KpiEvents(purchase=purchase),
        )
    if as_json:
        _print_json(res.to_dict())
        return
    print_cac(res)


def print_cac(res: Any) -> None:
    """CAC table per channel with LTV:CAC and payback, and the blended line."""
    doc = res.to_dict()
    bl = doc["blended"]
    out.print(
        f"CAC ({res.model} attribution): spend {_num(bl['spend'])}, {bl['new_customers']:,} new "
        f"customers ({_num(bl['unattributed_customers'], 1)} with no touch), blended CAC "
        f"{_num(bl['cac'])}; LTV = {res.ltv_basis}"
    )
    tab = Table()
    cols = ["channel", *(["campaign"] if res.by == "campaign" else [])]
    cols += ["spend", "new customers", "CAC", "LTV", "LTV:CAC", "payback", "note"]
    for col in cols:
        tab.add_column(col, justify="left" if col in ("channel", "campaign", "note") else "right")
    for r in doc["channels"]:
        cells = [r["channel"], *([r["campaign"]] if res.by == "campaign" else [])]
        tab.add_row(
            *cells,
            _num(r["spend"]),
            _num(r["new_customers"], 1),
            _num(r["cac"]),
            _num(r["ltv"]),
            _num(r["ltv_cac"]),
            "—" if r["payback_months"] is None else f"{r['payback_months']} mo",
            r["note"] or "",
        )
    out.print(tab)


# ---- CLV -----------------------------------------------------------------------------------------


@kpi_app.command("clv")
def clv_command(
    time_unit: Annotated[
        str, typer.Option("--time-unit", help="Count purchases per day, week or month.")
    ] = "day",
    observation_end: Annotated[
        str | None,
        typer.Option("--observation-end", help="Last day of history (default: last purchase)."),
    ] = None,
    horizon: Annotated[int, typer.Option("--horizon", help="Months to predict.")] = 12,
    discount: Annotated[float, typer.Option("--discount", help="Monthly discount rate.")] = 0.01,
    by: ByOpt = None,
    page: Annotated[int, typer.Option("--page", help="Page of customers in --json.")] = 1,
    page_size: Annotated[int, typer.Option("--page-size", help="Customers per page.")] = 100,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write every customer to this CSV.")
    ] = None,
    purchase: PurchaseOpt = "order_completed",
    as_json: JsonOpt = False,
    db: DbOpt = None,
) -> None:
    """Historical and predictive customer lifetime value (BG/NBD + Gamma-Gamma, fitted by
    maximum likelihood). JSON: bgnbd {r, alpha, a, b}, gamma_gamma {p, q, v}, customers (paged)."""
    from loudou.errors import LoudouError
    from loudou.query.clv import run_clv
    from loudou.query.kpi_common import KpiEvents

    if page < 1 or page_size < 1:
        raise LoudouError("page and page size must be at least 1", "--page")
    with opened(db, read_only=True) as store:
        res = run_clv(
            store, time_unit, observation_end, horizon, discount, by, KpiEvents(purchase=purchase)
        )
    if output is not None:
        res.to_csv(str(output))
    if as_json:
        _print_json(res.to_dict(page, page_size))
        return
    doc = res.to_dict(page, page_size)
    b, g, h, p = doc["bgnbd"], doc["gamma_gamma"], doc["historical"], doc["predicted"]
    out.print(
        f"CLV to {doc['observation_end']} per {time_unit}, {horizon} months at {discount:.2%}/month\n"
        f"BG/NBD r={b['r']:.4f} alpha={b['alpha']:.4f} a={b['a']:.4f} b={b['b']:.4f}; "
        f"Gamma-Gamma p={g['p']:.4f} q={g['q']:.4f} v={g['v']:.4f}\n"
        f"{h['customers']:,} buyers, revenue {_num(h['revenue'])}, AOV {_num(h['aov'])}, "
        f"{_num(h['purchase_frequency'])} orders per buyer; predicted CLV total "
        f"{_num(p['total_clv'])}, mean {_num(p['mean_clv'])}"
    )
    if doc["groups"]:
        tab = Table(title=f"by {by}", title_justify="left")
        for col in ("group", "buyers", "revenue", "AOV", "mean CLV", "mean P(alive)"):
            tab.add_column(col, justify="left" if col == "group" else "right")
        for row in doc["groups"]:
            tab.add_row(
                str(row["group"]),
                f"{row['customers']:,}",
                _num(row["revenue"]),
                _num(row["aov"]),
                _num(row["mean_clv"]),
                _pct(row["mean_p_alive"]),
            )
        out.print(tab)
    tab = Table(title="Top customers by CLV", title_justify="left")
    for col in ("customer", "orders", "revenue", "P(alive)", "exp. purchases", "CLV"):
        tab.add_column(col, justify="left" if col == "customer" else "right")
    for row in doc["customers"][:20]:
        tab.add_row(
            row["customer_id"],
            str(row["orders"]),
            _num(row["revenue"]),
            _pct(row["p_alive"]),
            _num(row["expected_purchases"]),
            _num(row["clv"]),
        )
    out.print(tab)


# ---- retention, repeat, churn ----------------------------------------------------------------------

PeriodOpt = Annotated[str, typer.Option("--period", help="month or week.")]
BasisOpt = Annotated[str, typer.Option("--basis", help="'activity' (any event) or 'purchase'.")]


@kpi_app.command("retention")
def retention_command(
    period: PeriodOpt = "month",
    basis: BasisOpt = "activity",
    date_from: FromOpt = None,
    date_to: ToOpt = None,
    purchase: PurchaseOpt = "order_completed",
    as_json: JsonOpt = False,
    db: DbOpt = None,
) -> None:
    """Cohort retention matrix: share of each first-period cohort active in each later period."""
    from loudou.query.kpi_common import KpiEvents, date_range
    from loudou.query.retention import run_retention

    with opened(db, read_only=True) as store:
        res = run_retention(
            store, period, basis, date_range(date_from, date_to), KpiEvents(purchase=purchase)
        )
    if as_json:
        _print_json(res.to_dict())
        return
    width = max((len(c["retention"]) for c in res.cohorts), default=0)
    tab = Table(title=f"Retention by {period} ({basis})", title_justify="left")
    tab.add_column("cohort")
    tab.add_column("size", justify="right")
    for k in range(width):
        tab.add_column(f"+{k}", justify="right")
    for c in res.cohorts:
        cells = [_pct(r) for r in c["retention"]] + [""] * (width - len(c["retention"]))
        tab.add_row(c["cohort"], f"{c['size']:,}", *cells)
    out.print(tab)


@kpi_app.command("repeat")
def repeat_command(
    by: ByOpt = None,
    date_from: FromOpt = None,
    date_to: ToOpt = None,
    purchase: PurchaseOpt = "order_completed",
    as_json: JsonOpt = False,
    db: DbOpt = None,
) -> None:
    """Repeat purchase rate and time between purchases (days)."""
    from loudou.query.kpi_common import KpiEvents, date_range
    from loudou.query.retention import run_repeat

    with opened(db, read_only=True) as store:
        res = run_repeat(store, date_range(date_from, date_to), by, KpiEvents(purchase=purchase))
    if as_json:
        _print_json(res.to_dict())
        return
    tab = Table()
    for col in ("group", "buyers", "repeat buyers", "repeat rate", "median gap", "p25", "p75"):
        tab.add_column(col, justify="left" if col == "group" else "right")
    rows = [{"group": "all", **res.to_dict()}, *res.groups]
    for r in rows:
        g = r["days_between_purchases"]
        tab.add_row(
            str(r["group"]),
            f"{r['buyers']:,}",
            f"{r['repeat_buyers']:,}",
            _pct(r["repeat_rate"]),
            *(_num(g[k], 1) + "d" if g[k] is not None else "—" for k in ("median", "p25", "p75")),
        )
    out.print(tab)


@kpi_app.command("churn")
def churn_command(
    period: PeriodOpt = "month",
    basis: BasisOpt = "purchase",
    date_from: FromOpt = None,
    date_to: ToOpt = None,
    purchase: PurchaseOpt = "order_completed",
    as_json: JsonOpt = False,
    db: DbOpt = None,
) -> None:
    """Churn rate per period: active in the previous period and not in this one."""
    from loudou.query.kpi_common import KpiEvents, date_range
    from loudou.query.retention import run_churn

    with opened(db, read_only=True) as store:
        rows = run_churn(
            store, period, basis, date_range(date_from, date_to), KpiEvents(purchase=purchase)
        )
    if as_json:
        _print_json({"period": period, "basis": basis, "periods": rows})
        return
    tab = Table(title=f"Churn by {period} ({basis})", title_justify="left")
    for col in ("period", "active before", "retained", "churned", "churn rate"):
        tab.add_column(col, justify="left" if col == "period" else "right")
    for r in rows:
        tab.add_row(
            r["period"],
            f"{r['active_before']:,}",
            f"{r['retained']:,}",
            f"{r['churned']:,}",
            _pct(r["churn_rate"]),
        )
    out.print(tab)


@kpi_app.command("churn-risk")
def churn_risk_command(
    observation_end: Annotated[
        str | None,
        typer.Option("--observation-end", help="Last day of history (default: last purchase)."),
    ] = None,
    p_alive_below: Annotated[
        float, typer.Option("--p-alive-below", help="Flag buyers with P(alive) under this.")
    ] = 0.5,
    inactive_days: Annotated[
        float | None,
        typer.Option(
            "--inactive-days",
            help="Flag buyers silent longer (default: 2x the median time between purchases).",
        ),
    ] = None,
    time_unit: Annotated[
        str, typer.Option("--time-unit", help="day, week or month (for the BG/NBD fit).")
    ] = "day",
    by: ByOpt = None,
    limit: Annotated[int, typer.Option("--limit", help="Rows to show (table and JSON).")] = 50,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print the whole list as CSV.")] = False,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the whole list to this CSV.")
    ] = None,
    purchase: PurchaseOpt = "order_completed",
    as_json: JsonOpt = False,
    db: DbOpt = None,
) -> None:
    """Churn-risk list (流失预警): slipping buyers ranked by value at risk, exportable as CSV."""
    from loudou.query.kpi_common import KpiEvents
    from loudou.query.retention import run_churn_risk

    with opened(db, read_only=True) as store:
        res = run_churn_risk(
            store,
            observation_end,
            p_alive_below,
            inactive_days,
            time_unit,
            by=by,
            events=KpiEvents(purchase=purchase),
        )
    if output is not None:
        res.to_csv(output)
    if as_csv:
        sys.stdout.write(res.to_csv() or "")
        return
    if as_json:
        _print_json(res.to_dict(limit))
        return
    doc = res.to_dict(limit)
    tab = Table(
        title=f"Churn risk: {doc['total_customers']:,} buyers, value at risk "
        f"{_num(doc['total_value_at_risk'])} (P(alive) < {p_alive_below}, or silent > "
        f"{res.inactive_days:.0f} days)",
        title_justify="left",
    )
    for col in ("customer", "reason", "P(alive)", "days silent", "revenue", "value at risk"):
        tab.add_column(col, justify="left" if col in ("customer", "reason") else "right")
    for r in doc["customers"]:
        tab.add_row(
            r["customer_id"],
            r["reason"],
            _pct(r["p_alive"]),
            _num(r["days_since_last_purchase"], 0),
            _num(r["revenue"]),
            _num(r["value_at_risk"]),
        )
    out.print(tab)


# ---- NPS -----------------------------------------------------------------------------------------


@kpi_app.command("nps")
def nps_command(
    by: ByOpt = None,
    period: PeriodOpt = "month",
    date_from: FromOpt = None,
    date_to: ToOpt = None,
    event: Annotated[str, typer.Option("--event", help="Survey answer event.")] = "nps_submitted",
    score: Annotated[str, typer.Option("--score", help="Property holding 0-10.")] = "score",
    referral: Annotated[
        str, typer.Option("--referral", help="Referral event (advocacy).")
    ] = "referral_sent",
    as_json: JsonOpt = False,
    db: DbOpt = None,
) -> None:
    """Net Promoter Score with a 95% interval, by segment and over time, and advocacy counts."""
    from loudou.query.kpi_common import KpiEvents, date_range
    from loudou.query.nps import run_nps

    events = KpiEvents(nps=event, nps_score=score, referral=referral)
    with opened(db, read_only=True) as store:
        res = run_nps(store, date_range(date_from, date_to), by, period, events)
    if as_json:
        _print_json(res.to_dict())
        return
    print_nps(res.to_dict())


def print_nps(doc: dict[str, Any]) -> None:
    adv = doc["advocacy"]
    out.print(
        f"NPS {_num(doc['nps'], 1)} (95% CI {_num(doc['ci95'][0], 1)} to {_num(doc['ci95'][1], 1)}) "
        f"from {doc['responses']:,} answers: {_pct(doc['promoter_share'])} promoters, "
        f"{_pct(doc['passive_share'])} passives, {_pct(doc['detractor_share'])} detractors. "
        f"Advocates: {adv['advocates']:,} ({adv['promoter_customers']:,} promoters, "
        f"{adv['referrers']:,} referrers)"
    )
    for title, key, rows in (
        (f"by {doc['by']}", "group", doc["groups"]),
        (f"per {doc['period']}", "period", doc["over_time"]),
    ):
        if not rows:
            continue
        tab = Table(title=title, title_justify="left")
        for col in (key, "answers", "NPS", "95% CI", "promoters", "detractors"):
            tab.add_column(col, justify="left" if col == key else "right")
        for r in rows:
            tab.add_row(
                str(r[key]),
                f"{r['responses']:,}",
                _num(r["nps"], 1),
                f"{r['ci95'][0]:.1f} – {r['ci95'][1]:.1f}",
                _pct(r["promoter_share"]),
                _pct(r["detractor_share"]),
            )
        out.print(tab)


# ---- sales cycle ---------------------------------------------------------------------------------


@kpi_app.command("sales-cycle")
def sales_cycle_command(
    by: ByOpt = None,
    date_from: FromOpt = None,
    date_to: ToOpt = None,
    purchase: PurchaseOpt = "order_completed",
    stage_event: Annotated[
        str, typer.Option("--stage-event", help="CRM stage change event.")
    ] = "deal_stage_changed",
    stage_property: Annotated[
        str, typer.Option("--stage-property", help="Property naming the new stage.")
    ] = "to_stage",
    lead: Annotated[str, typer.Option("--lead", help="Stage that opens a deal.")] = "lead",
    won: Annotated[str, typer.Option("--won", help="Stage that wins a deal.")] = "won",
    as_json: JsonOpt = False,
    db: DbOpt = None,
) -> None:
    """Sales cycle: days from first touch to first purchase, and from lead to won."""
    from loudou.query.kpi_common import KpiEvents, date_range
    from loudou.query.sales_cycle import run_sales_cycle

    events = KpiEvents(
        purchase=purchase,
        deal_stage=stage_event,
        stage_property=stage_property,
        lead_stage=lead,
        won_stage=won,
    )
    with opened(db, read_only=True) as store:
        res = run_sales_cycle(store, date_range(date_from, date_to), by, events)
    if as_json:
        _print_json(res.to_dict())
        return
    print_sales_cycle(res.to_dict())


def print_sales_cycle(doc: dict[str, Any]) -> None:
    tab = Table(title="Sales cycle (days)", title_justify="left")
    for col in ("cycle", "group", "n", "median", "p25", "p75", "mean"):
        tab.add_column(col, justify="left" if col in ("cycle", "group") else "right")
    for key, label in (
        ("first_touch_to_purchase", "first touch → purchase"),
        ("lead_to_won", "lead → won"),
    ):
        part = doc[key]
        for g in [{"group": "all", **part}, *part["groups"]]:
            tab.add_row(
                label,
                str(g["group"]),
                f"{g['n']:,}",
                *(_num(g[k], 1) for k in ("median", "p25", "p75", "mean")),
            )
    out.print(tab)


# ---- summary ---------------------------------------------------------------------------------------


@kpi_app.command("summary")
def summary_command(
    date_from: FromOpt = None,
    date_to: ToOpt = None,
    as_json: JsonOpt = False,
    lang: LangOpt = None,
    db: DbOpt = None,
) -> None:
    """The KPI summary: CAC, CLV and LTV:CAC per channel, NPS, repeat rate, sales cycle."""
    from loudou.query.kpi_common import date_range
    from loudou.query.kpi_summary import kpi_summary

    with opened(db, read_only=True) as store:
        doc = kpi_summary(store, date_range(date_from, date_to))
    if as_json:
        _print_json(doc)
        return
    print_summary(doc, resolve_lang(lang))


SUMMARY_LABELS = {
    "title": {
        "en": "KPIs per channel (first-touch CAC; CLV = {basis})",
        "zh": "各渠道指标（首次触点获客成本；CLV = {basis}）",
    },
    "channel": {"en": "channel", "zh": "渠道"},
    "spend": {"en": "spend", "zh": "花费"},
    "new customers": {"en": "new customers", "zh": "新客户"},
    "CAC": {"en": "CAC", "zh": "获客成本 CAC"},
    "CLV": {"en": "CLV", "zh": "客户终身价值 CLV"},
    "LTV:CAC": {"en": "LTV:CAC", "zh": "LTV:CAC"},
    "payback": {"en": "payback", "zh": "回本"},
    "blended": {"en": "blended", "zh": "整体"},
    "months": {"en": "{n} mo", "zh": "{n} 个月"},
    "line": {
        "en": "NPS {nps} (95% CI {lo:.1f} to {hi:.1f}, {n:,} answers) · repeat purchase rate "
        "{repeat} of {buyers:,} buyers · sales cycle: first touch → purchase median {ftp} days, "
        "lead → won median {ltw} days",
        "zh": "净推荐值 NPS {nps}（95% 置信区间 {lo:.1f} 至 {hi:.1f}，{n:,} 份答卷）· 复购率 "
        "{repeat}（{buyers:,} 位购买客户）· 销售周期：首次触点 → 购买 中位 {ftp} 天，"
        "线索 → 成交 中位 {ltw} 天",
    },
}


def _l(key: str, lang: str, **values: Any) -> str:
    return SUMMARY_LABELS[key]["zh" if lang == "zh" else "en"].format(**values)


def print_summary(doc: dict[str, Any], lang: str = "en") -> None:
    """Print the summary of :func:`loudou.query.kpi_summary.kpi_summary` (English or Chinese)."""
    cac = doc["cac"]
    bl = cac["blended"]
    out.print(_l("title", lang, basis=cac["ltv_basis"]))
    tab = Table()
    for col in ("channel", "spend", "new customers", "CAC", "CLV", "LTV:CAC", "payback"):
        tab.add_column(_l(col, lang), justify="left" if col == "channel" else "right")
    for r in cac["channels"]:
        tab.add_row(
            r["channel"] + (f" ({r['note']})" if r["note"] else ""),
            _num(r["spend"], 0),
            _num(r["new_customers"], 0),
            _num(r["cac"]),
            _num(r["ltv"]),
            _num(r["ltv_cac"]),
            "—" if r["payback_months"] is None else _l("months", lang, n=r["payback_months"]),
        )
    tab.add_row(
        _l("blended", lang),
        _num(bl["spend"], 0),
        f"{bl['new_customers']:,}",
        _num(bl["cac"]),
        "",
        "",
        "",
    )
    out.print(tab)
    nps, rep, cyc = doc["nps"], doc["repeat"], doc["sales_cycle"]
    lo, hi = nps["ci95"]
    out.print(
        _l(
            "line",
            lang,
            nps=_num(nps["nps"], 1),
            lo=lo,
            hi=hi,
            n=nps["responses"],
            repeat=_pct(rep["repeat_rate"]),
            buyers=rep["buyers"],
            ftp=_num(cyc["first_touch_to_purchase"]["median"], 1),
            ltw=_num(cyc["lead_to_won"]["median"], 1),
        )
    )


def register(app: typer.Typer) -> None:
    app.add_typer(kpi_app, name="kpi")
