"""CLI: create-retrospective, generate and show, acting as the named user."""

from __future__ import annotations

import json
from datetime import date

import pytest
from sqlmodel import Session

from core import cli
from core.models import Campaign, Role
from core.services import rules as rule_service
from tests.factories import add_kpis, make_campaign, make_user

START = date(2026, 11, 1)
SHOW_KEYS = {"id", "status", "campaign", "kpis", "insights"}
INSIGHT_KEYS = {
    "rule_key",
    "source",
    "metric",
    "severity",
    "finding",
    "observed",
    "threshold",
    "interval",
    "sample_size",
    "origin",
    "dismissed",
    "title",
    "text",
}


@pytest.fixture
def campaign(session: Session) -> Campaign:
    rule_service.ensure_builtin_rules(session)
    session.commit()
    analyst = make_user(session, Role.ANALYST, "ana")
    make_user(session, Role.VIEWER, "vic")
    found = make_campaign(session, analyst, name="Winter Sale", end_date=START)
    add_kpis(
        session,
        found,
        "meta",
        START,
        1,
        impressions=100_000,
        clicks=300,
        spend=600.0,
        conversions=30.0,
        revenue=240.0,
    )
    session.close()
    return found


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_create_generate_show_round_trip(
    campaign: Campaign, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "create-retrospective", "Winter Sale", "--as", "ana")
    assert code == 0
    retro_id = out.strip()
    assert retro_id.isdigit()

    code, out, _ = run(capsys, "generate", retro_id, "--as", "ana")
    assert code == 0
    assert "is draft: 4 insights" in out

    code, out, _ = run(capsys, "show", retro_id, "--json", "--as", "ana")
    data = json.loads(out)
    assert code == 0
    assert set(data) >= SHOW_KEYS
    assert data["status"] == "draft"
    assert data["campaign"]["name"] == "Winter Sale"
    assert data["kpis"]["overall"]["roas"] == pytest.approx(0.4)
    assert set(data["kpis"]["sources"]) == {"meta"}
    for insight in data["insights"]:
        assert set(insight) >= INSIGHT_KEYS
    ctr = next(i for i in data["insights"] if i["metric"] == "ctr")
    assert ctr["interval"] == pytest.approx([0.002680, 0.003359], abs=1e-6)
    assert {i["rule_key"] for i in data["insights"]} == {"critical_roas", "low_ctr"}
    assert {i["source"] for i in data["insights"]} == {None, "meta"}


def test_campaign_may_be_named_by_id(
    campaign: Campaign, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "create-retrospective", str(campaign.id), "--as", "ana")

    assert code == 0 and out.strip().isdigit()


def test_generate_twice_needs_regenerate(
    campaign: Campaign, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out, _ = run(capsys, "create-retrospective", "Winter Sale", "--as", "ana")
    retro_id = out.strip()
    run(capsys, "generate", retro_id, "--as", "ana")

    code, _, err = run(capsys, "generate", retro_id, "--as", "ana")
    again, out, _ = run(capsys, "generate", retro_id, "--regenerate", "--as", "ana")

    assert code == 1
    assert err.startswith("error: Retrospective #") and "has insights already" in err
    assert again == 0 and "is draft" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["create-retrospective", "Winter Sale", "--as", "vic"], "No campaign named"),
        (["create-retrospective", "Summer", "--as", "ana"], "No campaign named"),
        (["generate", "99", "--as", "ana"], "does not exist"),
        (["show", "99", "--json", "--as", "ana"], "does not exist"),
        (["show", "1", "--as", "nobody"], "No active user"),
    ],
)
def test_refusals_exit_1_with_one_line(
    campaign: Campaign,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    message: str,
) -> None:
    code, out, err = run(capsys, *argv)

    assert code == 1
    assert out == ""
    assert message in err and err.count("\n") == 1


def test_viewer_may_not_create(
    campaign: Campaign, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "create-retrospective", str(campaign.id), "--as", "vic")

    assert code == 1 and "may not create retrospectives" in err


def test_viewer_cannot_show_a_retrospective_of_someone_else(
    campaign: Campaign, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out, _ = run(capsys, "create-retrospective", "Winter Sale", "--as", "ana")

    code, _, err = run(capsys, "show", out.strip(), "--json", "--as", "vic")

    assert code == 1 and "belongs to someone else" in err


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["generate", "not-a-number", "--as", "ana"])

    assert exit_info.value.code == 2
