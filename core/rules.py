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


@dataclass
class _Hits:
    """Findings of all rules before the ladders, as parallel arrays."""

    rows: list[np.ndarray] = field(default_factory=list)
    rules: list[np.ndarray] = field(default_factory=list)
    codes: list[np.ndarray] = field(default_factory=list)
    observed: list[np.ndarray] = field(default_factory=list)
    low: list[np.ndarray] = field(default_factory=list)
    high: list[np.ndarray] = field(default_factory=list)
    samples: list[np.ndarray] = field(default_factory=list)

    def add(self, index: int, codes: np.ndarray, *arrays: np.ndarray) -> None:
        hit = np.flatnonzero(codes)
        self.rows.append(hit)
        self.rules.append(np.full(hit.size, index))
        self.codes.append(codes[hit])
        for target, values in zip(
            (self.observed, self.low, self.high, self.samples), arrays, strict=True
        ):
            target.append(values[hit])

    def joined(self) -> dict[str, np.ndarray]:
        names = ("rows", "rules", "codes", "observed", "low", "high", "samples")
        return {name: np.concatenate(getattr(self, name)) for name in names}


class _Columns:
    """Float arrays of a frame's columns and metrics, each computed once."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self.cache: dict[str, np.ndarray] = {}

    def fact(self, name: str) -> np.ndarray:
        if name not in self.cache:
            if name in self.frame:
                column = self.frame[name]
                self.cache[name] = column.to_numpy(dtype="float64", na_value=np.nan)
            else:
                self.cache[name] = np.full(len(self.frame), np.nan)
        return self.cache[name]

    def metric(self, key: str) -> np.ndarray:
        # The catalogue's formula, on arrays: ratio of sums, NaN on a zero
        # denominator (a missing one is NaN already).
        spec = CATALOGUE[key]
        num, den = self.fact(spec.numerator), self.fact(spec.denominator)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(den != 0, num / den, np.nan)
        return np.asarray(ratio * spec.scale + spec.offset, dtype="float64")


def _climb_ladders(hits: dict[str, np.ndarray], active: list[RuleSpec]) -> np.ndarray:
    """Positions of the findings that survive: one per metric and level.

    A triggered rule beats any "not enough data"; among equals the more severe
    rule wins, then the key, so the outcome never depends on rule order.
    """
    metric_ids = {m: i for i, m in enumerate(CATALOGUE)}
    by_key = sorted(range(len(active)), key=lambda i: active[i].key)
    key_rank = np.empty(len(active), dtype=int)
    key_rank[by_key] = np.arange(len(active))
    metric = np.array([metric_ids[r.metric] for r in active])[hits["rules"]]
    severity = np.array([severity_rank(r.severity) for r in active])[hits["rules"]]
    outcome = (hits["codes"] != _TRIGGERED).astype(int)
    # np.lexsort sorts by the last key first.
    order = np.lexsort(
        (key_rank[hits["rules"]], -severity, outcome, metric, hits["rows"])
    )
    rows, metric = hits["rows"][order], metric[order]
    first = np.ones(order.size, dtype=bool)
    first[1:] = (rows[1:] != rows[:-1]) | (metric[1:] != metric[:-1])
    kept = order[first]
    # Presentation: by level row, problems first, most severe first.
    return kept[np.lexsort((-severity[first], outcome[order][first], rows[first]))]


def empty_findings(keys: Sequence[str] = ()) -> pd.DataFrame:
    return pd.DataFrame(columns=[*keys, *FINDING_COLUMNS])


def _findings_frame(
    sums: pd.DataFrame,
    keys: Sequence[str],
    active: list[RuleSpec],
    hits: dict[str, np.ndarray],
    kept: np.ndarray,
) -> pd.DataFrame:
    rule_of = hits["rules"][kept]

    def per_rule(values: list[Any]) -> np.ndarray:
        chosen: np.ndarray = np.array(values, dtype=object)[rule_of]
        return chosen

    frame = sums[list(keys)].iloc[hits["rows"][kept]].reset_index(drop=True)
    source = sums["source"].to_numpy(dtype=object)[hits["rows"][kept]]
    # Object dtype: pandas 3 would turn the whole-campaign None into NaN.
    frame["source"] = pd.Series(
        [s if isinstance(s, str) else None for s in source], dtype=object
    )
    frame["rule_key"] = per_rule([r.key for r in active])
    frame["rule_version"] = np.array([r.version for r in active])[rule_of]
    frame["rule_name"] = per_rule([r.name for r in active])
    frame["metric"] = per_rule([r.metric for r in active])
    frame["comparison"] = per_rule([r.comparison for r in active])
    frame["threshold"] = np.array([r.threshold for r in active])[rule_of]
    frame["severity"] = per_rule([r.severity for r in active])
    frame["finding"] = np.where(
        hits["codes"][kept] == _TRIGGERED,
        Finding.TRIGGERED.value,
        Finding.NOT_ENOUGH_DATA.value,
    )
    frame["observed"] = hits["observed"][kept]
    frame["interval_low"] = hits["low"][kept]
    frame["interval_high"] = hits["high"][kept]
    frame["sample_size"] = hits["samples"][kept]
    frame["evidence_floor"] = np.array([r.evidence_floor for r in active])[rule_of]
    return frame


def evaluate(
    sums: pd.DataFrame, rules: Iterable[RuleSpec], keys: Sequence[str] = ()
) -> pd.DataFrame:
    """Findings of every enabled rule over rows of summed facts, ladders applied.

    `sums` has one row per key and level: `source` names a source, or is
    missing for the whole campaign (see `metrics.with_overall`). `keys` are the
    columns that tell campaigns (or retrospectives) apart. Each rule is one
    pass of numpy over all rows, so thousands of campaigns cost little more
    than one.
    """
    active = [rule for rule in rules if rule.enabled]
    if not active or sums.empty:
        return empty_findings(keys)
    columns = _Columns(sums)
    whole_campaign = sums["source"].isna().to_numpy()
    hits = _Hits()
    for index, rule in enumerate(active):
        values = columns.metric(rule.metric)
        samples = columns.fact(rule.spec.denominator)
        codes, low, high = _judge(rule, values, samples)
        if rule.scope == Scope.CAMPAIGN:
            codes = np.where(whole_campaign, codes, _NONE)
        hits.add(index, codes, values, low, high, samples)
    joined = hits.joined()
    if joined["rows"].size == 0:
        return empty_findings(keys)
    kept = _climb_ladders(joined, active)
    return _findings_frame(sums, keys, active, joined, kept)


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
        spec.denominator, metrics.as_number(row["sample_size"]), currency
    )
    low, high = (
        metrics.as_number(row.get("interval_low")),
        metrics.as_number(row.get("interval_high")),
    )
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
    observed = metrics.format_value(
        metric, metrics.as_number(row["observed"]), currency
    )
    threshold = metrics.format_value(metric, float(row["threshold"]), currency)
    when = " ".join(p for p in (_where(source), format_period(period)) if p)
    rule = f"rule {row['rule_key']} v{int(row['rule_version'])}"
    if row["finding"] == Finding.NOT_ENOUGH_DATA:
        sample = metrics.describe_amount(
            spec.denominator, metrics.as_number(row["sample_size"]), currency
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
