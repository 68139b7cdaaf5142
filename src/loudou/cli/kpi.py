"""``loudou kpi ...``: customer value and marketing KPIs (attribution, CAC, CLV, retention, churn,
NPS, sales cycle). Each command prints a table, or the stable JSON document with ``--json``."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from loudou.cli.common import DbOpt, JsonOpt, LangOpt, opened, out, resolve_lang
from loudou.errors import LoudouError
from loudou.present.i18n import STRINGS, t

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


def _l(key: str, lang: str, **values: Any) -> str:
    """The label ``kpi.<key>`` of :data:`loudou.present.i18n.STRINGS` in English or Chinese."""
    return t("kpi." + key, lang, **values)


def _value(kind: str, text: str, lang: str) -> str:
    """A value the KPI code writes in English (note, reason, unit, basis) in the chosen language;
    anything else (data such as channel names) unchanged."""
    key = f"kpi.{kind}.{text}"
    return t(key, lang) if key in STRINGS else text


def _basis(text: str, lang: str) -> str:
    """The LTV basis ('historical' or 'historical + predicted N months') in the chosen language."""
    m = re.fullmatch(r"historical \+ predicted (\d+) months", text)
    return _l("basis.predicted", lang, n=m[1]) if m else _value("basis", text, lang)


def _days(days: float | None, lang: str) -> str:
    return "—" if days is None else _l("days", lang, n=_num(days, 1))


def _months(months: int | None, lang: str) -> str:
    return "—" if months is None else _l("months", lang, n=months)


# Text columns are left-aligned, numbers right-aligned.
TEXT_COLUMNS = frozenset(
    {"channel", "campaign", "note", "group", "customer", "reason", "cohort", "period", "cycle"}
)


def _table(columns: Sequence[str], lang: str, title: str | None = None) -> Table:
    """A table with the labels of ``columns`` (keys of ``kpi.*`` strings) as headers."""
    tab = Table(title=title, title_justify="left")
    for col in columns:
        tab.add_column(_l(col, lang), justify="left" if col in TEXT_COLUMNS else "right")
    return tab


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
    lang: LangOpt = None,
    db: DbOpt = None,
) -> None:
    """Credit conversions and their revenue to channels (or campaigns) by an attribution model.

    JSON: {"channels": [{"channel", "conversions", "revenue", "share"}], ...}.
    """
    from loudou.analyses.kpi.attribution import run_attribution
    from loudou.analyses.kpi.common import date_range

    language = resolve_lang(lang)
    rng = date_range(date_from, date_to)
    with opened(db, read_only=True) as store:
        res = run_attribution(store, conversion, model, lookback, half_life, rng, by, segment)
    if as_json:
        _print_json(res.to_dict())
        return
    out.print(
        _l(
            "attribution_title",
            language,
            model=res.model,
            conversion=res.conversion,
            conversions=f"{res.conversions:,}",
            unattributed=f"{res.unattributed_conversions:,}",
            lookback=_days(res.lookback_seconds / 86400, language),
        )
    )
    keys = ["channel", *(["campaign"] if by == "campaign" else [])]
    tab = _table([*keys, "conversions", "revenue", "share"], language)
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
    lang: LangOpt = None,
    db: DbOpt = None,
) -> None:
    """Customer acquisition cost per channel (or campaign) and month, blended CAC, LTV:CAC and
    payback. Spend comes from 'loudou import spend'; new customers are credited by --model."""
    from loudou.analyses.kpi.cac import run_cac
    from loudou.analyses.kpi.common import KpiEvents, date_range

    language = resolve_lang(lang)
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
    print_cac(res, language)


def print_cac(res: Any, lang: str = "en") -> None:
    """CAC table per channel with LTV:CAC and payback, and the blended line."""
    doc = res.to_dict()
    bl = doc["blended"]
    out.print(
        _l(
            "cac_title",
            lang,
            model=res.model,
            spend=_num(bl["spend"]),
            new=f"{bl['new_customers']:,}",
            unattributed=_num(bl["unattributed_customers"], 1),
            cac=_num(bl["cac"]),
            basis=_basis(res.ltv_basis, lang),
        )
    )
    cols = ["channel", *(["campaign"] if res.by == "campaign" else [])]
    cols += ["spend", "new_customers", "cac", "ltv", "ltv_cac", "payback", "note"]
    tab = _table(cols, lang)
    for r in doc["channels"]:
        cells = [r["channel"], *([r["campaign"]] if res.by == "campaign" else [])]
        tab.add_row(
            *cells,
            _num(r["spend"]),
            _num(r["new_customers"], 1),
            _num(r["cac"]),
            _num(r["ltv"]),
            _num(r["ltv_cac"]),
            _months(r["payback_months"], lang),
            _value("note", r["note"] or "", lang),
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
    lang: LangOpt = None,
    db: DbOpt = None,
) -> None:
    """Historical and predictive customer lifetime value (BG/NBD + Gamma-Gamma, fitted by
    maximum likelihood). JSON: bgnbd {r, alpha, a, b}, gamma_gamma {p, q, v}, customers (paged)."""
    from loudou.analyses.kpi.clv import run_clv
    from loudou.analyses.kpi.common import KpiEvents

    language = resolve_lang(lang)
    if page < 1:
        raise LoudouError("must be at least 1", "--page")
    if page_size < 1:
        raise LoudouError("must be at least 1", "--page-size")
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
        _l(
            "clv_title",
            language,
            end=doc["observation_end"],
            unit=_value("unit", time_unit, language),
            horizon=horizon,
            discount=f"{discount:.2%}",
        )
    )
    out.print(
        f"BG/NBD r={b['r']:.4f} alpha={b['alpha']:.4f} a={b['a']:.4f} b={b['b']:.4f}; "
        f"Gamma-Gamma p={g['p']:.4f} q={g['q']:.4f} v={g['v']:.4f}"
    )
    out.print(
        _l(
            "clv_line",
            language,
            buyers=f"{h['customers']:,}",
            revenue=_num(h["revenue"]),
            aov=_num(h["aov"]),
            frequency=_num(h["purchase_frequency"]),
            total=_num(p["total_clv"]),
            mean=_num(p["mean_clv"]),
        )
    )
    if doc["groups"]:
        cols = ("group", "buyers", "revenue", "aov", "mean_clv", "mean_p_alive")
        tab = _table(cols, language, _l("by", language, name=by))
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
    cols = ("customer", "orders", "revenue", "p_alive", "expected_purchases", "clv")
    tab = _table(cols, language, _l("top_clv", language))
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
    lang: LangOpt = None,
    db: DbOpt = None,
) -> None:
    """Cohort retention matrix: share of each first-period cohort active in each later period."""
    from loudou.analyses.kpi.common import KpiEvents, date_range
    from loudou.analyses.kpi.retention import run_retention

    language = resolve_lang(lang)
    with opened(db, read_only=True) as store:
        res = run_retention(
            store, period, basis, date_range(date_from, date_to), KpiEvents(purchase=purchase)
        )
    if as_json:
        _print_json(res.to_dict())
        return
    width = max((len(c["retention"]) for c in res.cohorts), default=0)
    title = _l(
        "retention_title",
        language,
        period=_value("unit", period, language),
        basis=_value("basis", basis, language),
    )
    tab = _table(("cohort", "size"), language, title)
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
    lang: LangOpt = None,
    db: DbOpt = None,
) -> None:
    """Repeat purchase rate and time between purchases (days)."""
    from loudou.analyses.kpi.common import KpiEvents, date_range
    from loudou.analyses.kpi.retention import run_repeat

    language = resolve_lang(lang)
    with opened(db, read_only=True) as store:
        res = run_repeat(store, date_range(date_from, date_to), by, KpiEvents(purchase=purchase))
    if as_json:
        _print_json(res.to_dict())
        return
    cols = ("group", "buyers", "repeat_buyers", "repeat_rate", "median_gap", "p25", "p75")
    tab = _table(cols, language)
    rows = [{"group": _l("all", language), **res.to_dict()}, *res.groups]
    for r in rows:
        g = r["days_between_purchases"]
        tab.add_row(
            str(r["group"]),
            f"{r['buyers']:,}",
            f"{r['repeat_buyers']:,}",
            _pct(r["repeat_rate"]),
            *(_days(g[k], language) for k in ("median", "p25", "p75")),
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
    lang: LangOpt = None,
    db: DbOpt = None,
) -> None:
    """Churn rate per period: active in the previous period and not in this one."""
    from loudou.analyses.kpi.common import KpiEvents, date_range
    from loudou.analyses.kpi.retention import run_churn

    language = resolve_lang(lang)
    with opened(db, read_only=True) as store:
        rows = run_churn(
            store, period, basis, date_range(date_from, date_to), KpiEvents(purchase=purchase)
        )
    if as_json:
        _print_json({"period": period, "basis": basis, "periods": rows})
        return
    title = _l(
        "churn_title",
        language,
        period=_value("unit", period, language),
        basis=_value("basis", basis, language),
    )
    tab = _table(("period", "active_before", "retained", "churned", "churn_rate"), language, title)
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
    lang: LangOpt = None,
    db: DbOpt = None,
) -> None:
    """Churn-risk list (流失预警): slipping buyers ranked by value at risk, exportable as CSV."""
    from loudou.analyses.kpi.common import KpiEvents
    from loudou.analyses.kpi.retention import run_churn_risk

    language = resolve_lang(lang)
    if limit < 0:
        raise LoudouError("must be 0 or more", "--limit")
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
    title = _l(
        "churn_risk_title",
        language,
        buyers=f"{doc['total_customers']:,}",
        value=_num(doc["total_value_at_risk"]),
        p=p_alive_below,
        days=f"{res.inactive_days:.0f}",
    )
    cols = ("customer", "reason", "p_alive", "days_silent", "revenue", "value_at_risk")
    tab = _table(cols, language, title)
    for r in doc["customers"]:
        tab.add_row(
            r["customer_id"],
            _value("reason", r["reason"], language),
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
    lang: LangOpt = None,
    db: DbOpt = None,
) -> None:
    """Net Promoter Score with a 95% interval, by segment and over time, and advocacy counts."""
    from loudou.analyses.kpi.common import KpiEvents, date_range
    from loudou.analyses.kpi.nps import run_nps

    language = resolve_lang(lang)
    events = KpiEvents(nps=event, nps_score=score, referral=referral)
    with opened(db, read_only=True) as store:
        res = run_nps(store, date_range(date_from, date_to), by, period, events)
    if as_json:
        _print_json(res.to_dict())
        return
    print_nps(res.to_dict(), language)


def print_nps(doc: dict[str, Any], lang: str = "en") -> None:
    """NPS with its interval and advocacy, then tables by group and over time."""
    adv = doc["advocacy"]
    out.print(
        _l(
            "nps_line",
            lang,
            nps=_num(doc["nps"], 1),
            lo=_num(doc["ci95"][0], 1),
            hi=_num(doc["ci95"][1], 1),
            answers=f"{doc['responses']:,}",
            promoters=_pct(doc["promoter_share"]),
            passives=_pct(doc["passive_share"]),
            detractors=_pct(doc["detractor_share"]),
            advocates=f"{adv['advocates']:,}",
            promoter_customers=f"{adv['promoter_customers']:,}",
            referrers=f"{adv['referrers']:,}",
        )
    )
    for title, key, rows in (
        (_l("by", lang, name=doc["by"]), "group", doc["groups"]),
        (_l("per", lang, period=_value("unit", doc["period"], lang)), "period", doc["over_time"]),
    ):
        if not rows:
            continue
        tab = _table((key, "answers", "nps", "ci95", "promoters", "detractors"), lang, title)
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
    lang: LangOpt = None,
    db: DbOpt = None,
) -> None:
    """Sales cycle: days from first touch to first purchase, and from lead to won."""
    from loudou.analyses.kpi.common import KpiEvents, date_range
    from loudou.analyses.kpi.sales_cycle import run_sales_cycle

    language = resolve_lang(lang)
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
    print_sales_cycle(res.to_dict(), language)


def print_sales_cycle(doc: dict[str, Any], lang: str = "en") -> None:
    """Median, quartiles and mean of both cycles, overall and per group."""
    cols = ("cycle", "group", "n", "median", "p25", "p75", "mean")
    tab = _table(cols, lang, _l("sales_cycle_title", lang))
    for key in ("first_touch_to_purchase", "lead_to_won"):
        part = doc[key]
        for g in [{"group": _l("all", lang), **part}, *part["groups"]]:
            tab.add_row(
                _l(key, lang),
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
    from loudou.analyses.kpi.common import date_range
    from loudou.analyses.kpi.summary import kpi_summary

    with opened(db, read_only=True) as store:
        doc = kpi_summary(store, date_range(date_from, date_to))
    if as_json:
        _print_json(doc)
        return
    print_summary(doc, resolve_lang(lang))


def print_summary(doc: dict[str, Any], lang: str = "en") -> None:
    """Print the summary of :func:`loudou.analyses.kpi.summary.kpi_summary` (English or Chinese)."""
    cac = doc["cac"]
    bl = cac["blended"]
    out.print(_l("summary_title", lang, basis=_basis(cac["ltv_basis"], lang)))
    tab = _table(("channel", "spend", "new_customers", "cac", "clv", "ltv_cac", "payback"), lang)
    for r in cac["channels"]:
        tab.add_row(
            r["channel"] + (f" ({_value('note', r['note'], lang)})" if r["note"] else ""),
            _num(r["spend"], 0),
            _num(r["new_customers"], 0),
            _num(r["cac"]),
            _num(r["ltv"]),
            _num(r["ltv_cac"]),
            _months(r["payback_months"], lang),
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
            "summary_line",
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
