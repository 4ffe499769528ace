"""CLI: submit, approve, request-changes and reopen, with the services' checks."""

from __future__ import annotations

import json
from datetime import date

import pytest
from sqlalchemy import update
from sqlmodel import Session

from core import cli
from core.models import Campaign, KpiDaily, Role
from core.services import retrospectives
from core.services import rules as rule_service
from tests.core.services.test_review import poor_campaign
from tests.factories import add_kpis, make_user

START = date(2026, 11, 1)


@pytest.fixture
def retro_id(session: Session) -> int:
    rule_service.ensure_builtin_rules(session)
    session.commit()
    analyst = make_user(session, Role.ANALYST, "ana")
    viewer = make_user(session, Role.VIEWER, "vic")
    make_user(session, Role.APPROVER, "dana", name="Dana Reyes")
    make_user(session, Role.APPROVER, "eve")
    make_user(session, Role.ADMIN, "root")
    campaign = poor_campaign(session, viewer)
    row = retrospectives.create_retrospective(
        session, actor=analyst, campaign_id=campaign.id or 0
    )
    retrospectives.generate_insights(session, actor=analyst, retrospective_id=row.id)
    session.commit()
    session.close()
    return row.id


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def shown(capsys: pytest.CaptureFixture[str], retro_id: int) -> dict[str, object]:
    code, out, _ = run(capsys, "show", str(retro_id), "--json", "--as", "vic")
    assert code == 0
    return dict(json.loads(out))


def test_submit_approve_through_the_cli(
    capsys: pytest.CaptureFixture[str], retro_id: int
):
    rid = str(retro_id)

    assert run(capsys, "submit", rid, "--summary", "Poor ROAS", "--as", "ana")[0] == 0
    code, out, _ = run(capsys, "approve", rid, "--comment", "Fine", "--as", "dana")

    assert code == 0
    assert out == f"Retrospective {rid} approved.\n"
    data = shown(capsys, retro_id)
    assert data["status"] == "approved"
    assert data["summary"] == "Poor ROAS"
    assert data["decision"] == {
        "by": "Dana Reyes",
        "at": data["decision"]["at"],  # type: ignore[index]
        "comment": "Fine",
    }


def test_refusals_exit_1_with_one_line(
    capsys: pytest.CaptureFixture[str], retro_id: int
):
    rid = str(retro_id)

    code, _, err = run(capsys, "submit", rid, "--summary", " ", "--as", "ana")
    assert (code, err) == (
        1,
        "error: summary: write the analyst's summary before submitting.\n",
    )
    code, _, err = run(capsys, "approve", rid, "--as", "ana")
    assert (code, err) == (
        1,
        "error: Ana (analyst) may not approve or request changes.\n",
    )
    run(capsys, "submit", rid, "--summary", "s", "--as", "root")
    code, _, err = run(capsys, "approve", rid, "--as", "root")
    assert code == 1
    assert "another approver must approve it" in err
    code, _, err = run(capsys, "reopen", rid, "--reason", "x", "--as", "dana")
    assert (code, err) == (
        1,
        "error: Dana Reyes (approver) may not reopen an approved retrospective.\n",
    )


def test_request_changes_needs_a_comment_on_the_command_line(
    capsys: pytest.CaptureFixture[str], retro_id: int
):
    rid = str(retro_id)
    run(capsys, "submit", rid, "--summary", "s", "--as", "ana")

    with pytest.raises(SystemExit) as usage:
        cli.main(["request-changes", rid, "--as", "dana"])
    assert usage.value.code == 2
    capsys.readouterr()
    code, out, _ = run(
        capsys, "request-changes", rid, "--comment", "Why Meta?", "--as", "dana"
    )

    assert code == 0
    assert "sent back" in out
    assert shown(capsys, retro_id)["status"] == "changes_requested"


def test_second_approval_says_someone_else_decided_first(
    capsys: pytest.CaptureFixture[str], retro_id: int
):
    rid = str(retro_id)
    run(capsys, "submit", rid, "--summary", "s", "--as", "ana")
    run(capsys, "approve", rid, "--as", "dana")

    code, _, err = run(capsys, "approve", rid, "--as", "eve")

    assert code == 1
    assert err.startswith("error: Someone else (Dana Reyes) approved this")


def test_show_json_is_frozen_after_approval_and_live_after_reopen(
    capsys: pytest.CaptureFixture[str], session: Session, retro_id: int
):
    rid = str(retro_id)
    run(capsys, "submit", rid, "--summary", "s", "--as", "ana")
    run(capsys, "approve", rid, "--as", "dana")
    frozen = shown(capsys, retro_id)

    session.execute(update(KpiDaily).values(revenue=9_000.0))
    session.commit()
    campaign_id = frozen["campaign"]["id"]  # type: ignore[index]
    retro_campaign = session.get(Campaign, campaign_id)
    assert retro_campaign is not None
    add_kpis(session, retro_campaign, "tiktok", START, 1, spend=10.0, revenue=1.0)
    session.close()

    assert shown(capsys, retro_id) == frozen
    code, out, _ = run(capsys, "reopen", rid, "--reason", "Late data", "--as", "root")
    assert (code, out) == (0, f"Retrospective {rid} reopened; it is a draft again.\n")
    live = shown(capsys, retro_id)
    assert live["status"] == "draft"
    assert live["frozen"] is False
    assert live["kpis"] != frozen["kpis"]
