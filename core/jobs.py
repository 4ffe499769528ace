"""Background work: the kinds of job, their Job rows, one scheduler per process.

Every run of background work is a Job row: kind, target, who asked, status,
progress with a message, attempts, error, start and end. `submit` queues a
job, or returns the one already queued or running for the same kind and
target; `run_job` runs a queued job in the calling thread. The one process
that runs jobs (the app with the scheduler on, or the `worker` command) runs
them in its scheduler's threads, fires the periodic kinds on the schedules of
the settings, and picks up rows that processes without a scheduler queued.

Job functions take a JobContext (ids and plain JSON only) and open their own
sessions, so a job runs alike in a scheduler thread, on the command line and
in a test. Add a kind by writing its function and one `register` call below.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import case, text, update
from sqlmodel import Session, col, select

from core.config import Settings, get_settings
from core.db import get_engine, is_sqlite, read_session, session_scope
from core.errors import DomainError, NotFound, PermissionDenied, ValidationFailed
from core.models import Job, JobSchedule, JobStatus, Role, User, as_utc, utcnow
from core.services import audit, automation, imports, retrospectives, users
from core.services import reports as report_service
from core.services.permissions import Action, Actor, require

logger = logging.getLogger(__name__)

J = JobStatus
ACTIVE = (J.QUEUED.value, J.RUNNING.value)
# Two threads: a long import does not hold up a generation queued after it;
# more would only queue for SQLite's single write lock.
JOB_THREADS = 2
# Jobs queued by a process without a scheduler start within this many seconds.
QUEUE_POLL_SECONDS = 2.0
QUEUE_POLLER = "job-queue"
# A daily run that fires late (busy machine, suspended VM) still runs this late.
MISFIRE_GRACE_SECONDS = 6 * 3600
# Uploads larger than this import as a job; smaller ones take a few seconds at
# most and import on the page, where the report shows at once.
IMPORT_INLINE_MAX_BYTES = 5 * 1024 * 1024
MAX_ERROR_LENGTH = 2000
MAX_MESSAGE_LENGTH = 500
LIST_LIMIT = 500
INTERRUPTED = (
    "interrupted: the process running this job stopped before it finished; retry it."
)

# Progress of the jobs running in this process, see report_progress; the lock
# also guards _dispatched.
_board: dict[int, tuple[int, str]] = {}
_board_lock = threading.Lock()


# -- plain values -------------------------------------------------------------


@dataclass(frozen=True)
class JobRow:
    """A job as pages and the CLI show it."""

    id: int
    kind: str
    target: str | None
    status: str
    progress: int
    message: str
    attempts: int
    error: str | None
    requested_by: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    result: dict[str, Any] | None = None

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    @property
    def seconds(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return round((self.finished_at - self.started_at).total_seconds(), 3)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "seconds": self.seconds}


@dataclass(frozen=True)
class ScheduleRow:
    """A periodic kind: its schedule from the settings, pause, last and next run."""

    kind: str
    label: str
    schedule: str
    timezone: str
    paused: bool
    next_run: datetime | None
    last_run: datetime | None
    last_status: str | None
    last_error: str | None


@dataclass(frozen=True)
class Outcome:
    """What a job function returns: one line for people, JSON for programs.

    `result["jobs"]` lists jobs it queued in turn (run in the foreground by
    `run_in_foreground`, by the scheduler otherwise).
    """

    message: str
    result: dict[str, Any] | None = None


@dataclass(frozen=True)
class JobContext:
    """What a job function gets: ids and plain JSON, never ORM objects or bytes."""

    job_id: int
    kind: str
    target: str | None
    user_id: int | None
    params: Mapping[str, Any] = field(default_factory=dict)

    def actor(self, session: Session) -> Actor:
        return acting_user(session, self.user_id)

    def progress(self, percent: int, message: str, *, persist: bool = True) -> None:
        report_progress(self.job_id, percent, message, persist=persist)


@dataclass(frozen=True)
class JobKind:
    name: str
    label: str
    run: Callable[[JobContext], Outcome]
    # Who may start it; admins see every job.
    action: Action
    # Refusals worth showing at the click, before anything is queued.
    check: Callable[[Session, Actor, str | None], None] | None = None
    # Leaves the target retryable after a failure (own transaction).
    on_failure: Callable[[Session, JobContext, str], None] | None = None
    # The settings field with its crontab schedule; None: on request only.
    schedule_setting: str | None = None
    needs_target: bool = False
    # For frequent schedules: a scheduled run with nothing to do leaves no row.
    has_work: Callable[[], bool] | None = None


KINDS: dict[str, JobKind] = {}


def register(kind: JobKind) -> JobKind:
    KINDS[kind.name] = kind
    return kind


def job_kind(name: str) -> JobKind:
    try:
        return KINDS[name]
    except KeyError:
        raise ValidationFailed(
            f"kind: {name!r} is not one of {', '.join(KINDS)}."
        ) from None


def periodic_kinds() -> list[JobKind]:
    return [k for k in KINDS.values() if k.schedule_setting]


# -- who a job acts as ----------------------------------------------------------


def acting_user(session: Session, user_id: int | None) -> Actor:
    """The requester as stored now; scheduled runs act as the automation user."""
    if user_id is not None:
        user = session.get(User, user_id)
        if user is None or not user.active:
            raise PermissionDenied("The user who asked for this job is not active.")
        return Actor.of(user)
    name = get_settings().automation_user.strip()
    if name:
        return users.actor_for(session, name)
    admin = session.exec(
        select(User)
        .where(User.role == Role.ADMIN.value, col(User.active))
        .order_by(col(User.id))
    ).first()
    if admin is None:
        raise PermissionDenied(
            "No active admin to run scheduled jobs as; set RETRO_AUTOMATION_USER."
        )
    return Actor.of(admin)


# -- job rows -------------------------------------------------------------------


def _row(session: Session, job: Job) -> JobRow:
    assert job.id is not None
    requester = session.get(User, job.requested_by_id) if job.requested_by_id else None
    progress, message = job.progress, job.message
    if job.status == J.RUNNING:
        # Fresher than the row when the job cannot write while it holds a lock.
        progress, message = _board.get(job.id, (progress, message))
    return JobRow(
        id=job.id,
        kind=job.kind,
        target=job.target,
        status=job.status,
        progress=progress,
        message=message,
        attempts=job.attempts,
        error=job.error,
        requested_by=requester.name if requester else None,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        result=job.result,
    )


def _of_pair(kind: str, target: str | None) -> Any:
    query = select(Job).where(Job.kind == kind)
    if target is None:
        return query.where(col(Job.target).is_(None))
    return query.where(Job.target == target)


def _lock_pair(session: Session, kind: str, target: str | None) -> None:
    """Serialise queuing for one kind and target, so two clicks queue one job.

    SQLite's BEGIN IMMEDIATE already lets one writer in at a time; PostgreSQL
    gets a transaction-scoped advisory lock on the pair.
    """
    if is_sqlite(session.get_bind().engine):
        return
    key = zlib.crc32(f"{kind}\0{target or ''}".encode())
    session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def enqueue(
    session: Session,
    *,
    actor: Actor | None,
    kind: str,
    target: str | None = None,
    params: Mapping[str, Any] | None = None,
) -> tuple[JobRow, bool]:
    """Queue a job; True when queued now, False when one was queued or running.

    `actor` None is the scheduler acting on its schedule. A failed job of the
    same kind and target is queued again as its retry (attempts keep counting).
    """
    spec = job_kind(kind)
    if spec.needs_target and not target:
        raise ValidationFailed(f"target: a {spec.name} job needs a target.")
    if actor is not None:
        require(actor, spec.action)
        if spec.check is not None:
            spec.check(session, actor, target)
    _lock_pair(session, kind, target)
    running = session.exec(
        _of_pair(kind, target).where(col(Job.status).in_(ACTIVE))
    ).first()
    if running is not None:
        return _row(session, running), False

    job = session.exec(_of_pair(kind, target).order_by(col(Job.id).desc())).first()
    if job is None or job.status != J.FAILED:
        job = Job(kind=kind, target=target, status=J.QUEUED.value)
    job.status = J.QUEUED.value
    job.progress, job.message, job.error = 0, "Waiting to start", None
    job.started_at = job.finished_at = job.result = None
    # A retry without new params keeps the ones of the failed run.
    job.params = dict(params) if params is not None else dict(job.params or {})
    job.requested_by_id = actor.id if actor else None
    session.add(job)
    session.flush()
    if actor is not None:
        audit.record(
            session,
            actor=actor,
            action="job.queue",
            target_type="job",
            target_id=job.id,
            after={"kind": kind, "target": target, "attempts": job.attempts},
        )
    return _row(session, job), True


def submit(
    *,
    actor: Actor | None,
    kind: str,
    target: str | None = None,
    params: Mapping[str, Any] | None = None,
) -> JobRow:
    """Queue a job in its own transaction and hand it to this process's scheduler.

    Without a scheduler here the row waits for the process that runs jobs.
    """
    with session_scope() as session:
        row, queued = enqueue(
            session, actor=actor, kind=kind, target=target, params=params
        )
    if queued:
        dispatch(row.id)
    return row


def retry(*, actor: Actor, job_id: int) -> JobRow:
    """Queue a failed job again, with its target and params."""
    with read_session() as session:
        job = session.get(Job, job_id)
        if job is None or not _may_see(actor, job):
            raise NotFound(f"Job {job_id} does not exist.")
        kind, target, status = job.kind, job.target, job.status
    if status != J.FAILED:
        raise ValidationFailed(
            f"Job {job_id} is {status}; only a failed job is retried."
        )
    return submit(actor=actor, kind=kind, target=target)


def report_progress(
    job_id: int, percent: int, message: str, *, persist: bool = True
) -> None:
    """Record a running job's progress, in a short transaction of its own.

    persist=False keeps it in this process only: for a job whose own
    transaction holds SQLite's write lock, which this write would wait for.
    """
    value = (max(0, min(100, int(percent))), message[:MAX_MESSAGE_LENGTH])
    with _board_lock:
        _board[job_id] = value
    if not persist:
        return
    with session_scope() as session:
        session.execute(
            update(Job)
            .where(col(Job.id) == job_id, col(Job.status) == J.RUNNING.value)
            .values(progress=value[0], message=value[1])
        )


def _claim(job_id: int) -> JobContext | None:
    """Mark a queued job running; None when another runner took it first."""
    with session_scope() as session:
        claimed = session.execute(
            update(Job)
            .where(col(Job.id) == job_id, col(Job.status) == J.QUEUED.value)
            .values(
                status=J.RUNNING.value,
                attempts=col(Job.attempts) + 1,
                started_at=utcnow(),
                finished_at=None,
                progress=0,
                message="Starting",
                error=None,
                runner=this_runner(),
            ),
            execution_options={"synchronize_session": False},
        )
        if getattr(claimed, "rowcount", 0) != 1:
            return None
        job = session.get(Job, job_id)
        assert job is not None
        return JobContext(
            job_id=job_id,
            kind=job.kind,
            target=job.target,
            user_id=job.requested_by_id,
            params=dict(job.params or {}),
        )


def run_job(job_id: int) -> JobRow | None:
    """Run one queued job in this thread; None when it was not queued (any more)."""
    try:
        context = _claim(job_id)
        if context is None:
            return None
        spec = job_kind(context.kind)
        started = time.monotonic()
        try:
            outcome = spec.run(context)
        except DomainError as exc:
            logger.warning("job %s (%s) refused: %s", job_id, spec.name, exc)
            _fail(context, str(exc))
        except Exception as exc:
            logger.exception("job %s (%s) failed", job_id, spec.name)
            _fail(context, f"{type(exc).__name__}: {exc}")
        else:
            _finish(context, outcome)
            logger.info(
                "job %s (%s) finished in %.1f s",
                job_id,
                spec.name,
                time.monotonic() - started,
            )
    finally:
        with _board_lock:
            _board.pop(job_id, None)
            _dispatched.discard(job_id)
    return job_status(job_id)


def run_in_foreground(job_id: int) -> list[JobRow]:
    """Run a job and the jobs it queued in turn, here and now (CLI, tests)."""
    done: list[JobRow] = []
    pending = [job_id]
    while pending:
        row = run_job(pending.pop(0))
        if row is None:
            continue
        done.append(row)
        pending.extend(int(i) for i in (row.result or {}).get("jobs", []))
    return done


def job_status(job_id: int) -> JobRow | None:
    """A job as stored (no permission check: for runners, not for people)."""
    with read_session() as session:
        job = session.get(Job, job_id)
        return _row(session, job) if job else None


def _finish(context: JobContext, outcome: Outcome) -> None:
    with session_scope() as session:
        session.execute(
            update(Job)
            .where(col(Job.id) == context.job_id)
            .values(
                status=J.SUCCEEDED.value,
                progress=100,
                message=outcome.message[:MAX_MESSAGE_LENGTH],
                result=outcome.result,
                error=None,
                finished_at=utcnow(),
            )
        )


def _fail(context: JobContext, error: str) -> None:
    error = error[:MAX_ERROR_LENGTH]
    with session_scope() as session:
        session.execute(
            update(Job)
            .where(col(Job.id) == context.job_id)
            .values(
                status=J.FAILED.value,
                message="Failed",
                error=error,
                finished_at=utcnow(),
            )
        )
    _after_failure(context, error)


def _after_failure(context: JobContext, error: str) -> None:
    spec = KINDS.get(context.kind)
    if spec is None or spec.on_failure is None:
        return
    try:
        with session_scope() as session:
            spec.on_failure(session, context, error)
    except Exception:
        logger.exception("cleaning up after job %s failed", context.job_id)


def recover_interrupted() -> list[int]:
    """Fail the jobs a stopped process left running, and free their targets.

    Called only where the scheduler starts: that is the one process that runs
    scheduled jobs, so a row still `running` belongs to a process that is gone,
    unless its runner is a live process on this machine (a `run-job` on the
    command line). Queued rows are kept; the queue poller runs them.
    """
    with session_scope() as session:
        running = session.exec(select(Job).where(Job.status == J.RUNNING.value)).all()
        # A `run-job` on the command line may be running one right now.
        stuck = [j for j in running if not runner_alive(j.runner, j.started_at)]
        contexts = [
            JobContext(
                job_id=int(job.id or 0),
                kind=job.kind,
                target=job.target,
                user_id=job.requested_by_id,
            )
            for job in stuck
        ]
        for job in stuck:
            job.status, job.error = J.FAILED.value, INTERRUPTED
            job.message, job.finished_at = "Interrupted", utcnow()
            session.add(job)
    for context in contexts:
        _after_failure(context, INTERRUPTED)
    if contexts:
        logger.warning(
            "%s jobs left running by a stopped process were marked failed",
            len(contexts),
        )
    return [c.job_id for c in contexts]


def this_runner() -> str:
    """Who runs a job, written into its row when it starts (see runner_alive)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def runner_alive(runner: str | None, started_at: datetime | None) -> bool:
    """Whether the process named in a running job's row is still there to run it.

    Only processes on this machine can be asked; one elsewhere counts as gone,
    so that nothing stays running for ever. This process is starting its
    scheduler, so none of its jobs run yet.
    """
    host, _, pid_text = (runner or "").rpartition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    # Process ids are reused: a live process that started after the job is another.
    born = _process_started(pid)
    return born is None or started_at is None or born <= as_utc(started_at)


