"""The permission matrix of DESIGN.md ("Workflow"), checked by every service."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from core.errors import PermissionDenied
from core.models import Role, User


class Action(StrEnum):
    SEE_ALL = "see every campaign and retrospective"
    CREATE = "create retrospectives, generate insights and import data"
    EDIT = "edit, add and dismiss insights"
    SUBMIT = "submit a retrospective for approval"
    APPROVE = "approve or request changes"
    ADMINISTER = "manage rules, users and schedules"
    REOPEN = "reopen an approved retrospective"
    AUDIT = "read the audit log"


ALLOWED: dict[Action, frozenset[Role]] = {
    Action.SEE_ALL: frozenset({Role.ANALYST, Role.APPROVER, Role.ADMIN}),
    Action.CREATE: frozenset({Role.ANALYST, Role.ADMIN}),
    Action.EDIT: frozenset({Role.ANALYST, Role.ADMIN}),
    Action.SUBMIT: frozenset({Role.ANALYST, Role.ADMIN}),
    Action.APPROVE: frozenset({Role.APPROVER, Role.ADMIN}),
    Action.ADMINISTER: frozenset({Role.ADMIN}),
    Action.REOPEN: frozenset({Role.ADMIN}),
    Action.AUDIT: frozenset({Role.ADMIN}),
}


@dataclass(frozen=True)
class Actor:
    """The user a service acts for, read from the database on every request."""

    id: int
    username: str
    name: str
    role: Role

    @classmethod
    def of(cls, user: User) -> Actor:
        assert user.id is not None
        return cls(
            id=user.id, username=user.username, name=user.name, role=Role(user.role)
        )

    def can(self, action: Action) -> bool:
        return self.role in ALLOWED[action]


def require(actor: Actor, action: Action) -> None:
    """Raise PermissionDenied unless the actor's role allows the action."""
    if not actor.can(action):
        raise PermissionDenied(
            f"{actor.name} ({actor.role.value}) may not {action.value}."
        )
