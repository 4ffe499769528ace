"""Review, submit, approve, request changes, reopen: every transition and refusal."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pytest
from sqlalchemy import update
from sqlmodel import Session, col, select

from core.errors import (
    InvalidTransition,
    PermissionDenied,
    StaleVersion,
    ValidationFailed,
)
from core.models import AuditEvent, Campaign, Insight, KpiDaily, Retrospective, Role
from core.services import retrospectives, review
from core.services import rules as rule_service
from core.services.permissions import Actor
from core.services.review import InsightEdit
from tests.factories import add_kpis, make_campaign, make_user

START = date(2026, 11, 1)


@dataclass
class World:
    viewer: Actor
    analyst: Actor
    other_analyst: Actor
    approver: Actor
    admin: Actor
    campaign: Campaign
    retro_id: int

    def by_role(self, role: Role) -> Actor:
        return {
            Role.VIEWER: self.viewer,
            Role.ANALYST: self.other_analyst,
            Role.APPROVER: self.approver,
            Role.ADMIN: self.admin,
        }[role]


def poor_campaign(session: Session, owner: Actor) -> Campaign:
    """Meta at ROAS 0.40 on 1,000 of spend: a critical finding."""
    campaign = make_campaign(
        session, owner, name="Winter sale", end_date=START, currency="EUR"
    )
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
        revenue=400.0,
    )
    return campaign


@pytest.fixture
def world(session: Session) -> World:
    rule_service.ensure_builtin_rules(session)
    session.commit()
    viewer = make_user(session, Role.VIEWER, name="Vera Owner")
    analyst = make_user(session, Role.ANALYST, name="Ana Lyst")
    campaign = poor_campaign(session, viewer)
    row = retrospectives.create_retrospective(
        session, actor=analyst, campaign_id=campaign.id or 0
    )
    retrospectives.generate_insights(session, actor=analyst, retrospective_id=row.id)
    session.commit()
    return World(
        viewer=viewer,
        analyst=analyst,
        other_analyst=make_user(session, Role.ANALYST, name="Otto Analyst"),
        approver=make_user(session, Role.APPROVER, name="Dana Reyes"),
        admin=make_user(session, Role.ADMIN, name="Adam Admin"),
        campaign=campaign,
        retro_id=row.id,
    )


def stored(session: Session, retro_id: int) -> Retrospective:
    session.expire_all()
    retro = session.get(Retrospective, retro_id)
    assert retro is not None
    return retro


def insights_of(session: Session, retro_id: int) -> list[Insight]:
    session.expire_all()
    query = select(Insight).where(Insight.retrospective_id == retro_id)
    return list(session.scalars(query.order_by(col(Insight.id))).all())


def triggered(session: Session, retro_id: int) -> Insight:
    return next(i for i in insights_of(session, retro_id) if i.finding == "triggered")


def events(session: Session, action: str) -> list[AuditEvent]:
    session.expire_all()
    query = select(AuditEvent).where(AuditEvent.action == action)
    return list(session.scalars(query.order_by(col(AuditEvent.id))).all())


def submitted(session: Session, w: World, by: Actor | None = None) -> None:
    review.submit(
        session,
        actor=by or w.analyst,
        retrospective_id=w.retro_id,
        summary="ROAS far below target on Meta.",
    )
    session.commit()


def approved(session: Session, w: World) -> None:
    submitted(session, w)
    review.approve(session, actor=w.approver, retrospective_id=w.retro_id)
    session.commit()


# -- the whole permission matrix --------------------------------------------------


def act_see(session: Session, w: World, actor: Actor) -> None:
    retrospectives.get_retrospective(session, actor=actor, retrospective_id=w.retro_id)


def act_edit(session: Session, w: World, actor: Actor) -> None:
    review.edit_insight(
        session,
        actor=actor,
        retrospective_id=w.retro_id,
        insight_id=triggered(session, w.retro_id).id or 0,
        changes=InsightEdit(title="Meta did not pay back"),
    )


def act_dismiss(session: Session, w: World, actor: Actor) -> None:
    review.set_dismissed(
        session,
        actor=actor,
        retrospective_id=w.retro_id,
        insight_id=triggered(session, w.retro_id).id or 0,
        dismissed=True,
        reason="Known tracking gap",
    )


def act_add(session: Session, w: World, actor: Actor) -> None:
    review.add_insight(
        session,
        actor=actor,
        retrospective_id=w.retro_id,
        title="Creative fatigue",
        text="Same video for six weeks.",
        severity="medium",
    )


def act_summary(session: Session, w: World, actor: Actor) -> None:
    review.write_summary(
        session, actor=actor, retrospective_id=w.retro_id, summary="All in all poor."
    )


def act_submit(session: Session, w: World, actor: Actor) -> None:
    review.submit(
        session, actor=actor, retrospective_id=w.retro_id, summary="Poor ROAS."
    )


def act_approve(session: Session, w: World, actor: Actor) -> None:
    submitted(session, w)
    review.approve(session, actor=actor, retrospective_id=w.retro_id)


def act_request_changes(session: Session, w: World, actor: Actor) -> None:
    submitted(session, w)
    review.request_changes(
        session, actor=actor, retrospective_id=w.retro_id, comment="Explain Meta."
    )


def act_reopen(session: Session, w: World, actor: Actor) -> None:
    approved(session, w)
    review.reopen(
        session, actor=actor, retrospective_id=w.retro_id, reason="Late revenue data"
    )


def act_queue(session: Session, w: World, actor: Actor) -> None:
    review.approval_queue(session, actor=actor)


ACTIONS = {
    "see": act_see,
    "edit insight": act_edit,
    "dismiss insight": act_dismiss,
    "add insight": act_add,
    "write summary": act_summary,
    "submit": act_submit,
    "approve": act_approve,
    "request changes": act_request_changes,
    "reopen": act_reopen,
    "approval queue": act_queue,
}
V, AN, AP, AD = Role.VIEWER, Role.ANALYST, Role.APPROVER, Role.ADMIN
ALLOWED = {
    # The viewer owns the campaign here, so sees its retrospective.
    "see": {V, AN, AP, AD},
    "edit insight": {AN, AD},
    "dismiss insight": {AN, AD},
    "add insight": {AN, AD},
    "write summary": {AN, AD},
    "submit": {AN, AD},
    "approve": {AP, AD},
    "request changes": {AP, AD},
    "reopen": {AD},
    "approval queue": {AP, AD},
}


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("name", list(ACTIONS))
def test_permission_matrix(session: Session, world: World, name: str, role: Role):
    actor = world.by_role(role)

    if role in ALLOWED[name]:
        ACTIONS[name](session, world, actor)
        session.commit()
    else:
        with pytest.raises(PermissionDenied):
            ACTIONS[name](session, world, actor)
        session.rollback()


def test_viewer_cannot_see_a_campaign_they_do_not_own(session: Session, world: World):
    stranger = make_user(session, Role.VIEWER)

    with pytest.raises(PermissionDenied, match="viewers see only their own"):
        act_see(session, world, stranger)
    listed = retrospectives.list_retrospectives(session, actor=stranger)
    assert listed == []
    assert [
        r.id for r in retrospectives.list_retrospectives(session, actor=world.viewer)
    ] == [world.retro_id]


@pytest.mark.parametrize("role", [Role.ANALYST, Role.ADMIN])
def test_nobody_approves_their_own_submission(
    session: Session, world: World, role: Role
):
    # An admin may submit too, and then may not approve it either.
    submitter = world.admin if role is Role.ADMIN else world.analyst
    submitted(session, world, by=submitter)
    deciders = [world.admin] if role is Role.ADMIN else []

    for decider in deciders:
        with pytest.raises(PermissionDenied, match="four eyes"):
            review.approve(session, actor=decider, retrospective_id=world.retro_id)
        with pytest.raises(PermissionDenied, match="four eyes"):
            review.request_changes(
                session, actor=decider, retrospective_id=world.retro_id, comment="x"
            )
    session.rollback()
    assert stored(session, world.retro_id).status == "in_review"


# -- transitions ---------------------------------------------------------------------


def test_full_path_draft_review_changes_draft_review_approved_draft(
    session: Session, world: World
):
    w = world
    submitted(session, w)
    assert stored(session, w.retro_id).status == "in_review"

    review.request_changes(
        session, actor=w.approver, retrospective_id=w.retro_id, comment="Why Meta?"
    )
    session.commit()
    retro = stored(session, w.retro_id)
    assert retro.status == "changes_requested"
    assert retro.decision_comment == "Why Meta?"
    assert retro.decided_by_id == w.approver.id
    detail = retrospectives.get_retrospective(
        session, actor=w.analyst, retrospective_id=w.retro_id
    )
    assert detail.retro.decision_comment == "Why Meta?"
    assert detail.retro.decided_by == "Dana Reyes"

    with pytest.raises(InvalidTransition, match="edit the retrospective before"):
        review.submit(session, actor=w.analyst, retrospective_id=w.retro_id)
    session.rollback()
    act_summary(session, w, w.analyst)
    session.commit()
    assert stored(session, w.retro_id).status == "draft"

    review.submit(session, actor=w.analyst, retrospective_id=w.retro_id)
    review.approve(session, actor=w.approver, retrospective_id=w.retro_id, comment="OK")
    session.commit()
    retro = stored(session, w.retro_id)
    assert (retro.status, retro.approved_by_id) == ("approved", w.approver.id)
    assert retro.snapshot is not None

    review.reopen(session, actor=w.admin, retrospective_id=w.retro_id, reason="Late")
    session.commit()
    retro = stored(session, w.retro_id)
    assert (retro.status, retro.approved_by_id, retro.snapshot) == ("draft", None, None)
    actions = [e.action for e in events_since(session)]
    assert actions[-7:] == [
        "retrospective.submit",
        "retrospective.request_changes",
        "retrospective.summary",
        "retrospective.submit",
        "retrospective.approve",
        "retrospective.report",
        "retrospective.reopen",
    ]


def events_since(session: Session) -> list[AuditEvent]:
    session.expire_all()
    query = select(AuditEvent).where(AuditEvent.target_type == "retrospective")
    return list(session.scalars(query.order_by(col(AuditEvent.id))).all())


def test_every_versioned_write_bumps_the_version(session: Session, world: World):
    before = stored(session, world.retro_id).version

    act_edit(session, world, world.analyst)
    act_add(session, world, world.analyst)
    act_summary(session, world, world.analyst)
    session.commit()

    assert stored(session, world.retro_id).version == before + 3


@pytest.mark.parametrize("name", ["edit insight", "add insight", "write summary"])
def test_a_write_on_a_version_not_shown_is_stale(
    session: Session, world: World, name: str
):
    shown = stored(session, world.retro_id).version
    act_summary(session, world, world.other_analyst)
    session.commit()
    calls = {
        "edit insight": lambda: review.edit_insight(
            session,
            actor=world.analyst,
            retrospective_id=world.retro_id,
            insight_id=triggered(session, world.retro_id).id or 0,
            changes=InsightEdit(title="New"),
            expected_version=shown,
        ),
        "add insight": lambda: review.add_insight(
            session,
            actor=world.analyst,
            retrospective_id=world.retro_id,
            title="t",
            text="",
            severity="low",
            expected_version=shown,
        ),
        "write summary": lambda: review.write_summary(
            session,
            actor=world.analyst,
            retrospective_id=world.retro_id,
            summary="Mine",
            expected_version=shown,
        ),
    }

    with pytest.raises(StaleVersion, match="Someone else changed this"):
        calls[name]()


@pytest.mark.parametrize("name", ["edit insight", "dismiss insight", "add insight"])
def test_approved_retrospective_refuses_edits_naming_the_approver(
    session: Session, world: World, name: str
):
    approved(session, world)

    with pytest.raises(InvalidTransition, match=r"Approved on \d+ \w+ by Dana Reyes"):
        ACTIONS[name](session, world, world.analyst)


def test_in_review_refuses_edits_and_regeneration(session: Session, world: World):
    submitted(session, world)

    with pytest.raises(InvalidTransition, match="Submitted for approval"):
        act_edit(session, world, world.analyst)
    with pytest.raises(InvalidTransition):
        retrospectives.generate_insights(
            session,
            actor=world.analyst,
            retrospective_id=world.retro_id,
            regenerate=True,
        )


def test_approve_refuses_a_draft_and_reopen_refuses_a_draft(
    session: Session, world: World
):
    with pytest.raises(InvalidTransition):
        review.approve(session, actor=world.approver, retrospective_id=world.retro_id)
    with pytest.raises(InvalidTransition, match="Only an approved"):
        review.reopen(
            session, actor=world.admin, retrospective_id=world.retro_id, reason="x"
        )


def test_a_second_decision_without_a_version_says_someone_else_decided(
    session: Session, world: World
):
    approved(session, world)
    other = make_user(session, Role.APPROVER)

    with pytest.raises(InvalidTransition, match="Someone else \\(Dana Reyes\\)"):
        review.approve(session, actor=other, retrospective_id=world.retro_id)


# -- edits: who, when, before and after ----------------------------------------------


def test_edit_records_who_when_and_before_after(session: Session, world: World):
    insight = triggered(session, world.retro_id)
    old_title = insight.title

    review.edit_insight(
        session,
        actor=world.analyst,
        retrospective_id=world.retro_id,
        insight_id=insight.id or 0,
        changes=InsightEdit(
            title="  Meta lost money  ",
            severity="HIGH",
            actions=["Pause Meta", "", " Check pixel "],
        ),
    )
    session.commit()

    edited = triggered(session, world.retro_id)
    assert (edited.title, edited.severity) == ("Meta lost money", "high")
    assert edited.actions == ["Pause Meta", "Check pixel"]
    assert edited.edited_by_id == world.analyst.id
    assert edited.edited_at is not None
    assert edited.origin == "rule"
    [event] = events(session, "insight.edit")
    assert event.before is not None and event.after is not None
    assert event.before["title"] == old_title
    assert event.after["title"] == "Meta lost money"
    assert "text" not in event.after
    detail = retrospectives.get_retrospective(
        session, actor=world.viewer, retrospective_id=world.retro_id
    )
    shown = next(i for i in detail.insights if i.id == edited.id)
    assert shown.edited_by == "Ana Lyst"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (InsightEdit(title="   "), "title: write something"),
        (InsightEdit(title="x" * 301), "title: 301 characters; at most 300"),
        (InsightEdit(severity="urgent"), "severity: 'urgent' is not one of"),
        (InsightEdit(actions=["a"] * 21), "suggested actions: 21 given"),
        (InsightEdit(), "Nothing changed"),
    ],
)
def test_bad_edits_are_refused_and_change_nothing(
    session: Session, world: World, changes: InsightEdit, message: str
):
    insight = triggered(session, world.retro_id)
    version = stored(session, world.retro_id).version

    with pytest.raises(ValidationFailed, match=message):
        review.edit_insight(
            session,
            actor=world.analyst,
            retrospective_id=world.retro_id,
            insight_id=insight.id or 0,
            changes=changes,
        )
    session.rollback()

    assert triggered(session, world.retro_id).title == insight.title
    assert stored(session, world.retro_id).version == version


def test_insight_of_another_retrospective_is_refused(session: Session, world: World):
    other = poor_campaign(session, world.viewer)
    row = retrospectives.create_retrospective(
        session, actor=world.analyst, campaign_id=other.id or 0
    )
    retrospectives.generate_insights(
        session, actor=world.analyst, retrospective_id=row.id
    )
    session.commit()

    with pytest.raises(ValidationFailed, match="is not part of retrospective"):
        review.edit_insight(
            session,
            actor=world.analyst,
            retrospective_id=world.retro_id,
            insight_id=triggered(session, row.id).id or 0,
            changes=InsightEdit(title="x"),
        )


def test_dismiss_and_restore_need_a_reason_and_are_audited(
    session: Session, world: World
):
    insight_id = triggered(session, world.retro_id).id or 0
    with pytest.raises(ValidationFailed, match="reason: write something"):
        review.set_dismissed(
            session,
            actor=world.analyst,
            retrospective_id=world.retro_id,
            insight_id=insight_id,
            dismissed=True,
            reason=" ",
        )

    for dismissed, reason in ((True, "Tracking gap"), (False, "Gap was fixed")):
        review.set_dismissed(
            session,
            actor=world.analyst,
            retrospective_id=world.retro_id,
            insight_id=insight_id,
            dismissed=dismissed,
            reason=reason,
        )
        session.commit()

    restored = triggered(session, world.retro_id)
    assert (restored.dismissed, restored.dismissed_reason) == (False, "")
    [dismiss] = events(session, "insight.dismiss")
    [restore] = events(session, "insight.restore")
    assert dismiss.after is not None and restore.after is not None
    assert dismiss.after["dismissed_reason"] == "Tracking gap"
    assert restore.after["reason"] == "Gap was fixed"
    with pytest.raises(ValidationFailed, match="not dismissed already"):
        review.set_dismissed(
            session,
            actor=world.analyst,
            retrospective_id=world.retro_id,
            insight_id=insight_id,
            dismissed=False,
            reason="again",
        )


def test_manual_insight_survives_regeneration(session: Session, world: World):
    added = review.add_insight(
        session,
        actor=world.analyst,
        retrospective_id=world.retro_id,
        title="Creative fatigue",
        text="Same video for six weeks.",
        severity="medium",
        actions=["Rotate creatives"],
    )
    session.commit()

    retrospectives.generate_insights(
        session, actor=world.analyst, retrospective_id=world.retro_id, regenerate=True
    )
    session.commit()

    manual = [i for i in insights_of(session, world.retro_id) if i.origin == "manual"]
    assert [(i.id, i.title, i.actions) for i in manual] == [
        (added, "Creative fatigue", ["Rotate creatives"])
    ]
    assert events(session, "insight.add")[0].after["title"] == "Creative fatigue"  # type: ignore[index]


# -- submit -------------------------------------------------------------------------


def test_submit_needs_a_summary(session: Session, world: World):
    with pytest.raises(ValidationFailed, match="summary: write the analyst's summary"):
        review.submit(session, actor=world.analyst, retrospective_id=world.retro_id)


def dismiss_all(session: Session, world: World) -> None:
    for insight in insights_of(session, world.retro_id):
        if insight.finding == "triggered" and not insight.dismissed:
            review.set_dismissed(
                session,
                actor=world.analyst,
                retrospective_id=world.retro_id,
                insight_id=insight.id or 0,
                dismissed=True,
                reason="Not relevant",
            )
    session.commit()


def test_submit_with_every_finding_dismissed_needs_a_no_findings_note(
    session: Session, world: World
):
    dismiss_all(session, world)

    with pytest.raises(ValidationFailed, match="no findings' note"):
        review.submit(
            session, actor=world.analyst, retrospective_id=world.retro_id, summary="s"
        )
    session.rollback()
    review.submit(
        session,
        actor=world.analyst,
        retrospective_id=world.retro_id,
        summary="s",
        no_findings_note="The dip was planned.",
    )
    session.commit()

    retro = stored(session, world.retro_id)
    assert (retro.status, retro.no_findings_note) == (
        "in_review",
        "The dip was planned.",
    )
    assert retro.submitted_by_id == world.analyst.id


def test_request_changes_needs_a_comment(session: Session, world: World):
    submitted(session, world)

    with pytest.raises(ValidationFailed, match="comment: write something"):
        review.request_changes(
            session, actor=world.approver, retrospective_id=world.retro_id, comment=""
        )


def test_approval_queue_is_oldest_submission_first(session: Session, world: World):
    other = poor_campaign(session, world.viewer)
    second = retrospectives.create_retrospective(
        session, actor=world.analyst, campaign_id=other.id or 0
    )
    retrospectives.generate_insights(
        session, actor=world.analyst, retrospective_id=second.id
    )
    session.commit()
    review.submit(session, actor=world.analyst, retrospective_id=second.id, summary="a")
    session.commit()
    submitted(session, world)

    queue = review.approval_queue(session, actor=world.approver)

    assert [r.id for r in queue] == [second.id, world.retro_id]
    assert queue[0].submitted_by == "Ana Lyst"
    assert queue[0].created_by == "Ana Lyst"


# -- freeze and reopen ---------------------------------------------------------------


def test_approval_freezes_kpis_and_insights(session: Session, world: World):
    approved(session, world)
    before = retrospectives.get_retrospective(
        session, actor=world.viewer, retrospective_id=world.retro_id
    )
    shown_json = retrospectives.detail_as_dict(before)

    # A late import: Meta's day re-imported with more revenue, a new source too.
    session.execute(update(KpiDaily).values(revenue=5_000.0))
    add_kpis(session, world.campaign, "tiktok", START, 1, spend=50.0, revenue=10.0)
    session.execute(update(Insight).values(title="tampered"))
    session.commit()

    after = retrospectives.get_retrospective(
        session, actor=world.viewer, retrospective_id=world.retro_id
    )
    assert after.frozen
    assert retrospectives.detail_as_dict(after) == shown_json
    pd_equal = before.kpis.reset_index(drop=True).equals(after.kpis)
    assert pd_equal
    assert list(after.kpis["source"].dropna()) == ["meta"]
    assert after.insights == before.insights
    assert all(i.title != "tampered" for i in after.insights)


def test_reopen_needs_a_reason_and_keeps_the_approval_in_the_history(
    session: Session, world: World
):
    approved(session, world)
    snapshot = stored(session, world.retro_id).snapshot
    with pytest.raises(ValidationFailed, match="reason: write something"):
        review.reopen(
            session, actor=world.admin, retrospective_id=world.retro_id, reason=""
        )
    session.rollback()

    review.reopen(
        session, actor=world.admin, retrospective_id=world.retro_id, reason="Late data"
    )
    session.commit()

    [event] = events(session, "retrospective.reopen")
    assert event.after is not None and event.before is not None
    assert event.before["status"] == "approved"
    assert event.after["status"] == "draft"
    assert event.after["reason"] == "Late data"
    earlier = event.after["earlier_approval"]
    assert earlier["approved_by"] == "Dana Reyes"
    assert earlier["approved_by_id"] == world.approver.id
    assert earlier["snapshot_sha256"] == retrospectives.snapshot_hash(snapshot)
    [approval] = events(session, "retrospective.approve")
    assert approval.after is not None
    assert approval.after["snapshot_sha256"] == earlier["snapshot_sha256"]
    # A draft again: edits work and the view reads live data.
    act_edit(session, world, world.analyst)
    detail = retrospectives.get_retrospective(
        session, actor=world.viewer, retrospective_id=world.retro_id
    )
    assert not detail.frozen


def test_approve_calls_the_report_hook_inside_the_transaction(
    session: Session, world: World
):
    submitted(session, world)
    seen: list[tuple[str, int]] = []

    def hook(hook_session: Session, *, retrospective_id: int) -> None:
        retro = hook_session.get(Retrospective, retrospective_id)
        assert retro is not None
        seen.append((retro.status, retrospective_id))

    review.approve(
        session, actor=world.approver, retrospective_id=world.retro_id, report_hook=hook
    )

    assert seen == [("approved", world.retro_id)]
