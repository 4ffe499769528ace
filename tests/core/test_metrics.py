"""Metric catalogue: ratios of sums, no value on a zero denominator, groupings."""

from __future__ import annotations

import math
from datetime import date

import pandas as pd
import pytest

from core import metrics
from core.metrics import CATALOGUE, add_metrics, ratio, summarise, value_of, with_week


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
        assert spec.numerator in metrics.FACTS
        assert spec.denominator in metrics.FACTS
        assert spec.kind in {"ratio", "percent", "money"}
