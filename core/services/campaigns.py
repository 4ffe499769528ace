"""Campaigns and their daily KPIs, as each user may see them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pandas as pd
from sqlalchemy import func
from sqlmodel import Session, col, select

from core import metrics
from core.errors import NotFound, PermissionDenied
from core.models import Campaign, KpiDaily, Retrospective, User
from core.services.permissions import Action, Actor

KPI_COLUMNS = (
    "campaign_id",
    "source",
    "day",
    "impressions",
    "clicks",
    "spend",
    "conversions",
    "revenue",
    "eligible_impressions",
    "budget",
)


@dataclass(frozen=True)
class CampaignFilter:
    """What the overview narrows the list to; empty means no restriction."""

    statuses: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    owner_ids: tuple[int, ...] = ()
    # Campaigns whose period overlaps [start, end].
    start: date | None = None
    end: date | None = None


@dataclass(frozen=True)
class CampaignInfo:
    """One campaign as pages show it: plain values."""

    id: int
    name: str
    owner_id: int
    owner_name: str
    currency: str
    start_date: date
    end_date: date
    budget: float | None
    status: str
    external_ids: dict[str, str] = field(default_factory=dict)


def _visible(actor: Actor) -> Any:
    """Where-clause limiting campaigns to what the actor may see."""
    if actor.can(Action.SEE_ALL):
        return True
    return Campaign.owner_id == actor.id


def visible_campaign(session: Session, *, actor: Actor, campaign_id: int) -> Campaign:
    """The campaign, or NotFound / PermissionDenied when the actor may not see it."""
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound(f"Campaign {campaign_id} does not exist.")
    if not actor.can(Action.SEE_ALL) and campaign.owner_id != actor.id:
        raise PermissionDenied(
            f"Campaign {campaign_id} belongs to someone else; viewers see only "
            "their own campaigns."
        )
    return campaign


def get_campaign(session: Session, *, actor: Actor, campaign_id: int) -> CampaignInfo:
    campaign = visible_campaign(session, actor=actor, campaign_id=campaign_id)
    owner = session.get(User, campaign.owner_id)
    return _info(campaign, owner.name if owner else "")


def _info(campaign: Campaign, owner_name: str) -> CampaignInfo:
    assert campaign.id is not None
    return CampaignInfo(
        id=campaign.id,
        name=campaign.name,
        owner_id=campaign.owner_id,
        owner_name=owner_name,
        currency=campaign.currency,
        start_date=campaign.start_date,
        end_date=campaign.end_date,
        budget=campaign.budget,
        status=campaign.status,
        external_ids=dict(campaign.external_ids or {}),
    )


def list_campaigns(
    session: Session, *, actor: Actor, filters: CampaignFilter | None = None
) -> pd.DataFrame:
    """Campaigns the actor may see, with spend, revenue, ROAS and retrospective status.

    One query for the campaigns and one aggregate for their KPIs, whatever the count.
    """
    filters = filters or CampaignFilter()
    query = (
        select(Campaign, User.name)
        .join(User, col(User.id) == Campaign.owner_id)
        .where(_visible(actor))
        .order_by(col(Campaign.start_date).desc(), col(Campaign.name))
    )
    if filters.statuses:
        query = query.where(col(Campaign.status).in_(filters.statuses))
    if filters.owner_ids:
        query = query.where(col(Campaign.owner_id).in_(filters.owner_ids))
    if filters.start:
        query = query.where(Campaign.end_date >= filters.start)
    if filters.end:
        query = query.where(Campaign.start_date <= filters.end)
    rows = session.exec(query).all()
    frame = pd.DataFrame(
        [
            {
                "id": c.id,
                "name": c.name,
                "owner": owner_name,
                "owner_id": c.owner_id,
                "status": c.status,
                "start": c.start_date,
                "end": c.end_date,
                "currency": c.currency,
                "budget": c.budget,
            }
            for c, owner_name in rows
        ],
        columns=[
            "id",
            "name",
            "owner",
            "owner_id",
            "status",
            "start",
            "end",
            "currency",
            "budget",
        ],
    )
    totals = _kpi_totals(session, [int(i) for i in frame["id"]], filters.sources)
    frame = frame.merge(totals, how="left", left_on="id", right_index=True)
    if filters.sources:
        frame = frame[frame["sources"].notna()]
    statuses = _retro_status(session, [int(i) for i in frame["id"]])
    frame["retrospective"] = frame["id"].map(statuses).astype("string")
    return frame.reset_index(drop=True)


def _kpi_totals(
    session: Session, campaign_ids: list[int], sources: tuple[str, ...]
) -> pd.DataFrame:
    columns = ["spend", "revenue", "roas", "sources"]
    if not campaign_ids:
        return pd.DataFrame(columns=columns, index=pd.Index([], name="campaign_id"))
    query = (
        select(
            KpiDaily.campaign_id,
            KpiDaily.source,
            func.sum(KpiDaily.spend).label("spend"),
            func.sum(KpiDaily.revenue).label("revenue"),
        )
        .where(col(KpiDaily.campaign_id).in_(campaign_ids))
        .group_by(col(KpiDaily.campaign_id), col(KpiDaily.source))
    )
    if sources:
        query = query.where(col(KpiDaily.source).in_(sources))
    per_source = pd.DataFrame(
        session.exec(query).all(), columns=["campaign_id", "source", "spend", "revenue"]
    )
    if per_source.empty:
        return pd.DataFrame(columns=columns, index=pd.Index([], name="campaign_id"))
    sums = metrics.summarise(per_source, by=["campaign_id"]).set_index("campaign_id")
    names = per_source.groupby("campaign_id")["source"].agg(
        lambda s: ", ".join(sorted(s))
    )
    return sums[["spend", "revenue", "roas"]].assign(sources=names)


def _retro_status(session: Session, campaign_ids: list[int]) -> dict[int, str]:
    if not campaign_ids:
        return {}
    query = (
        select(Retrospective.campaign_id, Retrospective.status)
        .where(col(Retrospective.campaign_id).in_(campaign_ids))
        .order_by(col(Retrospective.created_at))
    )
    # The newest retrospective of a campaign wins.
    return dict(session.exec(query).all())


def headline(frame: pd.DataFrame) -> dict[str, float | int | None]:
    """Tiles over a campaign list: count, spend, revenue and ROAS as a ratio of sums."""
    sums = {
        "spend": float(frame["spend"].sum()) if len(frame) else 0.0,
        "revenue": float(frame["revenue"].sum()) if len(frame) else 0.0,
    }
    return {
        "campaigns": len(frame),
        "spend": sums["spend"],
        "revenue": sums["revenue"],
        "roas": metrics.value_of("roas", dict(sums)),
    }


def owners(session: Session, *, actor: Actor) -> dict[int, str]:
    """Owner ids and names among the campaigns the actor may see."""
    query = (
        select(User.id, User.name)
        .join(Campaign, col(Campaign.owner_id) == User.id)
        .where(_visible(actor))
        .distinct()
        .order_by(col(User.name))
    )
    return {
        int(uid): name for uid, name in session.exec(query).all() if uid is not None
    }


def campaign_kpis(session: Session, *, actor: Actor, campaign_id: int) -> pd.DataFrame:
    """The campaign's daily KPI rows, one per source and day, oldest first."""
    visible_campaign(session, actor=actor, campaign_id=campaign_id)
    query = (
        select(*[getattr(KpiDaily, name) for name in KPI_COLUMNS])
        .where(KpiDaily.campaign_id == campaign_id)
        .order_by(col(KpiDaily.day), col(KpiDaily.source))
    )
    frame = pd.DataFrame(session.exec(query).all(), columns=list(KPI_COLUMNS))
    return frame.astype({"impressions": "int64", "clicks": "int64"})
