"""CLI: `report RETRO --output FILE.pdf --as U`."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from sqlmodel import Session

from core import cli
from core.models import Retrospective
from core.services import reports
from tests.reports_world import ReportWorld, approve, report_world, submit


@pytest.fixture
def world(session: Session) -> ReportWorld:
    made = report_world(session)
    session.close()
    return made


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_report_writes_the_stored_pdf_of_an_approved_retrospective(
    session: Session,
    world: ReportWorld,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    approve(session, world)
    retro = session.get(Retrospective, world.retro_id)
    assert retro is not None
    # The CLI opens its own write transaction: release this one first.
    session.close()
    output = tmp_path / "out.pdf"

    code, out, _ = run(
        capsys,
        "report",
        str(world.retro_id),
        "--output",
        str(output),
        "--as",
        world.viewer.username,
    )

    assert code == 0
    assert hashlib.sha256(output.read_bytes()).hexdigest() == retro.report_sha256
    assert f"file SHA-256:    {retro.report_sha256}" in out
    assert "content SHA-256:" in out and "Wrote approved report" in out


def test_report_of_a_draft_into_a_folder_uses_the_download_name(
    world: ReportWorld, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(
        capsys,
        "report",
        str(world.retro_id),
        "--output",
        str(tmp_path),
        "--as",
        world.analyst.username,
    )

    assert code == 0
    [written] = tmp_path.glob("*.pdf")
    assert written.name.endswith("-draft.pdf")
    assert written.read_bytes().startswith(b"%PDF")
    assert "Wrote DRAFT report" in out


def test_a_viewer_cannot_export_a_draft(
    world: ReportWorld, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "out.pdf"

    code, _, err = run(
        capsys,
        "report",
        str(world.retro_id),
        "--output",
        str(output),
        "--as",
        world.viewer.username,
    )

    assert code == 1
    assert "approved reports only" in err
    assert not output.exists()


def test_approve_on_the_command_line_renders_a_large_report_itself(
    session: Session,
    world: ReportWorld,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(reports, "INLINE_RENDER_MAX_INSIGHTS", 0)
    submit(session, world)
    session.close()

    code, out, _ = run(
        capsys, "approve", str(world.retro_id), "--as", world.approver.username
    )

    assert code == 0
    assert "approved" in out
    assert "Signed PDF of retrospective" in out
    retro = session.get(Retrospective, world.retro_id)
    assert retro is not None and retro.report_sha256 is not None


def test_run_job_render_report_stores_the_signed_pdf_again(
    session: Session, world: ReportWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    approve(session, world)
    retro = session.get(Retrospective, world.retro_id)
    assert retro is not None
    expected = retro.report_sha256
    session.close()

    code, out, _ = run(
        capsys,
        "run-job",
        "render-report",
        "--target",
        str(world.retro_id),
        "--as",
        world.approver.username,
    )

    assert code == 0, out
    assert f"SHA-256 {(expected or '')[:12]}" in out
