"""Rule semantics on hand-computed data: strictness, ladders, levels, evidence."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
import pytest

from core import metrics, rules
from core.errors import ValidationFailed
from core.rules import Finding, RuleSpec

BUILTIN = {rule.key: rule for rule in rules.BUILTIN_RULES}
QUIET = {
    "impressions": 100_000.0,
    "clicks": 2_000.0,
    "spend": 2_000.0,
    "conversions": 100.0,
    "revenue": 4_000.0,
    "eligible_impressions": np.nan,
    "budget": np.nan,
}


def level(source: str | None = None, **facts: float) -> dict[str, Any]:
    """One row of summed facts; unnamed facts are healthy for every built-in rule."""
    row: dict[str, Any] = {"source": source, **QUIET, **facts}
    return row


def sums(*rows: dict[str, Any]) -> pd.DataFrame:
    frame = metrics.add_derived_facts(pd.DataFrame(list(rows)))
    frame["source"] = frame["source"].astype(object)
    return frame


def findings_of(frame: pd.DataFrame, rule_set: Any = rules.BUILTIN_RULES) -> list[Any]:
    found = rules.evaluate(frame, rule_set)
    return [(r.source, r.rule_key, r.finding) for r in found.itertuples(index=False)]


# -- single values ------------------------------------------------------------


def test_roas_065_against_poor_roas_is_triggered_high() -> None:
    check = rules.check_value(BUILTIN["poor_roas"], 0.65)

    assert check.triggered
    assert check.severity == "high"
    assert check.threshold == 0.7
    assert check.title == "Poor ROAS: ROAS 0.65 across the campaign"


def test_comparison_is_strict_as_written() -> None:
    assert not rules.check_value(BUILTIN["poor_roas"], 0.7).triggered
    assert not rules.check_value(BUILTIN["high_cpc"], 2.0).triggered
    assert rules.check_value(BUILTIN["high_cpc"], 2.01).triggered
    at_most = replace(BUILTIN["poor_roas"], comparison="<=")
    assert rules.check_value(at_most, 0.7).triggered


def test_exactly_07_roas_from_sums_is_not_poor() -> None:
    frame = sums(level(spend=1_000.0, revenue=700.0))

    assert findings_of(frame) == []


def test_single_value_below_the_floor_is_not_enough_data() -> None:
    check = rules.check_value(BUILTIN["low_ctr"], 0.001, sample_size=999)

    assert check.finding is Finding.NOT_ENOUGH_DATA
    assert not check.triggered
    assert check.title == "Not enough data for Low CTR across the campaign"


def test_single_rate_with_sample_size_gets_its_interval() -> None:
    check = rules.check_value(BUILTIN["low_ctr"], 0.004, sample_size=1_000)

    assert check.finding is Finding.NOT_TRIGGERED
    assert check.interval == pytest.approx((0.001557, 0.010240), abs=1e-6)


# -- Wilson interval ----------------------------------------------------------


def test_wilson_interval_matches_hand_computed_values() -> None:
    low, high = rules.wilson_interval([0, 5, 4], [10, 10, 1_000])

    assert low == pytest.approx([0.0, 0.236593, 0.001557], abs=1e-6)
    assert high == pytest.approx([0.277533, 0.763407, 0.010240], abs=1e-6)


def test_wilson_interval_has_no_value_without_trials() -> None:
    low, high = rules.wilson_interval([0], [0])

    assert np.isnan(low[0]) and np.isnan(high[0])


# -- every built-in rule, on hand-computed sums -------------------------------

# rule key -> (facts that trigger it, facts just on the safe side)
BUILTIN_CASES: dict[str, tuple[dict[str, float], dict[str, float]]] = {
    # ROAS 400 / 1,000 = 0.40 < 0.5; 500 / 1,000 = 0.50 is not below 0.5.
    "critical_roas": (
        {"spend": 1_000.0, "revenue": 400.0},
        {"spend": 1_000.0, "revenue": 500.0},
    ),
    # ROAS 0.60: below 0.7, not below 0.5; 0.70 is not below 0.7.
    "poor_roas": (
        {"spend": 1_000.0, "revenue": 600.0},
        {"spend": 1_000.0, "revenue": 700.0},
    ),
    # CTR 300 / 100,000 = 0.3%, interval 0.27%-0.34%, wholly below 0.5%;
    # 500 / 100,000 is exactly 0.5%, and its interval reaches above it.
    "low_ctr": (
        {"clicks": 300.0, "spend": 600.0, "conversions": 30.0},
        {"clicks": 500.0, "spend": 1_000.0, "conversions": 50.0},
    ),
    # CPC 2,500 / 1,000 = 2.50 > 2.00; 2,000 / 1,000 = 2.00 is not above.
    "high_cpc": (
        {"spend": 2_500.0, "clicks": 1_000.0, "revenue": 10_000.0},
        {"spend": 2_000.0, "clicks": 1_000.0},
    ),
    # 1,150 of spend on a 1,000 budget = 115% > 110%; exactly 110% is not.
    "overspend": (
        {"spend": 1_150.0, "budget": 1_000.0, "revenue": 5_000.0},
        {"spend": 1_100.0, "budget": 1_000.0, "revenue": 5_000.0},
    ),
    # 10 of 2,000 clicks = 0.5%, interval 0.27%-0.92%, wholly below 2%.
    "low_conversion_rate": ({"conversions": 10.0}, {"conversions": 40.0}),
    # 30,000 of 100,000 eligible = 30%, interval far below 50%.
    "low_impression_share": (
        {"eligible_impressions": 333_333.0},
        {"eligible_impressions": 200_000.0},
    ),
}


@pytest.mark.parametrize("key", sorted(BUILTIN_CASES))
def test_builtin_rule_fires_on_its_case_and_not_on_the_safe_one(key: str) -> None:
    bad, safe = BUILTIN_CASES[key]

    fired = findings_of(sums(level(**bad)))
    quiet = findings_of(sums(level(**safe)))

    assert fired == [(None, key, "triggered")]
    # ROAS 0.50 is safe from critical_roas but poor: only the rule itself counts.
    assert key not in {rule_key for _, rule_key, _ in quiet}


def test_every_builtin_rule_has_a_case() -> None:
    assert set(BUILTIN_CASES) == set(BUILTIN)


def test_builtin_rules_are_valid_and_match_design() -> None:
    expected = {
        "critical_roas": ("roas", "<", 0.5, "critical"),
        "poor_roas": ("roas", "<", 0.7, "high"),
        "low_ctr": ("ctr", "<", 0.005, "medium"),
        "high_cpc": ("cpc", ">", 2.0, "medium"),
        "overspend": ("budget_utilisation", ">", 1.1, "high"),
        "low_conversion_rate": ("conversion_rate", "<", 0.02, "medium"),
        "low_impression_share": ("impression_share", "<", 0.5, "low"),
    }
    for rule in rules.BUILTIN_RULES:
        assert rules.validate_rule(rule) == rule
        assert (rule.metric, rule.comparison, rule.threshold, rule.severity) == (
            expected[rule.key]
        )
        assert rule.actions
    assert BUILTIN["low_ctr"].evidence_floor == 1_000
    assert BUILTIN["low_conversion_rate"].evidence_floor == 100


# -- semantics ----------------------------------------------------------------


def test_rule_follows_ratio_of_sums_where_mean_of_daily_ratios_disagrees() -> None:
    # Day 1: ROAS 3.0 on 100 of spend; day 2: ROAS 0.1 on 900. The mean of the
    # daily ratios (1.55) looks healthy; the campaign earned 390 on 1,000 (0.39).
    days = pd.DataFrame(
        {"day": [date(2026, 11, 1), date(2026, 11, 2)], "source": ["meta", "meta"]}
        | {fact: [value / 2, value / 2] for fact, value in QUIET.items()}
    )
    days["spend"] = [100.0, 900.0]
    days["revenue"] = [300.0, 90.0]
    mean_of_ratios = (days["revenue"] / days["spend"]).mean()

    frame = metrics.with_overall(metrics.summarise(days, by=["source"]))
    found = rules.evaluate(frame, rules.BUILTIN_RULES)

    assert mean_of_ratios == pytest.approx(1.55)
    assert set(found["rule_key"]) == {"critical_roas"}
    assert found["observed"].tolist() == pytest.approx([0.39, 0.39])


def test_ladder_fires_only_the_most_severe_rule_that_holds() -> None:
    roas_04 = findings_of(sums(level(spend=1_000.0, revenue=400.0)))
    roas_06 = findings_of(sums(level(spend=1_000.0, revenue=600.0)))

    assert roas_04 == [(None, "critical_roas", "triggered")]
    assert roas_06 == [(None, "poor_roas", "triggered")]


def test_ladder_outcome_does_not_depend_on_rule_order() -> None:
    frame = sums(level(spend=1_000.0, revenue=400.0))

    reordered = findings_of(frame, tuple(reversed(rules.BUILTIN_RULES)))

    assert reordered == [(None, "critical_roas", "triggered")]


def test_ladder_triggered_beats_not_enough_data_of_a_stricter_rule() -> None:
    strict_floor = replace(BUILTIN["critical_roas"], evidence_floor=5_000.0)
    frame = sums(level(spend=1_000.0, revenue=400.0))

    found = findings_of(frame, (strict_floor, BUILTIN["poor_roas"]))

    assert found == [(None, "poor_roas", "triggered")]


def test_every_rule_runs_for_the_whole_campaign_and_each_source() -> None:
    frame = metrics.with_overall(
        sums(
            level("meta", spend=1_000.0, revenue=400.0),
            level("google_ads", spend=1_000.0, revenue=3_000.0),
        )
    )

    found = rules.evaluate(frame, rules.BUILTIN_RULES)

    # Meta alone is critical (0.40); the whole campaign earns 3,400 on 2,000.
    assert found[["source", "rule_key"]].values.tolist() == [["meta", "critical_roas"]]


def test_whole_campaign_can_fire_when_no_single_source_does() -> None:
    frame = metrics.with_overall(
        sums(
            level("meta", spend=400.0, revenue=100.0),
            level("tiktok", spend=400.0, revenue=100.0),
        )
    )

    found = rules.evaluate(frame, rules.BUILTIN_RULES)
    by_level = {(r.source, r.finding) for r in found.itertuples()}

    # Each source has 400 of spend, below the 500 floor; together they have 800.
    assert (None, "triggered") in by_level
    assert ("meta", "not_enough_data") in by_level
    assert ("tiktok", "not_enough_data") in by_level


def test_campaign_scope_rule_runs_only_for_the_whole_campaign() -> None:
    campaign_only = replace(BUILTIN["critical_roas"], scope="campaign")
    frame = metrics.with_overall(
        sums(
            level("meta", spend=1_000.0, revenue=400.0),
            level("tiktok", spend=1_000.0, revenue=400.0),
        )
    )

    found = findings_of(frame, (campaign_only,))

    assert found == [(None, "critical_roas", "triggered")]


def test_below_the_floor_is_not_enough_data_never_a_problem() -> None:
    # 999 impressions and no clicks: CTR 0% would be a problem with evidence.
    frame = sums(level(impressions=999.0, clicks=0.0, conversions=0.0))

    found = rules.evaluate(frame, (BUILTIN["low_ctr"],))

    assert found["finding"].tolist() == ["not_enough_data"]
    assert found["sample_size"].tolist() == [999.0]
    assert found["observed"].tolist() == [0.0]


def test_at_the_floor_the_rule_judges() -> None:
    frame = sums(level(impressions=1_000.0, clicks=0.0))

    found = rules.evaluate(frame, (BUILTIN["low_ctr"],))

    # 0 of 1,000: the interval 0%-0.38% lies wholly below 0.5%.
    assert found["finding"].tolist() == ["triggered"]
    assert found["interval_high"].iloc[0] == pytest.approx(0.003827, abs=1e-6)


def test_rate_rule_needs_the_whole_interval_beyond_the_threshold() -> None:
    # 4 clicks on 1,000 impressions: CTR 0.4% is below 0.5%, but the interval
    # 0.16%-1.02% reaches above it; 400 on 100,000 is the same CTR with proof.
    thin = sums(level(impressions=1_000.0, clicks=4.0))
    thick = sums(level(impressions=100_000.0, clicks=400.0))

    assert rules.evaluate(thin, (BUILTIN["low_ctr"],)).empty
    found = rules.evaluate(thick, (BUILTIN["low_ctr"],))
    assert found["finding"].tolist() == ["triggered"]
    assert found["interval_low"].iloc[0] == pytest.approx(0.003627, abs=1e-6)
    assert found["interval_high"].iloc[0] == pytest.approx(0.004411, abs=1e-6)


def test_rate_rule_above_a_threshold_uses_the_interval_low_end() -> None:
    high_ctr = RuleSpec(
        key="suspicious_ctr",
        name="Suspicious CTR",
        metric="ctr",
        comparison=">",
        threshold=0.05,
        severity="low",
        evidence_floor=100,
    )
    # 7 of 100 = 7%, interval 3.4%-13.7%: not wholly above 5%.
    thin = sums(level(impressions=100.0, clicks=7.0))
    # 700 of 10,000 = 7%, interval 6.5%-7.5%: wholly above 5%.
    thick = sums(level(impressions=10_000.0, clicks=700.0))

    assert rules.evaluate(thin, (high_ctr,)).empty
    assert rules.evaluate(thick, (high_ctr,))["finding"].tolist() == ["triggered"]


def test_non_rate_metric_compares_the_value_itself() -> None:
    frame = sums(level(spend=250.0, clicks=100.0, revenue=5_000.0))

    found = rules.evaluate(frame, (BUILTIN["high_cpc"],))

    assert found["observed"].tolist() == [2.5]
    assert found["interval_low"].isna().all()


def test_unreported_fact_makes_the_rule_not_applicable() -> None:
    # No budget and no eligible impressions anywhere: nothing to judge, no noise.
    frame = sums(level())

    found = rules.evaluate(
        frame, (BUILTIN["overspend"], BUILTIN["low_impression_share"])
    )

    assert found.empty


def test_ladder_below_the_floor_gives_one_not_enough_data_finding() -> None:
    frame = sums(level(spend=100.0, revenue=10.0))

    found = findings_of(frame, (BUILTIN["poor_roas"], BUILTIN["critical_roas"]))

    assert found == [(None, "critical_roas", "not_enough_data")]


def test_disabled_rule_produces_nothing() -> None:
    off = replace(BUILTIN["critical_roas"], enabled=False)
    frame = sums(level(spend=1_000.0, revenue=100.0))

    assert findings_of(frame, (off,)) == []


def test_batch_keeps_campaigns_apart() -> None:
    rows = [
        {"campaign_id": 1, **level("meta", spend=1_000.0, revenue=400.0)},
        {"campaign_id": 2, **level("meta", spend=1_000.0, revenue=650.0)},
        {"campaign_id": 3, **level("meta")},
    ]
    frame = metrics.with_overall(sums(*rows), ["campaign_id"])

    found = rules.evaluate(frame, rules.BUILTIN_RULES, keys=["campaign_id"])
    result = sorted(
        (r.campaign_id, r.source or "", r.rule_key)
        for r in found.itertuples(index=False)
    )

    assert result == [
        (1, "", "critical_roas"),
        (1, "meta", "critical_roas"),
        (2, "", "poor_roas"),
        (2, "meta", "poor_roas"),
    ]


def test_findings_carry_rule_version_and_evidence() -> None:
    rule = replace(BUILTIN["low_ctr"], version=4)
    frame = sums(level("tiktok", impressions=100_000.0, clicks=300.0))

    row = rules.evaluate(frame, (rule,)).iloc[0]

    assert row["rule_version"] == 4
    assert row["source"] == "tiktok"
    assert row["sample_size"] == 100_000.0
    assert row["threshold"] == 0.005
    assert row["observed"] == pytest.approx(0.003)


def test_no_rows_give_no_findings() -> None:
    no_rows = sums({"campaign_id": 1, **level("meta")}).iloc[0:0]
    empty = metrics.with_overall(no_rows, ["campaign_id"])

    found = rules.evaluate(empty, rules.BUILTIN_RULES, keys=["campaign_id"])

    assert found.empty
    assert "campaign_id" in found.columns


# -- words --------------------------------------------------------------------


def test_text_is_written_from_the_numbers() -> None:
    frame = sums(level("meta", impressions=100_000.0, clicks=300.0))
    row = rules.evaluate(frame, (BUILTIN["low_ctr"],)).iloc[0].to_dict()

    text = rules.text_for(row, period=(date(2026, 11, 1), date(2026, 11, 30)))

    assert "CTR was 0.30% on Meta from 1 Nov 2026 to 30 Nov 2026" in text
    assert "below the threshold of 0.50%" in text
    assert "0.27% to 0.34%" in text
    assert "100,000 impressions" in text
    assert "rule low_ctr v1" in text


def test_not_enough_data_text_names_the_floor() -> None:
    frame = sums(level(spend=120.0, revenue=30.0))
    row = rules.evaluate(frame, (BUILTIN["poor_roas"],)).iloc[0].to_dict()

    text = rules.text_for(row, currency="EUR")

    assert "Only 120.00 EUR of spend across the campaign" in text
    assert "at least 500.00 EUR of spend" in text
    assert "not treated as a problem" in text


def test_roas_text_explains_the_unit() -> None:
    row = rules.evaluate(
        sums(level(spend=1_000.0, revenue=650.0)), (BUILTIN["poor_roas"],)
    ).iloc[0]

    text = rules.text_for(row.to_dict(), currency="USD")

    assert "ROAS (return per unit of spend) was 0.65" in text
    assert "1.0 means the spend was earned back" in text


# -- validation ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"key": "Bad Key"}, "key"),
        ({"name": "  "}, "name"),
        ({"metric": "likes"}, "metric"),
        ({"comparison": "=="}, "comparison"),
        ({"severity": "urgent"}, "severity"),
        ({"scope": "ad_set"}, "scope"),
        ({"threshold": float("nan")}, "threshold"),
        ({"threshold": 1.5}, "threshold"),
        ({"evidence_floor": -1.0}, "evidence_floor"),
        ({"actions": ("x" * 501,)}, "actions"),
    ],
)
def test_invalid_rule_is_refused_naming_the_field(
    change: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationFailed, match=f"^{field}:"):
        rules.validate_rule(replace(BUILTIN["low_ctr"], **change))


def test_validation_trims_text_and_drops_empty_actions() -> None:
    rule = replace(BUILTIN["poor_roas"], name="  Poor ROAS ", actions=(" a ", "", " "))

    cleaned = rules.validate_rule(rule)

    assert cleaned.name == "Poor ROAS"
    assert cleaned.actions == ("a",)


def test_condition_reads_like_the_design_table() -> None:
    assert BUILTIN["low_ctr"].condition == "CTR < 0.50%"
    assert BUILTIN["poor_roas"].condition == "ROAS < 0.70"
    assert BUILTIN["overspend"].condition == "Budget utilisation > 110.00%"
