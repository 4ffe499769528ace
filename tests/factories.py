"""Small factories for test data: users, campaigns, daily KPIs."""

from __future__ import annotations

import itertools
from datetime import date, timedelta
from typing import Any

from sqlalchemy import insert
from sqlmodel import Session

from core.models import Campaign, CampaignStatus, KpiDaily, Role, User
from core.services.permissions import Actor

_counter = itertools.count(1)
# bcrypt of "correct horse 1": hashing is slow on purpose, so tests share one hash.
TEST_PASSWORD = "correct horse 1"
_hash_cache: dict[str, str] = {}


def password_hash(password: str = TEST_PASSWORD) -> str:
    if password not in _hash_cache:
        import bcrypt

        _hash_cache[password] = bcrypt.hashpw(
            password.encode(), bcrypt.gensalt(4)
        ).decode()
    return _hash_cache[password]


def make_user(
    session: Session,
    role: str | Role = Role.ANALYST,
    username: str | None = None,
    *,
    name: str | None = None,
    active: bool = True,
    password: str = TEST_PASSWORD,
) -> Actor:
    role = Role(role)
    username = username or f"{role.value}{next(_counter)}"
    user = User(
        username=username,
        name=name or username.title(),
        email=f"{username}@example.com",
        role=role.value,
        active=active,
        password_hash=password_hash(password),
    )
    session.add(user)
    session.commit()
    return Actor.of(user)


def make_campaign(session: Session, owner: Actor, **fields: Any) -> Campaign:
    values: dict[str, Any] = {
        "name": f"Campaign {next(_counter)}",
        "currency": "USD",
        "start_date": date(2026, 11, 1),
        "end_date": date(2026, 11, 14),
        "budget": 10_000.0,
        "status": CampaignStatus.COMPLETED.value,
        "external_ids": {},
    }
    values.update(fields)
    campaign = Campaign(owner_id=owner.id, **values)
    session.add(campaign)
    session.commit()
    return campaign


def add_kpis(
    session: Session,
    campaign: Campaign,
    source: str = "google_ads",
    start: date | None = None,
    days: int = 1,
    **counts: Any,
) -> None:
    """`days` identical daily rows from `start` (default: the campaign's first day)."""
    start = start or campaign.start_date
    base: dict[str, Any] = {
        "impressions": 1000,
        "clicks": 20,
        "spend": 30.0,
        "conversions": 1.0,
        "revenue": 60.0,
        "eligible_impressions": None,
        "budget": None,
    }
    base.update(counts)
    rows = [
        {
            "campaign_id": campaign.id,
            "source": source,
            "day": start + timedelta(days=i),
            **base,
        }
        for i in range(days)
    ]
    session.execute(insert(KpiDaily), rows)
    session.commit()
