"""Retrospective: KPIs per source and overall, insights by severity with evidence.

On a draft, analysts edit insights in place, add their own, write the summary
and submit it; an approved one is read from the snapshot frozen at approval.
"""

from __future__ import annotations

import streamlit as st

from core import jobs
from core.db import read_session
from core.errors import DomainError
from core.services import retrospectives
from core.services.permissions import Action
from ui import review as controls
from ui.jobs import follow, queue_generation
from ui.reports import download_button
from ui.retro_view import kpi_table, pick_label, render_insights
from ui.session import current_actor
from ui.text import escape, plain_heading

NOTICE_KEY = "retrospective_notice"
REGENERABLE = ("pending", "failed", "draft", "changes_requested")
EDITABLE = ("draft", "changes_requested")

actor = current_actor()

with read_session() as session:
    rows = retrospectives.list_retrospectives(session, actor=actor)
if not rows:
    st.title("Retrospective")
    st.info("There are no retrospectives you can see yet.")
    st.stop()

by_id = {r.id: r for r in rows}
requested = st.query_params.get("id") or st.session_state.get("retrospective_id")
try:
    preselected = int(requested) if requested is not None else None
except ValueError:
    preselected = None
ids = list(by_id)
retro_id = st.selectbox(
    "Retrospective",
    ids,
    index=ids.index(preselected) if preselected in by_id else 0,
    format_func=lambda rid: pick_label(by_id[rid]),
    key="retro_view_pick",
)
st.session_state["retrospective_id"] = retro_id
st.query_params["id"] = str(retro_id)

try:
    with read_session() as session:
        detail = retrospectives.get_retrospective(
            session, actor=actor, retrospective_id=int(retro_id)
        )
except DomainError as exc:
    st.error(escape(str(exc)))
    st.stop()

retro = controls.as_shown(detail.retro)
plain_heading(retro.campaign, level=1)
st.caption(
    f"Retrospective #{retro.id} · {retro.period_start} – {retro.period_end} · "
    f"status {retro.status} · created by {escape(retro.created_by)}"
)
notice = st.session_state.pop(NOTICE_KEY, None)
if notice:
    st.success(escape(notice))
controls.show_outcome()
controls.decision_banner(retro)
if retro.status == "in_review":
    who = f" by {retro.submitted_by}" if retro.submitted_by else ""
    st.info(escape(f"Submitted for approval{who}; waiting for an approver."))
if retro.status == "failed" and retro.error:
    st.error("The last generation failed. " + escape(retro.error))
download_button(actor, retro, key="retro_view_pdf")


def generate() -> None:
    """Queue generation as a background job; the next run follows its progress."""
    try:
        queue_generation(actor, retro.id, shown_version=retro.version)
    except DomainError as exc:
        st.error(escape(str(exc)))
        return
    st.rerun()


with read_session() as session:
    job = jobs.latest_job(session, actor=actor, kind="generate", target=str(retro.id))
generating = job is not None and job.active
ended = follow(job, key="retro_view_job")
if ended is not None and ended.status == "succeeded":
    st.success(escape(ended.message))
if job is not None and job.status == "failed" and retro.status != "failed":
    st.error("Generation could not run. " + escape(job.error or ""))

editing = actor.can(Action.EDIT) and retro.status in EDITABLE and bool(detail.insights)

failed = retro.status == "failed" or (job is not None and job.status == "failed")
if actor.can(Action.CREATE) and retro.status in REGENERABLE and not generating:
    if failed:
        if st.button("Retry generation", type="primary", key="retro_view_retry"):
            generate()
    elif not detail.insights:
        if st.button("Generate insights", type="primary", key="retro_view_generate"):
            generate()
    else:
        st.caption(
            "Regenerating replaces the rule insights with a fresh evaluation; "
            "manual insights and dismissals are kept."
        )
        if st.button("Regenerate insights", key="retro_view_regenerate"):
            generate()

st.subheader("KPI summary", anchor=False)
st.caption(
    "Ratios of sums over the retrospective period. ROAS is revenue per unit of "
    "spend (1.0 = spend earned back); ROI is profit per unit of spend (0% = "
    "spend earned back)."
)
st.dataframe(
    kpi_table(detail.kpis, retro.currency), hide_index=True, key="retro_view_kpis"
)

if editing:
    st.subheader("Analyst's summary", anchor=False)
    controls.summary_form(actor, retro)
else:
    controls.show_summary(retro)

st.subheader("Insights", anchor=False)
if not detail.insights:
    st.info("No insights yet. Generate them to evaluate the rules.")
else:
    render_insights(
        detail.insights,
        retro.currency,
        controls.insight_controls(actor, retro) if editing else None,
    )
if editing:
    controls.add_insight_form(actor, retro)
    if actor.can(Action.SUBMIT) and retro.status == "draft":
        controls.submit_button(actor, retro)
if retro.status == "approved" and actor.can(Action.REOPEN):
    controls.reopen_form(actor, retro)
