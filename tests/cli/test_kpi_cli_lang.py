"""``loudou kpi ... --lang en|zh``: Chinese headers and titles, the same numbers in both languages,
JSON unchanged by the language, and --lang documented in every sub-command's --help."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import Counter

import pytest
from typer.testing import CliRunner

import loudou
from loudou import demo
from loudou.cli import app
from loudou.errors import LoudouError

# Per sub-command: arguments, and Chinese labels its table output must show.
CASES: dict[str, tuple[list[str], list[str]]] = {
    "attribution": (["--segment", "segment"], ["归因", "渠道", "转化数", "收入", "占比"]),
    "cac": (
        ["--by", "campaign"],
        ["获客成本 CAC", "营销活动", "花费", "新客户", "终身价值 LTV", "回本周期", "备注"],
    ),
    "clv": (
        ["--by", "segment"],
        ["客户终身价值 CLV", "按天计", "客单价 AOV", "存活概率 P(alive)", "预期购买次数"],
    ),
    "retention": ([], ["按月留存（活跃）", "同期群", "人数"]),
    "repeat": (["--by", "segment"], ["复购率", "复购客户", "购买间隔中位数", "全部"]),
    "churn": ([], ["按月流失（购买）", "上期活跃", "留存", "流失率"]),
    "churn-risk": (["--inactive-days", "10"], ["流失预警", "原因", "沉默天数", "风险价值"]),
    "nps": (["--by", "segment"], ["净推荐值 NPS", "推荐者", "贬损者", "95% 置信区间", "按月"]),
    "sales-cycle": (["--by", "segment"], ["销售周期", "首次触点 → 购买", "线索 → 成交", "中位数"]),
    "summary": ([], ["各渠道指标", "获客成本 CAC", "客户终身价值 CLV", "整体", "复购率"]),
}

# English values the KPI code writes into cells, and what Chinese readers see instead.
VALUES = {
    "spend without customers": "有花费无新客",
    "customers without spend": "有新客无花费",
    "p_alive and inactive": "存活概率低且沉默",
    "p_alive": "存活概率低",
    "inactive": "沉默过久",
}

# A number not glued to a letter (p25, c000049 and BG/NBD names are labels or ids, not figures).
NUMBER = re.compile(r"(?<![A-Za-z0-9_.])-?\d[\d,]*(?:\.\d+)?")

runner = CliRunner()


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A small synthetic business with spend, surveys and deals, so every table has rows."""
    path = tmp_path_factory.mktemp("kpi_lang") / "demo.duckdb"
    store = loudou.connect(path)
    demo.load(store, demo.generate(seed=3, customers=300, months=3))
    store.close()
    return str(path)


def kpi(db: str, command: str, *args: str) -> str:
    result = runner.invoke(app, ["kpi", command, *CASES[command][0], *args, "--db", db])
    assert result.exit_code == 0, (command, args, result.output, result.exception)
    return result.output


@pytest.mark.parametrize("command", list(CASES))
def test_chinese_labels_and_same_numbers(demo_db: str, command: str) -> None:
    en = kpi(demo_db, command, "--lang", "en")
    zh = kpi(demo_db, command, "--lang", "zh")
    for label in CASES[command][1]:
        assert label in zh, (command, label)
    numbers = Counter(NUMBER.findall(en))
    assert numbers and numbers == Counter(NUMBER.findall(zh)), command
    for english, chinese in VALUES.items():
        if re.search(rf"│ {english}\s+│", en) or f"({english})" in en:
            assert chinese in zh and english not in zh, (command, english)


@pytest.mark.parametrize("command", ["cac", "clv", "churn-risk", "nps", "summary"])
def test_json_does_not_depend_on_the_language(demo_db: str, command: str) -> None:
    assert kpi(demo_db, command, "--json", "--lang", "zh") == kpi(
        demo_db, command, "--json", "--lang", "en"
    )


@pytest.mark.parametrize("command", list(CASES))
def test_help_documents_lang(command: str) -> None:
    result = runner.invoke(app, ["kpi", command, "--help"], env={"COLUMNS": "120"})
    assert result.exit_code == 0 and "--lang" in result.output
    assert "'en' or 'zh'" in result.output


def test_bad_language_is_one_line(demo_db: str) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "loudou.cli", "kpi", "nps", "--lang", "fr", "--db", demo_db],
        capture_output=True,
        text=True,
        env={**os.environ, "LANG": "C.UTF-8"},
        timeout=120,
    )
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.startswith("error: --lang:") and r.stderr.count("\n") == 1


@pytest.mark.parametrize(
    "args,field",
    [(["clv", "--page-size", "0"], "--page-size"), (["churn-risk", "--limit", "-1"], "--limit")],
)
def test_bad_paging_names_the_option(demo_db: str, args: list[str], field: str) -> None:
    result = runner.invoke(app, ["kpi", *args, "--db", demo_db])
    assert isinstance(result.exception, LoudouError)
    assert result.exception.field == field
