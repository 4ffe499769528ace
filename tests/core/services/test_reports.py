"""Reports: stored at approval with their SHA-256, served as stored, permissions."""

from __future__ import annotations

import hashlib
import re
from io import BytesIO
from pathlib import Path

import pytest
from pypdf import PdfReader
from sqlmodel import Session, col, select

from core import jobs
from core.config import get_settings
from core.errors import InvalidTransition, NotFound, PermissionDenied, ReportUnavailable
from core.models import AuditEvent, Job, Retrospective
from core.services import reports, retrospectives, review
from tests.reports_world import CJK_NAME, ReportWorld, approve, report_world, submit


@pytest.fixture
def world(session: Session) -> ReportWorld:
    return report_world(session)


def stored(session: Session, retro_id: int) -> Retrospective:
    session.expire_all()
    retro = session.get(Retrospective, retro_id)
    assert retro is not None
    return retro


def text_of(pdf: bytes) -> str:
    reader = PdfReader(BytesIO(pdf))
    return re.sub(r"\s+", " ", " ".join(p.extract_text() for p in reader.pages))


def events(session: Session, action: str) -> list[AuditEvent]:
    query = select(AuditEvent).where(AuditEvent.action == action)
    return list(session.scalars(query.order_by(col(AuditEvent.id))).all())


def test_approval_stores_the_report_with_its_sha256(
    session: Session, world: ReportWorld
) -> None:
    approve(session, world, comment="Cut Meta next time.")

    retro = stored(session, world.retro_id)
    assert retro.report_path == f"reports/retrospective-{retro.id}-v{retro.version}.pdf"
    path = get_settings().data_dir / retro.report_path
    assert path.parent == get_settings().reports_dir
    data = path.read_bytes()
    assert hashlib.sha256(data).hexdigest() == retro.report_sha256
    text = text_of(data)
    assert CJK_NAME in text
    assert "Approved by Dana Reyes" in text
    assert "Submitted by Ana Lyst" in text
    assert "Cut Meta next time." in text
    assert "DRAFT" not in text
    assert not list(path.parent.glob("*.tmp"))


def test_the_footer_hash_is_the_snapshot_hash_recorded_with_the_approval(
    session: Session, world: ReportWorld
) -> None:
    approve(session, world)

    retro = stored(session, world.retro_id)
    fingerprint = retrospectives.snapshot_hash(retro.snapshot)
    [approval] = events(session, "retrospective.approve")
    [stored_event] = events(session, "retrospective.report")
    assert approval.after is not None and stored_event.after is not None
    assert approval.after["snapshot_sha256"] == fingerprint
    assert stored_event.after["report_sha256"] == retro.report_sha256
    assert stored_event.user_id == world.approver.id
    reader = PdfReader(BytesIO(reports._read(retro.report_path or "") or b""))
    for page in reader.pages:
        assert f"(approval snapshot): {fingerprint}" in page.extract_text()


def test_every_download_of_an_approved_report_returns_the_stored_bytes(
    session: Session, world: ReportWorld
) -> None:
    approve(session, world)
    retro = stored(session, world.retro_id)
    on_disk = (get_settings().data_dir / (retro.report_path or "")).read_bytes()

    downloads = [
        reports.report_pdf(session, actor=actor, retrospective_id=world.retro_id)
        for actor in (world.viewer, world.analyst, world.approver, world.viewer)
    ]

    assert {d.data for d in downloads} == {on_disk}
    assert {d.sha256 for d in downloads} == {retro.report_sha256}
    assert all(d.approved for d in downloads)
    assert downloads[0].file_name.endswith(".pdf")
    assert "draft" not in downloads[0].file_name


def test_approved_snapshot_keeps_the_daily_facts_of_the_charts(
    session: Session, world: ReportWorld
) -> None:
    approve(session, world)

    retro = stored(session, world.retro_id)
    daily = retrospectives.snapshot_daily(retro.snapshot or {})
    assert len(daily) == 28
    assert set(daily["source"]) == {"meta", "google_ads"}
    assert daily["spend"].sum() == pytest.approx(14 * 103.0)


