"""The rules admins edit: built-in seeding, edits with versions, threshold preview."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from core import metrics
from core import rules as engine
from core.errors import NotFound, StaleVersion, ValidationFailed
from core.models import Campaign, Retrospective, RetroStatus, Rule, utcnow
from core.rules import RuleSpec
from core.services import audit, evaluation
from core.services.permissions import Action, Actor, require

logger = logging.getLogger(__name__)

# How many example insights a preview lists for each direction.
PREVIEW_EXAMPLES = 5
# The identity of a finding when comparing two rule sets.
FINDING_IDENTITY = ["retrospective_id", "source", "metric", "rule_key", "finding"]


@dataclass(frozen=True)
class RuleRow:
    """A stored rule as pages and the CLI show it: plain values."""

    id: int
    key: str
    name: str
    description: str
    metric: str
    comparison: str
    threshold: float
    severity: str
    scope: str
    evidence_floor: float
    actions: tuple[str, ...]
    enabled: bool
    builtin: bool
    version: int
    updated_at: datetime

    @property
    def spec(self) -> RuleSpec:
        return RuleSpec(
            key=self.key,
            name=self.name,
            description=self.description,
            metric=self.metric,
            comparison=self.comparison,
            threshold=self.threshold,
            severity=self.severity,
            scope=self.scope,
            evidence_floor=self.evidence_floor,
            actions=self.actions,
            enabled=self.enabled,
            version=self.version,
        )


def _row(rule: Rule) -> RuleRow:
    assert rule.id is not None
    return RuleRow(
        id=rule.id,
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
        builtin=rule.builtin,
        version=rule.version,
        updated_at=rule.updated_at,
    )


def _audit_values(spec: RuleSpec) -> dict[str, Any]:
    values = asdict(spec)
    values["actions"] = list(spec.actions)
    return values


# -- seeding ------------------------------------------------------------------


def ensure_builtin_rules(session: Session) -> list[str]:
    """Add the built-in rules that are missing; return their keys.

    Idempotent and safe to call on every start: a rule that exists, edited or
    not, is left as the admin left it.
    """
    present = set(session.scalars(select(Rule.key)))
    added = []
    for spec in engine.BUILTIN_RULES:
        if spec.key in present:
            continue
        try:
            # A savepoint per rule: another process seeding at the same moment
            # costs us only that rule, never the caller's transaction.
            with session.begin_nested():
                session.add(_new_rule(spec, builtin=True, actor=None))
        except IntegrityError:
            logger.info("built-in rule %s was added by another process", spec.key)
            continue
        added.append(spec.key)
    if added:
        logger.info("added built-in rules: %s", ", ".join(added))
    return added


def _new_rule(spec: RuleSpec, *, builtin: bool, actor: Actor | None) -> Rule:
    return Rule(
        key=spec.key,
        name=spec.name,
        description=spec.description,
        metric=spec.metric,
        comparison=spec.comparison,
        threshold=spec.threshold,
        severity=spec.severity,
        scope=spec.scope,
        evidence_floor=spec.evidence_floor,
        actions=list(spec.actions),
        enabled=spec.enabled,
        builtin=builtin,
        version=1,
        updated_by_id=actor.id if actor else None,
    )


# -- reading ------------------------------------------------------------------


def list_rules(session: Session, *, actor: Actor) -> list[RuleRow]:
    """Every rule, for everyone to read: the rules explain the insights people see."""
    del actor  # readable by every role; kept for the uniform service signature
    query = select(Rule).order_by(col(Rule.metric), col(Rule.key))
    return [_row(rule) for rule in session.scalars(query)]


def _get(session: Session, key: str) -> Rule:
    rule = session.scalars(select(Rule).where(Rule.key == key)).first()
    if rule is None:
        raise NotFound(f"There is no rule with key {key!r}.")
    return rule


def get_rule(session: Session, *, actor: Actor, key: str) -> RuleRow:
    del actor
    return _row(_get(session, key))


# -- writing ------------------------------------------------------------------


def create_rule(session: Session, *, actor: Actor, spec: RuleSpec) -> RuleRow:
    """Add a new rule on any catalogue metric (admin)."""
    require(actor, Action.ADMINISTER)
    spec = engine.validate_rule(replace(spec, version=1))
    if session.scalars(select(Rule.id).where(Rule.key == spec.key)).first():
        raise ValidationFailed(f"key: a rule with key {spec.key!r} exists already.")
    rule = _new_rule(spec, builtin=False, actor=actor)
    session.add(rule)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="rule.create",
        target_type="rule",
        target_id=spec.key,
        after=_audit_values(spec),
    )
    return _row(rule)


def update_rule(
    session: Session, *, actor: Actor, spec: RuleSpec, expected_version: int
) -> RuleRow:
    """Save an admin's edit of the rule `spec.key`; its version grows by one.

    The metric of a rule is fixed: a rule keyed `low_ctr` judging CPC would
    mislead everyone reading old insights. `expected_version` is the version
    the admin edited; if someone saved in between, StaleVersion.
    """
    require(actor, Action.ADMINISTER)
    rule = _get(session, spec.key)
    if rule.version != expected_version:
        raise StaleVersion(
            f"Rule {rule.key} was changed by someone else (now version "
            f"{rule.version}); reload it and edit again."
        )
    if spec.metric != rule.metric:
        raise ValidationFailed(
            f"metric: the metric of rule {rule.key} cannot change; add a new rule."
        )
    before = evaluation.spec_of(rule)
    spec = engine.validate_rule(replace(spec, version=rule.version))
    if spec == before:
        return _row(rule)

    _apply(rule, spec, actor)
    session.add(rule)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="rule.update",
        target_type="rule",
        target_id=rule.key,
        before=_audit_values(before),
        after=_audit_values(evaluation.spec_of(rule)),
    )
    return _row(rule)


def _apply(rule: Rule, spec: RuleSpec, actor: Actor) -> None:
    rule.name = spec.name
    rule.description = spec.description
    rule.comparison = spec.comparison
    rule.threshold = spec.threshold
    rule.severity = spec.severity
    rule.scope = spec.scope
    rule.evidence_floor = spec.evidence_floor
    rule.actions = list(spec.actions)
    rule.enabled = spec.enabled
    rule.version += 1
    rule.updated_at = utcnow()
    rule.updated_by_id = actor.id


def set_enabled(
    session: Session, *, actor: Actor, key: str, enabled: bool, expected_version: int
) -> RuleRow:
    """Switch a rule on or off; a version like any other edit."""
    current = _row(_get(session, key)).spec
    return update_rule(
        session,
        actor=actor,
        spec=replace(current, enabled=enabled),
        expected_version=expected_version,
    )


# -- threshold preview --------------------------------------------------------


@dataclass(frozen=True)
class PreviewExample:
    """One insight a rule change would add or remove."""

    change: str  # "add" or "remove"
    retrospective_id: int
    retrospective_status: str
    campaign: str
    source: str | None
    rule_key: str
    severity: str
    finding: str
    observed: float | None
    title: str


@dataclass(frozen=True)
class RulePreview:
    """What saving a rule would change across the existing retrospectives."""

    retrospectives: int
    added: int
    removed: int
    added_not_enough_data: int
    removed_not_enough_data: int
    # Of the changes above, how many fall in approved retrospectives, which
    # keep their insights as approved.
    in_approved: int
    examples: tuple[PreviewExample, ...]

    @property
    def unchanged(self) -> bool:
        return not (
            self.added
            or self.removed
            or self.added_not_enough_data
            or self.removed_not_enough_data
        )


def _proposed_set(current: list[RuleSpec], spec: RuleSpec) -> list[RuleSpec]:
    others = [rule for rule in current if rule.key != spec.key]
    return [*others, spec] if spec.enabled else others


def preview_rule(session: Session, *, actor: Actor, spec: RuleSpec) -> RulePreview:
    """How many insights saving `spec` would add and remove, with a few examples.

    Both rule sets (as stored, and with the change) run over every
    retrospective's own period in one batch each, so ladders are honoured: a
    rule that starts to fire may silence a milder one on the same metric.
    """
    require(actor, Action.ADMINISTER)
    spec = engine.validate_rule(spec)
    current = evaluation.stored_rules(session)
    sums = evaluation.retrospective_sums(session)
    keys = evaluation.RETROSPECTIVE_KEYS
    before = engine.evaluate(sums, current, keys=keys)
    after = engine.evaluate(sums, _proposed_set(current, spec), keys=keys)

    added = _difference(after, before)
    removed = _difference(before, after)
    context = _retro_context(session)
    changed = pd.concat([added, removed])
    in_approved = int(
        changed["retrospective_id"]
        .map(lambda rid: context.get(int(rid), ("", ""))[0])
        .eq(RetroStatus.APPROVED.value)
        .sum()
    )
    return RulePreview(
        retrospectives=int(sums["retrospective_id"].nunique()),
        added=_count(added, engine.Finding.TRIGGERED),
        removed=_count(removed, engine.Finding.TRIGGERED),
        added_not_enough_data=_count(added, engine.Finding.NOT_ENOUGH_DATA),
        removed_not_enough_data=_count(removed, engine.Finding.NOT_ENOUGH_DATA),
        in_approved=in_approved,
        examples=_examples(added, "add", context)
        + _examples(removed, "remove", context),
    )


def _difference(left: pd.DataFrame, right: pd.DataFrame) -> pd.DataFrame:
    """Rows of `left` whose identity (severity included) is not among `right`'s."""
    identity = [*FINDING_IDENTITY, "severity"]
    if left.empty or right.empty:
        return left
    # pandas matches missing sources (whole campaign) with each other here.
    merged = left.merge(
        right[identity].drop_duplicates(), on=identity, how="left", indicator=True
    )
    return merged[merged["_merge"] == "left_only"].drop(columns="_merge")


