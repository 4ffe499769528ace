"""Audit log (admin): who did what to which target, with before and after values."""

from __future__ import annotations

from datetime import date

import streamlit as st

from core.db import read_session
from core.errors import DomainError
from core.services import audit
from ui.session import current_actor

actor = current_actor()
st.title("Audit log")

try:
    with read_session() as session:
        actions = audit.action_names(session, actor=actor)
except DomainError as exc:
    st.error(str(exc))
    st.stop()

top = st.columns(4)
user = top[0].text_input("User", key="audit_user", placeholder="username contains…")
action = top[1].selectbox("Action", ["", *actions], key="audit_action")
target_type = top[2].selectbox(
    "Target",
    ["", "user", "campaign", "retrospective", "insight", "rule", "import", "job"],
    key="audit_target_type",
)
target_id = top[3].text_input("Target id", key="audit_target_id")
period = st.date_input("Between", value=(), format="YYYY-MM-DD", key="audit_period")
start, end = [*period, None, None][:2] if isinstance(period, tuple) else (None, None)

filters = audit.AuditFilter(
    user=user,
    action=action,
    target_type=target_type,
    target_id=target_id,
    start=start if isinstance(start, date) else None,
    end=end if isinstance(end, date) else None,
)
with read_session() as session:
    events = audit.list_events(session, actor=actor, filters=filters)

st.caption(f"{len(events)} events, newest first (at most {audit.MAX_ROWS}).")
st.dataframe(events, hide_index=True, key="audit_table", column_config={"id": None})
st.download_button(
    "Export CSV",
    data=audit.to_csv(events),
    file_name="audit.csv",
    mime="text/csv",
    key="audit_export",
    disabled=events.empty,
)
