"""User-facing strings in English and Chinese. Stage labels come from specs, not from here."""

from __future__ import annotations

import locale
import os

STRINGS: dict[str, dict[str, str]] = {
    "stage": {"en": "Stage", "zh": "阶段"},
    "count": {"en": "Count", "zh": "数量"},
    "conversion": {"en": "Conv. from prev.", "zh": "环比转化"},
    "ci95": {"en": "95% CI", "zh": "95% 置信区间"},
    "from_start": {"en": "From start", "zh": "总转化"},
    "dropoff": {"en": "Drop-off", "zh": "流失"},
    "median": {"en": "Median time", "zh": "中位用时"},
    "p90": {"en": "P90 time", "zh": "P90 用时"},
    "window": {"en": "window", "zh": "窗口"},
    "mode": {"en": "mode", "zh": "模式"},
    "counting": {"en": "counting", "zh": "计数"},
    "bottleneck": {
        "en": "Biggest drop: {prev} → {step}, only {rate} continue ({lost} lost).",
        "zh": "最大流失：{prev} → {step}，仅 {rate} 继续（流失 {lost}）。",
    },
    "no_data": {"en": "No customer entered the funnel.", "zh": "没有客户进入漏斗。"},
    "breakdown": {"en": "Breakdown by {name}: {value}", "zh": "按 {name} 细分：{value}"},
    "import_summary": {
        "en": "{kind}: {loaded} loaded, {duplicates} duplicates, {rejected} rejected",
        "zh": "{kind}：导入 {loaded} 行，重复 {duplicates} 行，拒绝 {rejected} 行",
    },
    "rejects_at": {"en": "rejected rows written to {path}", "zh": "被拒绝的行已写入 {path}"},
    "report_written": {"en": "report written to {path}", "zh": "报告已写入 {path}"},
    "demo_loaded": {
        "en": "demo business loaded into {db}: {events} events, {customers} customers",
        "zh": "示例业务已载入 {db}：{events} 个事件，{customers} 位客户",
    },
    "cmp_segment": {"en": "Segment", "zh": "分群"},
    "cmp_entered": {"en": "Entered", "zh": "进入"},
    "cmp_rate": {"en": "Rate", "zh": "转化率"},
    "cmp_ci95": {"en": "95% CI", "zh": "95% 置信区间"},
    "cmp_vs_rest": {"en": "vs rest (pts)", "zh": "与其余差（百分点）"},
    "cmp_p": {"en": "p", "zh": "p 值"},
    "cmp_q": {"en": "q (BH)", "zh": "q 值（BH）"},
    "cmp_won_back": {"en": "Won back", "zh": "可挽回"},
    "too_few": {"en": "too few customers", "zh": "客户太少"},
    "top_findings": {
        "en": "Top findings (loudou diagnose):",
        "zh": "主要发现（loudou diagnose）：",
    },
    "no_findings": {
        "en": "No significant finding: no stage, segment, period or loop stands out.",
        "zh": "没有显著发现：没有阶段、分群、时段或回流明显异常。",
    },
}