def _process_started(pid: int) -> datetime | None:
    """When a process started, from Linux's /proc; None where that is unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        boot = next(
            line.split()[1]
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime ")
        )
    except (OSError, IndexError, StopIteration):
        return None
    # Field 22 of stat (the 20th after the command name): start in clock ticks.
    ticks = int(fields[19]) / os.sysconf("SC_CLK_TCK")
    return datetime.fromtimestamp(int(boot) + ticks, UTC)


# -- reading jobs ------------------------------------------------------------------


def list_jobs(
    session: Session, *, actor: Actor, limit: int = LIST_LIMIT
) -> list[JobRow]:
    """Every job: failed first, then running, queued, the rest; newest first."""
    require(actor, Action.ADMINISTER)
    order = case(
        (col(Job.status) == J.FAILED.value, 0),
        (col(Job.status) == J.RUNNING.value, 1),
        (col(Job.status) == J.QUEUED.value, 2),
        else_=3,
    )
    query = (
        select(Job)
        .order_by(order, col(Job.created_at).desc(), col(Job.id).desc())
        .limit(limit)
    )
    return [_row(session, job) for job in session.exec(query).all()]


def _may_see(actor: Actor, job: Job) -> bool:
    spec = KINDS.get(job.kind)
    return (
        actor.can(Action.ADMINISTER)
        or job.requested_by_id == actor.id
        or (spec is not None and actor.can(spec.action))
    )


def get_job(session: Session, *, actor: Actor, job_id: int) -> JobRow:
    job = session.get(Job, job_id)
    if job is None or not _may_see(actor, job):
        raise NotFound(f"Job {job_id} does not exist.")
    return _row(session, job)


def latest_job(
    session: Session, *, actor: Actor, kind: str, target: str | None
) -> JobRow | None:
    """The newest job of a kind on a target, when the actor may start such jobs."""
    if not actor.can(job_kind(kind).action):
        return None
    job = session.exec(_of_pair(kind, target).order_by(col(Job.id).desc())).first()
    return _row(session, job) if job else None


# -- periodic schedules ------------------------------------------------------------


def trigger_of(kind: JobKind, settings: Settings) -> CronTrigger:
    assert kind.schedule_setting is not None
    expression = str(getattr(settings, kind.schedule_setting))
    return CronTrigger.from_crontab(expression, timezone=settings.tz)


def paused_kinds(session: Session) -> set[str]:
    query = select(JobSchedule.kind).where(col(JobSchedule.paused))
    return set(session.exec(query).all())


def _last_run(session: Session, kind: str) -> Job | None:
    query = select(Job).where(Job.kind == kind).order_by(col(Job.id).desc())
    return session.exec(query).first()


def list_schedules(
    session: Session, *, actor: Actor, now: datetime | None = None
) -> list[ScheduleRow]:
    require(actor, Action.ADMINISTER)
    settings = get_settings()
    now = now or utcnow()
    paused = paused_kinds(session)
    rows = []
    for kind in periodic_kinds():
        last = _last_run(session, kind.name)
        trigger = trigger_of(kind, settings)
        rows.append(
            ScheduleRow(
                kind=kind.name,
                label=kind.label,
                schedule=str(getattr(settings, kind.schedule_setting or "")),
                timezone=settings.timezone,
                paused=kind.name in paused,
                next_run=None
                if kind.name in paused
                else trigger.get_next_fire_time(None, now),
                last_run=(last.started_at or last.created_at) if last else None,
                last_status=last.status if last else None,
                last_error=last.error if last else None,
            )
        )
    return rows


def set_paused(session: Session, *, actor: Actor, kind: str, paused: bool) -> None:
    """Pause or resume a periodic kind, for every process that schedules it."""
    require(actor, Action.ADMINISTER)
    if not job_kind(kind).schedule_setting:
        raise ValidationFailed(f"kind: {kind!r} has no schedule to pause.")
    schedule = session.get(JobSchedule, kind) or JobSchedule(kind=kind)
    before = schedule.paused
    schedule.paused, schedule.updated_by_id = paused, actor.id
    schedule.updated_at = utcnow()
    session.add(schedule)
    audit.record(
        session,
        actor=actor,
        action="job.pause" if paused else "job.resume",
        target_type="job",
        target_id=kind,
        before={"paused": before},
        after={"paused": paused},
    )
    logger.info("schedule %s %s by %s", kind, "paused" if paused else "resumed", actor)


def run_now(*, actor: Actor, kind: str) -> JobRow:
    """Queue a periodic kind at once (admins), whether or not it is paused."""
    require(actor, Action.ADMINISTER)
    if not job_kind(kind).schedule_setting:
        raise ValidationFailed(f"kind: {kind!r} is not a periodic job.")
    return submit(actor=actor, kind=kind)


def missed_runs(settings: Settings, now: datetime | None = None) -> list[str]:
    """Periodic kinds whose scheduled time passed since their last run.

    A kind that never ran has missed nothing: its schedule starts now.
    """
    now = now or utcnow()
    missed = []
    with read_session() as session:
        paused = paused_kinds(session)
        for kind in periodic_kinds():
            last = _last_run(session, kind.name)
            if kind.name in paused or last is None:
                continue
            since = (last.started_at or last.created_at) + timedelta(seconds=1)
            due = trigger_of(kind, settings).get_next_fire_time(None, since)
            if due is not None and due <= now:
                missed.append(kind.name)
    return missed


def fire_periodic(kind: str) -> JobRow | None:
    """What the schedule runs: the kind's job, unless paused or already active."""
    spec = job_kind(kind)
    if spec.has_work is not None and not spec.has_work():
        logger.debug("schedule %s has nothing to do", kind)
        return None
    with session_scope() as session:
        if kind in paused_kinds(session):
            logger.info("schedule %s is paused; skipped", kind)
            return None
        row, queued = enqueue(session, actor=None, kind=kind)
    if not queued:
        logger.info("job %s (%s) is still active; not started again", row.id, kind)
        return None
    return run_job(row.id)


