"""The scheduler in the app, and the admin's Jobs page, through AppTest."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import streamlit as st
from sqlmodel import Session, select
from streamlit.testing.v1 import AppTest

from core import jobs
from core.config import get_settings
from core.db import read_session
from core.models import Job, JobSchedule, Role
from tests.factories import make_user
from tests.pages.conftest import errors, logged_in, new_app, titles


@pytest.fixture
def fresh_caches() -> Iterator[None]:
    """st.cache_resource is process-wide: start and end with an empty one."""
    st.cache_resource.clear()
    yield
    st.cache_resource.clear()


def test_one_scheduler_across_reruns_and_sessions(
    page_session: Session,
    steady_navigation: None,
    fresh_caches: None,
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setenv("RETRO_SCHEDULER_ENABLED", "true")
    get_settings.cache_clear()
    # A job a killed server left running.
    page_session.add(Job(kind="generate", target="1", status="running"))
    page_session.commit()
    started = []
    real_start = jobs.start_scheduler

    def counted(*args: object, **kwargs: object) -> object:
        started.append(real_start(*args, **kwargs))  # type: ignore[arg-type]
        return started[-1]

    monkeypatch.setattr(jobs, "start_scheduler", counted)

    first = new_app()
    first.run()
    first.run()
    second = new_app()
    second.run()

    assert not first.exception and not second.exception
    assert len(started) == 1
    scheduler = started[0]
    assert scheduler is not None and scheduler.running
    assert jobs.active_scheduler() is scheduler
    with read_session() as session:
        left = session.exec(select(Job)).one()
    assert (left.status, left.error) == ("failed", jobs.INTERRUPTED)

    st.cache_resource.clear()  # what a server does when it releases the cache

    assert not scheduler.running
    assert jobs.active_scheduler() is None


def test_scheduler_stays_off_when_the_settings_say_so(
    page_session: Session, steady_navigation: None, fresh_caches: None
):
    at = new_app()
    at.run()

    assert not at.exception
    assert jobs.active_scheduler() is None


@pytest.fixture
def jobs_page(app: AppTest, page_session: Session) -> AppTest:
    make_user(page_session, Role.ADMIN, "boss")
    logged_in(app, "boss")
    app.switch_page("pages/jobs.py").run()
    assert titles(app) == ["Jobs"]
    return app


def test_admin_sees_schedules_and_an_empty_job_list(jobs_page: AppTest):
    schedules = jobs_page.dataframe[0].value

    assert list(schedules["Job"]) == [
        "create-due-retrospectives",
        "cleanup",
        "import-inbox",
    ]
    assert schedules["Schedule"].iloc[0] == "0 2 * * * (UTC)"
    assert set(schedules["State"]) == {"active"}
    assert all(schedules["Next run"])
    assert "No jobs have run yet." in [i.value for i in jobs_page.info]


def test_admin_pauses_resumes_and_runs_now(jobs_page: AppTest):
    jobs_page.button(key="jobs_pause_cleanup").click().run()

    with read_session() as session:
        assert session.get(JobSchedule, "cleanup").paused  # type: ignore[union-attr]
    assert jobs_page.dataframe[0].value["State"].tolist()[1] == "paused"
    assert jobs_page.button(key="jobs_resume_cleanup")

    jobs_page.button(key="jobs_run_cleanup").click().run()

    assert "cleanup queued\\." in [s.value for s in jobs_page.success]
    table = jobs_page.dataframe[1].value
    assert table[["Kind", "Status"]].values.tolist() == [["cleanup", "queued"]]

    jobs_page.button(key="jobs_resume_cleanup").click().run()
    with read_session() as session:
        assert not session.get(JobSchedule, "cleanup").paused  # type: ignore[union-attr]


def test_failed_jobs_come_first_and_can_be_retried(
    jobs_page: AppTest, page_session: Session
):
    page_session.add(Job(kind="cleanup", status="succeeded"))
    page_session.add(
        Job(kind="import-inbox", status="failed", error="OSError: disk full")
    )
    page_session.commit()
    jobs_page.run()

    table = jobs_page.dataframe[1].value
    assert table["Status"].tolist() == ["failed", "succeeded"]
    assert table["Error"].tolist()[0] == "OSError: disk full"
    assert "OSError\\: disk full" in errors(jobs_page)

    jobs_page.button(key="jobs_retry").click().run()

    assert not jobs_page.exception
    with read_session() as session:
        retried = session.exec(select(Job).where(Job.kind == "import-inbox")).one()
    assert retried.status == "queued"
