"""Users service: validation, admin-only changes, the last admin, login lock-out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session, col, select

from core.errors import NotFound, PermissionDenied, ValidationFailed
from core.models import AuditEvent, LoginThrottle, Role, User
from core.services import users
from core.services.permissions import Actor
from tests.factories import TEST_PASSWORD, make_user

NEW_PASSWORD = "a fresh passphrase"
NON_ADMINS = [Role.VIEWER, Role.ANALYST, Role.APPROVER]


class Clock:
    """The services' idea of now, moved by hand."""

    def __init__(self) -> None:
        self.now = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(users, "utcnow", clock)
    return clock


@pytest.fixture
def admin(session: Session) -> Actor:
    return make_user(session, Role.ADMIN, "boss")


def _create(session: Session, actor: Actor | None, **fields: str) -> users.UserRow:
    values = {
        "username": "newbie",
        "name": "New Bie",
        "email": "newbie@example.com",
        "role": Role.ANALYST.value,
        "password": NEW_PASSWORD,
    }
    values.update(fields)
    return users.create_user(session, actor=actor, **values)


def _login(session: Session, username: str, password: str) -> users.LoginResult:
    result = users.verify_login(session, username=username, password=password)
    session.commit()
    return result


def _fail(session: Session, username: str, times: int) -> users.LoginResult:
    result = users.LoginResult(None, None)
    for _ in range(times):
        result = _login(session, username, "not the password")
    return result


# -- creating users -----------------------------------------------------------


def test_admin_creates_a_user_who_can_log_in(session: Session, admin: Actor):
    row = _create(session, admin, username="  NewBie ")
    session.commit()

    assert row.username == "newbie"
    assert row.role == "analyst" and row.active and not row.is_demo
    assert _login(session, "newbie", NEW_PASSWORD).actor is not None


def test_first_user_is_created_without_an_actor(session: Session):
    row = _create(session, None, role=Role.ADMIN.value)

    assert row.role == "admin"
    assert users.count_users(session) == 1


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("username", "Bad Name!", "username: 2-64 characters"),
        ("username", "x", "username: 2-64 characters"),
        ("name", "   ", "name: must not be empty"),
        ("email", "not-an-address", "email: 'not-an-address' is not an e-mail"),
        ("role", "owner", "role: 'owner' is not one of viewer, analyst"),
        ("password", "short", "password: must be at least 8 characters"),
        ("password", " padded password ", "password: must not start or end"),
        ("password", "é" * 37, "password: must be at most 72 bytes in UTF-8"),
    ],
)
def test_create_user_refuses_bad_input_naming_the_field(
    session: Session, admin: Actor, field: str, value: str, message: str
):
    with pytest.raises(ValidationFailed, match=message):
        _create(session, admin, **{field: value})

    assert session.exec(select(User).where(User.username == "newbie")).first() is None


def test_a_72_byte_password_is_accepted(session: Session, admin: Actor):
    password = "p" * 72

    _create(session, admin, password=password)
    session.commit()

    assert _login(session, "newbie", password).actor is not None


def test_duplicate_username_is_refused(session: Session, admin: Actor):
    _create(session, admin)

    with pytest.raises(ValidationFailed, match="username: 'newbie' is already taken"):
        _create(session, admin, username="NEWBIE", email="other@example.com")


@pytest.mark.parametrize("role", NON_ADMINS)
def test_only_admins_manage_users(session: Session, admin: Actor, role: Role):
    actor = make_user(session, role)
    target = make_user(session, Role.VIEWER)

    with pytest.raises(PermissionDenied, match="may not manage rules, users"):
        _create(session, actor)
    with pytest.raises(PermissionDenied):
        users.change_role(session, actor=actor, user_id=target.id, role="admin")
    with pytest.raises(PermissionDenied):
        users.set_active(session, actor=actor, user_id=target.id, active=False)
    with pytest.raises(PermissionDenied):
        users.reset_password(
            session, actor=actor, user_id=target.id, password=NEW_PASSWORD
        )
    with pytest.raises(PermissionDenied):
        users.list_users(session, actor=actor)

    assert session.get(User, target.id).role == "viewer"  # type: ignore[union-attr]