# -- the scheduler -----------------------------------------------------------------

_active: BackgroundScheduler | None = None
_active_lock = threading.Lock()
# Jobs handed to this process's executor and not finished yet.
_dispatched: set[int] = set()


def dispatch(job_id: int) -> bool:
    """Hand a queued job to this process's scheduler; False when there is none."""
    scheduler = _active
    if scheduler is None or not scheduler.running:
        logger.debug("job %s left queued for the process that runs jobs", job_id)
        return False
    with _board_lock:
        if job_id in _dispatched:
            return True
        _dispatched.add(job_id)
    scheduler.add_job(
        run_job,
        args=[job_id],
        id=f"job-{job_id}",
        replace_existing=True,
        misfire_grace_time=None,
    )
    return True


def dispatch_queued() -> int:
    """Hand every queued job to the executor (the queue poller's work)."""
    with read_session() as session:
        query = select(Job.id).where(Job.status == J.QUEUED.value).order_by(col(Job.id))
        ids = [int(i) for i in session.exec(query).all() if i is not None]
    return sum(dispatch(job_id) for job_id in ids)


def build_scheduler(settings: Settings) -> BackgroundScheduler:
    """A scheduler with the periodic kinds and the queue poller, not started."""
    scheduler = BackgroundScheduler(
        executors={
            "default": ThreadPoolExecutor(JOB_THREADS),
            # Apart, so that long jobs never hold up polling the queue.
            "poller": ThreadPoolExecutor(1),
        },
        job_defaults={
            "coalesce": True,
            "max_instances": 1,
            "misfire_grace_time": MISFIRE_GRACE_SECONDS,
        },
        timezone=settings.tz,
    )
    for kind in periodic_kinds():
        scheduler.add_job(
            fire_periodic,
            trigger_of(kind, settings),
            args=[kind.name],
            id=kind.name,
            name=kind.label,
        )
    scheduler.add_job(
        dispatch_queued,
        "interval",
        seconds=QUEUE_POLL_SECONDS,
        id=QUEUE_POLLER,
        executor="poller",
    )
    return scheduler


