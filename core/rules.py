"""Rule logic: summed KPIs in, findings out. Pure: no database, no files, no clock.

Semantics (DESIGN.md, "Rule engine"):

- A comparison is strict as written: ROAS of exactly 0.7 is not `< 0.7`.
- Rules on one metric form a ladder: at one level (whole campaign or one
  source) only the most severe rule that holds produces a finding.
- A rule with scope `source` runs for the whole campaign and for each source;
  scope `campaign` runs for the whole campaign only.
- Evidence: the metric's denominator sum is the sample size. Below the rule's
  floor the finding is "not enough data", never a problem. A rule on a rate
  fires only when the 95% Wilson interval lies wholly beyond the threshold;
  other metrics compare the value itself.
- A fact a source never reports (no eligible impressions, no budget) makes the
  rule not applicable there: no finding at all.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from enum import StrEnum
from typing import Any

import numpy as np
import pandas as pd

from core import metrics
from core.errors import ValidationFailed
from core.metrics import CATALOGUE, Metric
from core.models import Severity

# z for a two-sided 95% interval.
WILSON_Z = 1.959963984540054

COMPARISONS: dict[str, Callable[[Any, Any], Any]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
COMPARISON_WORDS: dict[str, str] = {
    "<": "below",
    "<=": "at or below",
    ">": "above",
    ">=": "at or above",
}
SEVERITY_RANK: dict[str, int] = {
    Severity.LOW.value: 1,
    Severity.MEDIUM.value: 2,
    Severity.HIGH.value: 3,
    Severity.CRITICAL.value: 4,
}
SOURCE_LABELS: dict[str, str] = {
    "google_ads": "Google Ads",
    "meta": "Meta",
    "tiktok": "TikTok",
    "internal": "Internal",
}

KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_]{1,63}$")
MAX_NAME = 200
MAX_DESCRIPTION = 2000
MAX_ACTIONS = 10
MAX_ACTION_LENGTH = 500


class Scope(StrEnum):
    CAMPAIGN = "campaign"  # the whole campaign only
    SOURCE = "source"  # the whole campaign and each source


class Finding(StrEnum):
    TRIGGERED = "triggered"
    NOT_ENOUGH_DATA = "not_enough_data"
    # Only a single-value check reports this; evaluation stores nothing for it.
    NOT_TRIGGERED = "not_triggered"


# Codes of the vectorised judgement; 0 means "nothing to report".
_NONE, _TRIGGERED, _NOT_ENOUGH = 0, 1, 2

FINDING_COLUMNS: tuple[str, ...] = (
    "source",
    "rule_key",
    "rule_version",
    "rule_name",
    "metric",
    "comparison",
    "threshold",
    "severity",
    "finding",
    "observed",
    "interval_low",
    "interval_high",
    "sample_size",
    "evidence_floor",
)


@dataclass(frozen=True)
class RuleSpec:
    """A rule as the engine reads it, whether built in or stored in the Rule table."""

    key: str
    name: str
    metric: str
    comparison: str
    threshold: float
    severity: str
    scope: str = Scope.SOURCE.value
    evidence_floor: float = 0.0
    actions: tuple[str, ...] = ()
    description: str = ""
    enabled: bool = True
    version: int = 1

    @property
    def spec(self) -> Metric:
        return CATALOGUE[self.metric]

    @property
    def condition(self) -> str:
        """The rule as people read it: 'ROAS < 0.70', 'CTR < 0.50%'."""
        threshold = metrics.format_value(self.metric, self.threshold)
        return f"{short_label(self.metric)} {self.comparison} {threshold}"


def short_label(metric: str) -> str:
    """The metric's label without its explanation: 'ROAS', 'CTR'."""
    return CATALOGUE[metric].label.split(" (")[0]


def severity_rank(severity: str) -> int:
    return SEVERITY_RANK.get(severity, 0)


def source_label(source: str | None) -> str:
    if source is None:
        return "Whole campaign"
    return SOURCE_LABELS.get(source, source)


# -- validation ---------------------------------------------------------------


def _clean_actions(actions: Iterable[str]) -> tuple[str, ...]:
    cleaned = tuple(a.strip() for a in actions if a and a.strip())
    if len(cleaned) > MAX_ACTIONS:
        raise ValidationFailed(f"actions: at most {MAX_ACTIONS} suggested actions.")
    for action in cleaned:
        if len(action) > MAX_ACTION_LENGTH:
            raise ValidationFailed(
                f"actions: each action at most {MAX_ACTION_LENGTH} characters."
            )
    return cleaned


