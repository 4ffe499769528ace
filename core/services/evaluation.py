"""Batch evaluation: one SQL aggregate for many campaigns, rules applied in pandas.

These are building blocks for other services (generation, threshold preview,
scheduled jobs) and take no actor: the callers check permissions first. Nothing
here runs a query per campaign.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

import pandas as pd
from sqlalchemy import and_, select
from sqlmodel import Session, col

from core import metrics, rules
from core.models import KpiDaily, Retrospective, Rule
from core.rules import RuleSpec

CAMPAIGN_KEYS: tuple[str, ...] = ("campaign_id",)
RETROSPECTIVE_KEYS: tuple[str, ...] = ("retrospective_id",)


def spec_of(rule: Rule) -> RuleSpec:
    """A stored rule as the engine reads it."""
    return RuleSpec(
        key=rule.key,
        name=rule.name,
        description=rule.description,
        metric=rule.metric,
        comparison=rule.comparison,
        threshold=float(rule.threshold),
        severity=rule.severity,
        scope=rule.scope,
        evidence_floor=float(rule.evidence_floor),
        actions=tuple(rule.actions or ()),
        enabled=rule.enabled,
        version=rule.version,
    )


def stored_rules(session: Session, *, enabled_only: bool = True) -> list[RuleSpec]:
    """The rules of the Rule table, by key."""
    query = select(Rule).order_by(col(Rule.key))
    if enabled_only:
        query = query.where(col(Rule.enabled))
    return [spec_of(rule) for rule in session.scalars(query)]


def campaign_sums(
    session: Session,
    *,
    campaign_ids: Iterable[int] | None = None,
    start: date | None = None,
    end: date | None = None,
) -> pd.DataFrame:
    """Summed facts per campaign and source, plus one whole-campaign row each.

    One GROUP BY in the database whatever the number of campaigns; the
    whole-campaign rows are sums of the source sums, so they are exact.
    """
    by = ("campaign_id", "source")
    statement = metrics.aggregate_statement(
        by=by, campaign_ids=campaign_ids, start=start, end=end
    )
    per_source = metrics.frame_of_rows(session.execute(statement).all(), by)
    return metrics.with_overall(per_source, CAMPAIGN_KEYS)


def evaluate_campaigns(
    session: Session,
    *,
    campaign_ids: Iterable[int] | None = None,
    start: date | None = None,
    end: date | None = None,
    rule_set: Sequence[RuleSpec] | None = None,
) -> pd.DataFrame:
    """Findings of every enabled rule for many campaigns, keyed by campaign_id."""
    specs = stored_rules(session) if rule_set is None else rule_set
    sums = campaign_sums(session, campaign_ids=campaign_ids, start=start, end=end)
    return rules.evaluate(sums, specs, keys=CAMPAIGN_KEYS)


def retrospective_sums(
    session: Session, *, retrospective_ids: Iterable[int] | None = None
) -> pd.DataFrame:
    """Summed facts per retrospective and source over each one's own period."""
    retro_id: Any = col(Retrospective.id).label("retrospective_id")
    statement = (
        select(retro_id, col(KpiDaily.source), *metrics.sql_sums())
        .select_from(Retrospective)
        .join(
            KpiDaily,
            and_(
                col(KpiDaily.campaign_id) == col(Retrospective.campaign_id),
                col(KpiDaily.day) >= col(Retrospective.period_start),
                col(KpiDaily.day) <= col(Retrospective.period_end),
            ),
        )
        .group_by(col(Retrospective.id), col(KpiDaily.source))
    )
    if retrospective_ids is not None:
        statement = statement.where(col(Retrospective.id).in_(list(retrospective_ids)))
    by = ("retrospective_id", "source")
    per_source = metrics.frame_of_rows(session.execute(statement).all(), by)
    return metrics.with_overall(per_source, RETROSPECTIVE_KEYS)


def evaluate_retrospectives(
    session: Session,
    *,
    rule_set: Sequence[RuleSpec],
    retrospective_ids: Iterable[int] | None = None,
) -> pd.DataFrame:
    """Findings of a rule set for many retrospectives, keyed by retrospective_id."""
    sums = retrospective_sums(session, retrospective_ids=retrospective_ids)
    return rules.evaluate(sums, rule_set, keys=RETROSPECTIVE_KEYS)