def test_user_changes_are_audited(session: Session, admin: Actor):
    row = _create(session, admin)
    users.change_role(session, actor=admin, user_id=row.id, role="approver")
    users.set_active(session, actor=admin, user_id=row.id, active=False)
    users.set_active(session, actor=admin, user_id=row.id, active=True)
    users.reset_password(session, actor=admin, user_id=row.id, password=NEW_PASSWORD)
    session.commit()

    events = session.exec(
        select(AuditEvent).where(AuditEvent.target_id == str(row.id))
    ).all()
    assert [e.action for e in events] == [
        "user.create",
        "user.role",
        "user.deactivate",
        "user.activate",
        "user.password_reset",
    ]
    assert all(e.user_id == admin.id for e in events)
    assert events[1].before == {"role": "analyst"}
    assert events[1].after == {"role": "approver"}


# -- changing users -----------------------------------------------------------


def test_admin_changes_a_role(session: Session, admin: Actor):
    target = make_user(session, Role.VIEWER)

    row = users.change_role(session, actor=admin, user_id=target.id, role="analyst")
    session.commit()

    assert row.role == "analyst"
    assert users.actor_for(session, target.username).role is Role.ANALYST


def test_changing_to_the_same_role_changes_nothing(session: Session, admin: Actor):
    row = users.change_role(session, actor=admin, user_id=admin.id, role="admin")

    assert row.role == "admin"
    assert session.exec(select(AuditEvent)).all() == []


def test_change_role_refuses_an_unknown_role(session: Session, admin: Actor):
    target = make_user(session, Role.VIEWER)

    with pytest.raises(ValidationFailed, match="role: 'boss'"):
        users.change_role(session, actor=admin, user_id=target.id, role="boss")


def test_changing_a_missing_user_is_not_found(session: Session, admin: Actor):
    with pytest.raises(NotFound, match="User 4242 does not exist"):
        users.change_role(session, actor=admin, user_id=4242, role="viewer")


def test_the_last_active_admin_cannot_be_demoted(session: Session, admin: Actor):
    with pytest.raises(ValidationFailed, match="boss is the last active admin"):
        users.change_role(session, actor=admin, user_id=admin.id, role="analyst")


def test_the_last_active_admin_cannot_be_deactivated(session: Session, admin: Actor):
    other = make_user(session, Role.ADMIN, "second")
    users.set_active(session, actor=admin, user_id=other.id, active=False)

    # The inactive admin does not count: boss is the last active one.
    other_actor = Actor(other.id, other.username, other.name, Role.ADMIN)
    with pytest.raises(ValidationFailed, match="last active admin"):
        users.set_active(session, actor=other_actor, user_id=admin.id, active=False)
    with pytest.raises(ValidationFailed, match="last active admin"):
        users.change_role(session, actor=admin, user_id=admin.id, role="viewer")


def test_an_admin_is_demoted_when_another_admin_remains(session: Session, admin: Actor):
    make_user(session, Role.ADMIN, "second")

    row = users.change_role(session, actor=admin, user_id=admin.id, role="analyst")

    assert row.role == "analyst"


def test_nobody_deactivates_their_own_account(session: Session, admin: Actor):
    make_user(session, Role.ADMIN, "second")

    with pytest.raises(PermissionDenied, match="cannot deactivate your own account"):
        users.set_active(session, actor=admin, user_id=admin.id, active=False)


def test_setting_the_same_active_flag_changes_nothing(session: Session, admin: Actor):
    target = make_user(session, Role.VIEWER)

    row = users.set_active(session, actor=admin, user_id=target.id, active=True)

    assert row.active
    assert session.exec(select(AuditEvent)).all() == []


def test_a_deactivated_user_is_no_actor_and_cannot_log_in(
    session: Session, admin: Actor
):
    target = make_user(session, Role.ANALYST)
    users.set_active(session, actor=admin, user_id=target.id, active=False)
    session.commit()

    with pytest.raises(PermissionDenied, match="No active user named"):
        users.actor_for(session, target.username)
    result = _login(session, target.username, TEST_PASSWORD)
    assert result.actor is None
    assert result.message == users.GENERIC_LOGIN_FAILURE


def test_actor_for_an_unknown_name_is_refused(session: Session):
    with pytest.raises(PermissionDenied, match="No active user named 'ghost'"):
        users.actor_for(session, "ghost")