def _check_threshold(rule: RuleSpec) -> None:
    if not math.isfinite(rule.threshold):
        raise ValidationFailed("threshold: must be a finite number.")
    if rule.spec.is_rate and not 0.0 <= rule.threshold <= 1.0:
        raise ValidationFailed(
            f"threshold: {short_label(rule.metric)} is a share between 0% and 100%."
        )


def _check_choices(rule: RuleSpec) -> None:
    choices: dict[str, tuple[str, Iterable[str]]] = {
        "metric": (rule.metric, CATALOGUE),
        "comparison": (rule.comparison, COMPARISONS),
        "severity": (rule.severity, SEVERITY_RANK),
        "scope": (rule.scope, [s.value for s in Scope]),
    }
    for name, (value, allowed) in choices.items():
        allowed = list(allowed)
        if value not in allowed:
            raise ValidationFailed(
                f"{name}: {value!r} is not one of {', '.join(allowed)}."
            )


def validate_rule(rule: RuleSpec) -> RuleSpec:
    """The rule with its text trimmed, or ValidationFailed naming the bad field."""
    rule = replace(
        rule,
        key=rule.key.strip(),
        name=rule.name.strip(),
        description=rule.description.strip(),
        actions=_clean_actions(rule.actions),
    )
    if not KEY_PATTERN.match(rule.key):
        raise ValidationFailed(
            "key: 2-64 characters, lowercase letters, digits or '_', "
            "starting with a letter."
        )
    if not rule.name or len(rule.name) > MAX_NAME:
        raise ValidationFailed(f"name: 1-{MAX_NAME} characters.")
    if len(rule.description) > MAX_DESCRIPTION:
        raise ValidationFailed(f"description: at most {MAX_DESCRIPTION} characters.")
    _check_choices(rule)
    _check_threshold(rule)
    if not math.isfinite(rule.evidence_floor) or rule.evidence_floor < 0:
        raise ValidationFailed("evidence_floor: must be zero or a positive number.")
    return rule


# -- judgement ----------------------------------------------------------------


