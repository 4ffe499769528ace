"""The metric catalogue: every derived KPI is a ratio of sums, defined only here.

Facts (raw counts) are summed over a grouping first; ratios are computed from
those sums. A zero or missing denominator gives "no value" (NaN), never 0 or inf.

Two facts are derived per daily row before summing, so that a ratio only
compares days that report both of its parts:

- `spend_budgeted`: spend on the days that have a budget; budget utilisation is
  spend_budgeted / budget, so days without a known budget do not count as spend
  against a budget they never had.
- `impressions_eligible`: impressions on the days that report eligible
  impressions; impression share is impressions_eligible / eligible_impressions,
  so a platform that does not report eligibility cannot inflate the share.

The same definitions exist as SQL sums (`sql_sums`), so one statement can
aggregate thousands of campaigns in the database; this module builds that
statement but never runs it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Select, case, func, select
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col

from core.models import KpiDaily

# Raw daily facts: the summable columns of KpiDaily.
FACTS: tuple[str, ...] = (
    "impressions",
    "clicks",
    "spend",
    "conversions",
    "revenue",
    "eligible_impressions",
    "budget",
)

# Facts derived from each daily row before summing (see the module docstring):
# name -> (fact summed, column that must be reported on the same row).
DERIVED_FACTS: dict[str, tuple[str, str]] = {
    "spend_budgeted": ("spend", "budget"),
    "impressions_eligible": ("impressions", "eligible_impressions"),
}

# Every column a summary carries before the metrics are derived.
SUMMED: tuple[str, ...] = FACTS + tuple(DERIVED_FACTS)

FACT_LABELS: dict[str, str] = {
    "impressions": "impressions",
    "clicks": "clicks",
    "spend": "spend",
    "conversions": "conversions",
    "revenue": "revenue",
    "eligible_impressions": "eligible impressions",
    "budget": "budget",
    "spend_budgeted": "spend on budgeted days",
    "impressions_eligible": "impressions on days reporting eligibility",
}

# Facts counted in money, formatted with the campaign currency.
MONEY_FACTS: frozenset[str] = frozenset(
    {"spend", "revenue", "budget", "spend_budgeted"}
)

# The KPI summary as pages and reports show it: facts, then the catalogue's ratios.
SUMMARY_COLUMNS: tuple[tuple[str, str], ...] = (
    ("impressions", "Impressions"),
    ("clicks", "Clicks"),
    ("spend", "Spend"),
    ("conversions", "Conversions"),
    ("revenue", "Revenue"),
    ("ctr", "CTR"),
    ("cpc", "CPC"),
    ("cpm", "CPM"),
    ("conversion_rate", "Conversion rate"),
    ("cpa", "CPA"),
    ("roas", "ROAS (return per unit of spend; 1.0 = spend earned back)"),
    ("roi", "ROI (profit per unit of spend)"),
    ("budget_utilisation", "Budget utilisation"),
    ("impression_share", "Impression share"),
)

NO_VALUE = "–"


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

    def __post_init__(self) -> None:
        # The Wilson interval treats the value itself as the proportion.
        if self.is_rate and (self.scale != 1.0 or self.offset != 0.0):
            raise ValueError(f"rate metric {self.key} must be a plain proportion")


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
            kind="percent",
            description="(revenue - spend) / spend; 0% means the spend was earned back",
        ),
        Metric(
            "budget_utilisation",
            "Budget utilisation",
            "spend_budgeted",
            "budget",
            kind="percent",
            description="spend / budget, over the days that have a budget",
        ),
        Metric(
            "impression_share",
            "Impression share",
            "impressions_eligible",
            "eligible_impressions",
            is_rate=True,
            kind="percent",
            description="impressions / eligible impressions, over the days that "
            "report eligibility",
        ),
    )
}

METRIC_KEYS: tuple[str, ...] = tuple(CATALOGUE)


# -- values -------------------------------------------------------------------


def ratio(numerator: pd.Series, denominator: pd.Series) -> pd.Series:
    """numerator / denominator, NaN where the denominator is 0 or missing."""
    num = pd.to_numeric(numerator, errors="coerce").astype("float64")
    den = pd.to_numeric(denominator, errors="coerce").astype("float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        values = num / den.where(den != 0)
    return values


def _missing(value: object) -> bool:
    return value is None or bool(pd.isna(value))


def as_number(value: Any) -> float | None:
    """A float, or None for no value (None, NaN, pandas NA)."""
    return None if _missing(value) else float(value)


def value_of(metric: str, sums: Mapping[str, float | None]) -> float | None:
    """One metric from one set of sums; None when it has no value.

    The sums must carry the metric's numerator and denominator facts, derived
    ones included (use `summarise` or `add_derived_facts` to get them).
    """
    spec = CATALOGUE[metric]
    num = sums.get(spec.numerator)
    den = sums.get(spec.denominator)
    if num is None or den is None or _missing(num) or _missing(den) or den == 0:
        return None
    return float(num) / float(den) * spec.scale + spec.offset


def sample_size(metric: str, sums: Mapping[str, float | None]) -> float | None:
    """The metric's denominator sum: the evidence a rule's floor is checked against."""
    den = sums.get(CATALOGUE[metric].denominator)
    return None if den is None or _missing(den) else float(den)


# -- frames -------------------------------------------------------------------


def add_derived_facts(kpis: pd.DataFrame) -> pd.DataFrame:
    """Daily rows with the derived facts added (kept when already present)."""
    out = kpis.copy()
    for name, (fact, reported) in DERIVED_FACTS.items():
        if name in out or fact not in out:
            continue
        if reported in out:
            has = pd.to_numeric(out[reported], errors="coerce").notna()
            out[name] = pd.to_numeric(out[fact], errors="coerce").where(has, 0.0)
        else:
            out[name] = 0.0
    return out


def add_metrics(sums: pd.DataFrame) -> pd.DataFrame:
    """The frame of summed facts with one column per catalogue metric added."""
    out = sums.copy()
    for key, spec in CATALOGUE.items():
        if spec.numerator in out and spec.denominator in out:
            values = ratio(out[spec.numerator], out[spec.denominator])
            out[key] = values * spec.scale + spec.offset
        else:
            out[key] = np.nan
    return out


def _sum_facts(frame: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    facts = [f for f in SUMMED if f in frame.columns]
    if by:
        grouped = frame.groupby(list(by), sort=True, dropna=False)[facts]
        return grouped.sum(min_count=1).reset_index()
    totals = frame[facts].apply(pd.to_numeric).sum(min_count=1)
    return totals.to_frame().T.astype("float64")


def summarise(kpis: pd.DataFrame, by: Sequence[str] = ()) -> pd.DataFrame:
    """Sum the facts of daily KPI rows over a grouping, then derive every metric.

    `by` may name any columns of the frame (campaign_id, source, day, week, ...);
    an empty grouping gives one row of totals. Rows that are already sums (with
    the derived facts present) may be summarised again: sums of sums are exact.
    """
    return add_metrics(_sum_facts(add_derived_facts(kpis), by))


def with_overall(sums: pd.DataFrame, keys: Sequence[str] = ()) -> pd.DataFrame:
    """Per-source sums plus one whole-campaign row per key, its source missing.

    The whole-campaign row sums the sources' sums, so it is exact (ratio of
    sums), not an average of the sources' ratios.
    """
    overall = _sum_facts(sums, keys)
    overall["source"] = None
    frame = pd.concat([sums, overall], ignore_index=True)
    # pandas 3 strings: keep missing sources as missing, not the text "None".
    frame["source"] = frame["source"].astype(object).where(frame["source"].notna())
    return frame


def with_week(kpis: pd.DataFrame) -> pd.DataFrame:
    """The frame with a `week` column: the Monday that starts each row's ISO week."""
    days = pd.to_datetime(kpis["day"])
    monday = days - pd.to_timedelta(days.dt.day_of_week, unit="D")
    return kpis.assign(week=monday.dt.date)


