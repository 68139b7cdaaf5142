"""Customer value and marketing KPIs: attribution, CAC, CLV, retention, repeat purchase, churn,
NPS and the sales cycle (``loudou.kpi`` gathers them in one namespace for notebooks)."""
