"""Demo users and campaigns with realistic daily KPIs, some healthy and some not."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
from sqlalchemy import delete, insert
from sqlmodel import Session, col, select

from core.errors import NotFound
from core.models import Campaign, CampaignStatus, KpiDaily, Role, Source, User, utcnow
from core.services import audit, users
from core.services.permissions import Action, Actor, require

logger = logging.getLogger(__name__)

DEMO_PEOPLE: tuple[tuple[str, str, Role], ...] = (
    ("admin", "Alex Morgan", Role.ADMIN),
    ("analyst", "Sam Patel", Role.ANALYST),
    ("approver", "Dana Reyes", Role.APPROVER),
    ("viewer", "Chris Olsen", Role.VIEWER),
)

NAMES = (
    "Winter Sale",
    "Spring Launch",
    "Summer Clearance",
    "Back to School",
    "Black Friday",
    "Brand Awareness",
    "Loyalty Push",
    "New Store Opening",
    "App Install Drive",
    "Holiday Gifts",
    "Flash Weekend",
    "Retargeting Wave",
)


@dataclass(frozen=True)
class Profile:
    """How a demo campaign behaves; the unhealthy ones give the rules work."""

    label: str
    ctr: float
    conversion_rate: float
    cpc: float
    order_value: float
    impression_share: float
    budget_factor: float  # spend / budget


PROFILES = (
    Profile("healthy", 0.021, 0.045, 0.85, 42.0, 0.78, 0.95),
    Profile("healthy", 0.018, 0.038, 1.10, 55.0, 0.71, 0.90),
    Profile("poor return", 0.016, 0.022, 1.40, 30.0, 0.66, 0.97),
    Profile("failing", 0.011, 0.012, 1.80, 35.0, 0.60, 1.00),
    Profile("weak creative", 0.0035, 0.030, 1.20, 60.0, 0.70, 0.92),
    Profile("expensive clicks", 0.019, 0.050, 2.60, 85.0, 0.74, 0.96),
    Profile("overspent", 0.020, 0.040, 1.05, 45.0, 0.80, 1.25),
    Profile("low visibility", 0.017, 0.035, 0.95, 40.0, 0.38, 0.85),
)

SOURCE_WEIGHTS = {
    Source.GOOGLE_ADS: 0.35,
    Source.META: 0.30,
    Source.TIKTOK: 0.20,
    Source.INTERNAL: 0.15,
}


@dataclass(frozen=True)
class DemoLogin:
    username: str
    name: str
    role: str
    password: str


def create_demo_users(session: Session) -> list[DemoLogin]:
    """One demo user per role with a fresh random password, returned once."""
    logins = []
    for username, name, role in DEMO_PEOPLE:
        password = secrets.token_urlsafe(9)
        users.create_user(
            session,
            actor=None,
            username=username,
            name=name,
            email=f"{username}@example.com",
            role=role.value,
            password=password,
            is_demo=True,
        )
        logins.append(DemoLogin(username, name, role.value, password))
    return logins


def seed_campaigns(
    session: Session,
    *,
    actor: Actor | None,
    count: int,
    owner_id: int,
    today: date | None = None,
    seed: int = 7,
) -> list[int]:
    """Create `count` demo campaigns with daily KPIs on every source; return ids."""
    if actor is not None:
        require(actor, Action.ADMINISTER)
    if count < 1:
        return []
    today = today or utcnow().date()
    rng = np.random.default_rng(seed)
    ids = []
    for index in range(count):
        campaign = _demo_campaign(index, today, owner_id, rng)
        session.add(campaign)
        session.flush()
        assert campaign.id is not None
        rows = _daily_rows(campaign, PROFILES[index % len(PROFILES)], today, rng)
        if rows:
            session.execute(insert(KpiDaily), rows)
        ids.append(campaign.id)
    audit.record(
        session,
        actor=actor,
        action="demo.seed",
        target_type="campaign",
        after={"campaigns": ids},
    )
    logger.info("seeded %s demo campaigns", len(ids))
    return ids


def _demo_campaign(
    index: int, today: date, owner_id: int, rng: np.random.Generator
) -> Campaign:
    length = int(rng.integers(21, 46))
    # Most demo campaigns have ended; every fourth one is still running.
    if index % 4 == 3:
        start = today - timedelta(days=int(rng.integers(5, length - 2)))
        status = CampaignStatus.ACTIVE
    else:
        start = today - timedelta(days=length + int(rng.integers(3, 120)))
        status = CampaignStatus.COMPLETED
    end = start + timedelta(days=length - 1)
    budget_per_day = float(rng.choice([300.0, 500.0, 800.0, 1200.0]))
    suffix = start.year if index < len(NAMES) else f"{start.year} #{index + 1}"
    return Campaign(
        name=f"{NAMES[index % len(NAMES)]} {suffix}",
        owner_id=owner_id,
        currency="EUR" if index % 3 == 1 else "USD",
        start_date=start,
        end_date=end,
        budget=round(budget_per_day * length, 2),
        status=status.value,
        external_ids={
            Source.GOOGLE_ADS.value: str(9_000_000_000 + index),
            Source.TIKTOK.value: str(1_700_000_000 + index),
        },
        is_demo=True,
    )


def _daily_rows(
    campaign: Campaign, profile: Profile, today: date, rng: np.random.Generator
) -> list[dict[str, object]]:
    last = min(campaign.end_date, today - timedelta(days=1))
    days = (last - campaign.start_date).days + 1
    if days <= 0:
        return []
    total_days = (campaign.end_date - campaign.start_date).days + 1
    daily_budget = (campaign.budget or 0.0) / total_days
    rows: list[dict[str, object]] = []
    for source, weight in SOURCE_WEIGHTS.items():
        budget = daily_budget * weight
        noise = rng.lognormal(0.0, 0.25, size=days)
        spend = budget * profile.budget_factor * noise
        clicks = np.maximum(1, rng.poisson(spend / profile.cpc))
        impressions = np.maximum(
            clicks, rng.poisson(clicks / profile.ctr * rng.uniform(0.85, 1.15, days))
        )
        conversions = rng.binomial(clicks, profile.conversion_rate)
        revenue = conversions * profile.order_value * rng.uniform(0.7, 1.3, days)
        share = np.clip(
            profile.impression_share * rng.uniform(0.85, 1.15, days), 0.05, 1
        )
        for offset in range(days):
            rows.append(
                {
                    "campaign_id": campaign.id,
                    "source": source.value,
                    "day": campaign.start_date + timedelta(days=offset),
                    "impressions": int(impressions[offset]),
                    "clicks": int(clicks[offset]),
                    "spend": round(float(spend[offset]), 2),
                    "conversions": float(conversions[offset]),
                    "revenue": round(float(revenue[offset]), 2),
                    "eligible_impressions": (
                        round(float(impressions[offset] / share[offset]), 1)
                        if source is Source.GOOGLE_ADS
                        else None
                    ),
                    "budget": round(budget, 2),
                }
            )
    return rows


def clear_demo_data(session: Session, *, actor: Actor | None) -> int:
    """Delete demo campaigns (their KPIs and retrospectives cascade); keep the rest."""
    if actor is not None:
        require(actor, Action.ADMINISTER)
    ids = list(session.exec(select(Campaign.id).where(col(Campaign.is_demo))).all())
    if ids:
        session.execute(delete(KpiDaily).where(col(KpiDaily.campaign_id).in_(ids)))
        session.execute(delete(Campaign).where(col(Campaign.id).in_(ids)))
    audit.record(
        session,
        actor=actor,
        action="demo.clear",
        target_type="campaign",
        before={"campaigns": ids},
    )
    return len(ids)


def demo_owner_id(session: Session, username: str | None) -> int:
    """The owner for demo campaigns: the named user, else the demo viewer."""
    name = username or DEMO_PEOPLE[-1][0]
    user = session.exec(select(User).where(User.username == name.lower())).first()
    if user is None or user.id is None:
        raise NotFound(f"No user named {name!r} to own the demo campaigns.")
    return user.id
