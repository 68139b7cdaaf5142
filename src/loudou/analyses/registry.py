"""The analysis registry: each analysis declared once, with its name, its parameters (defaults,
bounds, help in English and Chinese) and the function that runs it. The CLI commands
(``loudou.cli.generated``) and the HTTP routes (``loudou.server.generated``) are generated from these
declarations, and so will be the dashboard's forms; how a result is shown (tables, CSV, JSON) is
registered per result type in ``loudou.present``, apart from the analyses.

A run function takes the store, the funnel spec (for analyses of a funnel) and the validated
parameters, and returns a result with ``to_dict()``: the JSON that ``--json`` prints and the HTTP
route answers. Analyses are imported only when run, so reading the registry stays cheap.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from loudou.backends.base import Store
from loudou.model.spec import FunnelSpec


class Params(BaseModel):
    """An analysis's parameters: unknown names are refused, so a typo never means a default."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def param(
    default: Any = ...,
    *,
    help: str,
    zh: str,
    flag: str | None = None,
    **bounds: Any,
) -> Any:
    """A parameter: ``help`` and ``zh`` say what it does; ``flag`` is its CLI option when that
    is not ``--name-with-dashes`` (a list parameter's option is given once per item)."""
    extra: dict[str, Any] = {"zh": zh}
    if flag is not None:
        extra["flag"] = flag
    return Field(default, description=help, json_schema_extra=extra, **bounds)


BY_HELP = (
    "Property or trait (value at step 1), NAME:18,25,35 (numeric bands), cohort[:TRAIT], "
    "'segments' (all saved), 'segment:a,b' or 'rfm'"
)
BY_ZH = "按属性或特征（第 1 步时的值）、NAME:18,25,35（数值分段）、cohort[:特征]、segments、segment:a,b 或 rfm 分组"


def _segment() -> Any:
    return param(None, help="Only customers in this saved segment.", zh="只看该已保存分群的客户")


def _period() -> Any:
    return param("week", help="day, week or month of step-1 time.", zh="按第 1 步时间的日、周或月")


def _min_customers(help: str = "Smaller cells say 'too few customers'.") -> Any:
    return param(30, help=help, zh="少于该客户数的格子不做检验", ge=1)


class CompareParams(Params):
    by: list[str] = param(help=BY_HELP + ".", zh=BY_ZH, min_length=1)
    segment: str | None = _segment()
    min_customers: int = _min_customers()
    limit: int = param(
        10, help="Top N values of a property; the rest is 'other'.", zh="属性取前 N 个值", ge=1
    )


class DiagnoseParams(Params):
    by: list[str] = param([], help=BY_HELP + "; may be empty.", zh=BY_ZH)
    period: str = param(
        "week", help="Scan conversion per day, week or month of step-1 time.", zh="按日、周或月扫描"
    )
    segment: str | None = _segment()
    alpha: float = param(
        0.05, help="False discovery rate (Benjamini–Hochberg) for findings.", zh="错误发现率"
    )
    limit: int = param(10, help="Show at most this many findings.", zh="最多显示的发现数", ge=1)
    min_customers: int = _min_customers()


class TrendsParams(Params):
    period: str = _period()
    segment: str | None = _segment()


class TimeToConvertParams(Params):
    from_step: int = param(1, help="1-based step to start from.", zh="起始步骤（从 1 开始）")
    to_step: int | None = param(
        None, help="1-based step to end at (default: last).", zh="结束步骤（默认最后一步）"
    )
    bins: int = param(20, help="Histogram bins.", zh="直方图分箱数", ge=1)
    segment: str | None = _segment()


class TransitionsParams(Params):
    pass


class CorrelateParams(Params):
    step: int = param(1, help="1-based step; converting to the next.", zh="步骤（转化到下一步）")
    properties: list[str] = param(
        [],
        help="Event property whose values to test.",
        zh="要检验取值的事件属性",
        flag="--property",
    )
    top: int = param(10, help="Top N each way.", zh="正负各取前 N 个", ge=1)
    min_customers: int = _min_customers("Skip rarer features.")
    segment: str | None = _segment()


class PathsParams(Params):
    after: str | None = param(None, help="Paths starting at this event.", zh="从该事件开始的路径")
    before: str | None = param(None, help="Paths ending at this event.", zh="到该事件结束的路径")
    depth: int = param(4, help="Events shown besides the anchors.", zh="锚点之外显示的事件数", ge=1)
    limit: int = param(10, help="Top N paths.", zh="前 N 条路径", ge=1)
    exclude: list[str] = param([], help="Event to ignore (noise).", zh="忽略的事件（噪声）")
    keep_repeats: bool = param(
        False, help="Keep consecutive repeats of an event.", zh="保留连续重复的事件"
    )


