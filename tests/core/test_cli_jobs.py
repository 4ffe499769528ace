"""CLI: run-job in the foreground, the job list, and the worker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta

import pytest
from sqlmodel import Session, select

from core import cli, jobs
from core.config import PROJECT_ROOT
from core.models import Job, Retrospective, Role, utcnow
from core.services import retrospectives
from core.services import rules as rule_service
from tests.factories import add_kpis, make_campaign, make_user


@pytest.fixture
def retro_id(session: Session) -> int:
    rule_service.ensure_builtin_rules(session)
    session.commit()
    analyst = make_user(session, Role.ANALYST, "ana")
    make_user(session, Role.ADMIN, "root")
    campaign = make_campaign(session, analyst, name="Winter Sale")
    add_kpis(session, campaign, "meta", days=3)
    row = retrospectives.create_retrospective(
        session, actor=analyst, campaign_id=campaign.id or 0
    )
    session.commit()
    session.close()
    return row.id


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_run_job_generates_in_the_foreground(capsys, session: Session, retro_id: int):
    code, out, err = run(
        capsys, "run-job", "generate", "--target", str(retro_id), "--as", "ana"
    )

    assert (code, err) == (0, "")
    assert out.startswith(f"job 1 generate {retro_id}: succeeded in ")
    retro = session.get(Retrospective, retro_id)
    assert retro is not None
    assert retro.status == "draft"


def test_run_job_runs_the_generations_the_nightly_job_queued(
    capsys, session: Session, retro_id: int
):
    analyst = make_user(session, Role.ANALYST)
    due = make_campaign(
        session, analyst, name="Due", end_date=utcnow().date() - timedelta(days=3)
    )
    add_kpis(session, due, "meta", start=due.end_date, days=1)
    session.close()

    code, out, _ = run(capsys, "run-job", "create-due-retrospectives", "--as", "root")

    assert code == 0
    lines = out.splitlines()
    assert "create-due-retrospectives: succeeded" in lines[0]
    assert "1 retrospectives opened" in lines[0]
    assert " generate " in lines[1]
    assert "succeeded" in lines[1]


def test_run_job_is_refused_for_a_role_without_the_right(capsys, retro_id: int):
    code, _, err = run(capsys, "run-job", "cleanup", "--as", "ana")

    assert code == 1
    assert "may not manage rules, users and schedules" in err


def test_failed_job_exits_1_with_its_error(
    capsys, retro_id: int, monkeypatch: pytest.MonkeyPatch
):
    from core import rules as engine

    monkeypatch.setattr(engine, "evaluate", lambda *args, **kwargs: 1 / 0)

    code, _, err = run(
        capsys, "run-job", "generate", "--target", str(retro_id), "--as", "ana"
    )

    assert code == 1
    assert "ZeroDivisionError: division by zero" in err


def test_run_job_refuses_a_job_running_already(capsys, session: Session, retro_id: int):
    job = jobs.submit(actor=None, kind="generate", target=str(retro_id))
    assert jobs._claim(job.id) is not None

    code, _, err = run(
        capsys, "run-job", "generate", "--target", str(retro_id), "--as", "ana"
    )

    assert code == 1
    assert "is running already; not started again" in err


def test_jobs_lists_failed_first_as_json(
    capsys, retro_id: int, monkeypatch: pytest.MonkeyPatch
):
    run(capsys, "run-job", "cleanup", "--as", "root")
    from core import rules as engine

    monkeypatch.setattr(engine, "evaluate", lambda *args, **kwargs: 1 / 0)
    run(capsys, "run-job", "generate", "--target", str(retro_id), "--as", "ana")

    code, out, _ = run(capsys, "jobs", "--json", "--as", "root")
    code_text, text, _ = run(capsys, "jobs", "--as", "root")

    assert code == code_text == 0
    listed = json.loads(out)
    assert [(j["kind"], j["status"]) for j in listed] == [
        ("generate", "failed"),
        ("cleanup", "succeeded"),
    ]
    assert {"id", "error", "attempts", "seconds", "started_at"} <= set(listed[0])
    assert text.splitlines()[0].split()[1:3] == ["failed", "generate"]


def test_worker_runs_queued_jobs_without_the_ui(session: Session, retro_id: int):
    job = jobs.submit(actor=None, kind="generate", target=str(retro_id))
    done = subprocess.run(
        [sys.executable, "-m", "core.cli", "worker", "--stop-after", "5"],
        cwd=PROJECT_ROOT,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert "Worker stopped." in done.stdout
    session.expire_all()
    stored = session.exec(select(Job).where(Job.id == job.id)).one()
    assert stored.status == "succeeded"
