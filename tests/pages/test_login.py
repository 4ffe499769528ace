"""The login gate in app.py: right, wrong, locked out, logout, deactivation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session
from streamlit.testing.v1 import AppTest

from core.db import session_scope
from core.models import LoginThrottle, Role
from core.services import users
from tests.factories import TEST_PASSWORD, make_user
from tests.pages.conftest import errors, logged_in, new_app, titles

GENERIC = "Username or password is incorrect."


def _login_form_shown(at: AppTest) -> bool:
    keys = {t.key for t in at.text_input}
    return {"login_username", "login_password"} <= keys


def test_the_first_run_shows_the_login_form_only(app: AppTest):
    assert _login_form_shown(app)
    assert titles(app) == ["Retrospective Engine"]
    assert not app.exception


def test_right_password_shows_the_overview(app: AppTest, page_session: Session):
    make_user(page_session, Role.ANALYST, "sam", name="Sam Patel")

    logged_in(app, "sam")

    assert "Campaigns" in titles(app)
    assert not _login_form_shown(app)
    assert "**Sam Patel**" in [m.value for m in app.sidebar.markdown]
    assert not app.exception


def test_wrong_password_and_unknown_user_are_refused_alike(
    app: AppTest, page_session: Session
):
    make_user(page_session, Role.ANALYST, "sam")

    logged_in(app, "sam", "not the password")
    wrong = errors(app)
    logged_in(app, "nobody", TEST_PASSWORD)

    assert wrong == errors(app) == [GENERIC]
    assert "Campaigns" not in titles(app)
    assert _login_form_shown(app)


def test_an_empty_form_asks_for_both_fields(app: AppTest):
    logged_in(app, "", "")

    assert errors(app) == ["Enter your username and password."]


def test_five_failures_lock_out_even_the_right_password(
    app: AppTest, page_session: Session
):
    make_user(page_session, Role.ANALYST, "sam")
    for _ in range(4):
        logged_in(app, "sam", "not the password")
    assert errors(app) == [GENERIC]

    logged_in(app, "sam", "not the password")
    assert errors(app) == ["Too many failed logins. Try again in 1 minute."]

    logged_in(app, "sam", TEST_PASSWORD)
    assert errors(app) == ["Too many failed logins. Try again in 1 minute."]
    assert "Campaigns" not in titles(app)


def test_the_right_password_works_once_the_lock_has_passed(
    app: AppTest, page_session: Session
):
    make_user(page_session, Role.ANALYST, "sam")
    page_session.add(
        LoginThrottle(
            username="sam",
            failures=5,
            locked_until=datetime.now(UTC) - timedelta(seconds=1),
        )
    )
    page_session.commit()

    logged_in(app, "sam")

    assert "Campaigns" in titles(app)


def test_logout_shows_the_login_form_and_a_rerun_stays_logged_out(
    app: AppTest, page_session: Session
):
    make_user(page_session, Role.ANALYST, "sam")
    logged_in(app, "sam")
    # In a browser the cookie component reruns the app right after login; the
    # logout button is drawn from that run on.
    app.run()

    app.button(key="logout_button").click().run()

    assert _login_form_shown(app)
    assert "Campaigns" not in titles(app)
    app.run()
    assert _login_form_shown(app)


def test_a_deactivated_user_loses_access_at_the_next_rerun(
    app: AppTest, page_session: Session
):
    admin = make_user(page_session, Role.ADMIN, "boss")
    sam = make_user(page_session, Role.ANALYST, "sam")
    logged_in(app, "sam")
    assert "Campaigns" in titles(app)

    with session_scope() as session:
        users.set_active(session, actor=admin, user_id=sam.id, active=False)
    app.run()

    assert _login_form_shown(app)
    assert "Campaigns" not in titles(app)
    notices = [w.value for w in app.warning]
    assert notices == ["Your account is no longer active. Ask an admin."]


def test_a_role_change_takes_effect_at_the_next_rerun(
    app: AppTest, page_session: Session
):
    admin = make_user(page_session, Role.ADMIN, "boss")
    make_user(page_session, Role.ADMIN, "second")
    logged_in(app, "second")
    app.switch_page("pages/users.py").run()
    assert "Users" in titles(app)

    with session_scope() as session:
        second = users.actor_for(session, "second")
        users.change_role(session, actor=admin, user_id=second.id, role="viewer")
    app.run()

    # The Users page is gone from the navigation: the default page is shown.
    assert "Users" not in titles(app)
    assert "Campaigns" in titles(app)
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        app.switch_page("pages/users.py")


def test_a_page_opened_before_login_shows_the_login_form(sqlite_engine):
    # No steady_navigation here: a fresh server process runs a requested page
    # file without the router until st.navigation is first called.
    at = new_app()
    at.switch_page("pages/campaign.py").run()

    assert _login_form_shown(at)
    assert not at.exception
