"""Retrospectives: the list with status; analysts create one and generate insights."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core import jobs
from core.db import read_session, session_scope
from core.errors import DomainError
from core.services import campaigns, retrospectives
from core.services.permissions import Action
from ui.jobs import follow, queue_generation
from ui.retro_view import pick_label
from ui.session import current_actor
from ui.text import escape

NOTICE_KEY = "retrospectives_notice"
ERROR_KEY = "retrospectives_error"

actor = current_actor()
st.title("Retrospectives")

notice = st.session_state.pop(NOTICE_KEY, None)
if notice:
    st.success(escape(notice))
error = st.session_state.pop(ERROR_KEY, None)
if error:
    st.error(escape(error))

with read_session() as session:
    rows = retrospectives.list_retrospectives(session, actor=actor)
    listing = campaigns.list_campaigns(session, actor=actor)


def open_retrospective(retro_id: int) -> None:
    st.session_state["retrospective_id"] = retro_id
    st.switch_page("pages/retrospective.py", query_params={"id": str(retro_id)})


def generate(retro_id: int, *, shown_version: int | None = None) -> None:
    """Queue generation as a background job, then rerun to follow its progress."""
    try:
        queue_generation(actor, retro_id, shown_version=shown_version)
    except DomainError as exc:
        st.session_state[ERROR_KEY] = str(exc)
    st.rerun()


if actor.can(Action.CREATE):
    free = listing[listing["retrospective"].isna()]
    with st.expander("New retrospective", expanded=not rows):
        if free.empty:
            st.info("Every campaign you can see has a retrospective already.")
        else:
            labels = {
                int(r.id): f"{r.name} ({r.start} – {r.end}, {r.status})"
                for r in free.itertuples()
            }
            chosen = st.selectbox(
                "Campaign", list(labels), format_func=labels.get, key="retro_new_pick"
            )
            and_generate = st.checkbox(
                "Generate insights right away", value=True, key="retro_new_generate"
            )
            if st.button("Create retrospective", type="primary", key="retro_create"):
                try:
                    with session_scope() as session:
                        created = retrospectives.create_retrospective(
                            session, actor=actor, campaign_id=int(chosen)
                        )
                except DomainError as exc:
                    st.error(escape(str(exc)))
                else:
                    st.session_state[NOTICE_KEY] = (
                        f"Retrospective #{created.id} created for {created.campaign}."
                    )
                    if and_generate:
                        st.session_state["retro_pick"] = created.id
                        generate(created.id)
                    st.rerun()

if not rows:
    st.info("There are no retrospectives you can see yet.")
    st.stop()

table = pd.DataFrame(
    [
        {
            "id": r.id,
            "Campaign": r.campaign,
            "Status": r.status,
            "Period": f"{r.period_start} – {r.period_end}",
            "Open insights": r.problems,
            "Most severe": r.top_severity or "",
            "Not enough data": r.not_enough_data,
            "Created by": r.created_by,
            "Created": r.created_at.strftime("%Y-%m-%d %H:%M"),
        }
        for r in rows
    ]
)
st.dataframe(table, hide_index=True, key="retro_table", column_config={"id": None})

by_id = {r.id: r for r in rows}
picked = st.selectbox(
    "Retrospective",
    list(by_id),
    format_func=lambda rid: pick_label(by_id[rid]),
    key="retro_pick",
)
selected = by_id[int(picked)]
with read_session() as session:
    job = jobs.latest_job(
        session, actor=actor, kind="generate", target=str(selected.id)
    )
generating = job is not None and job.active
ended = follow(job, key="retro_list_job")
if ended is not None and ended.status == "succeeded":
    st.success(escape(f"Retrospective #{selected.id} generated: {ended.message}"))
if ended is not None and ended.status == "failed":
    st.error(escape(f"Generation failed: {ended.error}"))
elif selected.error and not generating:
    st.error("Last generation failed: " + escape(selected.error))
left, right = st.columns(2)
if left.button("Open", key="retro_open"):
    open_retrospective(selected.id)
can_generate = actor.can(Action.CREATE) and selected.status in ("pending", "failed")
label = "Retry generation" if selected.status == "failed" else "Generate insights"
if (
    can_generate
    and not generating
    and right.button(label, type="primary", key="retro_generate")
):
    generate(selected.id, shown_version=selected.version)