def test_a_viewer_downloads_approved_reports_of_own_campaigns_only(
    session: Session, world: ReportWorld
) -> None:
    with pytest.raises(PermissionDenied, match="approved reports only"):
        reports.report_pdf(session, actor=world.viewer, retrospective_id=world.retro_id)
    approve(session, world)

    with pytest.raises((PermissionDenied, NotFound)):
        reports.report_pdf(
            session, actor=world.other_viewer, retrospective_id=world.retro_id
        )
    own = reports.report_pdf(
        session, actor=world.viewer, retrospective_id=world.retro_id
    )
    assert own.approved


def test_analysts_and_approvers_get_drafts_rendered_now_with_the_draft_mark(
    session: Session, world: ReportWorld
) -> None:
    draft = reports.report_pdf(
        session, actor=world.analyst, retrospective_id=world.retro_id
    )
    submit(session, world)
    in_review = reports.report_pdf(
        session, actor=world.approver, retrospective_id=world.retro_id
    )

    for report in (draft, in_review):
        assert not report.approved and report.fingerprint is None
        assert report.file_name.endswith("-draft.pdf")
        reader = PdfReader(BytesIO(report.data))
        assert all("DRAFT" in page.extract_text() for page in reader.pages)
    assert stored(session, world.retro_id).report_path is None
    assert "Submitted by Ana Lyst" in text_of(in_review.data)


def test_a_retrospective_without_insights_has_no_report_yet(
    session: Session, world: ReportWorld
) -> None:
    retro = stored(session, world.retro_id)
    retro.status = "pending"
    session.add(retro)
    session.commit()

    with pytest.raises(InvalidTransition, match="generate them first"):
        reports.report_pdf(
            session, actor=world.analyst, retrospective_id=world.retro_id
        )


def test_an_altered_file_is_rendered_again_when_that_reproduces_its_hash(
    session: Session, world: ReportWorld
) -> None:
    approve(session, world)
    retro = stored(session, world.retro_id)
    path = get_settings().data_dir / (retro.report_path or "")
    original = path.read_bytes()
    path.write_bytes(original[:-10] + b"tampered!!")

    served = reports.report_pdf(
        session, actor=world.viewer, retrospective_id=world.retro_id
    )

    assert served.data == original
    assert path.read_bytes() == original


def test_a_missing_file_that_cannot_be_reproduced_is_a_clear_error(
    session: Session, world: ReportWorld
) -> None:
    approve(session, world)
    retro = stored(session, world.retro_id)
    (get_settings().data_dir / (retro.report_path or "")).unlink()
    retro.report_sha256 = "0" * 64
    session.add(retro)
    session.commit()

    with pytest.raises(ReportUnavailable, match="missing or damaged"):
        reports.report_pdf(session, actor=world.viewer, retrospective_id=world.retro_id)


def test_an_approval_from_before_stored_reports_gets_its_report_on_download(
    session: Session, world: ReportWorld
) -> None:
    approve(session, world)
    retro = stored(session, world.retro_id)
    retro.report_path, retro.report_sha256 = None, None
    session.add(retro)
    session.commit()

    first = reports.report_pdf(
        session, actor=world.viewer, retrospective_id=world.retro_id
    )
    session.commit()

    again = reports.report_pdf(
        session, actor=world.viewer, retrospective_id=world.retro_id
    )
    assert first.data == again.data
    assert stored(session, world.retro_id).report_sha256 == first.sha256


