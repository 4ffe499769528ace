"""Users, passwords, roles, and the login lock-out."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import bcrypt
from sqlmodel import Session, col, select

from core.config import get_settings
from core.errors import NotFound, PermissionDenied, ValidationFailed
from core.models import LoginThrottle, Role, User, utcnow
from core.services import audit
from core.services.permissions import Action, Actor, require

MIN_PASSWORD_LENGTH = 8
# bcrypt reads only the first 72 bytes; bcrypt 5 refuses longer input outright.
MAX_PASSWORD_BYTES = 72
USERNAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# Ceiling for the growing lock-out, so a forgotten password is never a life sentence.
MAX_LOCKOUT = timedelta(hours=24)
THROTTLE_KEY_LENGTH = 254


@dataclass(frozen=True)
class UserRow:
    """A user as pages and the CLI show it: plain values, no ORM object."""

    id: int
    username: str
    name: str
    email: str
    role: str
    active: bool
    is_demo: bool


def _row(user: User) -> UserRow:
    assert user.id is not None
    return UserRow(
        id=user.id,
        username=user.username,
        name=user.name,
        email=user.email,
        role=user.role,
        active=user.active,
        is_demo=user.is_demo,
    )


def check_password(password: str) -> None:
    """Refuse a password bcrypt cannot take or a guesser would find quickly."""
    if password != password.strip():
        raise ValidationFailed("password: must not start or end with spaces.")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationFailed(
            f"password: must be at least {MIN_PASSWORD_LENGTH} characters long."
        )
    if len(password.encode()) > MAX_PASSWORD_BYTES:
        raise ValidationFailed(
            f"password: must be at most {MAX_PASSWORD_BYTES} bytes in UTF-8 "
            "(bcrypt ignores anything longer)."
        )


def hash_password(password: str) -> str:
    check_password(password)
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt()).decode()


def password_matches(password: str, password_hash: str) -> bool:
    if len(password.encode()) > MAX_PASSWORD_BYTES:
        return False
    return bcrypt.checkpw(password.encode(), password_hash.encode())


def _normalise_username(username: str) -> str:
    return username.strip().lower()


def _throttle_key(username: str) -> str:
    # The lock-out is kept for whatever was typed, cut to the column's width;
    # every lookup uses the same cut, or a long name would never be locked.
    return _normalise_username(username)[:THROTTLE_KEY_LENGTH]


def _validate_profile(*, username: str, name: str, email: str, role: str) -> None:
    if not USERNAME_PATTERN.match(username):
        raise ValidationFailed(
            "username: 2-64 characters, lowercase letters, digits, '.', '_' or '-', "
            "starting with a letter or digit."
        )
    if not name.strip():
        raise ValidationFailed("name: must not be empty.")
    if not EMAIL_PATTERN.match(email):
        raise ValidationFailed(f"email: {email!r} is not an e-mail address.")
    if role not in {r.value for r in Role}:
        choices = ", ".join(r.value for r in Role)
        raise ValidationFailed(f"role: {role!r} is not one of {choices}.")


def create_user(
    session: Session,
    *,
    actor: Actor | None,
    username: str,
    name: str,
    email: str,
    role: str,
    password: str,
    is_demo: bool = False,
) -> UserRow:
    """Create a user. `actor` None is the bootstrap path (CLI on an empty database)."""
    if actor is not None:
        require(actor, Action.ADMINISTER)
    username = _normalise_username(username)
    email = email.strip()
    _validate_profile(username=username, name=name, email=email, role=role)
    if session.exec(select(User).where(User.username == username)).first():
        raise ValidationFailed(f"username: {username!r} is already taken.")

    user = User(
        username=username,
        name=name.strip(),
        email=email,
        role=role,
        password_hash=hash_password(password),
        is_demo=is_demo,
    )
    session.add(user)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="user.create",
        target_type="user",
        target_id=user.id,
        after={"username": username, "role": role, "email": email},
    )
    return _row(user)


def _get(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"User {user_id} does not exist.")
    return user


def _count_active_admins(session: Session) -> int:
    admins = select(User).where(User.role == Role.ADMIN.value, col(User.active))
    return len(session.exec(admins).all())


def _guard_last_admin(session: Session, user: User) -> None:
    if (
        user.role == Role.ADMIN.value
        and user.active
        and _count_active_admins(session) <= 1
    ):
        raise ValidationFailed(
            f"{user.username} is the last active admin; make someone else admin first."
        )


def change_role(session: Session, *, actor: Actor, user_id: int, role: str) -> UserRow:
    require(actor, Action.ADMINISTER)
    user = _get(session, user_id)
    _validate_profile(
        username=user.username, name=user.name, email=user.email, role=role
    )
    if role == user.role:
        return _row(user)
    if role != Role.ADMIN.value:
        _guard_last_admin(session, user)
    before = {"role": user.role}
    user.role = role
    session.add(user)
    audit.record(
        session,
        actor=actor,
        action="user.role",
        target_type="user",
        target_id=user.id,
        before=before,
        after={"role": role},
    )
    return _row(user)


def set_active(
    session: Session, *, actor: Actor, user_id: int, active: bool
) -> UserRow:
    require(actor, Action.ADMINISTER)
    user = _get(session, user_id)
    if user.active == active:
        return _row(user)
    if not active:
        if user.id == actor.id:
            raise PermissionDenied("You cannot deactivate your own account.")
        _guard_last_admin(session, user)
    user.active = active
    session.add(user)
    audit.record(
        session,
        actor=actor,
        action="user.activate" if active else "user.deactivate",
        target_type="user",
        target_id=user.id,
        before={"active": not active},
        after={"active": active},
    )
    return _row(user)


def reset_password(
    session: Session, *, actor: Actor, user_id: int, password: str
) -> UserRow:
    require(actor, Action.ADMINISTER)
    user = _get(session, user_id)
    user.password_hash = hash_password(password)
    session.add(user)
    throttle = session.get(LoginThrottle, user.username)
    if throttle is not None:
        session.delete(throttle)
    audit.record(
        session,
        actor=actor,
        action="user.password_reset",
        target_type="user",
        target_id=user.id,
    )
    return _row(user)


def list_users(session: Session, *, actor: Actor) -> list[UserRow]:
    require(actor, Action.ADMINISTER)
    users = session.exec(select(User).order_by(col(User.username))).all()
    return [_row(u) for u in users]


def count_users(session: Session) -> int:
    return len(session.exec(select(User.id)).all())


def actor_for(session: Session, username: str) -> Actor:
    """The active user of that name as an Actor; refused when unknown or inactive."""
    user = session.exec(
        select(User).where(User.username == _normalise_username(username))
    ).first()
    if user is None or not user.active:
        raise PermissionDenied(f"No active user named {username!r}.")
    return Actor.of(user)


# -- login ------------------------------------------------------------------


def credentials(session: Session) -> dict[str, Any]:
    """streamlit-authenticator's credentials dict, built fresh from the User table.

    Only active users are listed; the dict is meant to be rebuilt on every run,
    because the library edits it in place.
    """
    users = session.exec(select(User).where(col(User.active))).all()
    return {
        "usernames": {
            u.username: {
                "name": u.name,
                "email": u.email,
                "password": u.password_hash,
                "roles": [u.role],
                "failed_login_attempts": 0,
                "logged_in": False,
            }
            for u in users
        }
    }


def lockout_remaining(session: Session, username: str) -> timedelta | None:
    """How long the name stays locked out, or None when it may try now."""
    throttle = session.get(LoginThrottle, _throttle_key(username))
    if throttle is None or throttle.locked_until is None:
        return None
    remaining = throttle.locked_until - utcnow()
    return remaining if remaining > timedelta(0) else None


def lockout_for(failures: int) -> timedelta | None:
    """Lock-out after `failures` in a row: none below the limit, then doubling."""
    settings = get_settings()
    over = failures - settings.login_max_failures
    if over < 0:
        return None
    # Doubled in float seconds and capped before a timedelta is made: a
    # timedelta of 2**over minutes overflows after a few dozen failures.
    seconds = settings.login_lockout_minutes * 60 * 2.0 ** min(over, 64)
    return timedelta(seconds=min(seconds, MAX_LOCKOUT.total_seconds()))


def record_failed_login(session: Session, *, username: str) -> timedelta | None:
    """Count a failed login for the typed name (known or not); return any lock-out."""
    name = _throttle_key(username)
    throttle = session.get(LoginThrottle, name) or LoginThrottle(username=name)
    throttle.failures += 1
    now = utcnow()
    throttle.last_failure_at = now
    lock = lockout_for(throttle.failures)
    throttle.locked_until = now + lock if lock else None
    session.add(throttle)
    audit.record(
        session,
        actor=None,
        action="login.failed",
        target_type="user",
        target_id=name,
        username=name,
        after={"failures": throttle.failures},
    )
    return lock


def record_successful_login(session: Session, *, username: str) -> None:
    name = _normalise_username(username)
    throttle = session.get(LoginThrottle, _throttle_key(name))
    if throttle is not None:
        session.delete(throttle)
    user = session.exec(select(User).where(User.username == name)).first()
    if user is not None:
        audit.record(
            session,
            actor=Actor.of(user),
            action="login.succeeded",
            target_type="user",
            target_id=user.id,
        )


@dataclass(frozen=True)
class LoginResult:
    actor: Actor | None
    message: str | None


GENERIC_LOGIN_FAILURE = "Username or password is incorrect."


def verify_login(session: Session, *, username: str, password: str) -> LoginResult:
    """Check a typed username and password, counting failures and honouring lock-out.

    An unknown user and a wrong password get the same message.
    """
    name = _normalise_username(username)
    remaining = lockout_remaining(session, name)
    if remaining is not None:
        return LoginResult(None, locked_message(remaining))
    user = session.exec(select(User).where(User.username == name)).first()
    if (
        user is None
        or not user.active
        or not password_matches(password, user.password_hash)
    ):
        lock = record_failed_login(session, username=name)
        return LoginResult(
            None, locked_message(lock) if lock else GENERIC_LOGIN_FAILURE
        )
    record_successful_login(session, username=name)
    return LoginResult(Actor.of(user), None)


def locked_message(remaining: timedelta) -> str:
    minutes = max(1, round(remaining.total_seconds() / 60))
    unit = "minute" if minutes == 1 else "minutes"
    return f"Too many failed logins. Try again in {minutes} {unit}."


def format_time(moment: datetime | None) -> str:
    return moment.strftime("%d %b %Y %H:%M UTC") if moment else ""
