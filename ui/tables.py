"""KPI tables whose totals are ratios of sums, never means of ratios."""

from __future__ import annotations

import pandas as pd

from core import metrics

SUMMARY_COLUMNS = (
    "impressions",
    "clicks",
    "spend",
    "conversions",
    "revenue",
    "ctr",
    "cpc",
    "cpm",
    "conversion_rate",
    "cpa",
    "roas",
    "roi",
    "budget_utilisation",
    "impression_share",
)


def kpi_summary(kpis: pd.DataFrame) -> pd.DataFrame:
    """One row per source plus a Total row, all from summed facts."""
    per_source = metrics.summarise(kpis, by=["source"])
    total = metrics.summarise(kpis).assign(source="Total")
    table = pd.concat([per_source, total], ignore_index=True)
    return table[["source", *SUMMARY_COLUMNS]]