def _count(frame: pd.DataFrame, finding: engine.Finding) -> int:
    return int((frame["finding"] == finding.value).sum()) if len(frame) else 0


def _retro_context(session: Session) -> dict[int, tuple[str, str]]:
    query = select(Retrospective.id, Retrospective.status, Campaign.name).join(
        Campaign, col(Campaign.id) == col(Retrospective.campaign_id)
    )
    return {
        int(rid): (status, name)
        for rid, status, name in session.execute(query).all()
        if rid is not None
    }


def _examples(
    frame: pd.DataFrame, change: str, context: dict[int, tuple[str, str]]
) -> tuple[PreviewExample, ...]:
    # Problems first, then the most severe: the examples an admin must see.
    ordered = frame.assign(
        _problem=frame["finding"] != engine.Finding.TRIGGERED.value,
        _rank=-frame["severity"].map(engine.SEVERITY_RANK).astype("float64").fillna(0),
    ).sort_values(["_problem", "_rank", "retrospective_id"])
    examples = []
    for row in ordered.head(PREVIEW_EXAMPLES).itertuples(index=False):
        retro_id = int(row.retrospective_id)
        status, campaign = context.get(retro_id, ("", ""))
        source = None if pd.isna(row.source) else str(row.source)
        observed = metrics.as_number(row.observed)
        examples.append(
            PreviewExample(
                change=change,
                retrospective_id=retro_id,
                retrospective_status=status,
                campaign=campaign,
                source=source,
                rule_key=str(row.rule_key),
                severity=str(row.severity),
                finding=str(row.finding),
                observed=observed,
                title=engine.title_for(
                    str(row.rule_name),
                    str(row.metric),
                    str(row.finding),
                    observed,
                    source,
                ),
            )
        )
    return tuple(examples)