def start_scheduler(
    settings: Settings | None = None, *, even_if_disabled: bool = False
) -> BackgroundScheduler | None:
    """Start this process's scheduler, or None when the settings turn it off.

    First fails what a stopped process left running, then runs once each
    periodic kind whose time passed while no scheduler ran.
    """
    settings = settings or get_settings()
    if not (settings.scheduler_enabled or even_if_disabled):
        logger.info("scheduler off in this process (RETRO_SCHEDULER_ENABLED=false)")
        return None
    recover_interrupted()
    scheduler = build_scheduler(settings)
    scheduler.start()
    global _active
    with _active_lock:
        _active = scheduler
    for kind in missed_runs(settings):
        logger.info("schedule %s missed a run while stopped; running it now", kind)
        scheduler.add_job(
            fire_periodic,
            args=[kind],
            id=f"{kind}-missed",
            replace_existing=True,
            misfire_grace_time=None,
        )
    logger.info(
        "scheduler started: %s",
        ", ".join(f"{j.id} next {j.next_run_time}" for j in scheduler.get_jobs()),
    )
    return scheduler


def stop_scheduler(scheduler: BackgroundScheduler | None) -> None:
    """Shut a scheduler down without waiting for running jobs (they are daemons)."""
    global _active
    with _active_lock:
        if scheduler is not None and _active is scheduler:
            _active = None
    if scheduler is not None and scheduler.running:
        scheduler.shutdown(wait=False)
        logger.info("scheduler stopped")
    with _board_lock:
        # Handed over but never started: the rows stay queued for the next one.
        _dispatched.clear()