def default_lang() -> str:
    """'zh' when the user's locale is Chinese, else 'en'."""
    for var in ("LOUDOU_LANG", "LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(var)
        if value:
            return "zh" if value.lower().startswith("zh") else "en"
    loc = locale.getlocale()[0] or ""
    return "zh" if loc.lower().startswith("zh") else "en"


def t(key: str, lang: str, **values: object) -> str:
    text = STRINGS[key]["zh" if lang == "zh" else "en"]
    return text.format(**values) if values else text


def duration(seconds: float | None) -> str:
    """Seconds as a short human duration: 45 s, 12.5 min, 3.2 h, 2.1 d."""
    if seconds is None:
        return "–"
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    if seconds < 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def percent(x: float) -> str:
    return f"{100 * x:.1f}%"


# `loudou kpi ...` tables: headers, titles and notes, in the usual Chinese marketing terms.
STRINGS.update(
    {
        # column headers
        "kpi.channel": {"en": "channel", "zh": "渠道"},
        "kpi.campaign": {"en": "campaign", "zh": "营销活动"},
        "kpi.conversions": {"en": "conversions", "zh": "转化数"},
        "kpi.revenue": {"en": "revenue", "zh": "收入"},
        "kpi.share": {"en": "share", "zh": "占比"},
        "kpi.spend": {"en": "spend", "zh": "花费"},
        "kpi.new_customers": {"en": "new customers", "zh": "新客户"},
        "kpi.cac": {"en": "CAC", "zh": "获客成本 CAC"},
        "kpi.ltv": {"en": "LTV", "zh": "终身价值 LTV"},
        "kpi.clv": {"en": "CLV", "zh": "客户终身价值 CLV"},
        "kpi.ltv_cac": {"en": "LTV:CAC", "zh": "LTV:CAC"},
        "kpi.payback": {"en": "payback", "zh": "回本周期"},
        "kpi.note": {"en": "note", "zh": "备注"},
        "kpi.group": {"en": "group", "zh": "分组"},
        "kpi.buyers": {"en": "buyers", "zh": "购买客户"},
        "kpi.aov": {"en": "AOV", "zh": "客单价 AOV"},
        "kpi.mean_clv": {"en": "mean CLV", "zh": "平均 CLV"},
        "kpi.mean_p_alive": {"en": "mean P(alive)", "zh": "平均存活概率"},
        "kpi.customer": {"en": "customer", "zh": "客户"},
        "kpi.orders": {"en": "orders", "zh": "订单数"},
        "kpi.p_alive": {"en": "P(alive)", "zh": "存活概率 P(alive)"},
        "kpi.expected_purchases": {"en": "exp. purchases", "zh": "预期购买次数"},
        "kpi.cohort": {"en": "cohort", "zh": "同期群"},
        "kpi.size": {"en": "size", "zh": "人数"},
        "kpi.repeat_buyers": {"en": "repeat buyers", "zh": "复购客户"},
        "kpi.repeat_rate": {"en": "repeat rate", "zh": "复购率"},
        "kpi.median_gap": {"en": "median gap", "zh": "购买间隔中位数"},
        "kpi.p25": {"en": "p25", "zh": "P25"},
        "kpi.p75": {"en": "p75", "zh": "P75"},
        "kpi.period": {"en": "period", "zh": "时段"},
        "kpi.active_before": {"en": "active before", "zh": "上期活跃"},
        "kpi.retained": {"en": "retained", "zh": "留存"},
        "kpi.churned": {"en": "churned", "zh": "流失"},
        "kpi.churn_rate": {"en": "churn rate", "zh": "流失率"},
        "kpi.reason": {"en": "reason", "zh": "原因"},
        "kpi.days_silent": {"en": "days silent", "zh": "沉默天数"},
        "kpi.value_at_risk": {"en": "value at risk", "zh": "风险价值"},
        "kpi.answers": {"en": "answers", "zh": "答卷数"},
        "kpi.nps": {"en": "NPS", "zh": "净推荐值 NPS"},
        "kpi.ci95": {"en": "95% CI", "zh": "95% 置信区间"},
        "kpi.promoters": {"en": "promoters", "zh": "推荐者"},
        "kpi.detractors": {"en": "detractors", "zh": "贬损者"},
        "kpi.cycle": {"en": "cycle", "zh": "周期"},
        "kpi.n": {"en": "n", "zh": "样本数"},
        "kpi.median": {"en": "median", "zh": "中位数"},
        "kpi.mean": {"en": "mean", "zh": "平均值"},
        # cell values
        "kpi.all": {"en": "all", "zh": "全部"},
        "kpi.blended": {"en": "blended", "zh": "整体"},
        "kpi.months": {"en": "{n} mo", "zh": "{n} 个月"},
        "kpi.days": {"en": "{n}d", "zh": "{n} 天"},
        "kpi.first_touch_to_purchase": {"en": "first touch → purchase", "zh": "首次触点 → 购买"},
        "kpi.lead_to_won": {"en": "lead → won", "zh": "线索 → 成交"},
        "kpi.note.spend without customers": {"en": "spend without customers", "zh": "有花费无新客"},
        "kpi.note.customers without spend": {"en": "customers without spend", "zh": "有新客无花费"},
        "kpi.reason.p_alive and inactive": {"en": "p_alive and inactive", "zh": "存活概率低且沉默"},
        "kpi.reason.p_alive": {"en": "p_alive", "zh": "存活概率低"},
        "kpi.reason.inactive": {"en": "inactive", "zh": "沉默过久"},
        "kpi.basis.historical": {"en": "historical", "zh": "历史收入"},
        "kpi.basis.predicted": {
            "en": "historical + predicted {n} months",
            "zh": "历史收入 + 预测 {n} 个月",
        },
        "kpi.unit.day": {"en": "day", "zh": "天"},
        "kpi.unit.week": {"en": "week", "zh": "周"},
        "kpi.unit.month": {"en": "month", "zh": "月"},
        "kpi.basis.activity": {"en": "activity", "zh": "活跃"},
        "kpi.basis.purchase": {"en": "purchase", "zh": "购买"},
        # titles and lines
        "kpi.by": {"en": "by {name}", "zh": "按 {name} 分组"},
        "kpi.per": {"en": "per {period}", "zh": "按{period}"},
        "kpi.attribution_title": {
            "en": "Attribution ({model}) of {conversion}: {conversions} conversions, "
            "{unattributed} without a touch in {lookback}",
            "zh": "{conversion} 的归因（{model} 模型）：{conversions} 次转化，其中 {unattributed} "
            "次在 {lookback}内无触点",
        },
        "kpi.cac_title": {
            "en": "CAC ({model} attribution): spend {spend}, {new} new customers ({unattributed} "
            "with no touch), blended CAC {cac}; LTV = {basis}",
            "zh": "获客成本 CAC（{model} 归因）：花费 {spend}，新客户 {new} 位（{unattributed} "
            "位无触点），整体 CAC {cac}；LTV = {basis}",
        },
        "kpi.clv_title": {
            "en": "CLV to {end} per {unit}, {horizon} months at {discount}/month",
            "zh": "客户终身价值 CLV：截至 {end}，按{unit}计，预测 {horizon} 个月，月折现率 {discount}",
        },
        "kpi.clv_line": {
            "en": "{buyers} buyers, revenue {revenue}, AOV {aov}, {frequency} orders per buyer; "
            "predicted CLV total {total}, mean {mean}",
            "zh": "{buyers} 位购买客户，收入 {revenue}，客单价 AOV {aov}，人均 {frequency} 单；"
            "预测 CLV 合计 {total}，平均 {mean}",
        },
        "kpi.top_clv": {"en": "Top customers by CLV", "zh": "CLV 最高的客户"},
        "kpi.retention_title": {
            "en": "Retention by {period} ({basis})",
            "zh": "按{period}留存（{basis}）",
        },
        "kpi.churn_title": {"en": "Churn by {period} ({basis})", "zh": "按{period}流失（{basis}）"},
        "kpi.churn_risk_title": {
            "en": "Churn risk: {buyers} buyers, value at risk {value} (P(alive) < {p}, or silent > "
            "{days} days)",
            "zh": "流失预警：{buyers} 位购买客户，风险价值 {value}（存活概率 P(alive) < {p}，"
            "或沉默超过 {days} 天）",
        },
        "kpi.nps_line": {
            "en": "NPS {nps} (95% CI {lo} to {hi}) from {answers} answers: {promoters} promoters, "
            "{passives} passives, {detractors} detractors. Advocates: {advocates} "
            "({promoter_customers} promoters, {referrers} referrers)",
            "zh": "净推荐值 NPS {nps}（95% 置信区间 {lo} 至 {hi}），共 {answers} 份答卷：推荐者 "
            "{promoters}，被动者 {passives}，贬损者 {detractors}。拥护者 {advocates} 位（推荐者 "
            "{promoter_customers} 位，转介绍者 {referrers} 位）",
        },
        "kpi.sales_cycle_title": {"en": "Sales cycle (days)", "zh": "销售周期（天）"},
        "kpi.summary_title": {
            "en": "KPIs per channel (first-touch CAC; CLV = {basis})",
            "zh": "各渠道指标（首次触点获客成本；CLV = {basis}）",
        },
        "kpi.summary_line": {
            "en": "NPS {nps} (95% CI {lo:.1f} to {hi:.1f}, {n:,} answers) · repeat purchase rate "
            "{repeat} of {buyers:,} buyers · sales cycle: first touch → purchase median {ftp} "
            "days, lead → won median {ltw} days",
            "zh": "净推荐值 NPS {nps}（95% 置信区间 {lo:.1f} 至 {hi:.1f}，{n:,} 份答卷）· 复购率 "
            "{repeat}（{buyers:,} 位购买客户）· 销售周期：首次触点 → 购买 中位 {ftp} 天，"
            "线索 → 成交 中位 {ltw} 天",
        },
    }
)
