"""PDF downloads on the retrospective page and in the approval queue."""

from __future__ import annotations

import pytest
from sqlmodel import Session
from streamlit.testing.v1 import AppTest

from core import jobs
from core.db import read_session
from core.models import Retrospective
from core.services import reports
from tests.pages.test_retrospectives_page import open_page
from tests.reports_world import ReportWorld, approve, report_world, submit
from ui.reports import pdf_bytes

VIEW_PAGE = "pages/retrospective.py"
QUEUE_PAGE = "pages/approvals.py"


@pytest.fixture
def world(session: Session) -> ReportWorld:
    made = report_world(session)
    # Ends the transaction: on SQLite it would hold the lock the app needs.
    session.commit()
    return made


def download_buttons(at: AppTest) -> list[str]:
    """Labels of the download buttons; AppTest knows them only as protos."""
    return [element.proto.label for element in at.get("download_button")]


def captions(at: AppTest) -> str:
    return "\n".join(str(c.value) for c in at.caption)


def test_an_analyst_downloads_a_draft_from_the_retrospective_page(
    world: ReportWorld,
) -> None:
    at = open_page(VIEW_PAGE, world.analyst, world.retro_id)

    assert not at.exception
    [label] = download_buttons(at)
    assert label == "Download draft PDF"
    assert "DRAFT mark on every page" in captions(at)


def test_a_viewer_sees_no_draft_download(world: ReportWorld) -> None:
    at = open_page(VIEW_PAGE, world.viewer, world.retro_id)

    assert not at.exception
    assert download_buttons(at) == []
    assert "once it is approved" in captions(at)


def test_a_viewer_downloads_the_approved_report_with_its_hash_shown(
    session: Session, world: ReportWorld
) -> None:
    approve(session, world)
    retro = session.get(Retrospective, world.retro_id)
    assert retro is not None and retro.report_sha256
    session.commit()

    at = open_page(VIEW_PAGE, world.viewer, world.retro_id)

    assert not at.exception
    [label] = download_buttons(at)
    assert label == "Download PDF"
    assert retro.report_sha256 in captions(at)
    assert pdf_bytes(world.viewer, world.retro_id)() == (
        pdf_bytes(world.approver, world.retro_id)()
    )


def test_the_approval_queue_offers_the_draft_pdf_of_the_item_shown(
    session: Session, world: ReportWorld
) -> None:
    submit(session, world)

    at = open_page(QUEUE_PAGE, world.approver)

    assert not at.exception
    [label] = download_buttons(at)
    assert label == "Download draft PDF"
    assert pdf_bytes(world.approver, world.retro_id)().startswith(b"%PDF")


def test_a_large_report_shows_its_render_job_until_it_is_stored(
    session: Session, world: ReportWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reports, "INLINE_RENDER_MAX_INSIGHTS", 0)
    approve(session, world)
    session.close()

    rendering = open_page(VIEW_PAGE, world.approver, world.retro_id)

    assert not rendering.exception
    assert download_buttons(rendering) == []
    assert "being rendered" in captions(rendering)
    # A viewer cannot see the job: the button renders the report on click.
    for_viewer = open_page(VIEW_PAGE, world.viewer, world.retro_id)
    assert download_buttons(for_viewer) == ["Download PDF"]

    job = next(j for j in jobs_listed(world) if j.kind == reports.RENDER_JOB_KIND)
    jobs.run_in_foreground(job.id)
    done = open_page(VIEW_PAGE, world.approver, world.retro_id)

    assert download_buttons(done) == ["Download PDF"]
    assert "SHA-256 of the signed PDF" in captions(done)


def jobs_listed(world: ReportWorld) -> list[jobs.JobRow]:
    with read_session() as session:
        return jobs.list_jobs(session, actor=world.admin)