def active_scheduler() -> BackgroundScheduler | None:
    return _active


# -- the kinds ---------------------------------------------------------------------


def _retro_id(target: str | None) -> int:
    if target is None or not target.strip().isdigit():
        raise ValidationFailed(f"target: {target!r} is not a retrospective id.")
    return int(target)


def _generate(context: JobContext) -> Outcome:
    retro_id = _retro_id(context.target)
    with session_scope() as session:
        retrospectives.start_generation(
            session,
            actor=context.actor(session),
            retrospective_id=retro_id,
            regenerate=True,
        )
    context.progress(5, "Summing KPIs")
    with read_session() as session:
        found = retrospectives.evaluate_generation(
            session, retrospective_id=retro_id, progress=context.progress
        )
    context.progress(60, f"Writing {len(found.findings)} insights")
    with session_scope() as session:
        result = retrospectives.finish_generation(
            session,
            actor=context.actor(session),
            retrospective_id=retro_id,
            result=found,
            regenerate=True,
        )
    return Outcome(
        f"{result.problems} insights, {result.not_enough_data} without enough "
        f"data, {result.manual_kept} manual kept.",
        asdict(result),
    )


def _check_generate(session: Session, actor: Actor, target: str | None) -> None:
    retrospectives.check_can_generate(
        session, actor=actor, retrospective_id=_retro_id(target)
    )


