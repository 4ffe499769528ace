"""Metric catalogue: ratios of sums, no value on a zero denominator, groupings."""

from __future__ import annotations

import math
from datetime import date

import numpy as np
import pandas as pd
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from core import metrics
from core.metrics import CATALOGUE, add_metrics, ratio, summarise, value_of, with_week
from tests.factories import add_kpis, make_campaign, make_user


def _rows(*rows: tuple[str, date, float, float, int, int]) -> pd.DataFrame:
    return pd.DataFrame(
        rows, columns=["source", "day", "spend", "revenue", "clicks", "impressions"]
    )


# Two days whose daily ROAS are 1.0 and 5.0 (mean 3.0); the true ROAS is 150 / 110.
UNEVEN = _rows(
    ("google_ads", date(2026, 11, 2), 100.0, 100.0, 10, 1000),
    ("google_ads", date(2026, 11, 3), 10.0, 50.0, 90, 1000),
)


def test_ratio_is_nan_where_the_denominator_is_zero_or_missing():
    values = ratio(pd.Series([6, 5, 4, None]), pd.Series([3, 0, None, 2]))

    assert values.iloc[0] == 2.0
    assert values.iloc[1:].isna().all()
    assert not values.isin([math.inf, -math.inf]).any()


def test_value_of_has_no_value_on_a_zero_or_missing_denominator():
    assert value_of("roas", {"revenue": 50.0, "spend": 0.0}) is None
    assert value_of("roas", {"revenue": 50.0}) is None
    assert value_of("roas", {"revenue": 50.0, "spend": float("nan")}) is None
    assert value_of("roas", {"revenue": None, "spend": 10.0}) is None


def test_value_of_applies_scale_and_offset():
    sums = {"revenue": 150.0, "spend": 100.0, "impressions": 2000.0}

    assert value_of("roas", sums) == pytest.approx(1.5)
    assert value_of("roi", sums) == pytest.approx(0.5)
    assert value_of("cpm", sums) == pytest.approx(50.0)


def test_a_zero_revenue_is_a_value_not_a_missing_one():
    assert value_of("roas", {"revenue": 0.0, "spend": 10.0}) == 0.0


def test_totals_are_ratios_of_sums_not_means_of_daily_ratios():
    total = summarise(UNEVEN).iloc[0]

    assert total["spend"] == 110.0
    assert total["roas"] == pytest.approx(150.0 / 110.0)
    assert total["roas"] != pytest.approx(UNEVEN.pipe(add_metrics)["roas"].mean())
    assert total["ctr"] == pytest.approx(100 / 2000)


def test_summarise_groups_by_source():
    kpis = pd.concat(
        [
            UNEVEN,
            _rows(
                ("meta", date(2026, 11, 2), 20.0, 0.0, 5, 500),
                ("meta", date(2026, 11, 3), 0.0, 0.0, 0, 0),
            ),
        ]
    )

    by_source = summarise(kpis, by=["source"]).set_index("source")

    assert list(by_source.index) == ["google_ads", "meta"]
    assert by_source.loc["google_ads", "roas"] == pytest.approx(150.0 / 110.0)
    assert by_source.loc["meta", "roas"] == 0.0
    assert by_source.loc["meta", "spend"] == 20.0
    assert math.isnan(by_source.loc["meta", "conversion_rate"])


def test_a_group_with_zero_spend_has_no_roas():
    kpis = _rows(("tiktok", date(2026, 11, 2), 0.0, 40.0, 3, 100))

    assert math.isnan(summarise(kpis, by=["source"])["roas"].iloc[0])


def test_with_week_adds_the_monday_of_each_iso_week():
    days = [date(2026, 11, 1), date(2026, 11, 2), date(2026, 11, 8), date(2026, 11, 9)]
    kpis = pd.DataFrame({"day": days, "spend": [1.0, 2.0, 3.0, 4.0]})

    weeks = with_week(kpis)["week"].tolist()

    # 1 Nov 2026 is a Sunday: it belongs to the week starting Monday 26 Oct.
    assert weeks == [
        date(2026, 10, 26),
        date(2026, 11, 2),
        date(2026, 11, 2),
        date(2026, 11, 9),
    ]


def test_summarise_by_week_sums_each_week_before_dividing():
    kpis = _rows(
        ("google_ads", date(2026, 11, 2), 100.0, 100.0, 10, 1000),
        ("google_ads", date(2026, 11, 3), 10.0, 50.0, 10, 1000),
        ("google_ads", date(2026, 11, 9), 40.0, 20.0, 10, 1000),
    )

    weekly = summarise(with_week(kpis), by=["week"])

    assert weekly["week"].tolist() == [date(2026, 11, 2), date(2026, 11, 9)]
    assert weekly["spend"].tolist() == [110.0, 40.0]
    assert weekly["roas"].tolist() == pytest.approx([150.0 / 110.0, 0.5])


