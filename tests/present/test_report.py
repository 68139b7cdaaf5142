"""The HTML report: one offline file with chart, table and bottleneck, in English and Chinese."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from loudou.analyses.stats import wilson_interval
from loudou.model.results import BreakdownResult, FunnelResult, StepResult
from loudou.present.report import format_duration, render_report, weakest_sentence, write_report

EVIL = "<script>alert(1)</script>"


def steps(counts: list[int], names: list[tuple[str, str]]) -> list[StepResult]:
    out = []
    for i, ((name, name_zh), count) in enumerate(zip(names, counts, strict=True)):
        prev, start = (counts[i - 1] if i else counts[0]), counts[0]
        out.append(
            StepResult(
                name=name,
                name_zh=name_zh,
                count=count,
                conversion_from_previous=count / prev if prev else 0.0,
                conversion_from_start=count / start if start else 0.0,
                ci95=wilson_interval(count, prev),
                ci95_from_start=wilson_interval(count, start),
                dropoff=prev - count,
                median_seconds_from_previous=None if i == 0 else 3.2 * 3600,
                p90_seconds_from_previous=None if i == 0 else 2.1 * 86400,
            )
        )
    return out


NAMES = [("Visit", "访问"), ("Signup", "注册"), ("Purchase", "购买")]


def funnel(
    counts: list[int], names: list[tuple[str, str]] = NAMES, breakdown_by: str | None = None
) -> FunnelResult:
    return FunnelResult(
        funnel="Web shop",
        funnel_zh="网店",
        mode="ordered",
        window_seconds=14 * 86400,
        count_by="customers",
        steps=steps(counts, names),
        breakdown_by=breakdown_by,
    )


@pytest.fixture
def result() -> FunnelResult:
    return funnel([1000, 400, 40])


def test_report_is_self_contained(result: FunnelResult, tmp_path: Path) -> None:
    path = write_report(result, tmp_path / "out" / "report.html")
    text = path.read_text(encoding="utf-8")
    assert path == tmp_path / "out" / "report.html"
    assert text.startswith("<!DOCTYPE html>")
    assert re.search(r"plotly\.js v\d", text)  # the library itself, inline
    assert '<script src="http' not in text
    assert not re.search(r"<script[^>]*\bsrc=", text) and "<link" not in text
    assert len(text) > 1_000_000


def test_report_names_steps_and_the_weakest_stage(result: FunnelResult, tmp_path: Path) -> None:
    text = write_report(result, tmp_path / "r.html").read_text(encoding="utf-8")
    for name in ("Web shop", "Visit", "Signup", "Purchase"):
        assert name in text
    assert "Biggest drop: Signup → Purchase, only 10.0% continue." in text
    assert 'class="weakest"><td>Purchase</td>' in text
    assert "40.0% (37.0–43.1%)" in text  # conversion with its Wilson interval
    assert "3.2 h" in text and "2.1 d" in text and "14 d" in text


def test_chinese_report(result: FunnelResult, tmp_path: Path) -> None:
    text = write_report(result, tmp_path / "r.html", lang="zh").read_text(encoding="utf-8")
    assert '<html lang="zh-CN">' in text
    assert "最大流失：注册 → 购买，仅 10.0% 继续。" in text
    assert "网店" in text and "阶段" in text and "3.2 小时" in text


def test_user_text_is_escaped(tmp_path: Path) -> None:
    names = [(EVIL, EVIL), ("Signup", "注册"), ("Purchase", "购买")]
    evil = funnel([10, 5, 1], names, breakdown_by="customer.x")
    evil.funnel = evil.funnel_zh = f"My {EVIL} funnel"
    evil.breakdown = [BreakdownResult(value=EVIL, steps=steps([10, 5, 1], names))]
    for lang in ("en", "zh"):
        text = write_report(evil, tmp_path / "r.html", lang).read_text(encoding="utf-8")
        assert EVIL not in text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text


def test_several_funnels_share_one_copy_of_plotly(result: FunnelResult, tmp_path: Path) -> None:
    other = funnel([50, 45, 5], [("A", "甲"), ("B", "乙"), ("C", "丙")])
    other.funnel = "Second"
    text = write_report([result, other], tmp_path / "r.html").read_text(encoding="utf-8")
    assert len(re.findall(r"plotly\.js v\d", text)) == 1
    assert text.count('class="plotly-graph-div"') == 2
    assert "Biggest drop: B → C, only 11.1% continue." in text


def test_empty_funnel_says_so() -> None:
    assert weakest_sentence(funnel([0, 0, 0])) == "No one entered this funnel."
    assert weakest_sentence(funnel([5], [("Only", "唯一")])) is None


def test_report_is_deterministic(result: FunnelResult) -> None:
    assert render_report(result) == render_report(result)


@pytest.mark.parametrize("bad", [[], "fr"])
def test_rejects_bad_input(result: FunnelResult, bad: object) -> None:
    with pytest.raises(ValueError):
        if bad == []:
            render_report([])
        else:
            render_report(result, lang=str(bad))


@pytest.mark.parametrize(
    ("seconds", "en", "zh"),
    [
        (None, "—", "—"),
        (45, "45 s", "45 秒"),
        (750, "12.5 min", "12.5 分钟"),
        (3.2 * 3600, "3.2 h", "3.2 小时"),
        (2.1 * 86400, "2.1 d", "2.1 天"),
    ],
)
def test_format_duration(seconds: float | None, en: str, zh: str) -> None:
    assert format_duration(seconds) == en
    assert format_duration(seconds, "zh") == zh
