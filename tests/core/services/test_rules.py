"""Stored rules: built-in seeding, admin edits with versions, threshold preview."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest
from sqlmodel import Session, select

from core import rules as engine
from core.errors import PermissionDenied, StaleVersion, ValidationFailed
from core.models import AuditEvent, Campaign, Retrospective, Role, Rule
from core.rules import RuleSpec
from core.services import retrospectives
from core.services import rules as rule_service
from core.services.permissions import Actor
from tests.factories import add_kpis, make_campaign, make_user

START = date(2026, 11, 1)


@pytest.fixture
def admin(session: Session) -> Actor:
    rule_service.ensure_builtin_rules(session)
    session.commit()
    return make_user(session, Role.ADMIN)


def spec(session: Session, admin: Actor, key: str) -> RuleSpec:
    return rule_service.get_rule(session, actor=admin, key=key).spec


def save(session: Session, admin: Actor, new: RuleSpec) -> rule_service.RuleRow:
    current = rule_service.get_rule(session, actor=admin, key=new.key)
    row = rule_service.update_rule(
        session, actor=admin, spec=new, expected_version=current.version
    )
    session.commit()
    return row


# -- seeding ------------------------------------------------------------------


def test_builtin_rules_are_seeded_once(session: Session) -> None:
    first = rule_service.ensure_builtin_rules(session)
    session.commit()
    second = rule_service.ensure_builtin_rules(session)

    stored = session.scalars(select(Rule)).all()
    assert sorted(first) == sorted(engine.BUILTIN_KEYS)
    assert second == []
    assert len(stored) == 7
    assert all(rule.builtin and rule.version == 1 for rule in stored)


def test_seeding_leaves_admin_edits_alone(session: Session, admin: Actor) -> None:
    save(session, admin, replace(spec(session, admin, "low_ctr"), threshold=0.01))

    rule_service.ensure_builtin_rules(session)

    stored = spec(session, admin, "low_ctr")
    assert (stored.threshold, stored.version) == (0.01, 2)


def test_seeding_restores_only_missing_rules(session: Session, admin: Actor) -> None:
    gone = session.scalars(select(Rule).where(Rule.key == "high_cpc")).one()
    session.delete(gone)
    session.commit()

    assert rule_service.ensure_builtin_rules(session) == ["high_cpc"]


# -- editing ------------------------------------------------------------------


def test_everyone_reads_the_rules(session: Session, admin: Actor) -> None:
    viewer = make_user(session, Role.VIEWER)

    keys = {r.key for r in rule_service.list_rules(session, actor=viewer)}

    assert keys == set(engine.BUILTIN_KEYS)


def test_admin_edit_bumps_version_and_is_audited(
    session: Session, admin: Actor
) -> None:
    new = replace(
        spec(session, admin, "poor_roas"),
        threshold=0.8,
        severity="medium",
        evidence_floor=1_000.0,
        actions=("Move budget to search.",),
    )

    row = save(session, admin, new)

    assert (row.threshold, row.severity, row.evidence_floor) == (0.8, "medium", 1_000)
    assert row.actions == ("Move budget to search.",)
    assert row.version == 2
    event = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "rule.update")
    ).one()
    assert event.before and event.after
    assert (event.before["threshold"], event.after["threshold"]) == (0.7, 0.8)


def test_saving_without_a_change_keeps_the_version(
    session: Session, admin: Actor
) -> None:
    row = save(session, admin, spec(session, admin, "low_ctr"))

    assert row.version == 1


@pytest.mark.parametrize("role", [Role.VIEWER, Role.ANALYST, Role.APPROVER])
def test_only_admins_edit_rules(session: Session, admin: Actor, role: Role) -> None:
    someone = make_user(session, role)
    new = replace(spec(session, admin, "low_ctr"), threshold=0.01)

    with pytest.raises(PermissionDenied):
        rule_service.update_rule(session, actor=someone, spec=new, expected_version=1)
    with pytest.raises(PermissionDenied):
        rule_service.create_rule(session, actor=someone, spec=replace(new, key="x_y"))
    with pytest.raises(PermissionDenied):
        rule_service.preview_rule(session, actor=someone, spec=new)


def test_edit_of_a_changed_rule_is_stale(session: Session, admin: Actor) -> None:
    save(session, admin, replace(spec(session, admin, "low_ctr"), threshold=0.01))

    with pytest.raises(StaleVersion, match="reload"):
        rule_service.update_rule(
            session,
            actor=admin,
            spec=replace(spec(session, admin, "low_ctr"), threshold=0.02),
            expected_version=1,
        )


def test_metric_of_a_rule_cannot_change(session: Session, admin: Actor) -> None:
    with pytest.raises(ValidationFailed, match=r"^metric:"):
        save(session, admin, replace(spec(session, admin, "low_ctr"), metric="cpc"))


def test_invalid_edit_is_refused_and_nothing_changes(
    session: Session, admin: Actor
) -> None:
    with pytest.raises(ValidationFailed, match=r"^threshold:"):
        save(session, admin, replace(spec(session, admin, "low_ctr"), threshold=2.0))
    session.rollback()

    assert spec(session, admin, "low_ctr").threshold == 0.005


def test_disable_and_enable(session: Session, admin: Actor) -> None:
    row = rule_service.set_enabled(
        session, actor=admin, key="overspend", enabled=False, expected_version=1
    )
    again = rule_service.set_enabled(
        session, actor=admin, key="overspend", enabled=True, expected_version=2
    )

    assert (row.enabled, row.version) == (False, 2)
    assert (again.enabled, again.version) == (True, 3)


def test_admin_adds_a_rule_on_any_catalogue_metric(
    session: Session, admin: Actor
) -> None:
    new = RuleSpec(
        key="high_cpa",
        name="High CPA",
        metric="cpa",
        comparison=">",
        threshold=80.0,
        severity="high",
        evidence_floor=20,
        actions=("Cut the placements with the costliest conversions.",),
    )

    row = rule_service.create_rule(session, actor=admin, spec=new)

    assert (row.key, row.metric, row.version, row.builtin) == (
        "high_cpa",
        "cpa",
        1,
        False,
    )
    with pytest.raises(ValidationFailed, match="exists already"):
        rule_service.create_rule(session, actor=admin, spec=new)


# -- preview ------------------------------------------------------------------


def retro_with_roas(session: Session, analyst: Actor, roas: float, *, name: str) -> int:
    """A generated retrospective whose only source has 1,000 of spend at `roas`."""
    campaign: Campaign = make_campaign(session, analyst, name=name, end_date=START)
    add_kpis(
        session,
        campaign,
        "meta",
        START,
        1,
        impressions=100_000,
        clicks=1_000,
        spend=1_000.0,
        conversions=50.0,
        revenue=1_000.0 * roas,
    )
    row = retrospectives.create_retrospective(
        session, actor=analyst, campaign_id=campaign.id or 0
    )
    retrospectives.generate_insights(session, actor=analyst, retrospective_id=row.id)
    session.commit()
    return row.id


def test_preview_counts_insights_a_threshold_would_add_and_remove(
    session: Session, admin: Actor
) -> None:
    analyst = make_user(session, Role.ANALYST)
    retro_with_roas(session, analyst, 0.6, name="Poor")
    retro_with_roas(session, analyst, 0.75, name="Borderline")
    retro_with_roas(session, analyst, 2.0, name="Healthy")

    stricter = replace(spec(session, admin, "poor_roas"), threshold=0.8)
    looser = replace(spec(session, admin, "poor_roas"), threshold=0.55)
    up = rule_service.preview_rule(session, actor=admin, spec=stricter)
    down = rule_service.preview_rule(session, actor=admin, spec=looser)

    # "Borderline" (0.75) becomes poor, on Meta and for the whole campaign.
    assert (up.retrospectives, up.added, up.removed) == (3, 2, 0)
    assert {e.campaign for e in up.examples} == {"Borderline"}
    assert {e.change for e in up.examples} == {"add"}
    # "Poor" (0.6) is no longer below 0.55.
    assert (down.added, down.removed) == (0, 2)
    assert down.examples[0].title.startswith("Poor ROAS: ROAS 0.60")


def test_preview_honours_the_ladder(session: Session, admin: Actor) -> None:
    analyst = make_user(session, Role.ANALYST)
    retro_with_roas(session, analyst, 0.6, name="Poor")

    # Critical from 0.65 on: the poor insight gives way to a critical one.
    wider = replace(spec(session, admin, "critical_roas"), threshold=0.65)
    preview = rule_service.preview_rule(session, actor=admin, spec=wider)

    assert (preview.added, preview.removed) == (2, 2)
    added = {e.rule_key for e in preview.examples if e.change == "add"}
    removed = {e.rule_key for e in preview.examples if e.change == "remove"}
    assert (added, removed) == ({"critical_roas"}, {"poor_roas"})


def test_preview_of_disabling_removes_every_finding_of_the_rule(
    session: Session, admin: Actor
) -> None:
    analyst = make_user(session, Role.ANALYST)
    retro_with_roas(session, analyst, 0.6, name="Poor")

    off = replace(spec(session, admin, "poor_roas"), enabled=False)
    preview = rule_service.preview_rule(session, actor=admin, spec=off)

    assert (preview.added, preview.removed) == (0, 2)


def test_preview_counts_not_enough_data_apart(session: Session, admin: Actor) -> None:
    analyst = make_user(session, Role.ANALYST)
    retro_with_roas(session, analyst, 2.0, name="Healthy")

    high_floor = replace(spec(session, admin, "low_ctr"), evidence_floor=1_000_000)
    preview = rule_service.preview_rule(session, actor=admin, spec=high_floor)

    assert (preview.added, preview.removed) == (0, 0)
    assert preview.added_not_enough_data == 2
    assert not preview.unchanged


def test_preview_of_an_unchanged_rule_changes_nothing(
    session: Session, admin: Actor
) -> None:
    analyst = make_user(session, Role.ANALYST)
    retro_with_roas(session, analyst, 0.6, name="Poor")

    preview = rule_service.preview_rule(
        session, actor=admin, spec=spec(session, admin, "poor_roas")
    )

    assert preview.unchanged
    assert preview.examples == ()


def test_preview_counts_changes_in_approved_retrospectives(
    session: Session, admin: Actor
) -> None:
    analyst = make_user(session, Role.ANALYST)
    retro_id = retro_with_roas(session, analyst, 0.6, name="Poor")
    retro = session.get(Retrospective, retro_id)
    assert retro is not None
    retro.status = "approved"
    session.add(retro)
    session.commit()

    off = replace(spec(session, admin, "poor_roas"), enabled=False)
    preview = rule_service.preview_rule(session, actor=admin, spec=off)

    assert preview.in_approved == 2
    assert preview.examples[0].retrospective_status == "approved"


def test_preview_of_a_new_rule(session: Session, admin: Actor) -> None:
    analyst = make_user(session, Role.ANALYST)
    retro_with_roas(session, analyst, 0.6, name="Poor")
    new = RuleSpec(
        key="high_cpm",
        name="High CPM",
        metric="cpm",
        comparison=">",
        threshold=5.0,
        severity="low",
        evidence_floor=10_000,
    )

    preview = rule_service.preview_rule(session, actor=admin, spec=new)

    # CPM = 1000 x 1,000 / 100,000 = 10.00 > 5.00, on Meta and overall.
    assert preview.added == 2
    assert session.scalars(select(Rule).where(Rule.key == "high_cpm")).first() is None