def test_add_metrics_leaves_metrics_without_their_facts_empty():
    out = add_metrics(pd.DataFrame({"spend": [10.0], "revenue": [25.0]}))

    assert out["roas"].iloc[0] == pytest.approx(2.5)
    assert math.isnan(out["ctr"].iloc[0])
    assert math.isnan(out["impression_share"].iloc[0])
    assert set(CATALOGUE) <= set(out.columns)


def test_every_catalogue_metric_divides_two_known_facts():
    for key, spec in CATALOGUE.items():
        assert spec.key == key
        # Budget utilisation and impression share divide derived facts, summed
        # like the raw ones (see metrics.DERIVED_FACTS).
        assert spec.numerator in metrics.SUMMED
        assert spec.denominator in metrics.SUMMED
        assert spec.kind in {"ratio", "percent", "money"}


# -- derived facts, SQL sums and formatting ----------------------------------


def daily(**columns: list[object]) -> pd.DataFrame:
    return pd.DataFrame(columns)


def test_roas_is_ratio_of_sums_not_mean_of_daily_ratios() -> None:
    # Day 1 earns 3.0 per unit of spend, day 2 earns 0.1: the mean of the daily
    # ratios is 1.55, but the campaign earned 390 on 1,000 of spend.
    kpis = daily(day=["d1", "d2"], spend=[100.0, 900.0], revenue=[300.0, 90.0])

    totals = metrics.summarise(kpis).iloc[0]

    assert totals["roas"] == pytest.approx(0.39)
    assert totals["roi"] == pytest.approx(-0.61)


def test_every_catalogue_metric_from_hand_computed_sums() -> None:
    kpis = daily(
        impressions=[40_000, 60_000],
        clicks=[300, 500],
        spend=[600.0, 1_000.0],
        conversions=[20.0, 12.0],
        revenue=[1_200.0, 400.0],
        eligible_impressions=[80_000.0, 120_000.0],
        budget=[500.0, 1_000.0],
    )

    row = metrics.summarise(kpis).iloc[0]

    assert row["ctr"] == pytest.approx(800 / 100_000)
    assert row["cpc"] == pytest.approx(1_600 / 800)
    assert row["cpm"] == pytest.approx(1000 * 1_600 / 100_000)
    assert row["conversion_rate"] == pytest.approx(32 / 800)
    assert row["cpa"] == pytest.approx(1_600 / 32)
    assert row["roas"] == pytest.approx(1_600 / 1_600)
    assert row["roi"] == pytest.approx(0.0)
    assert row["budget_utilisation"] == pytest.approx(1_600 / 1_500)
    assert row["impression_share"] == pytest.approx(100_000 / 200_000)


def test_zero_denominator_gives_no_value_not_zero_or_infinity() -> None:
    kpis = daily(impressions=[0], clicks=[0], spend=[0.0], conversions=[0.0])

    row = metrics.summarise(kpis).iloc[0]

    for key in ("ctr", "cpc", "cpm", "conversion_rate", "cpa", "roas", "roi"):
        assert math.isnan(row[key]), key
    assert metrics.value_of("cpc", {"spend": 10.0, "clicks": 0}) is None
    assert metrics.value_of("cpc", {"spend": 10.0, "clicks": None}) is None


def test_budget_utilisation_counts_only_days_with_a_budget() -> None:
    # Day 2 has no known budget: its 500 of spend is not spend against a budget.
    kpis = daily(spend=[100.0, 500.0], budget=[80.0, None])

    row = metrics.summarise(kpis).iloc[0]

    assert row["spend_budgeted"] == pytest.approx(100.0)
    assert row["budget_utilisation"] == pytest.approx(1.25)


def test_budget_utilisation_has_no_value_without_any_budget() -> None:
    row = metrics.summarise(daily(spend=[100.0], budget=[None])).iloc[0]

    assert math.isnan(row["budget_utilisation"])


def test_impression_share_counts_only_rows_reporting_eligibility() -> None:
    # Meta reports no eligible impressions; its 5,000 impressions must not
    # count against Google's 1,000 eligible ones.
    kpis = daily(
        source=["google_ads", "meta"],
        impressions=[400, 5_000],
        eligible_impressions=[1_000.0, None],
    )

    overall = metrics.summarise(kpis).iloc[0]
    per_source = metrics.summarise(kpis, by=["source"]).set_index("source")

    assert overall["impression_share"] == pytest.approx(0.4)
    assert per_source.loc["google_ads", "impression_share"] == pytest.approx(0.4)
    assert math.isnan(per_source.loc["meta", "impression_share"])


