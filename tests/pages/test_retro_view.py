"""What the retrospective view shows, as plain functions."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

import pandas as pd

from core import metrics
from core.services.retrospectives import InsightRow, RetroRow
from ui.retro_view import evidence_line, group_insights, kpi_table, pick_label

RATE = InsightRow(
    id=1,
    rule_key="low_ctr",
    rule_version=3,
    source="meta",
    metric="ctr",
    finding="triggered",
    severity="medium",
    observed=0.003,
    threshold=0.005,
    interval=(0.00268, 0.003359),
    sample_size=100_000,
    title="Low CTR: CTR 0.30% on Meta",
    text="",
    actions=(),
    origin="rule",
    dismissed=False,
    dismissed_reason="",
    edited_at=None,
)


def test_evidence_line_of_a_rate_shows_the_interval_and_sample() -> None:
    line = evidence_line(RATE, "EUR")

    assert line == (
        "Rule low_ctr v3 · Meta · observed 0.30% · threshold 0.50% · "
        "95% interval 0.27% to 0.34% · sample 100,000 impressions"
    )


def test_evidence_line_of_money_uses_the_currency() -> None:
    cpc = replace(
        RATE,
        rule_key="high_cpc",
        metric="cpc",
        source=None,
        observed=2.5,
        threshold=2.0,
        interval=None,
        sample_size=400,
    )

    line = evidence_line(cpc, "EUR")

    assert "Whole campaign · observed 2.50 EUR · threshold 2.00 EUR" in line
    assert "interval" not in line
    assert line.endswith("sample 400 clicks")


def test_manual_insight_has_no_rule_evidence() -> None:
    manual = replace(RATE, origin="manual", rule_key=None, metric=None)

    assert evidence_line(manual, "EUR") == "Written by an analyst."


def test_insights_grouped_by_severity_with_thin_findings_apart() -> None:
    insights = [
        replace(RATE, id=1, severity="low"),
        replace(RATE, id=2, severity="critical"),
        replace(RATE, id=3, finding="not_enough_data", severity="critical"),
        replace(RATE, id=4, severity="low"),
    ]

    groups, thin = group_insights(insights)

    assert list(groups) == ["critical", "low"]
    assert [i.id for i in groups["low"]] == [1, 4]
    assert [i.id for i in thin] == [3]


def test_kpi_table_labels_roas_and_roi_apart() -> None:
    sums = metrics.add_derived_facts(
        pd.DataFrame(
            {
                "source": ["meta", None],
                "impressions": [1000.0, 1000.0],
                "clicks": [10.0, 10.0],
                "spend": [200.0, 200.0],
                "conversions": [0.0, 0.0],
                "revenue": [300.0, 300.0],
                "eligible_impressions": [None, None],
                "budget": [None, None],
            }
        )
    )

    table = kpi_table(metrics.add_metrics(sums), "EUR")

    assert list(table["Source"]) == ["Meta", "Whole campaign"]
    assert table.loc[0, "ROAS (return per unit of spend; 1.0 = spend earned back)"] == (
        "1.50"
    )
    assert table.loc[0, "ROI (profit per unit of spend)"] == "50.00%"
    assert table.loc[0, "Spend"] == "200.00 EUR"
    assert table.loc[0, "CPA"] == metrics.NO_VALUE
    assert table.loc[0, "Impression share"] == metrics.NO_VALUE


def test_a_picker_label_names_what_never_changes() -> None:
    draft = RetroRow(
        id=3,
        campaign_id=7,
        campaign="Winter Sale",
        currency="EUR",
        status="draft",
        title="",
        period_start=date(2026, 11, 1),
        period_end=date(2026, 11, 30),
        created_at=datetime(2026, 12, 1, tzinfo=UTC),
        created_by="Sam Patel",
        version=2,
        error=None,
    )

    assert pick_label(draft) == pick_label(replace(draft, status="approved"))
    assert pick_label(draft) == "#3 Winter Sale (2026-11-01 – 2026-11-30)"
