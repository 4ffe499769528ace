"""Review on the retrospective page and the approval queue, driven through AppTest."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlmodel import Session, col, select
from streamlit.testing.v1 import AppTest

from core.models import Insight, Retrospective, Role
from core.services import retrospectives, review
from core.services import rules as rule_service
from core.services.permissions import Actor
from core.services.review import InsightEdit
from tests.core.services.test_review import poor_campaign
from tests.factories import make_user
from tests.pages.test_retrospectives_page import VIEW_PAGE, open_page
from ui.text import escape

ROOT_PAGES = VIEW_PAGE.rsplit("/", 1)[0]
QUEUE_PAGE = f"{ROOT_PAGES}/approvals.py"
# Typed text that must stay inert: a tag, a markdown link and an image.
HOSTILE = "<script>alert(1)</script> [click](https://evil.example) ![x](https://evil.example/x.png)"


@dataclass
class Team:
    viewer: Actor
    analyst: Actor
    approver: Actor
    admin: Actor
    retro_id: int


@pytest.fixture
def team(session: Session) -> Team:
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
    return Team(
        viewer=viewer,
        analyst=analyst,
        approver=make_user(session, Role.APPROVER, name="Dana Reyes"),
        admin=make_user(session, Role.ADMIN, name="Adam Admin"),
        retro_id=row.id,
    )


def stored(session: Session, retro_id: int) -> Retrospective:
    session.expire_all()
    retro = session.get(Retrospective, retro_id)
    assert retro is not None
    # Ends the read: on SQLite it holds the write lock the app under test needs.
    session.commit()
    return retro


def first_finding(session: Session, retro_id: int) -> Insight:
    session.expire_all()
    query = select(Insight).where(
        Insight.retrospective_id == retro_id, Insight.finding == "triggered"
    )
    insight = session.scalars(query.order_by(col(Insight.id))).first()
    assert insight is not None
    session.commit()
    return insight


def submit(session: Session, team: Team, summary: str = "Meta lost money.") -> None:
    review.submit(
        session, actor=team.analyst, retrospective_id=team.retro_id, summary=summary
    )
    session.commit()


def markdown(at: AppTest) -> list[str]:
    return [str(m.value) for m in at.markdown]


def all_text(at: AppTest) -> str:
    parts = [*markdown(at), *(str(e.value) for e in at.warning)]
    parts += [str(e.value) for e in at.success] + [str(c.value) for c in at.caption]
    return "\n".join(parts)


# -- the retrospective page: review on a draft ------------------------------------


def test_analyst_edits_an_insight_in_place(session: Session, team: Team):
    insight = first_finding(session, team.retro_id)
    at = open_page(VIEW_PAGE, team.analyst, team.retro_id)

    at.text_input(key=f"title_{insight.id}").input("Meta did not pay back")
    at.selectbox(key=f"severity_{insight.id}").set_value("high")
    at.text_area(key=f"actions_{insight.id}").input("Pause Meta\nCheck the pixel")
    at.button(key=f"save_{insight.id}").click().run()

    assert not at.exception
    edited = first_finding(session, team.retro_id)
    assert (edited.title, edited.severity) == ("Meta did not pay back", "high")
    assert edited.actions == ["Pause Meta", "Check the pixel"]
    assert escape(f"Insight #{insight.id} saved.") in all_text(at)
    assert "Rule insight, edited by Ana Lyst" in all_text(at)


def test_dismiss_needs_a_reason_then_dismisses(session: Session, team: Team):
    insight = first_finding(session, team.retro_id)
    at = open_page(VIEW_PAGE, team.analyst, team.retro_id)

    at.button(key=f"dismiss_button_{insight.id}").click().run()
    assert [e.value for e in at.error] == [
        escape("reason: write something; it cannot be empty.")
    ]

    at.text_input(key=f"reason_{insight.id}").input("Tracking gap")
    at.button(key=f"dismiss_button_{insight.id}").click().run()

    dismissed = first_finding(session, team.retro_id)
    assert (dismissed.dismissed, dismissed.dismissed_reason) == (True, "Tracking gap")
    assert at.button(key=f"dismiss_button_{insight.id}").label == "Restore"


def test_analyst_adds_an_insight_writes_the_summary_and_submits(
    session: Session, team: Team
):
    at = open_page(VIEW_PAGE, team.analyst, team.retro_id)

    at.button(key="review_submit").click().run()
    assert escape("summary: write the analyst's summary") in at.error[0].value

    at.text_input(key="new_title").input("Creative fatigue")
    at.text_area(key="new_text").input("One video for six weeks.")
    at.button(key="new_add").click().run()
    at.text_area(key="review_summary").input("ROAS far below target on Meta.")
    at.button(key="review_save_summary").click().run()
    at.button(key="review_submit").click().run()

    assert not at.exception
    retro = stored(session, team.retro_id)
    assert (retro.status, retro.summary) == (
        "in_review",
        "ROAS far below target on Meta.",
    )
    manual = session.scalars(select(Insight).where(Insight.origin == "manual")).all()
    assert [i.title for i in manual] == ["Creative fatigue"]
    assert "Submitted for approval" in all_text(at)
    # Waiting for an approver: nothing can be edited any more.
    assert not [b for b in at.button if b.key and b.key.startswith("save_")]
    assert not [b for b in at.button if b.key == "review_submit"]


def test_a_change_made_elsewhere_first_makes_the_save_stale(
    session: Session, team: Team
):
    insight = first_finding(session, team.retro_id)
    at = open_page(VIEW_PAGE, team.analyst, team.retro_id)
    review.write_summary(
        session, actor=team.admin, retrospective_id=team.retro_id, summary="Theirs"
    )
    session.commit()

    at.text_input(key=f"title_{insight.id}").input("Mine")
    at.button(key=f"save_{insight.id}").click().run()

    assert escape("Someone else changed this retrospective first") in at.error[0].value
    assert first_finding(session, team.retro_id).title != "Mine"


def test_viewer_sees_the_retrospective_without_review_controls(
    session: Session, team: Team
):
    at = open_page(VIEW_PAGE, team.viewer, team.retro_id)

    assert not at.exception
    assert not at.text_area
    assert not [b for b in at.button if b.key == "review_submit"]


def test_analyst_sees_the_requested_changes_then_edits_back_to_draft(
    session: Session, team: Team
):
    submit(session, team)
    review.request_changes(
        session,
        actor=team.approver,
        retrospective_id=team.retro_id,
        comment="Explain the Meta spend.",
    )
    session.commit()

    at = open_page(VIEW_PAGE, team.analyst, team.retro_id)
    assert "Changes requested by Dana Reyes" in at.warning[0].value
    assert escape("Explain the Meta spend.") in markdown(at)

    at.text_area(key="review_summary").input("Meta spend was a test budget.")
    at.button(key="review_save_summary").click().run()
    at.button(key="review_submit").click().run()

    assert stored(session, team.retro_id).status == "in_review"


# -- the approval queue ---------------------------------------------------------------


def test_approver_sees_the_queue_and_approves(session: Session, team: Team):
    submit(session, team)
    at = open_page(QUEUE_PAGE, team.approver)

    assert not at.exception
    queue = at.dataframe[0].value
    assert list(queue["Submitted by"]) == ["Ana Lyst"]
    assert escape("Meta lost money.") in markdown(at)
    assert list(at.dataframe[1].value["Source"]) == ["Meta", "Whole campaign"]
    at.button(key="approve_button").click().run()

    retro = stored(session, team.retro_id)
    assert (retro.status, retro.approved_by_id) == ("approved", team.approver.id)
    assert "approved" in at.success[0].value
    assert "Nothing is waiting for approval." in at.info[0].value


def test_a_decision_made_elsewhere_first_is_reported(session: Session, team: Team):
    submit(session, team)
    at = open_page(QUEUE_PAGE, team.approver)
    other = make_user(session, Role.APPROVER)
    review.approve(session, actor=other, retrospective_id=team.retro_id)
    session.commit()

    at.button(key="approve_button").click().run()

    assert "Someone else decided on retrospective" in at.warning[0].value
    assert stored(session, team.retro_id).approved_by_id == other.id


def test_request_changes_needs_a_comment(session: Session, team: Team):
    submit(session, team)
    at = open_page(QUEUE_PAGE, team.approver)

    at.button(key="request_changes_button").click().run()
    assert "comment\\: write something" in at.error[0].value
    at.text_area(key="changes_comment").input("Explain the Meta spend.")
    at.button(key="request_changes_button").click().run()

    retro = stored(session, team.retro_id)
    assert (retro.status, retro.decision_comment) == (
        "changes_requested",
        "Explain the Meta spend.",
    )


def test_own_submission_cannot_be_decided_on_the_page(session: Session, team: Team):
    review.submit(
        session, actor=team.admin, retrospective_id=team.retro_id, summary="Mine"
    )
    session.commit()

    at = open_page(QUEUE_PAGE, team.admin)

    assert "another approver must decide" in at.info[0].value
    assert not [b for b in at.button if b.key == "approve_button"]


def test_queue_orders_oldest_submission_first(session: Session, team: Team):
    other = poor_campaign(session, team.viewer)
    second = retrospectives.create_retrospective(
        session, actor=team.analyst, campaign_id=other.id or 0
    )
    retrospectives.generate_insights(
        session, actor=team.analyst, retrospective_id=second.id
    )
    review.submit(session, actor=team.analyst, retrospective_id=second.id, summary="a")
    session.commit()
    submit(session, team)

    at = open_page(QUEUE_PAGE, team.approver)

    assert list(at.dataframe[0].value["id"]) == [second.id, team.retro_id]


# -- approved: frozen, reopen -------------------------------------------------------


def test_approved_view_is_frozen_and_only_an_admin_reopens(
    session: Session, team: Team
):
    submit(session, team)
    review.approve(session, actor=team.approver, retrospective_id=team.retro_id)
    session.commit()

    analyst_view = open_page(VIEW_PAGE, team.analyst, team.retro_id)
    assert "Approved by Dana Reyes" in analyst_view.success[0].value
    assert not analyst_view.text_area
    assert not [b for b in analyst_view.button if b.key == "reopen_button"]

    at = open_page(VIEW_PAGE, team.admin, team.retro_id)
    at.button(key="reopen_button").click().run()
    assert "reason\\: write something" in at.error[0].value
    at.text_input(key="reopen_reason").input("Late revenue data")
    at.button(key="reopen_button").click().run()

    assert stored(session, team.retro_id).status == "draft"


# -- typed text stays inert ---------------------------------------------------------


def test_typed_text_is_shown_inert_on_both_pages(session: Session, team: Team):
    insight = first_finding(session, team.retro_id)
    review.edit_insight(
        session,
        actor=team.analyst,
        retrospective_id=team.retro_id,
        insight_id=insight.id or 0,
        changes=InsightEdit(title=HOSTILE, text=HOSTILE, actions=[HOSTILE]),
    )
    session.commit()
    submit(session, team, summary=HOSTILE)

    queue = open_page(QUEUE_PAGE, team.approver)
    assert not queue.exception
    assert escape(HOSTILE) in markdown(queue)
    assert f"**{escape(HOSTILE)}**" in markdown(queue)
    queue.text_area(key="changes_comment").input(HOSTILE)
    queue.button(key="request_changes_button").click().run()

    view = open_page(VIEW_PAGE, team.analyst, team.retro_id)
    shown = markdown(view)
    assert escape(HOSTILE) in shown
    assert f"**{escape(HOSTILE)}**" in shown
    assert f"- {escape(HOSTILE)}" in shown
    assert HOSTILE in [str(t.value) for t in view.text]
    for page in (queue, view):
        for source in markdown(page):
            assert "<script>" not in source
            assert "](https://evil" not in source.replace("\\]\\(", "")