def test_reopen_forgets_the_report_and_a_new_approval_renders_a_new_one(
    session: Session, world: ReportWorld
) -> None:
    approve(session, world)
    first = stored(session, world.retro_id)
    first_path, first_sha = first.report_path, first.report_sha256

    review.reopen(
        session, actor=world.admin, retrospective_id=world.retro_id, reason="Late data"
    )
    session.commit()
    reopened = stored(session, world.retro_id)
    assert (reopened.report_path, reopened.report_sha256) == (None, None)
    [event] = events(session, "retrospective.reopen")
    assert event.after is not None
    assert event.after["earlier_approval"]["report_sha256"] == first_sha
    assert event.after["earlier_approval"]["report_path"] == first_path

    approve(session, world)
    second = stored(session, world.retro_id)
    assert second.report_path != first_path
    assert second.report_sha256 not in (None, first_sha)


def test_a_failed_approval_leaves_no_reference_to_its_file(
    session: Session, world: ReportWorld
) -> None:
    submit(session, world)
    review.approve(session, actor=world.approver, retrospective_id=world.retro_id)
    written = list(get_settings().reports_dir.glob("*.pdf"))
    session.rollback()

    retro = stored(session, world.retro_id)
    assert retro.status == "in_review" and retro.report_path is None
    # The file stays, unreferenced, for the clean-up job.
    assert len(written) == 1 and written[0].exists()


def test_render_report_is_a_job_entry_point_by_id(
    session: Session, world: ReportWorld
) -> None:
    approve(session, world)
    expected = stored(session, world.retro_id).report_sha256
    session.close()

    assert reports.render_report(retrospective_id=world.retro_id) == expected


def test_only_approved_retrospectives_are_stored(
    session: Session, world: ReportWorld
) -> None:
    with pytest.raises(InvalidTransition, match="not approved"):
        reports.store_approved_report(session, retrospective_id=world.retro_id)
    with pytest.raises(NotFound):
        reports.store_approved_report(session, retrospective_id=9999)


def test_download_button_rules_follow_the_service(
    session: Session, world: ReportWorld
) -> None:
    row = retrospectives.row_of(session, stored(session, world.retro_id))

    assert reports.can_download(world.analyst, row)
    assert not reports.can_download(world.viewer, row)
    assert reports.download_name(row).endswith("-draft.pdf")


def test_a_report_file_is_written_atomically(tmp_path: Path) -> None:
    target = tmp_path / "reports" / "a.pdf"

    reports._write_atomically(target, b"%PDF-1")
    reports._write_atomically(target, b"%PDF-2")

    assert target.read_bytes() == b"%PDF-2"
    assert [p.name for p in target.parent.iterdir()] == ["a.pdf"]


def test_a_large_report_is_rendered_by_a_job_queued_with_the_approval(
    session: Session, world: ReportWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reports, "INLINE_RENDER_MAX_INSIGHTS", 0)
    approve(session, world)

    retro = stored(session, world.retro_id)
    assert retro.status == "approved"
    assert retro.report_path is None and retro.report_sha256 is None
    [job] = session.scalars(
        select(Job).where(Job.kind == reports.RENDER_JOB_KIND)
    ).all()
    assert (job.status, job.target) == ("queued", str(world.retro_id))
    assert job.requested_by_id == world.approver.id
    session.close()

    [done] = jobs.run_in_foreground(job.id or 0)

    assert done.status == "succeeded", done.error
    retro = stored(session, world.retro_id)
    assert retro.report_sha256 is not None
    assert done.result == {
        "retrospective_id": world.retro_id,
        "report_sha256": retro.report_sha256,
    }
    download = reports.report_pdf(
        session, actor=world.viewer, retrospective_id=world.retro_id
    )
    assert download.sha256 == retro.report_sha256
    assert "Approved by Dana Reyes" in text_of(download.data)


def test_a_report_of_few_insights_is_rendered_inline_with_no_job(
    session: Session, world: ReportWorld
) -> None:
    approve(session, world)

    assert stored(session, world.retro_id).report_sha256 is not None
    assert session.scalars(select(Job)).all() == []
