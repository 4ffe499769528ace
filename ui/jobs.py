"""Background jobs on the pages: a live progress bar, and the Jobs page's tables.

The progress bar is a fragment that rereads the Job row every second while
the rest of the page (and every other page) stays usable; when the job ends
it reruns the whole page, which then shows the result. The tables are plain
functions of plain rows, testable without Streamlit.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pandas as pd
import streamlit as st

from core import jobs
from core.db import read_session
from core.errors import DomainError
from core.jobs import JobRow, ScheduleRow
from core.services import retrospectives
from core.services.permissions import Actor
from ui.session import current_actor

POLL_SECONDS = 1.0
FOLLOWED_KEY = "followed_jobs"
# How long after a job ended the page that started it tells its outcome.
OUTCOME_SECONDS = 60
STATUS_ICONS = {
    "queued": ":material/schedule:",
    "running": ":material/sync:",
    "succeeded": ":material/check_circle:",
    "failed": ":material/error:",
}


def progress_text(job: JobRow) -> str:
    if job.status == "queued":
        return "Queued: waiting for the job runner…"
    return f"{job.progress}% · {job.message or 'Running'}"


def watch(job_id: int) -> None:
    """Remember that this session started a job, to tell its outcome once."""
    st.session_state.setdefault(FOLLOWED_KEY, set()).add(job_id)


def queue_generation(
    actor: Actor, retrospective_id: int, *, shown_version: int | None = None
) -> JobRow:
    """Queue a retrospective's generation and follow it; DomainError when refused.

    With the version the page showed, a retrospective changed since is refused.
    """
    with read_session() as session:
        retrospectives.check_can_generate(
            session,
            actor=actor,
            retrospective_id=retrospective_id,
            expected_version=shown_version,
        )
    queued = jobs.submit(actor=actor, kind="generate", target=str(retrospective_id))
    watch(queued.id)
    return queued


def follow(job: JobRow | None, *, key: str) -> JobRow | None:
    """A live progress bar while the job is queued or running.

    Returns the job for a short while after it ended, when this session
    started or watched it: the page then tells the outcome. A while rather
    than one run, because another rerun (a second tab, the login cookie) can
    come right after and the outcome must not flash by unseen.
    """
    if job is None:
        return None
    followed: set[int] = st.session_state.setdefault(FOLLOWED_KEY, set())
    if job.active:
        followed.add(job.id)
        with st.container(key=key):
            _poll(job.id)
        return None
    if job.id in followed and just_ended(job):
        return job
    return None


def just_ended(job: JobRow, now: datetime | None = None) -> bool:
    if job.finished_at is None:
        return False
    now = now or datetime.now(UTC)
    return now - job.finished_at <= timedelta(seconds=OUTCOME_SECONDS)


@st.fragment(run_every=POLL_SECONDS)
def _poll(job_id: int) -> None:
    job = read_job(job_id)
    if job is not None and job.active:
        st.progress(job.progress / 100, text=progress_text(job))
        return
    # Ended: the whole page runs again and shows the result.
    st.rerun(scope="app")


def read_job(job_id: int) -> JobRow | None:
    try:
        with read_session() as session:
            return jobs.get_job(session, actor=current_actor(), job_id=job_id)
    except DomainError:
        return None


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else ""


def jobs_frame(rows: Sequence[JobRow]) -> pd.DataFrame:
    """The job list as shown: failed ones first (the service's order)."""
    return pd.DataFrame(
        [
            {
                "id": job.id,
                "Status": job.status,
                "Kind": job.kind,
                "Target": job.target or "",
                "Progress": job.progress,
                "Message": job.message,
                "Error": job.error or "",
                "Attempts": job.attempts,
                "Requested by": job.requested_by or "schedule",
                "Queued": _when(job.created_at),
                "Last run": _when(job.started_at),
                "Duration (s)": job.seconds,
            }
            for job in rows
        ],
        columns=[
            "id",
            "Status",
            "Kind",
            "Target",
            "Progress",
            "Message",
            "Error",
            "Attempts",
            "Requested by",
            "Queued",
            "Last run",
            "Duration (s)",
        ],
    )


def schedules_frame(rows: Sequence[ScheduleRow]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "Job": s.kind,
                "What it does": s.label,
                "Schedule": f"{s.schedule} ({s.timezone})",
                "State": "paused" if s.paused else "active",
                "Next run": _when(s.next_run) if s.next_run else "",
                "Last run": _when(s.last_run),
                "Last status": s.last_status or "",
                "Last error": s.last_error or "",
            }
            for s in rows
        ]
    )