def _generation_failed(session: Session, context: JobContext, error: str) -> None:
    retrospectives.fail_generation(
        session, actor=None, retrospective_id=_retro_id(context.target), error=error
    )


def _render_report(context: JobContext) -> Outcome:
    retro_id = _retro_id(context.target)
    context.progress(10, "Rendering the signed PDF")
    digest = report_service.render_report(retrospective_id=retro_id)
    return Outcome(
        f"Signed PDF of retrospective #{retro_id} stored (SHA-256 {digest[:12]}…).",
        {"retrospective_id": retro_id, "report_sha256": digest},
    )


def save_upload(data: bytes, file_name: str) -> str:
    """Keep an upload under the data folder for its job; its name there."""
    suffix = Path(file_name).suffix.lower()
    name = imports.file_digest(data) + (
        suffix if suffix in automation.INBOX_SUFFIXES else ""
    )
    folder = get_settings().uploads_dir
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    if not path.is_file():
        partial = path.with_name(path.name + ".partial")
        partial.write_bytes(data)
        partial.replace(path)
    return name


def submit_import(
    *,
    actor: Actor,
    file_name: str,
    data: bytes,
    options: imports.ImportOptions | None = None,
) -> JobRow:
    """Import a large upload as a job: the bytes wait in a file, not in the job."""
    require(actor, Action.CREATE)
    stored = save_upload(data, file_name)
    return submit(
        actor=actor,
        kind="import",
        target=imports.file_digest(data),
        params={
            "file_name": file_name,
            "upload": stored,
            "options": asdict(options or imports.ImportOptions()),
        },
    )


