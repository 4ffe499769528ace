"""Append-only audit trail: every state change, edit, import and failed login."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from core.models import AuditEvent
from core.services.permissions import Actor


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
        username=username
        if username is not None
        else (actor.username if actor else ""),
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        before=before,
        after=after,
    )
    session.add(event)
    return event
