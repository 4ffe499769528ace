"""The Users page: an admin creates, changes, deactivates and resets users."""

from __future__ import annotations

import pytest
from sqlmodel import Session, select
from streamlit.testing.v1 import AppTest

from core.db import read_session
from core.models import AuditEvent, Role, User
from core.services import users
from tests.factories import make_user
from tests.pages.conftest import errors, logged_in, titles

NEW_PASSWORD = "a fresh passphrase"


@pytest.fixture
def users_page(app: AppTest, page_session: Session) -> AppTest:
    make_user(page_session, Role.ADMIN, "boss")
    make_user(page_session, Role.VIEWER, "vic", name="Vic Viewer")
    logged_in(app, "boss")
    app.switch_page("pages/users.py").run()
    assert titles(app) == ["Users"]
    return app


def _stored(username: str) -> User | None:
    with read_session() as session:
        return session.exec(select(User).where(User.username == username)).first()


def _click(at: AppTest, label: str) -> AppTest:
    next(b for b in at.button if b.label == label).click()
    return at.run()


def _pick(at: AppTest, username: str) -> None:
    user = _stored(username)
    assert user is not None
    at.selectbox(key="users_pick").set_value(user.id).run()


def test_the_table_lists_every_user(users_page: AppTest):
    table = users_page.dataframe[0].value

    assert table["username"].tolist() == ["boss", "vic"]
    assert "password_hash" not in table.columns


def test_an_admin_creates_a_user_through_the_form(users_page: AppTest):
    users_page.text_input(key="users_c_username").input("newbie")
    users_page.text_input(key="users_c_name").input("New Bie")
    users_page.text_input(key="users_c_email").input("newbie@example.com")
    users_page.selectbox(key="users_c_role").set_value("approver")
    users_page.text_input(key="users_c_password").input(NEW_PASSWORD)

    _click(users_page, "Create user")

    assert [s.value for s in users_page.success] == ["Created: newbie."]
    created = _stored("newbie")
    assert created is not None and created.role == "approver"
    assert "newbie" in users_page.dataframe[0].value["username"].tolist()


def test_bad_input_in_the_form_shows_the_field_and_creates_nothing(
    users_page: AppTest,
):
    users_page.text_input(key="users_c_username").input("newbie")
    users_page.text_input(key="users_c_name").input("New Bie")
    users_page.text_input(key="users_c_email").input("not an address")
    users_page.text_input(key="users_c_password").input(NEW_PASSWORD)

    _click(users_page, "Create user")

    assert errors(users_page) == ["email: 'not an address' is not an e-mail address."]
    assert _stored("newbie") is None


def test_an_admin_changes_a_role_and_deactivates_a_user(users_page: AppTest):
    _pick(users_page, "vic")
    users_page.selectbox(key="users_role").set_value("analyst")
    _click(users_page, "Save role")

    assert [s.value for s in users_page.success] == ["Role changed: vic."]
    assert _stored("vic").role == "analyst"  # type: ignore[union-attr]

    _pick(users_page, "vic")
    _click(users_page, "Deactivate")

    assert [s.value for s in users_page.success] == ["Deactivated: vic."]
    assert _stored("vic").active is False  # type: ignore[union-attr]
    _pick(users_page, "vic")
    _click(users_page, "Activate")
    assert _stored("vic").active is True  # type: ignore[union-attr]


def test_the_page_shows_why_the_last_admin_stays(users_page: AppTest):
    _pick(users_page, "boss")
    users_page.selectbox(key="users_role").set_value("viewer")

    _click(users_page, "Save role")

    assert errors(users_page) == [
        "boss is the last active admin; make someone else admin first."
    ]
    assert _stored("boss").role == "admin"  # type: ignore[union-attr]


def test_an_admin_resets_a_password(users_page: AppTest):
    _pick(users_page, "vic")
    users_page.text_input(key="users_new_pw").input(NEW_PASSWORD)

    _click(users_page, "Reset password")

    assert [s.value for s in users_page.success] == ["Password reset: vic."]
    with read_session() as session:
        hash_ = session.exec(select(User.password_hash).where(User.username == "vic"))
        assert users.password_matches(NEW_PASSWORD, hash_.one())
        actions = session.exec(select(AuditEvent.action)).all()
    assert "user.password_reset" in actions
