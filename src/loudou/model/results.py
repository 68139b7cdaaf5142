"""Funnel results: plain data that prints, serialises to the stable ``--json`` shape, converts to
pandas and draws a plotly chart."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    import plotly.graph_objects as go


@dataclass
class StepResult:
    """One step's numbers. Conversion and drop-off are relative to the previous step."""

    name: str
    name_zh: str
    count: int
    conversion_from_previous: float
    conversion_from_start: float
    ci95: tuple[float, float]
    ci95_from_start: tuple[float, float]
    dropoff: int
    median_seconds_from_previous: float | None
    p90_seconds_from_previous: float | None

    def label(self, lang: str = "en") -> str:
        return self.name_zh if lang == "zh" and self.name_zh else self.name

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "name_zh": self.name_zh,
            "count": self.count,
            "conversion_from_previous": self.conversion_from_previous,
            "conversion_from_start": self.conversion_from_start,
            "ci95": list(self.ci95),
            "ci95_from_start": list(self.ci95_from_start),
            "dropoff": self.dropoff,
            "median_seconds_from_previous": self.median_seconds_from_previous,
            "p90_seconds_from_previous": self.p90_seconds_from_previous,
        }


@dataclass
class BreakdownResult:
    value: str
    steps: list[StepResult]

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "steps": [s.to_dict() for s in self.steps]}


@dataclass
class FunnelResult:
    funnel: str
    mode: str
    window_seconds: int
    count_by: str
    steps: list[StepResult]
    breakdown_by: str | None = None
    breakdown: list[BreakdownResult] = field(default_factory=list)
    funnel_zh: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The stable ``loudou funnel --json`` document (see README)."""
        return {
            "funnel": self.funnel,
            "mode": self.mode,
            "window_seconds": self.window_seconds,
            "count": self.count_by,
            "steps": [s.to_dict() for s in self.steps],
            "breakdown_by": self.breakdown_by,
            "breakdown": [b.to_dict() for b in self.breakdown],
        }

    def weakest_step(self) -> int | None:
        """Index of the step with the lowest conversion from its previous step (the bottleneck)."""
        candidates = [i for i in range(1, len(self.steps)) if self.steps[i - 1].count > 0]
        if not candidates:
            return None
        return min(candidates, key=lambda i: (self.steps[i].conversion_from_previous, i))

    def rows(self, lang: str = "en") -> list[dict[str, Any]]:
        """Flat rows (one per step, per breakdown value) for tables, CSV and pandas."""
        groups: list[tuple[str | None, list[StepResult]]] = [(None, self.steps)]
        groups += [(b.value, b.steps) for b in self.breakdown]
        out = []
        for value, steps in groups:
            for i, s in enumerate(steps, start=1):
                row: dict[str, Any] = {}
                if self.breakdown_by is not None:
                    row["breakdown"] = "(all)" if value is None else value
                row |= {"step": i, "name": s.label(lang)}
                row |= {
                    k: v
                    for k, v in s.to_dict().items()
                    if k not in ("name", "name_zh", "ci95", "ci95_from_start")
                }
                row |= {"ci95_low": s.ci95[0], "ci95_high": s.ci95[1]}
                row |= {
                    "ci95_from_start_low": s.ci95_from_start[0],
                    "ci95_from_start_high": s.ci95_from_start[1],
                }
                out.append(row)
        return out

    def to_pandas(self, lang: str = "en") -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame(self.rows(lang))

    def to_csv(self, lang: str = "en") -> str:
        rows = self.rows(lang)
        buf = io.StringIO()
        if rows:
            writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        return buf.getvalue()

    def figure(self, lang: str = "en") -> go.Figure:
        """A plotly funnel chart; one trace per breakdown value when there is a breakdown."""
        import plotly.graph_objects as go

        fig = go.Figure()
        labels = [s.label(lang) for s in self.steps]
        if self.breakdown:
            for b in self.breakdown:
                fig.add_trace(
                    go.Funnel(
                        name=b.value,
                        y=labels,
                        x=[s.count for s in b.steps],
                        textinfo="value+percent initial",
                    )
                )
        else:
            fig.add_trace(
                go.Funnel(
                    y=labels, x=[s.count for s in self.steps], textinfo="value+percent initial"
                )
            )
        title = self.funnel_zh if lang == "zh" and self.funnel_zh else self.funnel
        fig.update_layout(title=title, margin={"l": 160, "r": 40, "t": 60, "b": 40})
        return fig

    def _repr_html_(self) -> str:
        return self.to_pandas().to_html(index=False)
