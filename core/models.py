"""SQLModel tables of the domain (see DESIGN.md, "Domain model")."""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    """Aware UTC; sqlmodel's UTCDateTime refuses naive values and returns UTC."""
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """An aware time; a naive one (as SQLite hands back) is taken as UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class Role(StrEnum):
    VIEWER = "viewer"
    ANALYST = "analyst"
    APPROVER = "approver"
    ADMIN = "admin"


class Source(StrEnum):
    GOOGLE_ADS = "google_ads"
    META = "meta"
    TIKTOK = "tiktok"
    INTERNAL = "internal"


class CampaignStatus(StrEnum):
    PLANNED = "planned"
    ACTIVE = "active"
    COMPLETED = "completed"


class RetroStatus(StrEnum):
    PENDING = "pending"
    GENERATING = "generating"
    DRAFT = "draft"
    IN_REVIEW = "in_review"
    CHANGES_REQUESTED = "changes_requested"
    APPROVED = "approved"
    FAILED = "failed"


class Severity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


def _enum(enum: type[StrEnum]) -> Any:
    """Store an enum as its plain string value, so both databases read it alike."""
    return Column(String(32), nullable=False, default=next(iter(enum)).value)


def _json() -> Any:
    return Column(JSON, nullable=False)


def _text() -> Any:
    return Column(Text, nullable=False, default="")


# -- users ------------------------------------------------------------------


class UserBase(SQLModel):
    """Fields shared by every shape of a user."""

    username: str = Field(max_length=64, unique=True, index=True)
    name: str = Field(max_length=200)
    email: str = Field(max_length=254)
    role: str = Field(sa_column=_enum(Role))
    active: bool = True


class User(UserBase, table=True):
    """Table: a person who logs in; the password is a bcrypt hash."""

    __tablename__ = "user"

    id: int | None = Field(default=None, primary_key=True)
    password_hash: str = Field(max_length=100)
    is_demo: bool = False
    created_at: datetime = Field(default_factory=utcnow)


class LoginThrottle(SQLModel, table=True):
    """Table: failed logins per typed username, known or not, for the lock-out."""

    __tablename__ = "login_throttle"

    username: str = Field(max_length=254, primary_key=True)
    failures: int = 0
    locked_until: datetime | None = None
    last_failure_at: datetime | None = None


# -- campaigns and KPIs -----------------------------------------------------


class CampaignBase(SQLModel):
    """Fields shared by every shape of a campaign."""

    name: str = Field(max_length=300, index=True)
    currency: str = Field(max_length=3)
    start_date: date
    end_date: date
    budget: float | None = None
    status: str = Field(sa_column=_enum(CampaignStatus))


class Campaign(CampaignBase, table=True):
    """Table: a marketing campaign run on one or more platforms."""

    __tablename__ = "campaign"

    id: int | None = Field(default=None, primary_key=True)
    owner_id: int = Field(foreign_key="user.id", index=True)
    # Platform campaign ids by source, e.g. {"google_ads": "9876543210"}.
    external_ids: dict[str, str] = Field(default_factory=dict, sa_column=_json())
    is_demo: bool = False
    created_at: datetime = Field(default_factory=utcnow)


class KpiDaily(SQLModel, table=True):
    """Table: raw daily counts of one campaign on one source; ratios are derived."""

    __tablename__ = "kpi_daily"
    __table_args__ = (
        UniqueConstraint(
            "campaign_id", "source", "day", name="uq_kpi_campaign_source_day"
        ),
        Index("ix_kpi_campaign_day", "campaign_id", "day"),
    )

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", ondelete="CASCADE")
    source: str = Field(max_length=32)
    day: date
    impressions: int = 0
    clicks: int = 0
    spend: float = 0.0
    conversions: float = 0.0
    revenue: float = 0.0
    # Impressions the campaign was eligible for; impression share = impressions / this.
    eligible_impressions: float | None = None
    budget: float | None = None
    import_id: int | None = Field(
        default=None, foreign_key="import.id", ondelete="SET NULL", index=True
    )


class Import(SQLModel, table=True):
    """Table: one imported file, with its data-quality report."""

    __tablename__ = "import"

    id: int | None = Field(default=None, primary_key=True)
    file_name: str = Field(max_length=500)
    format: str = Field(max_length=32)
    sha256: str = Field(max_length=64, index=True)
    user_id: int | None = Field(default=None, foreign_key="user.id")
    created_at: datetime = Field(default_factory=utcnow)
    status: str = Field(default="imported", max_length=32)
    rows_read: int = 0
    rows_inserted: int = 0
    rows_updated: int = 0
    rows_rejected: int = 0
    report: dict[str, Any] = Field(default_factory=dict, sa_column=_json())


# -- rules and retrospectives -----------------------------------------------


class Rule(SQLModel, table=True):
    """Table: one configurable insight rule; version grows with every edit."""

    __tablename__ = "rule"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=64, unique=True, index=True)
    name: str = Field(max_length=200)
    description: str = Field(default="", sa_column=_text())
    metric: str = Field(max_length=32)
    comparison: str = Field(max_length=2)
    threshold: float
    severity: str = Field(sa_column=_enum(Severity))
    scope: str = Field(default="campaign", max_length=16)
    evidence_floor: float = 0.0
    actions: list[str] = Field(default_factory=list, sa_column=_json())
    enabled: bool = True
    builtin: bool = False
    version: int = 1
    updated_at: datetime = Field(default_factory=utcnow)
    updated_by_id: int | None = Field(default=None, foreign_key="user.id")


class Retrospective(SQLModel, table=True):
    """Table: the review of one finished campaign, from generation to approval."""

    __tablename__ = "retrospective"

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True, ondelete="CASCADE")
    status: str = Field(sa_column=_enum(RetroStatus))
    title: str = Field(default="", max_length=300)
    period_start: date
    period_end: date
    created_by_id: int | None = Field(default=None, foreign_key="user.id")
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    error: str | None = Field(default=None, sa_column=Column(Text))
    summary: str = Field(default="", sa_column=_text())
    no_findings_note: str = Field(default="", sa_column=_text())
    submitted_by_id: int | None = Field(default=None, foreign_key="user.id")
    submitted_at: datetime | None = None
    approved_by_id: int | None = Field(default=None, foreign_key="user.id")
    approved_at: datetime | None = None
    decided_by_id: int | None = Field(default=None, foreign_key="user.id")
    decided_at: datetime | None = None
    decision_comment: str = Field(default="", sa_column=_text())
    # Optimistic lock: every write checks and bumps it.
    version: int = 1
    snapshot: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    report_path: str | None = Field(default=None, max_length=500)
    report_sha256: str | None = Field(default=None, max_length=64)


class Insight(SQLModel, table=True):
    """Table: one finding of a retrospective, from a rule or written by hand."""

    __tablename__ = "insight"

    id: int | None = Field(default=None, primary_key=True)
    retrospective_id: int = Field(
        foreign_key="retrospective.id", index=True, ondelete="CASCADE"
    )
    rule_key: str | None = Field(default=None, max_length=64)
    rule_version: int | None = None
    source: str | None = Field(default=None, max_length=32)
    metric: str | None = Field(default=None, max_length=32)
    finding: str = Field(default="triggered", max_length=32)
    observed: float | None = None
    threshold: float | None = None
    interval_low: float | None = None
    interval_high: float | None = None
    sample_size: float | None = None
    severity: str = Field(sa_column=_enum(Severity))
    title: str = Field(max_length=300)
    text: str = Field(default="", sa_column=_text())
    actions: list[str] = Field(default_factory=list, sa_column=_json())
    origin: str = Field(default="rule", max_length=16)
    created_at: datetime = Field(default_factory=utcnow)
    edited_by_id: int | None = Field(default=None, foreign_key="user.id")
    edited_at: datetime | None = None
    dismissed: bool = False
    dismissed_reason: str = Field(default="", sa_column=_text())


# -- background work and audit ----------------------------------------------


class Job(SQLModel, table=True):
    """Table: one run of background work, with live progress."""

    __tablename__ = "job"

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=64, index=True)
    target: str | None = Field(default=None, max_length=64, index=True)
    status: str = Field(sa_column=_enum(JobStatus))
    progress: int = 0
    message: str = Field(default="", max_length=500)
    attempts: int = 0
    error: str | None = Field(default=None, sa_column=Column(Text))
    requested_by_id: int | None = Field(default=None, foreign_key="user.id")
    created_at: datetime = Field(default_factory=utcnow)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    # What the job needs besides its target (say, an upload's file name and
    # import options) and what it produced (say, the import id): plain JSON.
    params: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    result: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    # "host:pid" of the process running it, so a restart spares the live ones.
    runner: str | None = Field(default=None, max_length=300)


class JobSchedule(SQLModel, table=True):
    """Table: an admin's pause of a periodic job, read by whichever process schedules.

    The schedules themselves come from the settings; only the pause lives here,
    so it survives restarts and reaches a separate `worker` process.
    """

    __tablename__ = "job_schedule"

    kind: str = Field(max_length=64, primary_key=True)
    paused: bool = False
    updated_by_id: int | None = Field(default=None, foreign_key="user.id")
    updated_at: datetime = Field(default_factory=utcnow)


class AuditEvent(SQLModel, table=True):
    """Table: append-only record of who did what to which target."""

    __tablename__ = "audit_event"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, index=True)
    user_id: int | None = Field(default=None, foreign_key="user.id", index=True)
    # Kept as typed, so failed logins of unknown names are recorded too.
    username: str = Field(default="", max_length=254)
    action: str = Field(max_length=64, index=True)
    target_type: str = Field(default="", max_length=32)
    target_id: str = Field(default="", max_length=64)
    before: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    after: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