def test_summarising_sums_again_is_exact() -> None:
    kpis = daily(
        source=["a", "a", "b"],
        spend=[100.0, 500.0, 50.0],
        budget=[80.0, None, 100.0],
        revenue=[10.0, 20.0, 30.0],
    )

    per_source = metrics.summarise(kpis, by=["source"])
    again = metrics.summarise(per_source).iloc[0]
    direct = metrics.summarise(kpis).iloc[0]

    assert again["budget_utilisation"] == pytest.approx(direct["budget_utilisation"])
    assert again["budget_utilisation"] == pytest.approx(150.0 / 180.0)
    assert again["roas"] == pytest.approx(60.0 / 650.0)


def test_with_overall_adds_one_whole_campaign_row_per_key() -> None:
    sums = metrics.add_derived_facts(
        daily(
            campaign_id=[1, 1, 2],
            source=["meta", "tiktok", "meta"],
            spend=[10.0, 30.0, 5.0],
            revenue=[5.0, 45.0, 1.0],
        )
    )

    frame = metrics.add_metrics(metrics.with_overall(sums, ["campaign_id"]))
    overall = frame[frame["source"].isna()].set_index("campaign_id")

    assert len(frame) == 5
    assert overall.loc[1, "roas"] == pytest.approx(50.0 / 40.0)
    assert overall.loc[2, "roas"] == pytest.approx(0.2)
    assert frame["source"].isna().sum() == 2


def test_sample_size_is_the_metric_denominator() -> None:
    sums = {"clicks": 250.0, "impressions": 10_000.0, "budget": None}

    assert metrics.sample_size("ctr", sums) == 10_000.0
    assert metrics.sample_size("conversion_rate", sums) == 250.0
    assert metrics.sample_size("budget_utilisation", sums) is None


@pytest.mark.parametrize(
    ("metric", "value", "text"),
    [
        ("ctr", 0.0123, "1.23%"),
        ("cpc", 2.5, "2.50 EUR"),
        ("roas", 0.654, "0.65"),
        ("roi", -0.35, "-35.00%"),
        ("budget_utilisation", 1.1, "110.00%"),
        ("cpa", None, metrics.NO_VALUE),
        ("cpa", float("nan"), metrics.NO_VALUE),
    ],
)
def test_format_value_by_kind(metric: str, value: float | None, text: str) -> None:
    assert metrics.format_value(metric, value, "EUR") == text


def test_roas_and_roi_labels_are_never_confused() -> None:
    assert "return per unit of spend" in metrics.CATALOGUE["roas"].label
    assert (
        "1.0 means the spend was earned back" in metrics.CATALOGUE["roas"].description
    )
    assert "profit" in metrics.CATALOGUE["roi"].label
    assert metrics.CATALOGUE["roi"].kind == "percent"


def test_sql_aggregate_matches_pandas_on_both_databases(engine: Engine) -> None:
    with Session(engine) as session:
        owner = make_user(session)
        campaign = make_campaign(session, owner)
        other = make_campaign(session, owner)
        start = campaign.start_date
        add_kpis(session, campaign, "google_ads", start, 3, eligible_impressions=2500.0)
        add_kpis(session, campaign, "meta", start, 2, budget=25.0, spend=40.0)
        add_kpis(session, campaign, "meta", date(2026, 11, 3), 1, spend=10.0)
        add_kpis(session, other, "tiktok", start, 4, clicks=0, conversions=0.0)

        statement = metrics.aggregate_statement(
            campaign_ids=[campaign.id, other.id], end=date(2026, 11, 13)
        )
        by = ("campaign_id", "source")
        sums = metrics.frame_of_rows(session.execute(statement).all(), by)

    sums = metrics.add_metrics(sums).set_index(["campaign_id", "source"])
    meta = sums.loc[(campaign.id, "meta")]
    google = sums.loc[(campaign.id, "google_ads")]
    tiktok = sums.loc[(other.id, "tiktok")]
    assert meta["spend"] == pytest.approx(90.0)
    assert meta["spend_budgeted"] == pytest.approx(80.0)
    assert meta["budget_utilisation"] == pytest.approx(80.0 / 50.0)
    assert google["impression_share"] == pytest.approx(3000 / 7500)
    assert np.isnan(google["budget"])
    assert np.isnan(tiktok["cpc"])
    assert tiktok["clicks"] == 0


def test_sql_aggregate_honours_the_period(engine: Engine) -> None:
    with Session(engine) as session:
        owner = make_user(session)
        campaign = make_campaign(session, owner)
        add_kpis(session, campaign, "meta", date(2026, 11, 1), 10, spend=10.0)

        statement = metrics.aggregate_statement(
            by=("source",), start=date(2026, 11, 3), end=date(2026, 11, 5)
        )
        sums = metrics.frame_of_rows(session.execute(statement).all(), ("source",))

    assert sums["spend"].tolist() == pytest.approx([30.0])