# -- SQL ----------------------------------------------------------------------


def sql_sums() -> list[ColumnElement[Any]]:
    """SUM expressions over KpiDaily, one per summed fact, labelled by its name."""
    columns: list[ColumnElement[Any]] = [
        func.sum(getattr(KpiDaily, fact)).label(fact) for fact in FACTS
    ]
    for name, (fact, reported) in DERIVED_FACTS.items():
        reported_col = getattr(KpiDaily, reported)
        when = case((reported_col.is_not(None), getattr(KpiDaily, fact)), else_=0)
        columns.append(func.sum(when).label(name))
    return columns


def aggregate_statement(
    *,
    by: Sequence[str] = ("campaign_id", "source"),
    campaign_ids: Iterable[int] | None = None,
    start: date | None = None,
    end: date | None = None,
) -> Select[Any]:
    """One SELECT summing the facts of many campaigns at once, grouped by `by`.

    `by` names KpiDaily columns; `start` and `end` bound the day, both inclusive.
    The caller runs it; read the result with `frame_of_rows`.
    """
    group = [getattr(KpiDaily, column) for column in by]
    statement = select(*group, *sql_sums()).group_by(*group)
    if campaign_ids is not None:
        statement = statement.where(col(KpiDaily.campaign_id).in_(list(campaign_ids)))
    if start is not None:
        statement = statement.where(col(KpiDaily.day) >= start)
    if end is not None:
        statement = statement.where(col(KpiDaily.day) <= end)
    return statement


def frame_of_rows(rows: Sequence[Any], by: Sequence[str]) -> pd.DataFrame:
    """Rows of an aggregate statement as a frame of float sums, keys untouched."""
    names = [*by, *SUMMED]
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in names]
    data: dict[str, Any] = dict(zip(by, columns, strict=False))
    for name, values in zip(SUMMED, columns[len(by) :], strict=True):
        # numpy reads None (a sum over no reported value) as NaN here.
        data[name] = np.array(values, dtype="float64")
    return pd.DataFrame(data, columns=names)


# -- formatting ---------------------------------------------------------------


def format_value(metric: str, value: float | None, currency: str = "") -> str:
    """A metric value as people read it: 0.65, 1.23%, 2.10 EUR; a dash for none."""
    if value is None or not math.isfinite(value):
        return NO_VALUE
    kind = CATALOGUE[metric].kind
    if kind == "percent":
        return f"{value * 100:,.2f}%"
    if kind == "money":
        return f"{value:,.2f} {currency}".rstrip()
    return f"{value:,.2f}"


def format_fact(fact: str, value: float | None, currency: str = "") -> str:
    """A summed fact: money with two decimals and the currency, counts whole."""
    if value is None or not math.isfinite(value):
        return NO_VALUE
    if fact in MONEY_FACTS:
        return f"{value:,.2f} {currency}".rstrip()
    if float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:,.1f}"


def describe_amount(fact: str, value: float | None, currency: str = "") -> str:
    """An amount of a fact in words: '1,030.00 EUR of spend', '310 clicks'."""
    amount = format_fact(fact, value, currency)
    if fact in MONEY_FACTS:
        return f"{amount} of {FACT_LABELS[fact]}"
    return f"{amount} {FACT_LABELS[fact]}"


def row_values(row: Mapping[str, Any]) -> dict[str, float | None]:
    """Facts and metrics of one summary row as plain floats, None for no value."""
    out: dict[str, float | None] = {}
    for name in (*SUMMED, *METRIC_KEYS):
        out[name] = as_number(row.get(name))
    return out
