"""The login gate: streamlit-authenticator's cookie, our form and lock-out.

The form is ours because the library's own form does not say which name failed,
and failed logins must be counted per typed name in the database. The library
keeps the session and the signed re-login cookie.
"""

from __future__ import annotations

import logging

import streamlit as st
import streamlit_authenticator as stauth
from streamlit_authenticator.utilities import LoginError

from core.config import get_settings
from core.db import read_session, session_scope
from core.errors import PermissionDenied
from core.services import users
from core.services.permissions import Actor

logger = logging.getLogger(__name__)

NOTICE_KEY = "login_notice"


def make_authenticator() -> stauth.Authenticate:
    """Made once per run, in the router only (a second one clashes on widget keys)."""
    settings = get_settings()
    with read_session() as session:
        # Rebuilt on every run: the library edits the dict in place.
        credentials = users.credentials(session)
    return stauth.Authenticate(
        credentials,
        cookie_name=settings.cookie_name,
        cookie_key=settings.signing_key(),
        cookie_expiry_days=settings.cookie_expiry_days,
        auto_hash=False,
        login_sleep_time=0,
    )


def is_logged_in() -> bool:
    return bool(st.session_state.get("authentication_status"))


def restore_from_cookie(authenticator: stauth.Authenticate) -> None:
    """Log in from the signed cookie when there is a valid one."""
    if is_logged_in():
        return
    try:
        authenticator.login(location="unrendered")
    except LoginError:
        # The cookie names a user who is gone or deactivated.
        authenticator.cookie_controller.delete_cookie()
        st.session_state["authentication_status"] = None


def login_form(authenticator: stauth.Authenticate) -> None:
    """Our login form; on success the library keeps the session and sets the cookie."""
    area = st.empty()
    with area.container():
        st.title("Retrospective Engine")
        notice = st.session_state.get(NOTICE_KEY)
        if notice:
            st.warning(notice)
        with st.form("login_form", clear_on_submit=False):
            username = st.text_input("Username", key="login_username")
            password = st.text_input("Password", type="password", key="login_password")
            submitted = st.form_submit_button("Log in", type="primary")
        error = st.empty()
    if not submitted:
        return
    if not username.strip() or not password:
        error.error("Enter your username and password.")
        return
    with session_scope() as session:
        result = users.verify_login(session, username=username, password=password)
    if result.actor is None:
        error.error(result.message or users.GENERIC_LOGIN_FAILURE)
        return
    authenticator.authentication_controller.login(username, password)
    if not is_logged_in():
        error.error(users.GENERIC_LOGIN_FAILURE)
        return
    authenticator.cookie_controller.set_cookie()
    st.session_state.pop(NOTICE_KEY, None)
    area.empty()


def checked_actor(authenticator: stauth.Authenticate) -> Actor | None:
    """The logged-in user as stored now: role and active flag come from the database."""
    if not is_logged_in():
        return None
    try:
        with read_session() as session:
            return users.actor_for(session, str(st.session_state.get("username") or ""))
    except PermissionDenied:
        logger.info(
            "session of %s ended: user inactive or gone",
            st.session_state.get("username"),
        )
        authenticator.logout(location="unrendered")
        st.session_state[NOTICE_KEY] = "Your account is no longer active. Ask an admin."
        return None
