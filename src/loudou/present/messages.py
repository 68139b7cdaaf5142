"""Sentences about results, in English and Chinese: what a diagnose finding means. The analysis
gives the numbers (``loudou.analyses.diagnose.Finding``); the words are presentation."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from loudou.present.i18n import percent
from loudou.present.views import json_view

if TYPE_CHECKING:
    from loudou.analyses.diagnose import Diagnosis, Finding


def finding_message(f: Finding, lang: str) -> str:
    """One finding as a sentence in ``lang`` ('en' or 'zh')."""
    rate, base = percent(f.conversion), percent(f.baseline)
    lost = f"{f.lost_customers:,.0f}"
    q = "" if f.q_value is None else f"{f.q_value:.2g}" if f.q_value > 0 else "< 1e-300"
    a, b, za, zb = f.from_step, f.to_step, f.from_step_zh, f.to_step_zh
    seg = "" if f.segment is None else f"{f.segment['property']} = {f.segment['value']}"
    zh = lang == "zh"
    if f.kind == "stage":
        if zh:
            return f"{za} → {zb} 流失 {f.entered:,} 位客户中的 {lost} 位（仅 {rate} 继续；各步骤中位数为 {base}）。"
        return (
            f"{a} → {b} loses {lost} of {f.entered:,} customers "
            f"(only {rate} continue; the median step keeps {base})."
        )
    if f.kind == "segment":
        diff = f"{100 * (f.conversion - f.baseline):+.1f}"
        if zh:
            return (
                f"{seg} 从 {za} 到 {zb} 的转化率为 {rate}，其余客户为 {base}（{diff} 个百分点，q = {q}）；"
                f"若与其余客户相同可挽回 {lost} 位客户。"
            )
        return (
            f"{seg} converts {rate} from {a} to {b} against {base} for the rest ({diff} points, "
            f"q = {q}); converting like the rest would win back {lost} customers."
        )
    if f.kind == "period":
        assert f.period is not None
        start, end = f.period["start"], f.period["end"]
        if zh:
            who_zh = f"（{seg}）" if seg else ""
            return f"{start} 至 {end} 开始的客户{who_zh}，{za} → {zb} 转化率降至 {rate}，其他时段为 {base}（q = {q}），流失 {lost} 位客户。"
        who_en = f" ({seg})" if seg else ""
        return (
            f"{a} → {b} fell to {rate} for customers starting {start} to {end}{who_en}, "
            f"against {base} otherwise (q = {q}): {lost} customers lost."
        )
    if zh:
        return f"{za} 阶段有 {rate} 的客户回到 {zb} 等更早阶段，其他阶段为 {base}（q = {q}）：比平常多 {lost} 位客户回流。"
    return (
        f"{rate} of customers at {a} go back to {b} or another earlier stage, against {base} "
        f"at other stages (q = {q}): {lost} more customers loop back than usual."
    )


@json_view("loudou.analyses.diagnose.Diagnosis")
def diagnosis_document(d: Diagnosis) -> dict[str, Any]:
    """``loudou diagnose --json``: each finding with its sentence in both languages."""
    return {
        "findings": [
            {
                **f.to_dict(),
                "message_en": finding_message(f, "en"),
                "message_zh": finding_message(f, "zh"),
            }
            for f in d.findings
        ]
    }
