"""A retrospective worth a report: two sources over two weeks, with findings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlmodel import Session

from core.models import Role
from core.services import retrospectives, review
from core.services import rules as rule_service
from core.services.permissions import Actor
from tests.factories import add_kpis, make_campaign, make_user

START = date(2026, 11, 1)
DAYS = 14
CJK_NAME = "東京 冬のセール 2026 · Wintersale Grüße"


@dataclass
class ReportWorld:
    viewer: Actor
    other_viewer: Actor
    analyst: Actor
    approver: Actor
    admin: Actor
    campaign_id: int
    retro_id: int


def report_world(session: Session, name: str = CJK_NAME) -> ReportWorld:
    """A generated draft: Meta loses money (critical), Google is thin on data."""
    rule_service.ensure_builtin_rules(session)
    session.commit()
    viewer = make_user(session, Role.VIEWER, name="Vera Owner")
    analyst = make_user(session, Role.ANALYST, name="Ana Lyst")
    campaign = make_campaign(
        session,
        viewer,
        name=name,
        currency="EUR",
        start_date=START,
        end_date=date(2026, 11, 14),
    )
    add_kpis(
        session,
        campaign,
        "meta",
        START,
        DAYS,
        impressions=10_000,
        clicks=100,
        spend=100.0,
        conversions=5.0,
        revenue=40.0,
    )
    add_kpis(
        session,
        campaign,
        "google_ads",
        START,
        DAYS,
        impressions=30,
        clicks=2,
        spend=3.0,
        conversions=0.0,
        revenue=9.0,
    )
    row = retrospectives.create_retrospective(
        session, actor=analyst, campaign_id=campaign.id or 0
    )
    retrospectives.generate_insights(session, actor=analyst, retrospective_id=row.id)
    session.commit()
    return ReportWorld(
        viewer=viewer,
        other_viewer=make_user(session, Role.VIEWER, name="Olga Other"),
        analyst=analyst,
        approver=make_user(session, Role.APPROVER, name="Dana Reyes"),
        admin=make_user(session, Role.ADMIN, name="Adam Admin"),
        campaign_id=campaign.id or 0,
        retro_id=row.id,
    )


def submit(session: Session, world: ReportWorld) -> None:
    review.submit(
        session,
        actor=world.analyst,
        retrospective_id=world.retro_id,
        summary="Meta did not pay back: ROAS 0.40. Google had too little data.",
    )
    session.commit()


def approve(session: Session, world: ReportWorld, comment: str = "Agreed.") -> None:
    submit(session, world)
    review.approve(
        session,
        actor=world.approver,
        retrospective_id=world.retro_id,
        comment=comment,
    )
    session.commit()
