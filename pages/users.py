"""Users (admin): create people, change roles, deactivate, reset passwords."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.db import read_session, session_scope
from core.errors import DomainError
from core.models import Role
from core.services import users
from ui.session import current_actor

actor = current_actor()
st.title("Users")

ROLES = [r.value for r in Role]


def run(action: str, fn, **kwargs) -> None:  # type: ignore[no-untyped-def]
    try:
        with session_scope() as session:
            row = fn(session, actor=actor, **kwargs)
    except DomainError as exc:
        st.error(str(exc))
        return
    st.session_state["users_notice"] = f"{action}: {row.username}."
    st.rerun()


try:
    with read_session() as session:
        rows = users.list_users(session, actor=actor)
except DomainError as exc:
    st.error(str(exc))
    st.stop()

notice = st.session_state.pop("users_notice", None)
if notice:
    st.success(notice)

st.dataframe(
    pd.DataFrame([vars(r) for r in rows]).drop(columns=["is_demo"]),
    hide_index=True,
    key="users_table",
    column_config={"id": None},
)

by_id = {r.id: r for r in rows}
left, right = st.columns(2)

with left:
    st.subheader("Change a user", anchor=False)
    chosen = st.selectbox(
        "User",
        list(by_id),
        format_func=lambda uid: f"{by_id[uid].name} ({by_id[uid].username})",
        key="users_pick",
    )
    target = by_id[chosen]
    role = st.selectbox("Role", ROLES, index=ROLES.index(target.role), key="users_role")
    if st.button("Save role", key="users_save_role"):
        run("Role changed", users.change_role, user_id=target.id, role=role)
    if target.active:
        if st.button("Deactivate", key="users_deactivate"):
            run("Deactivated", users.set_active, user_id=target.id, active=False)
    elif st.button("Activate", key="users_activate"):
        run("Activated", users.set_active, user_id=target.id, active=True)
    with st.form("users_reset_form", clear_on_submit=True):
        new_password = st.text_input(
            "New password", type="password", key="users_new_pw"
        )
        if st.form_submit_button("Reset password"):
            run(
                "Password reset",
                users.reset_password,
                user_id=target.id,
                password=new_password,
            )

with right:
    st.subheader("New user", anchor=False)
    with st.form("users_create_form"):
        username = st.text_input("Username", key="users_c_username")
        name = st.text_input("Name", key="users_c_name")
        email = st.text_input("E-mail", key="users_c_email")
        new_role = st.selectbox("Role", ROLES, key="users_c_role")
        password = st.text_input("Password", type="password", key="users_c_password")
        if st.form_submit_button("Create user", type="primary"):
            run(
                "Created",
                users.create_user,
                username=username,
                name=name,
                email=email,
                role=new_role,
                password=password,
            )