Runner = Callable[[Store, FunnelSpec | None, Any], Any]


@dataclass(frozen=True)
class Analysis:
    """One analysis as the edges see it."""

    name: str  # the CLI command
    title: str  # one line, English
    title_zh: str
    help: str  # the CLI's --help and the HTTP route's description
    params: type[Params]
    runner: str  # "module:function", the function taking (store, spec, params)
    result: str  # "module.Class" of what the runner returns (renderers are registered by it)
    route: str  # the HTTP route (POST, JSON body: the parameters, and ``spec`` if on_funnel)
    on_funnel: bool = True  # takes a funnel spec (a YAML file on the CLI, ``spec`` over HTTP)
    example: str = ""

    def run(self, store: Store, spec: FunnelSpec | None, params: Params) -> Any:
        module, _, name = self.runner.partition(":")
        function: Runner = getattr(importlib.import_module(module), name)
        return function(store, spec, params)


ANALYSES: dict[str, Analysis] = {
    a.name: a
    for a in (
        Analysis(
            "compare",
            "Each segment's conversion against the rest",
            "各分组与其余客户的转化对比",
            "Each segment's step-to-step conversion against the rest: rate with 95% interval, "
            "difference in points, p-value, Benjamini–Hochberg q-value and customers won back.",
            CompareParams,
            "loudou.analyses.runners:compare",
            "loudou.analyses.compare.CompareResult",
            "/v1/funnels/compare",
            example="loudou compare spec.yaml --by region --by segments",
        ),
        Analysis(
            "diagnose",
            "Bottleneck findings ranked by customers lost",
            "按流失客户数排序的瓶颈发现",
            "Find the bottleneck: the stages, segments, periods and loops losing the most "
            "customers, each with its size and significance. A loop is a move back to an earlier "
            "stage before the customer first reaches the last step (browsing again after "
            "converting is not a loop).",
            DiagnoseParams,
            "loudou.analyses.runners:diagnose",
            "loudou.analyses.diagnose.Diagnosis",
            "/v1/funnels/diagnose",
            example="loudou diagnose spec.yaml --by device --by region --period week --lang zh",
        ),
        Analysis(
            "trends",
            "Conversion per day, week or month of step-1 time",
            "按第 1 步时间的日、周、月看转化趋势",
            "Each transition's conversion per day, week or month of step-1 time, with 95% "
            "intervals. 'complete' says every customer of the period has had the whole "
            "conversion window.",
            TrendsParams,
            "loudou.analyses.runners:trends",
            "loudou.analyses.trends.TrendResult",
            "/v1/funnels/trends",
        ),
        Analysis(
            "time-to-convert",
            "Time between two steps",
            "两步之间的转化用时",
            "Distribution of the time between two steps: percentiles and histogram data.",
            TimeToConvertParams,
            "loudou.analyses.runners:time_to_convert",
            "loudou.analyses.timing.TimeToConvert",
            "/v1/funnels/time-to-convert",
        ),
        Analysis(
            "transitions",
            "Stage transition matrix",
            "阶段转移矩阵",
            "Stage transition matrix over all events mapped to the spec's steps: forward moves, "
            "backward moves and repeats (rows: from, columns: to).",
            TransitionsParams,
            "loudou.analyses.runners:transitions",
            "loudou.analyses.transitions.TransitionMatrix",
            "/v1/funnels/transitions",
        ),
        Analysis(
            "correlate",
            "What raises or lowers the odds of converting",
            "哪些行为提高或降低转化几率",
            "Events and property values seen before a step that raise or lower the odds of "
            "converting to the next: odds ratios with 95% intervals and q-values (step events "
            "skipped).",
            CorrelateParams,
            "loudou.analyses.runners:correlate",
            "loudou.analyses.correlation.CorrelationResult",
            "/v1/funnels/correlate",
        ),
        Analysis(
            "paths",
            "Top paths after, before or between events (Sankey data)",
            "事件之后、之前或之间的常见路径（桑基图数据）",
            "Top paths after an event, before one, or between two, with Sankey-ready nodes and "
            "links.",
            PathsParams,
            "loudou.analyses.runners:paths",
            "loudou.analyses.paths.PathsResult",
            "/v1/paths",
            on_funnel=False,
        ),
    )
}
