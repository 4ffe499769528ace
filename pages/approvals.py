"""Approval queue: submitted retrospectives, oldest first, decided by someone else."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.db import read_session
from core.errors import DomainError
from core.services import retrospectives, review
from ui import review as controls
from ui.reports import download_button
from ui.retro_view import kpi_table, render_insights
from ui.session import current_actor
from ui.text import escape, plain_heading

LAST_KEY = "approval_last_pick"

actor = current_actor()
st.title("Approvals")
acted = (
    controls.NOTICE_KEY in st.session_state or controls.ERROR_KEY in st.session_state
)
controls.show_outcome()

try:
    with read_session() as session:
        queue = review.approval_queue(session, actor=actor)
except DomainError as exc:
    st.error(escape(str(exc)))
    st.stop()

last = st.session_state.pop(LAST_KEY, None)
if last is not None and not acted and last not in {r.id for r in queue}:
    # Another approver decided while this page was open; a click on it is lost.
    st.warning(
        f"Someone else decided on retrospective #{last} first; it has left the queue."
    )
if not queue:
    st.info("Nothing is waiting for approval.")
    st.stop()

st.dataframe(
    pd.DataFrame(
        [
            {
                "id": r.id,
                "Campaign": r.campaign,
                "Submitted": (
                    f"{r.submitted_at:%Y-%m-%d %H:%M}" if r.submitted_at else ""
                ),
                "Submitted by": r.submitted_by or "",
                "Open insights": r.problems,
                "Most severe": r.top_severity or "",
            }
            for r in queue
        ]
    ),
    hide_index=True,
    key="approval_table",
    column_config={"id": None},
)

by_id = {r.id: r for r in queue}
picked = st.selectbox(
    "Retrospective to decide on",
    list(by_id),
    format_func=lambda rid: f"#{rid} {by_id[rid].campaign}",
    key="approval_pick",
)

try:
    with read_session() as session:
        detail = retrospectives.get_retrospective(
            session, actor=actor, retrospective_id=int(picked)
        )
except DomainError as exc:
    st.error(escape(str(exc)))
    st.stop()

st.session_state[LAST_KEY] = int(picked)
retro = controls.as_shown(detail.retro)
plain_heading(retro.campaign, level=2)
st.caption(
    escape(
        f"Retrospective #{retro.id} · {retro.period_start} – {retro.period_end} · "
        f"submitted by {retro.submitted_by or 'unknown'}"
    )
)
download_button(actor, retro, key=f"approval_pdf_{retro.id}")
controls.show_summary(retro)
st.subheader("KPI summary", anchor=False)
st.dataframe(
    kpi_table(detail.kpis, retro.currency), hide_index=True, key="approval_kpis"
)
st.subheader("Insights", anchor=False)
render_insights(detail.insights, retro.currency)
st.divider()
controls.decision_forms(actor, retro)
