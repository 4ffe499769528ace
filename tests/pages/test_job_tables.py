"""What the Jobs page and the progress bar show, as plain functions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from core.jobs import JobRow, ScheduleRow
from ui.jobs import jobs_frame, just_ended, progress_text, schedules_frame

START = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
JOB = JobRow(
    id=7,
    kind="generate",
    target="12",
    status="running",
    progress=40,
    message="Evaluating 7 rules",
    attempts=2,
    error=None,
    requested_by="Ana",
    created_at=START,
    started_at=START,
    finished_at=None,
)


def test_progress_text_of_a_running_and_a_queued_job():
    assert progress_text(JOB) == "40% · Evaluating 7 rules"
    queued = JobRow(**{**JOB.__dict__, "status": "queued"})
    assert progress_text(queued) == "Queued: waiting for the job runner…"


def test_job_table_shows_duration_error_and_who_asked():
    failed = JobRow(
        **{
            **JOB.__dict__,
            "status": "failed",
            "error": "OSError: disk full",
            "requested_by": None,
            "finished_at": START + timedelta(seconds=2.5),
        }
    )

    frame = jobs_frame([failed])

    row = frame.iloc[0]
    assert (row["Status"], row["Error"], row["Duration (s)"]) == (
        "failed",
        "OSError: disk full",
        2.5,
    )
    assert row["Requested by"] == "schedule"
    assert row["Last run"] == "2026-12-01 02:00:00"
    assert jobs_frame([]).empty


def test_schedule_table_shows_pause_and_next_run():
    paused = ScheduleRow(
        kind="cleanup",
        label="Delete old drafts",
        schedule="30 3 * * *",
        timezone="Europe/Berlin",
        paused=True,
        next_run=None,
        last_run=None,
        last_status=None,
        last_error=None,
    )

    row = schedules_frame([paused]).iloc[0]

    assert row["Schedule"] == "30 3 * * * (Europe/Berlin)"
    assert (row["State"], row["Next run"], row["Last run"]) == ("paused", "", "")


def test_an_outcome_is_told_for_a_minute_after_the_job_ended():
    ended = JobRow(**{**JOB.__dict__, "status": "succeeded", "finished_at": START})

    assert just_ended(ended, START + timedelta(seconds=59))
    assert not just_ended(ended, START + timedelta(seconds=61))
    assert not just_ended(JOB, START)