def _import_upload(context: JobContext) -> Outcome:
    path = get_settings().uploads_dir / Path(str(context.params.get("upload"))).name
    if not path.is_file():
        raise ValidationFailed("The uploaded file is gone; upload it again.")
    # The import holds SQLite's write lock until it commits; its progress then
    # stays in this process (the page polls it here) instead of waiting for it.
    persist = not is_sqlite(get_engine())
    file_name = str(context.params.get("file_name") or path.name)

    def progress(done: int, total: int) -> None:
        percent = 100 * done // max(total, 1)
        context.progress(percent, f"{done:,} of {total:,} rows", persist=persist)

    with session_scope() as session:
        summary = imports.import_file(
            session,
            actor=context.actor(session),
            file_name=file_name,
            data=path.read_bytes(),
            options=imports.ImportOptions(**dict(context.params.get("options") or {})),
            progress=progress,
        )
    path.unlink(missing_ok=True)
    return Outcome(
        f"Import {summary.import_id} of {file_name}: {summary.status}; "
        f"{summary.rows_read:,} rows read, {summary.inserted:,} inserted, "
        f"{summary.updated:,} updated, {summary.rejected:,} rejected.",
        {"import_id": summary.import_id, "status": summary.status, "ok": summary.ok},
    )


def _create_due(context: JobContext) -> Outcome:
    settings = get_settings()
    today = datetime.now(settings.tz).date()
    with session_scope() as session:
        actor = context.actor(session)
        due = automation.create_due_retrospectives(
            session, actor=actor, today=today, due_days=settings.due_days
        )
        # Generation is queued in the same transaction: a retrospective is
        # never opened without its generation being on the way.
        requester = actor if context.user_id is not None else None
        queued = [
            enqueue(session, actor=requester, kind="generate", target=str(retro_id))[0]
            for retro_id in due.created
        ]
    for job in queued:
        dispatch(job.id)
    return Outcome(
        f"{len(due.created)} retrospectives opened and queued for generation; "
        f"{len(due.skipped)} due campaigns skipped.",
        {
            "created": due.created,
            "skipped": [list(s) for s in due.skipped],
            "jobs": [job.id for job in queued],
        },
    )