def wilson_interval(
    successes: Any, trials: Any, z: float = WILSON_Z
) -> tuple[np.ndarray, np.ndarray]:
    """The Wilson score interval of successes out of trials; NaN where trials <= 0.

    A proportion above 1 (more conversions than clicks) is clipped to 1 first.
    """
    n = np.asarray(trials, dtype="float64")
    k = np.asarray(successes, dtype="float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        n = np.where(n > 0, n, np.nan)
        p = np.clip(k / n, 0.0, 1.0)
        z2n = z * z / n
        centre = (p + z2n / 2) / (1 + z2n)
        half = z * np.sqrt(p * (1 - p) / n + z2n / (4 * n)) / (1 + z2n)
    return centre - half, centre + half


def _judge(
    rule: RuleSpec, values: np.ndarray, samples: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Finding codes and interval bounds of one rule over arrays of values.

    `samples` None means the sample size is unknown: the floor is not checked
    and the value itself is compared.
    """
    nan = np.full(values.shape, np.nan)
    if samples is None:
        applicable = np.ones(values.shape, dtype=bool)
        enough = ~np.isnan(values)
        low, high = nan, nan
    else:
        applicable = ~np.isnan(samples)
        enough = applicable & (samples >= rule.evidence_floor) & ~np.isnan(values)
        if rule.spec.is_rate:
            low, high = wilson_interval(values * samples, samples)
        else:
            low, high = nan, nan
    if rule.spec.is_rate and samples is not None:
        # The whole interval must lie beyond the threshold: test its near end.
        bound = high if rule.comparison in ("<", "<=") else low
    else:
        bound = values
    with np.errstate(invalid="ignore"):
        holds = np.asarray(COMPARISONS[rule.comparison](bound, rule.threshold))
    codes = np.where(enough & holds, _TRIGGERED, _NONE)
    codes = np.where(applicable & ~enough, _NOT_ENOUGH, codes)
    return codes, low, high


@dataclass(frozen=True)
class Check:
    """The verdict of one rule on one value."""

    rule_key: str
    metric: str
    finding: Finding
    severity: str
    title: str
    observed: float | None
    threshold: float
    comparison: str
    interval: tuple[float, float] | None = None
    sample_size: float | None = None
    actions: tuple[str, ...] = field(default_factory=tuple)

    @property
    def triggered(self) -> bool:
        return self.finding is Finding.TRIGGERED


def check_value(
    rule: RuleSpec,
    value: float | None,
    *,
    sample_size: float | None = None,
    source: str | None = None,
    currency: str = "",
) -> Check:
    """Judge one value against one rule: ROAS 0.65 against poor_roas -> triggered.

    With a sample size, the floor is checked and a rate gets its Wilson interval,
    exactly as in `evaluate`.
    """
    values = np.array([np.nan if value is None else float(value)])
    samples = None if sample_size is None else np.array([float(sample_size)])
    codes, low, high = _judge(rule, values, samples)
    finding = {
        _TRIGGERED: Finding.TRIGGERED,
        _NOT_ENOUGH: Finding.NOT_ENOUGH_DATA,
    }.get(int(codes[0]), Finding.NOT_TRIGGERED)
    interval = None if np.isnan(low[0]) else (float(low[0]), float(high[0]))
    title = title_for(rule.name, rule.metric, finding, value, source, currency)
    return Check(
        rule_key=rule.key,
        metric=rule.metric,
        finding=finding,
        severity=rule.severity,
        title=title,
        observed=value,
        threshold=rule.threshold,
        comparison=rule.comparison,
        interval=interval,
        sample_size=sample_size,
        actions=rule.actions,
    )


# -- batch evaluation ---------------------------------------------------------


def _rule_findings(
    frame: pd.DataFrame, rule: RuleSpec, keys: Sequence[str]
) -> pd.DataFrame | None:
    rows = frame if rule.scope == Scope.SOURCE else frame[frame["source"].isna()]
    values = rows[rule.metric].to_numpy(dtype="float64", na_value=np.nan)
    den = rows[rule.spec.denominator].to_numpy(dtype="float64", na_value=np.nan)
    codes, low, high = _judge(rule, values, den)
    keep = codes != _NONE
    if not keep.any():
        return None
    part = rows.loc[keep, [*keys, "source"]].copy()
    part["rule_key"] = rule.key
    part["rule_version"] = rule.version
    part["rule_name"] = rule.name
    part["metric"] = rule.metric
    part["comparison"] = rule.comparison
    part["threshold"] = rule.threshold
    part["severity"] = rule.severity
    part["finding"] = np.where(
        codes[keep] == _TRIGGERED,
        Finding.TRIGGERED.value,
        Finding.NOT_ENOUGH_DATA.value,
    )
    part["observed"] = values[keep]
    part["interval_low"] = low[keep]
    part["interval_high"] = high[keep]
    part["sample_size"] = den[keep]
    part["evidence_floor"] = rule.evidence_floor
    return part


def _climb_ladders(findings: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """Keep one finding per metric and level: the most severe rule that holds.

    A triggered rule beats any "not enough data"; among equals the more severe
    rule wins, then the key, so the outcome never depends on rule order.
    """
    ranked = findings.assign(
        _level=findings["source"].fillna(""),
        _outcome=(findings["finding"] != Finding.TRIGGERED.value).astype(int),
        _severity=-findings["severity"].map(SEVERITY_RANK).astype("float64").fillna(0),
    )
    ranked = ranked.sort_values(
        [*keys, "_level", "metric", "_outcome", "_severity", "rule_key"],
        kind="stable",
    )
    best = ranked.drop_duplicates([*keys, "_level", "metric"], keep="first")
    best = best.sort_values([*keys, "_outcome", "_severity", "_level", "metric"])
    return best.drop(columns=["_level", "_outcome", "_severity"]).reset_index(drop=True)


def empty_findings(keys: Sequence[str] = ()) -> pd.DataFrame:
    return pd.DataFrame(columns=[*keys, *FINDING_COLUMNS])


def evaluate(
    sums: pd.DataFrame, rules: Iterable[RuleSpec], keys: Sequence[str] = ()
) -> pd.DataFrame:
    """Findings of every enabled rule over rows of summed facts, ladders applied.

    `sums` has one row per key and level: `source` names a source, or is
    missing for the whole campaign (see `metrics.with_overall`). `keys` are the
    columns that tell campaigns (or retrospectives) apart. Each rule is one
    vectorised pass over all rows, so thousands of campaigns cost little more
    than one.
    """
    # Derived afresh: a whole-campaign row added to per-source rows has no
    # metrics of its own yet, and recomputing costs little next to the query.
    frame = metrics.add_metrics(sums)
    parts = [
        part
        for rule in rules
        if rule.enabled
        for part in [_rule_findings(frame, rule, keys)]
        if part is not None
    ]
    if not parts:
        return empty_findings(keys)
    findings = pd.concat(parts, ignore_index=True)
    findings["source"] = findings["source"].astype(object)
    findings["source"] = findings["source"].where(findings["source"].notna(), None)
    return _climb_ladders(findings, keys)


# -- words --------------------------------------------------------------------


def _where(source: str | None) -> str:
    return "across the campaign" if source is None else f"on {source_label(source)}"


def format_period(period: tuple[date, date] | None) -> str:
    if period is None:
        return ""
    start, end = period
    return f"from {start.day} {start:%b %Y} to {end.day} {end:%b %Y}"


def title_for(
    rule_name: str,
    metric: str,
    finding: str,
    observed: float | None,
    source: str | None,
    currency: str = "",
) -> str:
    """A short headline: 'Poor ROAS: 0.65 on Meta'."""
    if finding == Finding.NOT_ENOUGH_DATA:
        return f"Not enough data for {rule_name} {_where(source)}"
    value = metrics.format_value(metric, observed, currency)
    return f"{rule_name}: {short_label(metric)} {value} {_where(source)}"


def _evidence_sentence(row: Mapping[str, Any], currency: str) -> str:
    metric = str(row["metric"])
    spec = CATALOGUE[metric]
    word = COMPARISON_WORDS[str(row["comparison"])]
    evidence = metrics.describe_amount(
        spec.denominator, _float(row["sample_size"]), currency
    )
    low, high = _float(row.get("interval_low")), _float(row.get("interval_high"))
    if low is None or high is None:
        return f"Based on {evidence}."
    interval = (
        f"{metrics.format_value(metric, low)} to {metrics.format_value(metric, high)}"
    )
    return (
        f"The 95% interval, {interval}, lies wholly {word} the threshold, "
        f"so this is not chance: it rests on {evidence}."
    )


def text_for(
    row: Mapping[str, Any],
    *,
    currency: str = "",
    period: tuple[date, date] | None = None,
) -> str:
    """The insight's text, written from its numbers (one row of `evaluate`)."""
    metric = str(row["metric"])
    spec = CATALOGUE[metric]
    source = row.get("source")
    observed = metrics.format_value(metric, _float(row["observed"]), currency)
    threshold = metrics.format_value(metric, float(row["threshold"]), currency)
    when = " ".join(p for p in (_where(source), format_period(period)) if p)
    rule = f"rule {row['rule_key']} v{int(row['rule_version'])}"
    if row["finding"] == Finding.NOT_ENOUGH_DATA:
        sample = metrics.describe_amount(
            spec.denominator, _float(row["sample_size"]), currency
        )
        floor = metrics.describe_amount(
            spec.denominator, float(row["evidence_floor"]), currency
        )
        return (
            f"Only {sample} {when}; {rule} needs at least {floor} before it "
            f"judges the {_in_sentence(short_label(metric))} (observed: {observed}). "
            "This is not treated as a problem."
        )
    word = COMPARISON_WORDS[str(row["comparison"])]
    return (
        f"{spec.label} was {observed} {when}, {word} the threshold of {threshold} "
        f"({rule}). {_evidence_sentence(row, currency)} "
        f"{short_label(metric)} is {spec.description}."
    )


def _in_sentence(label: str) -> str:
    """'Conversion rate' -> 'conversion rate'; acronyms such as 'CTR' stay."""
    return label[:1].lower() + label[1:] if label[1:2].islower() else label


def _float(value: Any) -> float | None:
    if value is None or pd.isna(value):
        return None
    return float(value)


# -- built-in rules -----------------------------------------------------------

# Floors: the denominator a rule needs before it may judge.
# ROAS: 500 of spend (campaign currency); below it one order of ordinary size
# moves ROAS by more than the 0.2 between the two ladder steps.
ROAS_SPEND_FLOOR = 500.0
# CTR: 1,000 impressions (DESIGN.md); fewer cannot separate 0.5% from 0%.
CTR_IMPRESSION_FLOOR = 1_000.0
# CPC: 100 clicks; a few expensive clicks early in a campaign are not a trend.
CPC_CLICK_FLOOR = 100.0
# Budget utilisation is bookkeeping, not a sample: any known budget will do.
BUDGET_FLOOR = 0.0
# Conversion rate: 100 clicks (DESIGN.md).
CONVERSION_CLICK_FLOOR = 100.0
# Impression share: 1,000 eligible impressions, as for CTR.
SHARE_ELIGIBLE_FLOOR = 1_000.0

BUILTIN_RULES: tuple[RuleSpec, ...] = (
    RuleSpec(
        key="critical_roas",
        name="Critical ROAS",
        description="Revenue came back at less than half of the spend.",
        metric="roas",
        comparison="<",
        threshold=0.5,
        severity=Severity.CRITICAL.value,
        evidence_floor=ROAS_SPEND_FLOOR,
        actions=(
            "Pause or cut the budget of the placements with the lowest return.",
            "Check conversion tracking and revenue attribution before the next flight.",
            "Rework offer and audience before relaunching.",
        ),
    ),
    RuleSpec(
        key="poor_roas",
        name="Poor ROAS",
        description="Revenue came back at less than 70% of the spend.",
        metric="roas",
        comparison="<",
        threshold=0.7,
        severity=Severity.HIGH.value,
        evidence_floor=ROAS_SPEND_FLOOR,
        actions=(
            "Shift budget towards the sources with the best return.",
            "Tighten targeting to audiences that converted.",
        ),
    ),
    RuleSpec(
        key="low_ctr",
        name="Low CTR",
        description="Few of the people who saw the ads clicked.",
        metric="ctr",
        comparison="<",
        threshold=0.005,
        severity=Severity.MEDIUM.value,
        evidence_floor=CTR_IMPRESSION_FLOOR,
        actions=(
            "Refresh creatives and test new headlines.",
            "Review audience relevance and exclude placements that do not engage.",
        ),
    ),
    RuleSpec(
        key="high_cpc",
        name="High CPC",
        description="Clicks cost more than 2.00 in the campaign currency.",
        metric="cpc",
        comparison=">",
        threshold=2.0,
        severity=Severity.MEDIUM.value,
        evidence_floor=CPC_CLICK_FLOOR,
        actions=(
            "Review bids and bidding strategy.",
            "Improve ad relevance to raise quality scores.",
        ),
    ),
    RuleSpec(
        key="overspend",
        name="Overspend",
        description="Spend ran more than 10% over the budget of the same days.",
        metric="budget_utilisation",
        comparison=">",
        threshold=1.10,
        severity=Severity.HIGH.value,
        evidence_floor=BUDGET_FLOOR,
        actions=(
            "Set campaign spending limits on the platform.",
            "Check pacing settings and who may change budgets.",
        ),
    ),
    RuleSpec(
        key="low_conversion_rate",
        name="Low conversion rate",
        description="Few clicks turned into conversions.",
        metric="conversion_rate",
        comparison="<",
        threshold=0.02,
        severity=Severity.MEDIUM.value,
        evidence_floor=CONVERSION_CLICK_FLOOR,
        actions=(
            "Check the landing page: speed, message match with the ad, the form.",
            "Verify that conversion tracking fires on every platform.",
        ),
    ),
    RuleSpec(
        key="low_impression_share",
        name="Low impression share",
        description="The ads were shown for less than half of the eligible searches.",
        metric="impression_share",
        comparison="<",
        threshold=0.5,
        severity=Severity.LOW.value,
        evidence_floor=SHARE_ELIGIBLE_FLOOR,
        actions=(
            "Raise budget or bids where the return allows it.",
            "Improve ad rank through quality and relevance.",
        ),
    ),
)

BUILTIN_KEYS: frozenset[str] = frozenset(rule.key for rule in BUILTIN_RULES)


def builtin(key: str) -> RuleSpec:
    """The shipped definition of a built-in rule."""
    for rule in BUILTIN_RULES:
        if rule.key == key:
            return rule
    raise KeyError(key)
