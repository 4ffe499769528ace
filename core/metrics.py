"""The metric catalogue: every derived KPI is a ratio of sums, defined only here.

Facts (raw counts) are summed over a grouping first; ratios are computed from
those sums. A zero or missing denominator gives "no value" (NaN), never 0 or inf.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

FACTS: tuple[str, ...] = (
    "impressions",
    "clicks",
    "spend",
    "conversions",
    "revenue",
    "eligible_impressions",
    "budget",
)


@dataclass(frozen=True)
class Metric:
    """One derived KPI: numerator over denominator, optionally scaled and shifted."""

    key: str
    label: str
    numerator: str
    denominator: str
    scale: float = 1.0
    # ROI is (revenue - spend) / spend, i.e. ROAS minus one.
    offset: float = 0.0
    # Rates are binomial proportions (events out of trials): they get a Wilson interval.
    is_rate: bool = False
    kind: str = "ratio"  # how to format it: ratio, percent or money
    description: str = ""


CATALOGUE: dict[str, Metric] = {
    m.key: m
    for m in (
        Metric(
            "ctr",
            "CTR",
            "clicks",
            "impressions",
            is_rate=True,
            kind="percent",
            description="clicks / impressions",
        ),
        Metric(
            "cpc", "CPC", "spend", "clicks", kind="money", description="spend / clicks"
        ),
        Metric(
            "cpm",
            "CPM",
            "spend",
            "impressions",
            scale=1000.0,
            kind="money",
            description="1000 x spend / impressions",
        ),
        Metric(
            "conversion_rate",
            "Conversion rate",
            "conversions",
            "clicks",
            is_rate=True,
            kind="percent",
            description="conversions / clicks",
        ),
        Metric(
            "cpa",
            "CPA",
            "spend",
            "conversions",
            kind="money",
            description="spend / conversions",
        ),
        Metric(
            "roas",
            "ROAS (return per unit of spend)",
            "revenue",
            "spend",
            description="revenue / spend; 1.0 means the spend was earned back",
        ),
        Metric(
            "roi",
            "ROI (profit per unit of spend)",
            "revenue",
            "spend",
            offset=-1.0,
            description="(revenue - spend) / spend",
        ),
        Metric(
            "budget_utilisation",
            "Budget utilisation",
            "spend",
            "budget",
            kind="percent",
            description="spend / budget for the same days",
        ),
        Metric(
            "impression_share",
            "Impression share",
            "impressions",
            "eligible_impressions",
            is_rate=True,
            kind="percent",
            description="impressions / eligible impressions",
        ),
    )
}

METRIC_KEYS: tuple[str, ...] = tuple(CATALOGUE)


def ratio(numerator: pd.Series, denominator: pd.Series) -> pd.Series:
    """numerator / denominator, NaN where the denominator is 0 or missing."""
    num = pd.to_numeric(numerator, errors="coerce").astype("float64")
    den = pd.to_numeric(denominator, errors="coerce").astype("float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        values = num / den.where(den != 0)
    return values


def value_of(metric: str, sums: dict[str, float | None]) -> float | None:
    """One metric from one set of sums; None when it has no value."""
    spec = CATALOGUE[metric]
    num = sums.get(spec.numerator)
    den = sums.get(spec.denominator)
    if num is None or den is None or den == 0 or pd.isna(num) or pd.isna(den):
        return None
    return float(num) / float(den) * spec.scale + spec.offset


def add_metrics(sums: pd.DataFrame) -> pd.DataFrame:
    """The frame of summed facts with one column per catalogue metric added."""
    out = sums.copy()
    for key, spec in CATALOGUE.items():
        if spec.numerator in out and spec.denominator in out:
            out[key] = ratio(out[spec.numerator], out[spec.denominator]) * spec.scale
            out[key] = out[key] + spec.offset
        else:
            out[key] = np.nan
    return out


def summarise(kpis: pd.DataFrame, by: Sequence[str] = ()) -> pd.DataFrame:
    """Sum the facts of daily KPI rows over a grouping, then derive every metric.

    `by` may name any columns of the frame (campaign_id, source, day, week, ...);
    an empty grouping gives one row of totals.
    """
    facts = [f for f in FACTS if f in kpis.columns]
    if by:
        sums = kpis.groupby(list(by), sort=True, dropna=False)[facts].sum(min_count=1)
        sums = sums.reset_index()
    else:
        sums = kpis[facts].sum(min_count=1).to_frame().T
    return add_metrics(sums)


def with_week(kpis: pd.DataFrame) -> pd.DataFrame:
    """The frame with a `week` column: the Monday that starts each row's ISO week."""
    days = pd.to_datetime(kpis["day"])
    monday = days - pd.to_timedelta(days.dt.day_of_week, unit="D")
    return kpis.assign(week=monday.dt.date)