def _cleanup(context: JobContext) -> Outcome:
    settings = get_settings()
    with session_scope() as session:
        result = automation.cleanup(
            session,
            actor=context.actor(session),
            now=utcnow(),
            retention_days=settings.retention_days,
            reports_dir=settings.reports_dir,
            uploads_dir=settings.uploads_dir,
        )
    return Outcome(
        f"{len(result.retrospectives)} retrospectives and {len(result.files)} "
        "files deleted.",
        asdict(result),
    )


def _import_inbox(context: JobContext) -> Outcome:
    inbox = get_settings().inbox_dir
    inbox.mkdir(parents=True, exist_ok=True)
    with read_session() as session:
        actor = context.actor(session)
    files = automation.inbox_files(inbox, now=time.time())
    done: list[str] = []
    failed: list[str] = []
    for number, path in enumerate(files):
        context.progress(100 * number // len(files), f"Importing {path.name}")
        ok = automation.import_inbox_file(
            session_scope, actor=actor, path=path, stamp=automation.stamp()
        )
        (done if ok else failed).append(path.name)
    return Outcome(
        f"{len(done)} inbox files imported, {len(failed)} failed.",
        {"done": done, "failed": failed},
    )


register(
    JobKind(
        "generate",
        "Generate a retrospective's insights",
        _generate,
        Action.CREATE,
        check=_check_generate,
        on_failure=_generation_failed,
        needs_target=True,
    )
)
register(
    JobKind(
        report_service.RENDER_JOB_KIND,
        "Render the signed PDF of an approved retrospective",
        _render_report,
        Action.APPROVE,
        needs_target=True,
    )
)
register(
    JobKind(
        "import",
        "Import an uploaded export",
        _import_upload,
        Action.CREATE,
        needs_target=True,
    )
)
register(
    JobKind(
        "create-due-retrospectives",
        "Open the retrospectives of campaigns that ended",
        _create_due,
        Action.ADMINISTER,
        schedule_setting="schedule_create_due",
    )
)
register(
    JobKind(
        "cleanup",
        "Delete old drafts, failed retrospectives and unused files",
        _cleanup,
        Action.ADMINISTER,
        schedule_setting="schedule_cleanup",
    )
)


def _inbox_has_files() -> bool:
    return bool(automation.inbox_files(get_settings().inbox_dir, now=time.time()))


register(
    JobKind(
        "import-inbox",
        "Import the files dropped into the inbox",
        _import_inbox,
        Action.ADMINISTER,
        schedule_setting="schedule_import_inbox",
        has_work=_inbox_has_files,
    )
)