def test_list_users_is_sorted_by_username(session: Session, admin: Actor):
    make_user(session, Role.VIEWER, "zed")
    make_user(session, Role.VIEWER, "amy")

    names = [row.username for row in users.list_users(session, actor=admin)]

    assert names == ["amy", "boss", "zed"]


def test_reset_password_replaces_it_and_clears_the_lock_out(
    session: Session, admin: Actor, clock: Clock
):
    target = make_user(session, Role.ANALYST)
    assert _fail(session, target.username, 5).message != users.GENERIC_LOGIN_FAILURE

    users.reset_password(session, actor=admin, user_id=target.id, password=NEW_PASSWORD)
    session.commit()

    assert session.get(LoginThrottle, target.username) is None
    assert _login(session, target.username, TEST_PASSWORD).actor is None
    assert _login(session, target.username, NEW_PASSWORD).actor is not None


def test_reset_password_validates_the_new_one(session: Session, admin: Actor):
    with pytest.raises(ValidationFailed, match="password: must be at least"):
        users.reset_password(session, actor=admin, user_id=admin.id, password="abc")


# -- logging in ---------------------------------------------------------------


def test_right_password_logs_in(session: Session):
    analyst = make_user(session, Role.ANALYST, "sam")

    result = _login(session, "Sam", TEST_PASSWORD)

    assert result.actor == analyst
    assert result.message is None
    actions = session.exec(select(AuditEvent.action)).all()
    assert actions == ["login.succeeded"]


def test_wrong_password_and_unknown_user_get_the_same_message(session: Session):
    make_user(session, Role.ANALYST, "sam")

    wrong = _login(session, "sam", "wrong password")
    unknown = _login(session, "nobody", TEST_PASSWORD)

    assert wrong.actor is None and unknown.actor is None
    assert wrong.message == unknown.message == "Username or password is incorrect."


def test_failed_logins_are_audited_for_known_and_unknown_names(session: Session):
    make_user(session, Role.ANALYST, "sam")

    _login(session, "sam", "wrong password")
    _login(session, "Nobody", "wrong password")

    events = session.exec(
        select(AuditEvent).where(AuditEvent.action == "login.failed")
    ).all()
    assert [(e.username, e.user_id) for e in events] == [
        ("sam", None),
        ("nobody", None),
    ]
    assert events[0].after == {"failures": 1}


@pytest.mark.parametrize("length", [100, 300])
def test_a_very_long_typed_name_is_refused_counted_and_locked_like_any(
    session: Session, clock: Clock, length: int
):
    # People paste odd things into the username field; it must never crash.
    typed = "x" * length

    first = _fail(session, typed, 1)
    fifth = _fail(session, typed, 4)
    locked = _login(session, typed, TEST_PASSWORD)

    assert first.message == users.GENERIC_LOGIN_FAILURE
    assert fifth.message == "Too many failed logins. Try again in 1 minute."
    assert locked.message == "Too many failed logins. Try again in 1 minute."
    events = session.exec(
        select(AuditEvent).where(AuditEvent.action == "login.failed")
    ).all()
    assert len(events) == 5


def test_five_failures_lock_the_name_out(session: Session, clock: Clock):
    make_user(session, Role.ANALYST, "sam")

    fourth = _fail(session, "sam", 4)
    fifth = _fail(session, "sam", 1)

    assert fourth.message == users.GENERIC_LOGIN_FAILURE
    assert fifth.message == "Too many failed logins. Try again in 1 minute."
    throttle = session.get(LoginThrottle, "sam")
    assert throttle is not None and throttle.failures == 5


def test_a_locked_out_user_is_refused_even_with_the_right_password(
    session: Session, clock: Clock
):
    make_user(session, Role.ANALYST, "sam")
    _fail(session, "sam", 5)
    clock.advance(timedelta(seconds=30))

    result = _login(session, "sam", TEST_PASSWORD)

    assert result.actor is None
    assert result.message is not None and result.message.startswith("Too many")
    # Refused while locked: the attempt is not even counted.
    assert session.get(LoginThrottle, "sam").failures == 5  # type: ignore[union-attr]


def test_unknown_names_are_locked_out_like_known_ones(session: Session, clock: Clock):
    result = _fail(session, "nobody", 5)

    assert result.message == "Too many failed logins. Try again in 1 minute."


