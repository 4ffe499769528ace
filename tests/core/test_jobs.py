"""Background jobs: rows, progress, dedupe, failure and retry, recovery, schedules."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from core import jobs
from core import rules as engine_rules
from core.config import get_settings
from core.db import read_session
from core.errors import PermissionDenied, ValidationFailed
from core.models import Campaign, Job, Retrospective, Role, User, utcnow
from core.services import imports, retrospectives
from core.services import rules as rule_service
from core.services.permissions import Actor
from tests.factories import add_kpis, make_campaign, make_user

SAMPLES = Path(__file__).resolve().parents[1] / "samples"


@pytest.fixture
def analyst(session: Session) -> Actor:
    rule_service.ensure_builtin_rules(session)
    session.commit()
    return make_user(session, Role.ANALYST)


@pytest.fixture
def admin(session: Session) -> Actor:
    return make_user(session, Role.ADMIN)


def campaign_with_kpis(session: Session, owner: Actor, **fields: object) -> Campaign:
    campaign = make_campaign(session, owner, **fields)
    add_kpis(session, campaign, "meta", days=3, spend=400.0, revenue=100.0)
    return campaign


def pending_retro(session: Session, actor: Actor) -> int:
    campaign = campaign_with_kpis(session, actor)
    row = retrospectives.create_retrospective(
        session, actor=actor, campaign_id=campaign.id or 0
    )
    session.commit()
    return row.id


def stored(session: Session, model: type, key: object) -> object:
    session.expire_all()
    value = session.get(model, key)
    session.commit()
    return value


def retro_status(session: Session, retro_id: int) -> str:
    retro = stored(session, Retrospective, retro_id)
    assert isinstance(retro, Retrospective)
    return retro.status


# -- generation as a job ----------------------------------------------------------


def test_generate_job_writes_progress_others_can_read_then_a_draft(
    session: Session, analyst: Actor, engine: Engine, monkeypatch: pytest.MonkeyPatch
):
    retro_id = pending_retro(session, analyst)
    seen: list[tuple[int, str, str]] = []
    real = jobs.report_progress

    def watched(job_id: int, percent: int, message: str, **kwargs: bool) -> None:
        real(job_id, percent, message, **kwargs)
        # Read back from another session while the job is still running.
        job = stored(session, Job, job_id)
        assert isinstance(job, Job)
        seen.append((job.progress, job.message, job.status))

    monkeypatch.setattr(jobs, "report_progress", watched)

    queued = jobs.submit(actor=analyst, kind="generate", target=str(retro_id))
    assert queued.status == "queued"
    done = jobs.run_job(queued.id)

    assert done is not None
    assert done.status == "succeeded"
    assert done.progress == 100
    assert done.attempts == 1
    assert "insights" in done.message
    assert done.seconds is not None
    assert [p for p, _, _ in seen] == sorted(p for p, _, _ in seen)
    assert {s for _, _, s in seen} == {"running"}
    assert any("Summing KPIs" in m for _, m, _ in seen)
    assert retro_status(session, retro_id) == "draft"


def test_second_submit_while_queued_returns_the_same_job(
    session: Session, analyst: Actor
):
    retro_id = pending_retro(session, analyst)

    first = jobs.submit(actor=analyst, kind="generate", target=str(retro_id))
    second = jobs.submit(actor=analyst, kind="generate", target=str(retro_id))

    assert second.id == first.id
    assert len(session.exec(select(Job)).all()) == 1


def test_two_clicks_at_once_queue_one_job(session: Session, analyst: Actor):
    retro_id = pending_retro(session, analyst)
    barrier = threading.Barrier(4)
    ids: list[int] = []

    def click() -> None:
        barrier.wait()
        ids.append(jobs.submit(actor=analyst, kind="generate", target=str(retro_id)).id)

    threads = [threading.Thread(target=click) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(set(ids)) == 1
    session.expire_all()
    assert len(session.exec(select(Job)).all()) == 1


def test_viewer_may_not_start_a_generation(session: Session, analyst: Actor):
    retro_id = pending_retro(session, analyst)
    viewer = make_user(session, Role.VIEWER)

    with pytest.raises(PermissionDenied):
        jobs.submit(actor=viewer, kind="generate", target=str(retro_id))


def test_generation_refused_before_queueing_on_a_submitted_one(
    session: Session, analyst: Actor
):
    retro_id = pending_retro(session, analyst)
    retro = session.get(Retrospective, retro_id)
    assert retro is not None
    retro.status = "in_review"
    session.add(retro)
    session.commit()

    with pytest.raises(Exception, match="Submitted for approval"):
        jobs.submit(actor=analyst, kind="generate", target=str(retro_id))
    assert session.exec(select(Job)).all() == []


def test_failure_marks_job_and_retrospective_failed_then_retry_succeeds(
    session: Session, analyst: Actor, monkeypatch: pytest.MonkeyPatch
):
    retro_id = pending_retro(session, analyst)
    with monkeypatch.context() as patch:
        patch.setattr(engine_rules, "evaluate", lambda *args, **kwargs: 1 / 0)
        failed = jobs.run_job(
            jobs.submit(actor=analyst, kind="generate", target=str(retro_id)).id
        )

    assert failed is not None
    assert failed.status == "failed"
    assert failed.error == "ZeroDivisionError: division by zero"
    assert retro_status(session, retro_id) == "failed"

    retry = jobs.submit(actor=analyst, kind="generate", target=str(retro_id))
    done = jobs.run_job(retry.id)

    assert retry.id == failed.id
    assert done is not None
    assert (done.status, done.attempts, done.error) == ("succeeded", 2, None)
    assert retro_status(session, retro_id) == "draft"


def test_run_job_of_a_job_not_queued_does_nothing(session: Session, analyst: Actor):
    retro_id = pending_retro(session, analyst)
    job = jobs.submit(actor=analyst, kind="generate", target=str(retro_id))
    jobs.run_job(job.id)

    assert jobs.run_job(job.id) is None


def test_recovery_fails_a_row_left_running_and_the_retrospective_can_be_retried(
    session: Session, analyst: Actor
):
    retro_id = pending_retro(session, analyst)
    job = jobs.submit(actor=analyst, kind="generate", target=str(retro_id))
    # A process died after step 1: job running, retrospective generating.
    assert jobs._claim(job.id) is not None
    retrospectives.start_generation(
        session, actor=analyst, retrospective_id=retro_id, regenerate=True
    )
    session.commit()

    recovered = jobs.recover_interrupted()

    assert recovered == [job.id]
    row = jobs.job_status(job.id)
    assert row is not None
    assert (row.status, row.error) == ("failed", jobs.INTERRUPTED)
    assert retro_status(session, retro_id) == "failed"
    retry = jobs.run_job(
        jobs.submit(actor=analyst, kind="generate", target=str(retro_id)).id
    )
    assert retry is not None
    assert retry.status == "succeeded"
    assert retro_status(session, retro_id) == "draft"


def test_deactivated_requester_fails_the_job_readably(session: Session, analyst: Actor):
    retro_id = pending_retro(session, analyst)
    job = jobs.submit(actor=analyst, kind="generate", target=str(retro_id))
    user = session.get(User, analyst.id)
    assert user is not None
    user.active = False
    session.add(user)
    session.commit()

    row = jobs.run_job(job.id)

    assert row is not None
    assert row.error == "The user who asked for this job is not active."
    assert retro_status(session, retro_id) == "pending"


def test_unknown_kind_and_missing_target_are_refused(admin: Actor):
    with pytest.raises(ValidationFailed, match="is not one of"):
        jobs.submit(actor=admin, kind="nope")
    with pytest.raises(ValidationFailed, match="needs a target"):
        jobs.submit(actor=admin, kind="generate")


# -- imports as jobs --------------------------------------------------------------


def test_large_import_runs_as_a_job_from_a_saved_file(session: Session, analyst: Actor):
    data = (SAMPLES / "internal_kpis.csv").read_bytes()
    options = imports.ImportOptions(create_campaigns=True, currency="EUR")

    job = jobs.submit_import(
        actor=analyst, file_name="internal.csv", data=data, options=options
    )
    saved = list(get_settings().uploads_dir.iterdir())
    done = jobs.run_job(job.id)

    assert [p.suffix for p in saved] == [".csv"]
    assert job.target == saved[0].stem
    assert done is not None
    assert done.status == "succeeded", done.error
    assert done.result is not None
    assert done.result["status"] == "imported"
    assert "14 rows read" in done.message
    assert not saved[0].exists()


# -- periodic kinds ---------------------------------------------------------------


def test_nightly_job_creates_each_due_retrospective_once(
    session: Session, analyst: Actor, admin: Actor
):
    today = utcnow().date()
    due = campaign_with_kpis(
        session, analyst, name="Due", end_date=today - timedelta(days=2)
    )
    campaign_with_kpis(
        session, analyst, name="Too fresh", end_date=today - timedelta(days=1)
    )
    make_campaign(session, analyst, name="No data", end_date=today - timedelta(days=3))
    campaign_with_kpis(
        session, analyst, name="Long ago", end_date=today - timedelta(days=90)
    )
    has_one = campaign_with_kpis(
        session, analyst, name="Has one", end_date=today - timedelta(days=5)
    )
    retrospectives.create_retrospective(
        session, actor=analyst, campaign_id=has_one.id or 0
    )
    session.commit()

    first = jobs.fire_periodic("create-due-retrospectives")
    assert first is not None
    assert first.result is not None
    generated = jobs.run_in_foreground(first.result["jobs"][0])
    again = jobs.fire_periodic("create-due-retrospectives")

    assert first.status == "succeeded", first.error
    assert len(first.result["created"]) == 1
    assert [s[0] for s in first.result["skipped"]] == [
        c.id for c in session.exec(select(Campaign).where(Campaign.name == "No data"))
    ]
    assert [g.status for g in generated] == ["succeeded"]
    session.expire_all()
    opened = session.exec(
        select(Retrospective).where(Retrospective.campaign_id == due.id)
    ).all()
    assert [r.status for r in opened] == ["draft"]
    # Scheduled runs act as the oldest admin.
    assert opened[0].created_by_id == admin.id
    assert again is not None
    assert again.result is not None
    assert again.result["created"] == []
    assert len(session.exec(select(Retrospective)).all()) == 2


def test_cleanup_deletes_only_old_drafts_failed_and_unreferenced_files(
    session: Session, analyst: Actor, admin: Actor
):
    old = utcnow() - timedelta(days=get_settings().retention_days + 1)
    statuses = ["draft", "failed", "approved", "in_review", "pending"]
    retros = {}
    for status in [*statuses, "recent draft"]:
        campaign = campaign_with_kpis(session, analyst, name=status)
        retro = Retrospective(
            campaign_id=campaign.id or 0,
            status=status.removeprefix("recent "),
            period_start=date(2026, 11, 1),
            period_end=date(2026, 11, 3),
            updated_at=utcnow() if status.startswith("recent") else old,
            report_path="kept.pdf" if status == "approved" else None,
        )
        session.add(retro)
        session.commit()
        retros[status] = retro.id
    reports = get_settings().reports_dir
    reports.mkdir(parents=True)
    for name in ("kept.pdf", "orphan.pdf", "fresh-orphan.pdf"):
        (reports / name).write_bytes(b"%PDF")
    an_hour_ago = time.time() - 7200
    for name in ("kept.pdf", "orphan.pdf"):
        os.utime(reports / name, (an_hour_ago, an_hour_ago))

    row = jobs.run_job(jobs.submit(actor=admin, kind="cleanup").id)

    assert row is not None
    assert row.status == "succeeded", row.error
    session.expire_all()
    left = {r.status for r in session.exec(select(Retrospective)).all()}
    assert left == {"approved", "in_review", "pending", "draft"}
    assert session.get(Retrospective, retros["recent draft"]) is not None
    assert sorted(p.name for p in reports.iterdir()) == ["fresh-orphan.pdf", "kept.pdf"]
    assert row.result is not None
    assert sorted(row.result["retrospectives"]) == sorted(
        [retros["draft"], retros["failed"]]
    )


def test_inbox_files_are_imported_and_moved_with_their_report(
    session: Session, analyst: Actor, admin: Actor
):
    for name in ("Winter Sale 2026", "Café Lumière – Launch"):
        make_campaign(session, analyst, name=name, currency="EUR")
    inbox = get_settings().inbox_dir
    inbox.mkdir(parents=True)
    (inbox / "good.csv").write_bytes((SAMPLES / "internal_kpis.csv").read_bytes())
    (inbox / "bad.csv").write_text("not,a,known\nexport,at,all\n")
    (inbox / "notes.pdf").write_bytes(b"ignored")
    settled = time.time() - 60
    for path in inbox.iterdir():
        os.utime(path, (settled, settled))

    row = jobs.fire_periodic("import-inbox")

    assert row is not None
    assert row.status == "succeeded", row.error
    assert row.result == {"done": ["good.csv"], "failed": ["bad.csv"]}
    done = sorted(p.name for p in (inbox / "done").iterdir())
    failed = sorted(p.name for p in (inbox / "failed").iterdir())
    assert [n.split("-", 1)[1] for n in done] == ["good.csv", "good.csv.report.json"]
    assert [n.split("-", 1)[1] for n in failed] == ["bad.csv", "bad.csv.report.json"]
    assert sorted(p.name for p in inbox.iterdir() if p.is_file()) == ["notes.pdf"]


def test_an_empty_inbox_leaves_no_job_row_every_few_minutes(
    session: Session, admin: Actor
):
    assert jobs.fire_periodic("import-inbox") is None
    assert session.exec(select(Job)).all() == []
    session.commit()

    row = jobs.run_job(jobs.run_now(actor=admin, kind="import-inbox").id)

    assert row is not None
    assert row.message == "0 inbox files imported, 0 failed."


def test_paused_schedule_is_skipped_but_runs_now_when_asked(
    session: Session, admin: Actor
):
    jobs.set_paused(session, actor=admin, kind="cleanup", paused=True)
    session.commit()

    assert jobs.fire_periodic("cleanup") is None
    schedules = {s.kind: s for s in jobs.list_schedules(session, actor=admin)}
    session.commit()
    assert schedules["cleanup"].paused
    assert schedules["cleanup"].next_run is None
    assert schedules["import-inbox"].next_run is not None

    row = jobs.run_now(actor=admin, kind="cleanup")
    assert jobs.run_job(row.id) is not None
    session.expire_all()
    schedules = {s.kind: s for s in jobs.list_schedules(session, actor=admin)}
    assert schedules["cleanup"].last_status == "succeeded"


def test_schedules_and_job_list_are_for_admins(session: Session, analyst: Actor):
    with pytest.raises(PermissionDenied):
        jobs.list_jobs(session, actor=analyst)
    with pytest.raises(PermissionDenied):
        jobs.list_schedules(session, actor=analyst)
    with pytest.raises(PermissionDenied):
        jobs.set_paused(session, actor=analyst, kind="cleanup", paused=True)
    with pytest.raises(PermissionDenied):
        jobs.run_now(actor=analyst, kind="cleanup")


def test_job_list_shows_failing_jobs_first(
    session: Session, analyst: Actor, admin: Actor, monkeypatch: pytest.MonkeyPatch
):
    good = pending_retro(session, analyst)
    bad = pending_retro(session, analyst)
    jobs.run_job(jobs.submit(actor=analyst, kind="generate", target=str(good)).id)
    monkeypatch.setattr(engine_rules, "evaluate", lambda *args, **kwargs: 1 / 0)
    jobs.run_job(jobs.submit(actor=analyst, kind="generate", target=str(bad)).id)

    listed = jobs.list_jobs(session, actor=admin)

    assert [(j.target, j.status) for j in listed] == [
        (str(bad), "failed"),
        (str(good), "succeeded"),
    ]
    assert listed[0].requested_by == analyst.name


def test_a_missed_run_is_found_from_the_last_run(session: Session, admin: Actor):
    settings = get_settings()
    assert jobs.missed_runs(settings) == []  # never ran: nothing missed

    session.add(
        Job(
            kind="cleanup",
            status="succeeded",
            created_at=utcnow() - timedelta(days=2),
            started_at=utcnow() - timedelta(days=2),
        )
    )
    session.commit()
    assert jobs.missed_runs(settings) == ["cleanup"]

    jobs.fire_periodic("cleanup")
    assert jobs.missed_runs(settings) == []


# -- the scheduler ----------------------------------------------------------------


def wait_for(predicate, seconds: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)


def test_scheduler_runs_submitted_and_missed_jobs_in_its_threads(
    session: Session, analyst: Actor, admin: Actor
):
    retro_id = pending_retro(session, analyst)
    session.add(
        Job(kind="cleanup", status="succeeded", created_at=utcnow() - timedelta(2))
    )
    session.commit()

    scheduler = jobs.start_scheduler(even_if_disabled=True)
    try:
        assert jobs.active_scheduler() is scheduler
        job = jobs.submit(actor=analyst, kind="generate", target=str(retro_id))
        wait_for(lambda: getattr(jobs.job_status(job.id), "status", "") == "succeeded")

        def cleaned() -> bool:
            with read_session() as db:
                listed = jobs.list_jobs(db, actor=admin)
            return any(j.kind == "cleanup" and j.started_at for j in listed)

        wait_for(cleaned)
        ids = {j.id for j in scheduler.get_jobs()}
        assert {"create-due-retrospectives", "cleanup", "import-inbox"} <= ids
    finally:
        jobs.stop_scheduler(scheduler)
    assert jobs.active_scheduler() is None
    assert retro_status(session, retro_id) == "draft"


def test_scheduler_is_off_when_the_settings_say_so():
    assert jobs.start_scheduler() is None


def test_queue_poller_runs_rows_queued_by_another_process(
    session: Session, analyst: Actor
):
    retro_id = pending_retro(session, analyst)
    # Queued while no scheduler ran here, as an app replica does.
    job = jobs.submit(actor=analyst, kind="generate", target=str(retro_id))

    scheduler = jobs.start_scheduler(even_if_disabled=True)
    try:
        wait_for(lambda: getattr(jobs.job_status(job.id), "status", "") == "succeeded")
    finally:
        jobs.stop_scheduler(scheduler)


def test_scheduler_thread_and_ui_write_sqlite_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    # A file, not :memory:: each thread must see the same database.
    from sqlmodel import SQLModel

    from core.db import make_engine, session_scope
    from core.services import users

    url = f"sqlite:///{tmp_path / 'busy.db'}"
    monkeypatch.setenv("RETRO_DATABASE_URL", url)
    get_settings.cache_clear()
    SQLModel.metadata.create_all(make_engine(url))
    with session_scope() as db:
        db.add(Job(kind="cleanup", status="running"))
    errors: list[BaseException] = []

    def job_thread() -> None:
        try:
            for step in range(200):
                jobs.report_progress(1, step % 100, f"step {step}")
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=job_thread)
    thread.start()
    for attempt in range(200):
        with session_scope() as db:
            users.record_failed_login(db, username=f"someone{attempt % 5}")
    thread.join()

    assert errors == []
    row = jobs.job_status(1)
    assert row is not None
    assert row.message == "step 199"


def test_recovery_spares_a_job_a_live_process_here_is_running(
    session: Session, analyst: Actor
):
    retro_id = pending_retro(session, analyst)
    job = jobs.submit(actor=analyst, kind="generate", target=str(retro_id))
    assert jobs._claim(job.id) is not None
    # As if a `run-job` in another process on this machine had claimed it.
    parent = f"{socket.gethostname()}:{os.getppid()}"
    stored = session.get(Job, job.id)
    assert stored is not None and stored.runner == jobs.this_runner()
    stored.runner = parent
    session.add(stored)
    session.commit()

    assert jobs.recover_interrupted() == []
    row = jobs.job_status(job.id)
    assert row is not None and row.status == "running"


def test_a_runner_is_alive_only_while_its_process_is_the_one_that_started_it():
    started = datetime.now(UTC)
    here = socket.gethostname()

    assert jobs.runner_alive(f"{here}:{os.getppid()}", started)
    assert not jobs.runner_alive(
        f"{here}:{os.getppid()}", started - timedelta(days=3650)
    )
    assert not jobs.runner_alive(jobs.this_runner(), started)
    assert not jobs.runner_alive(f"elsewhere:{os.getppid()}", started)
    assert not jobs.runner_alive(None, started)
    assert not jobs.runner_alive(f"{here}:{dead_pid()}", started)


def dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid
