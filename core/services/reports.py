"""Reports: who may download the PDF of a retrospective, and the signed copy.

An approved retrospective's PDF is rendered once, at approval, from the
snapshot frozen then; the file goes under `settings.reports_dir` and its
SHA-256 into the retrospective, and every download serves those bytes after
checking them against that hash. Drafts are rendered on demand with a DRAFT
mark on every page. The footer of an approved report prints the SHA-256 of
the approval snapshot (recorded in the audit log with the approval): a file
cannot carry the hash of its own bytes, so that hash is kept with the
retrospective and shown beside the download.

`render_report(retrospective_id=...)` is the entry point for a background
job: ids in, a stored file out, nothing that cannot be pickled.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlmodel import Session

from core import reports
from core.config import get_settings
from core.db import session_scope
from core.errors import InvalidTransition, NotFound, PermissionDenied, ReportUnavailable
from core.models import Campaign, Retrospective, RetroStatus, User, as_utc, utcnow
from core.services import audit, retrospectives
from core.services.permissions import Action, Actor
from core.services.retrospectives import RetroRow

logger = logging.getLogger(__name__)

S = RetroStatus
# Statuses with something to read: the insights exist and may still change.
DRAFT_STATUSES = frozenset({S.DRAFT, S.IN_REVIEW, S.CHANGES_REQUESTED})
PDF_MIME = "application/pdf"
# Above this many insights a report takes over a second to render (about 1 s
# for 300 here), which approval would spend holding SQLite's write lock: such a
# report is rendered by a `render-report` job right after the approval instead.
INLINE_RENDER_MAX_INSIGHTS = 100
RENDER_JOB_KIND = "render-report"


@dataclass(frozen=True)
class ReportFile:
    """A PDF ready to hand out, with the hashes that vouch for it."""

    file_name: str
    data: bytes
    sha256: str
    approved: bool
    # The SHA-256 printed in the footer (the approval snapshot's); None on drafts.
    fingerprint: str | None = None


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def download_name(retro: RetroRow) -> str:
    """The file name a download of this retrospective's PDF gets."""
    return reports.file_name(retro, draft=retro.status != S.APPROVED)


def can_download(actor: Actor, retro: RetroRow) -> bool:
    """Whether `report_pdf` would hand this actor a PDF (for showing the button)."""
    if retro.status == S.APPROVED:
        return True
    return actor.can(Action.SEE_ALL) and retro.status in DRAFT_STATUSES


# -- reading ------------------------------------------------------------------


def report_pdf(session: Session, *, actor: Actor, retrospective_id: int) -> ReportFile:
    """The PDF of a retrospective the actor may see.

    Viewers get approved reports of their own campaigns only; analysts,
    approvers and admins also get drafts, rendered now with a DRAFT mark.
    Approved reports are the stored bytes (see `stored_report`).
    """
    retro = retrospectives.visible_retrospective(
        session, actor=actor, retro_id=retrospective_id
    )
    if retro.status == S.APPROVED:
        return stored_report(session, retro=retro)
    if not actor.can(Action.SEE_ALL):
        raise PermissionDenied(
            f"{actor.name} ({actor.role.value}) may download approved reports only; "
            f"retrospective #{retro.id} is {retro.status.replace('_', ' ')}."
        )
    if retro.status not in DRAFT_STATUSES:
        raise InvalidTransition(
            f"Retrospective #{retro.id} is {retro.status}: there are no insights to "
            "put in a report yet; generate them first."
        )
    return _file(_report_data(session, retro, draft=True), approved=False)


def stored_report(session: Session, *, retro: Retrospective) -> ReportFile:
    """The stored PDF of an approved retrospective, checked against its SHA-256.

    A missing or altered file is rendered again from the snapshot; the result
    is served (and stored again) only when it reproduces the recorded hash,
    otherwise ReportUnavailable says what happened. A retrospective approved
    before reports were stored gets its report now.
    """
    if not retro.report_path or not retro.report_sha256:
        assert retro.id is not None
        return store_approved_report(session, retrospective_id=retro.id)
    data = _read(retro.report_path)
    if data is not None and sha256_of(data) == retro.report_sha256:
        return _stored_file(session, retro, data)

    logger.warning(
        "stored report of retrospective %s is %s; rendering it again from the snapshot",
        retro.id,
        "missing" if data is None else "altered",
    )
    rendered = reports.build_pdf(_report_data(session, retro, draft=False))
    if sha256_of(rendered) != retro.report_sha256:
        logger.error(
            "report of retrospective %s cannot be reproduced: %s recorded, %s now",
            retro.id,
            retro.report_sha256,
            sha256_of(rendered),
        )
        raise ReportUnavailable(
            f"The stored PDF of retrospective #{retro.id} is missing or damaged, and "
            "rendering it again does not give the approved file (SHA-256 "
            f"{retro.report_sha256[:12]}…). An admin can reopen it and have it "
            "approved again."
        )
    _write_atomically(_absolute(retro.report_path), rendered)
    return _stored_file(session, retro, rendered)


def _stored_file(session: Session, retro: Retrospective, data: bytes) -> ReportFile:
    row = retrospectives.row_of(session, retro)
    return ReportFile(
        file_name=download_name(row),
        data=data,
        sha256=sha256_of(data),
        approved=True,
        fingerprint=retrospectives.snapshot_hash(retro.snapshot),
    )


# -- storing ------------------------------------------------------------------


def store_approved_report(
    session: Session, *, retrospective_id: int, actor: Actor | None = None
) -> ReportFile:
    """Render an approved retrospective from its snapshot and store the file.

    Called by `review.approve` in the approval's transaction. The file is
    written first: if the transaction then fails, it stays behind unreferenced
    and the clean-up job removes report files no retrospective references.
    """
    retro = session.get(Retrospective, retrospective_id)
    if retro is None:
        raise NotFound(f"Retrospective {retrospective_id} does not exist.")
    if retro.status != S.APPROVED or not retro.snapshot:
        raise InvalidTransition(
            f"Retrospective #{retro.id} is not approved: only approved ones have a "
            "stored report."
        )
    started = time.perf_counter()
    report = _report_data(session, retro, draft=False)
    data = reports.build_pdf(report)
    digest = sha256_of(data)
    relative = Path("reports") / f"retrospective-{retro.id}-v{retro.version}.pdf"
    _write_atomically(_absolute(str(relative)), data)

    retro.report_path = relative.as_posix()
    retro.report_sha256 = digest
    session.add(retro)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="retrospective.report",
        target_type="retrospective",
        target_id=retro.id,
        after={
            "report_path": retro.report_path,
            "report_sha256": digest,
            "snapshot_sha256": report.fingerprint,
        },
    )
    logger.info(
        "report of retrospective %s stored (%s bytes) in %.2f s",
        retro.id,
        len(data),
        time.perf_counter() - started,
    )
    return _file(report, approved=True, data=data)


def renders_inline(snapshot: dict[str, Any] | None) -> bool:
    """Whether the report of this approval snapshot is quick enough to render now."""
    insights = (snapshot or {}).get("insights") or []
    return len(insights) <= INLINE_RENDER_MAX_INSIGHTS


def render_report(*, retrospective_id: int) -> str:
    """Job entry point: store the report of an approved retrospective, by id.

    Returns the SHA-256 of the stored file.
    """
    with session_scope() as session:
        return store_approved_report(session, retrospective_id=retrospective_id).sha256


# -- helpers ------------------------------------------------------------------


def report_id(retro: Retrospective) -> str:
    """Names one version of a retrospective: approval bumps the version."""
    return f"RETRO-{retro.id}-V{retro.version}"


def _report_data(
    session: Session, retro: Retrospective, *, draft: bool
) -> reports.ReportData:
    row = retrospectives.row_of(session, retro)
    campaign = session.get(Campaign, retro.campaign_id)
    owner = session.get(User, campaign.owner_id) if campaign else None
    if draft:
        kpis = retrospectives.live_kpis(session, retro)
        insights = tuple(retrospectives.live_insights(session, retro))
        daily = retrospectives.daily_kpis(session, retro)
        generated_at, fingerprint = utcnow(), None
    else:
        assert retro.snapshot is not None
        kpis = retrospectives.snapshot_kpis(retro.snapshot)
        insights = retrospectives.snapshot_insights(retro.snapshot)
        daily = retrospectives.snapshot_daily(retro.snapshot)
        # The approval time, to the second: rendering again gives the same bytes.
        # fpdf2 would read a naive time as local.
        approved = as_utc(retro.approved_at) if retro.approved_at else utcnow()
        generated_at = approved.replace(microsecond=0)
        fingerprint = retrospectives.snapshot_hash(retro.snapshot)
    return reports.ReportData(
        retro=row,
        kpis=kpis,
        daily=daily,
        insights=insights,
        owner=owner.name if owner else "",
        generated_at=generated_at,
        report_id=report_id(retro),
        draft=draft,
        fingerprint=fingerprint,
    )


def _file(
    report: reports.ReportData, *, approved: bool, data: bytes | None = None
) -> ReportFile:
    data = reports.build_pdf(report) if data is None else data
    return ReportFile(
        file_name=reports.file_name(report.retro, draft=not approved),
        data=data,
        sha256=sha256_of(data),
        approved=approved,
        fingerprint=report.fingerprint,
    )


def _absolute(relative: str) -> Path:
    return get_settings().data_dir / relative


def _read(relative: str) -> bytes | None:
    path = _absolute(relative)
    return path.read_bytes() if path.is_file() else None


def _write_atomically(path: Path, data: bytes) -> None:
    """Write to a temporary file beside the target, then rename over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        Path(temporary).replace(path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