def test_the_lock_out_grows_with_each_further_failure(session: Session, clock: Clock):
    make_user(session, Role.ANALYST, "sam")
    _fail(session, "sam", 5)
    first_lock = users.lockout_remaining(session, "sam")

    clock.advance(timedelta(minutes=1, seconds=1))
    sixth = _fail(session, "sam", 1)
    second_lock = users.lockout_remaining(session, "sam")

    assert first_lock == timedelta(minutes=1)
    assert second_lock == timedelta(minutes=2)
    assert sixth.message == "Too many failed logins. Try again in 2 minutes."


def test_the_right_password_works_once_the_lock_has_passed(
    session: Session, clock: Clock
):
    make_user(session, Role.ANALYST, "sam")
    _fail(session, "sam", 5)

    clock.advance(timedelta(minutes=1, seconds=1))
    result = _login(session, "sam", TEST_PASSWORD)

    assert result.actor is not None
    assert session.get(LoginThrottle, "sam") is None


def test_success_resets_the_failure_count(session: Session, clock: Clock):
    make_user(session, Role.ANALYST, "sam")
    _fail(session, "sam", 4)

    assert _login(session, "sam", TEST_PASSWORD).actor is not None
    after = _fail(session, "sam", 4)

    assert after.message == users.GENERIC_LOGIN_FAILURE
    assert session.get(LoginThrottle, "sam").failures == 4  # type: ignore[union-attr]


def test_the_lock_out_is_capped(session: Session):
    assert users.lockout_for(4) is None
    assert users.lockout_for(5) == timedelta(minutes=1)
    assert users.lockout_for(7) == timedelta(minutes=4)
    assert users.lockout_for(60) == users.MAX_LOCKOUT


def test_a_long_history_of_failures_still_locks_for_the_cap(
    session: Session, clock: Clock
):
    # Months of one guess per lock-out: the doubling must not overflow.
    session.add(LoginThrottle(username="sam", failures=60))
    session.commit()

    result = _fail(session, "sam", 1)

    assert result.message == "Too many failed logins. Try again in 1440 minutes."
    assert users.lockout_remaining(session, "sam") == users.MAX_LOCKOUT


def test_lockout_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch):
    from core.config import get_settings

    monkeypatch.setenv("RETRO_LOGIN_MAX_FAILURES", "3")
    monkeypatch.setenv("RETRO_LOGIN_LOCKOUT_MINUTES", "10")
    get_settings.cache_clear()

    assert users.lockout_for(2) is None
    assert users.lockout_for(3) == timedelta(minutes=10)


def test_a_password_longer_than_bcrypt_takes_never_matches(session: Session):
    make_user(session, Role.ANALYST, "sam")

    result = _login(session, "sam", TEST_PASSWORD + "x" * 80)

    assert result.actor is None
    assert result.message == users.GENERIC_LOGIN_FAILURE


def test_locked_message_rounds_to_whole_minutes():
    assert users.locked_message(timedelta(seconds=5)).endswith("in 1 minute.")
    assert users.locked_message(timedelta(minutes=90)).endswith("in 90 minutes.")


def test_format_time_is_readable_utc():
    moment = datetime(2026, 3, 4, 5, 6, tzinfo=UTC)

    assert users.format_time(moment) == "04 Mar 2026 05:06 UTC"
    assert users.format_time(None) == ""


# -- credentials for the login library ----------------------------------------


def test_credentials_list_only_active_users_with_bcrypt_hashes(
    session: Session, admin: Actor
):
    make_user(session, Role.VIEWER, "vic", name="Vic Viewer")
    make_user(session, Role.ANALYST, "gone", active=False)
    _create(session, admin, username="made", role="approver")
    session.commit()

    creds = users.credentials(session)["usernames"]

    assert sorted(creds) == ["boss", "made", "vic"]
    assert creds["vic"]["name"] == "Vic Viewer"
    assert creds["vic"]["roles"] == ["viewer"]
    assert creds["made"]["roles"] == ["approver"]
    for entry in creds.values():
        assert entry["password"].startswith("$2b$")
        assert NEW_PASSWORD not in entry["password"]
    stored = session.exec(select(User.password_hash).where(col(User.active))).all()
    assert sorted(e["password"] for e in creds.values()) == sorted(stored)
