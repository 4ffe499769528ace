"""Append-only audit trail: every state change, edit, import and failed login."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd
from sqlmodel import Session, col, select

from core.models import AuditEvent
from core.services.permissions import Action, Actor, require


def record(
    session: Session,
    *,
    actor: Actor | None,
    action: str,
    target_type: str = "",
    target_id: object = "",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    username: str | None = None,
) -> AuditEvent:
    """Add one audit event to the session's transaction (written with the change)."""
    event = AuditEvent(
        user_id=actor.id if actor else None,
        username=_fit(
            username if username is not None else (actor.username if actor else ""),
            "username",
        ),
        action=action,
        target_type=target_type,
        target_id=_fit(str(target_id), "target_id"),
        before=before,
        after=after,
    )
    session.add(event)
    return event


def _fit(text: str, column: str) -> str:
    """Cut text to its column: what a user typed (a failed login's name) can be
    longer, and PostgreSQL refuses an over-long value where SQLite keeps it."""
    length = getattr(AuditEvent.__table__.c[column].type, "length", None)  # type: ignore[attr-defined]
    return text[:length] if length else text


@dataclass(frozen=True)
class AuditFilter:
    """What the audit log is narrowed to; empty means everything."""

    user: str = ""
    action: str = ""
    target_type: str = ""
    target_id: str = ""
    start: date | None = None
    end: date | None = None


AUDIT_COLUMNS = [
    "id",
    "at",
    "username",
    "action",
    "target_type",
    "target_id",
    "before",
    "after",
]
# Cells starting with these are run as formulas by spreadsheet programs.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "|")
MAX_ROWS = 10_000


def list_events(
    session: Session, *, actor: Actor, filters: AuditFilter | None = None
) -> pd.DataFrame:
    """Audit events, newest first, for admins only."""
    require(actor, Action.AUDIT)
    filters = filters or AuditFilter()
    query = select(AuditEvent).order_by(
        col(AuditEvent.at).desc(), col(AuditEvent.id).desc()
    )
    if filters.user:
        query = query.where(col(AuditEvent.username).ilike(f"%{filters.user.strip()}%"))
    if filters.action:
        query = query.where(col(AuditEvent.action).ilike(f"%{filters.action.strip()}%"))
    if filters.target_type:
        query = query.where(AuditEvent.target_type == filters.target_type)
    if filters.target_id:
        query = query.where(AuditEvent.target_id == filters.target_id.strip())
    if filters.start:
        query = query.where(AuditEvent.at >= _day_start(filters.start))
    if filters.end:
        query = query.where(AuditEvent.at < _day_start(filters.end + timedelta(days=1)))
    events = session.exec(query.limit(MAX_ROWS)).all()
    return pd.DataFrame(
        [
            {
                "id": e.id,
                "at": e.at,
                "username": e.username,
                "action": e.action,
                "target_type": e.target_type,
                "target_id": e.target_id,
                "before": _as_json(e.before),
                "after": _as_json(e.after),
            }
            for e in events
        ],
        columns=AUDIT_COLUMNS,
    )


def _day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _as_json(value: dict[str, Any] | None) -> str:
    return "" if value is None else json.dumps(value, default=str, ensure_ascii=False)


def neutralise(cell: object) -> object:
    """A cell a spreadsheet will show as text, never evaluate as a formula."""
    if isinstance(cell, str) and cell.lstrip(" ").startswith(FORMULA_PREFIXES):
        return "'" + cell
    return cell


def to_csv(frame: pd.DataFrame) -> bytes:
    """CSV of the events whose text cells can never be read as formulas."""
    safe = frame.astype("object").map(neutralise)
    text: str = safe.to_csv(index=False)
    return text.encode("utf-8-sig")


def action_names(session: Session, *, actor: Actor) -> list[str]:
    require(actor, Action.AUDIT)
    query = select(AuditEvent.action).distinct().order_by(col(AuditEvent.action))
    return list(session.exec(query).all())
