"""What the periodic jobs do: open due retrospectives, clean up, read the inbox.

Plain use cases over a session and folders; `core.jobs` schedules them and
keeps their Job rows. Each is safe to run twice: the second run finds nothing
left to do.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

from sqlalchemy import delete, exists
from sqlmodel import Session, col, select

from core.errors import DomainError
from core.models import Campaign, Retrospective, RetroStatus, utcnow
from core.services import audit, imports, retrospectives
from core.services.permissions import Action, Actor, require

logger = logging.getLogger(__name__)

# A campaign that ended longer ago than due days plus this is left alone: a
# first run on an old database must not open a retrospective for every
# campaign ever run, while a downtime shorter than this is still caught up.
DUE_LOOKBACK_DAYS = 30
# Statuses the retention deletes; approved (and in-review) work is always kept.
DISPOSABLE = (RetroStatus.DRAFT.value, RetroStatus.FAILED.value)
# A report file younger than this may belong to an approval still committing.
ORPHAN_MIN_AGE = timedelta(hours=1)
# A file still being copied into the inbox changes; wait until it has settled.
INBOX_SETTLE_SECONDS = 5.0
INBOX_SUFFIXES = (".csv", ".tsv", ".txt", ".xlsx")


@dataclass(frozen=True)
class DueResult:
    created: list[int] = field(default_factory=list)
    # (campaign id, why it was not opened)
    skipped: list[tuple[int, str]] = field(default_factory=list)


@dataclass(frozen=True)
class CleanupResult:
    retrospectives: list[int] = field(default_factory=list)
    files: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class InboxResult:
    done: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def due_campaigns(session: Session, *, today: date, due_days: int) -> list[Campaign]:
    """Campaigns that ended at least `due_days` ago and have no retrospective."""
    last_end = today - timedelta(days=due_days)
    has_retro = exists().where(col(Retrospective.campaign_id) == col(Campaign.id))
    query = (
        select(Campaign)
        .where(
            col(Campaign.end_date) <= last_end,
            col(Campaign.end_date) > last_end - timedelta(days=DUE_LOOKBACK_DAYS),
            ~has_retro,
        )
        .order_by(col(Campaign.end_date), col(Campaign.id))
    )
    return list(session.exec(query).all())


def create_due_retrospectives(
    session: Session, *, actor: Actor, today: date, due_days: int
) -> DueResult:
    """Open the retrospective of every due campaign; the caller queues generation.

    A campaign refused by create_retrospective (no KPI data yet) is skipped
    and tried again on the next run. One retrospective per campaign is what
    makes a second run create nothing.
    """
    require(actor, Action.CREATE)
    result = DueResult()
    for campaign in due_campaigns(session, today=today, due_days=due_days):
        assert campaign.id is not None
        try:
            with session.begin_nested():
                row = retrospectives.create_retrospective(
                    session, actor=actor, campaign_id=campaign.id
                )
        except DomainError as exc:
            result.skipped.append((campaign.id, str(exc)))
            continue
        result.created.append(row.id)
    logger.info(
        "due retrospectives: %s created, %s skipped",
        len(result.created),
        len(result.skipped),
    )
    return result


def cleanup(
    session: Session,
    *,
    actor: Actor,
    now: datetime,
    retention_days: int,
    reports_dir: Path,
    uploads_dir: Path | None = None,
) -> CleanupResult:
    """Delete old drafts and failed retrospectives, unreferenced report files,
    and uploads no job picked up within the retention."""
    require(actor, Action.ADMINISTER)
    cutoff = now - timedelta(days=retention_days)
    old = session.exec(
        select(Retrospective).where(
            col(Retrospective.status).in_(DISPOSABLE),
            col(Retrospective.updated_at) < cutoff,
        )
    ).all()
    ids = [int(r.id or 0) for r in old]
    for retro in old:
        audit.record(
            session,
            actor=actor,
            action="retrospective.delete",
            target_type="retrospective",
            target_id=retro.id,
            before={"status": retro.status, "campaign_id": retro.campaign_id},
            after={"reason": f"retention of {retention_days} days"},
        )
    if ids:
        # Insights go with them (ON DELETE CASCADE).
        session.execute(delete(Retrospective).where(col(Retrospective.id).in_(ids)))
    files = _orphan_reports(session, reports_dir, now)
    if uploads_dir is not None and uploads_dir.is_dir():
        files += [
            p
            for p in sorted(uploads_dir.iterdir())
            if p.is_file() and p.stat().st_mtime < cutoff.timestamp()
        ]
    for path in files:
        path.unlink(missing_ok=True)
    logger.info("cleanup: %s retrospectives and %s files deleted", len(ids), len(files))
    return CleanupResult(retrospectives=ids, files=[p.name for p in files])


def _orphan_reports(session: Session, reports_dir: Path, now: datetime) -> list[Path]:
    if not reports_dir.is_dir():
        return []
    stored = session.exec(
        select(Retrospective.report_path).where(
            col(Retrospective.report_path).is_not(None)
        )
    ).all()
    # A report path may be stored absolute or relative to the reports folder.
    referenced = {str(p) for p in stored if p}
    referenced |= {str((reports_dir / p).resolve()) for p in stored if p}
    oldest = (now - ORPHAN_MIN_AGE).timestamp()
    orphans = []
    for path in sorted(reports_dir.rglob("*")):
        if not path.is_file() or path.stat().st_mtime > oldest:
            continue
        names = {str(path), str(path.resolve()), str(path.relative_to(reports_dir))}
        if not names & referenced:
            orphans.append(path)
    return orphans


def inbox_files(inbox: Path, *, now: float) -> list[Path]:
    """Export files waiting in the inbox, oldest first, once they stopped changing."""
    if not inbox.is_dir():
        return []
    files = [
        p
        for p in inbox.iterdir()
        if p.is_file()
        and not p.name.startswith(".")
        and p.suffix.lower() in INBOX_SUFFIXES
        and now - p.stat().st_mtime >= INBOX_SETTLE_SECONDS
    ]
    return sorted(files, key=lambda p: (p.stat().st_mtime, p.name))


def import_inbox_file(
    open_session: Callable[[], AbstractContextManager[Session]],
    *,
    actor: Actor,
    path: Path,
    stamp: str,
) -> bool:
    """Import one inbox file in its own transaction, then move it with its report.

    `open_session` is a context manager factory (core.db.session_scope): the
    import commits before the file moves, so a crash in between imports the
    file again next time (updated in place) rather than losing it.
    """
    report: dict[str, object]
    try:
        with open_session() as session:
            summary = imports.import_file(
                session, actor=actor, file_name=path.name, data=path.read_bytes()
            )
        ok = summary.ok
        report = summary.to_dict()
    except Exception as exc:
        logger.exception("importing inbox file %s failed", path.name)
        ok = False
        report = {"file_name": path.name, "error": f"{type(exc).__name__}: {exc}"}
    folder = path.parent / ("done" if ok else "failed")
    folder.mkdir(exist_ok=True)
    target = folder / f"{stamp}-{path.name}"
    shutil.move(str(path), target)
    target.with_name(target.name + ".report.json").write_text(
        json.dumps(report, indent=2, default=str, ensure_ascii=False)
    )
    return ok


def stamp(moment: datetime | None = None) -> str:
    """A file-name prefix that keeps two files of the same name apart."""
    return (moment or utcnow()).strftime("%Y%m%dT%H%M%S%f")
