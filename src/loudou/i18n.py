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
