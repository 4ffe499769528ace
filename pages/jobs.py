"""Jobs (admin): every background job, failing ones first; the periodic schedules."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from core import jobs
from core.db import read_session, session_scope
from core.errors import DomainError
from ui.jobs import jobs_frame, schedules_frame
from ui.session import current_actor
from ui.text import escape

NOTICE_KEY = "jobs_notice"
ERROR_KEY = "jobs_error"

actor = current_actor()
st.title("Jobs")

try:
    with read_session() as session:
        schedules = jobs.list_schedules(session, actor=actor)
        rows = jobs.list_jobs(session, actor=actor)
except DomainError as exc:
    st.error(str(exc))
    st.stop()

notice = st.session_state.pop(NOTICE_KEY, None)
if notice:
    st.success(escape(notice))
error = st.session_state.pop(ERROR_KEY, None)
if error:
    st.error(escape(error))
if jobs.active_scheduler() is None:
    st.caption(
        "This app process runs no scheduler (RETRO_SCHEDULER_ENABLED=false): "
        "queued jobs run in the `worker` process."
    )


def act(call: Callable[[], object], done: str) -> None:
    """Run an admin action, keep its outcome for the rerun that shows it."""
    try:
        call()
    except DomainError as exc:
        st.session_state[ERROR_KEY] = str(exc)
    else:
        st.session_state[NOTICE_KEY] = done
    st.rerun()


def set_paused(kind: str, paused: bool) -> None:
    with session_scope() as session:
        jobs.set_paused(session, actor=actor, kind=kind, paused=paused)


st.subheader("Schedules", anchor=False)
st.dataframe(schedules_frame(schedules), hide_index=True, key="jobs_schedules")
for schedule in schedules:
    name, pause, run = st.columns([3, 1, 1], vertical_alignment="center")
    name.markdown(f"`{schedule.kind}`")
    if schedule.paused:
        if pause.button("Resume", key=f"jobs_resume_{schedule.kind}"):
            act(
                lambda k=schedule.kind: set_paused(k, False),
                f"{schedule.kind} resumed.",
            )
    elif pause.button("Pause", key=f"jobs_pause_{schedule.kind}"):
        act(lambda k=schedule.kind: set_paused(k, True), f"{schedule.kind} paused.")
    if run.button("Run now", key=f"jobs_run_{schedule.kind}"):
        act(
            lambda k=schedule.kind: jobs.run_now(actor=actor, kind=k),
            f"{schedule.kind} queued.",
        )

st.subheader("Jobs", anchor=False)
if not rows:
    st.info("No jobs have run yet.")
    st.stop()
st.caption(f"{len(rows)} jobs, failed ones first (at most {jobs.LIST_LIMIT}).")
st.dataframe(jobs_frame(rows), hide_index=True, key="jobs_table")
if st.button("Refresh", key="jobs_refresh"):
    st.rerun()

failed = {job.id: job for job in rows if job.status == "failed"}
if failed:
    chosen = st.selectbox(
        "Failed job",
        list(failed),
        format_func=lambda i: f"#{i} {failed[i].kind} {failed[i].target or ''}",
        key="jobs_failed_pick",
    )
    if chosen is not None:
        st.error(escape(failed[chosen].error or "Failed."))
        if st.button("Retry", type="primary", key="jobs_retry"):
            act(
                lambda: jobs.retry(actor=actor, job_id=int(chosen)),
                f"Job #{chosen} queued again.",
            )
