"""Demo data: one user per role, campaigns on every source, healthy and not."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pandas as pd
import pytest
from sqlalchemy import func
from sqlmodel import Session, col, select

from core import metrics
from core.errors import NotFound, PermissionDenied
from core.models import (
    Campaign,
    CampaignStatus,
    KpiDaily,
    Retrospective,
    Role,
    Source,
    User,
)
from core.services import demo, users
from core.services.permissions import Actor
from tests.factories import add_kpis, make_campaign, make_user

TODAY = date(2026, 12, 1)


def _seed(
    session: Session, owner: Actor, count: int = 8, **kwargs: object
) -> list[int]:
    ids = demo.seed_campaigns(
        session,
        actor=None,
        count=count,
        owner_id=owner.id,
        today=TODAY,
        **kwargs,  # type: ignore[arg-type]
    )
    session.commit()
    return ids


def _kpi_frame(session: Session, ids: list[int]) -> pd.DataFrame:
    rows = session.exec(
        select(
            KpiDaily.campaign_id,
            KpiDaily.source,
            KpiDaily.day,
            KpiDaily.spend,
            KpiDaily.revenue,
        ).where(col(KpiDaily.campaign_id).in_(ids))
    ).all()
    return pd.DataFrame(
        rows, columns=["campaign_id", "source", "day", "spend", "revenue"]
    )


def test_demo_users_are_one_per_role_and_their_passwords_work(session: Session):
    logins = demo.create_demo_users(session)
    session.commit()

    assert sorted(login.role for login in logins) == sorted(r.value for r in Role)
    assert len({login.password for login in logins}) == len(logins)
    for login in logins:
        result = users.verify_login(
            session, username=login.username, password=login.password
        )
        assert result.actor is not None
        assert result.actor.role.value == login.role
    assert all(u.is_demo for u in session.exec(select(User)).all())


def test_seeded_campaigns_have_rows_on_all_four_sources(session: Session):
    owner = make_user(session, Role.VIEWER)

    ids = _seed(session, owner)

    kpis = _kpi_frame(session, ids)
    assert len(ids) == 8
    for campaign_id in ids:
        sources = set(kpis.loc[kpis["campaign_id"] == campaign_id, "source"])
        assert sources == {s.value for s in Source}
    assert kpis["day"].max() < TODAY


def test_seeded_campaigns_are_some_healthy_and_some_failing(session: Session):
    owner = make_user(session, Role.VIEWER)

    ids = _seed(session, owner)

    roas = metrics.summarise(_kpi_frame(session, ids), by=["campaign_id"])["roas"]
    assert (roas < 0.7).sum() >= 2
    assert (roas > 1.2).sum() >= 2


def test_seeded_campaigns_are_mostly_finished_and_some_running(session: Session):
    owner = make_user(session, Role.VIEWER)

    ids = _seed(session, owner)

    seeded = session.exec(select(Campaign).where(col(Campaign.id).in_(ids))).all()
    statuses = {c.status for c in seeded}
    assert statuses == {CampaignStatus.COMPLETED.value, CampaignStatus.ACTIVE.value}
    for campaign in seeded:
        assert campaign.is_demo and campaign.owner_id == owner.id
        assert campaign.start_date <= campaign.end_date
        if campaign.status == CampaignStatus.COMPLETED.value:
            assert campaign.end_date < TODAY
        else:
            assert campaign.start_date < TODAY <= campaign.end_date


def test_many_seeded_campaigns_get_distinct_names(session: Session):
    owner = make_user(session, Role.VIEWER)

    ids = _seed(session, owner, count=len(demo.NAMES) + 3)

    names = session.exec(select(Campaign.name).where(col(Campaign.id).in_(ids))).all()
    assert len(set(names)) == len(ids)


def test_the_same_seed_gives_the_same_numbers(session: Session):
    owner = make_user(session, Role.VIEWER)

    first = _kpi_frame(session, _seed(session, owner, count=2, seed=3))
    second = _kpi_frame(session, _seed(session, owner, count=2, seed=3))

    assert first["spend"].sum() == pytest.approx(second["spend"].sum())


def test_seeding_nothing_creates_nothing(session: Session):
    owner = make_user(session, Role.VIEWER)

    assert _seed(session, owner, count=0) == []
    assert session.exec(select(Campaign)).all() == []


@pytest.mark.parametrize("role", [Role.VIEWER, Role.ANALYST, Role.APPROVER])
def test_only_admins_seed_or_clear_demo_data(session: Session, role: Role):
    actor = make_user(session, role)

    with pytest.raises(PermissionDenied):
        demo.seed_campaigns(session, actor=actor, count=1, owner_id=actor.id)
    with pytest.raises(PermissionDenied):
        demo.clear_demo_data(session, actor=actor)


def test_clear_removes_demo_campaigns_only(session: Session):
    admin = make_user(session, Role.ADMIN)
    real = make_campaign(session, admin, name="Real one")
    add_kpis(session, real, days=4)
    ids = _seed(session, admin, count=3)
    session.add(
        Retrospective(
            campaign_id=ids[0],
            status="draft",
            period_start=TODAY,
            period_end=TODAY,
            created_at=datetime(2026, 12, 1, tzinfo=UTC),
        )
    )
    session.commit()

    removed = demo.clear_demo_data(session, actor=admin)
    session.commit()

    assert removed == 3
    remaining = session.exec(select(Campaign.name)).all()
    assert remaining == ["Real one"]
    kpi_owners = session.exec(select(KpiDaily.campaign_id).distinct()).all()
    assert kpi_owners == [real.id]
    assert session.exec(select(func.count()).select_from(Retrospective)).one() == 0


def test_demo_owner_defaults_to_the_demo_viewer(session: Session):
    demo.create_demo_users(session)
    named = make_user(session, Role.ANALYST, "someone")

    viewer = session.exec(select(User).where(User.username == "viewer")).one()
    assert demo.demo_owner_id(session, None) == viewer.id
    assert demo.demo_owner_id(session, "Someone") == named.id


def test_demo_owner_must_exist(session: Session):
    with pytest.raises(NotFound, match="No user named 'ghost'"):
        demo.demo_owner_id(session, "ghost")
