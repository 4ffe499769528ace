"""The import-kpis command, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

from sqlmodel import func, select

from core import cli
from core.models import Campaign, KpiDaily
from tests.factories import make_campaign, make_user

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def _kpi_count(session) -> int:
    return session.exec(select(func.count()).select_from(KpiDaily)).one()


def test_all_samples_import_with_new_campaigns(session, capsys):
    make_user(session, "analyst", "ana")
    files = sorted(str(p) for p in SAMPLES.glob("*.csv"))

    code = cli.main(
        [
            "import-kpis",
            *files,
            "--create-campaigns",
            "--currency",
            "USD",
            "--as",
            "ana",
        ]
    )

    out = capsys.readouterr().out
    assert code == 0
    assert "internal_kpis.csv (internal): imported; 14 rows read, 14 inserted" in out
    assert "created with id" in out
    assert _kpi_count(session) == 56
    assert len(session.exec(select(Campaign)).all()) == 2


def test_a_rejected_file_exits_1_with_its_first_errors(session, capsys, tmp_path):
    make_user(session, "analyst", "ana")
    spring = make_campaign(session, make_user(session, "admin"), name="Spring")
    broken = tmp_path / "broken.csv"
    broken.write_text(
        "campaign,day,impressions,clicks,spend\n"
        "Spring,2026-11-01,100,5,1.00\n"
        "Spring,2026-11-02,100,500,1.00\n"
    )

    code = cli.main(["import-kpis", str(broken), "--as", "ana"])

    captured = capsys.readouterr()
    assert code == 1
    assert "rejected" in captured.out
    assert "broken.csv was rejected (1 errors); no KPI rows were written" in (
        captured.err
    )
    assert (
        "broken.csv, row 3, column 'clicks': clicks (500) exceed impressions (100)"
        in captured.err
    )
    assert _kpi_count(session) == 0
    assert spring.id is not None


def test_keep_valid_and_json(session, capsys, tmp_path):
    make_user(session, "analyst", "ana")
    make_campaign(session, make_user(session, "admin"), name="Spring")
    partial = tmp_path / "partial.csv"
    partial.write_text(
        "campaign,day,impressions,clicks,spend\n"
        "Spring,2026-11-01,100,5,1.00\n"
        "Spring,2026-11-02,oops,5,1.00\n"
    )

    code = cli.main(
        ["import-kpis", str(partial), "--keep-valid", "--json", "--as", "ana"]
    )

    (summary,) = json.loads(capsys.readouterr().out)
    assert code == 0
    assert (summary["status"], summary["inserted"], summary["rejected"]) == (
        "partial",
        1,
        1,
    )
    errors = [i for i in summary["report"]["issues"] if i["level"] == "error"]
    assert [(e["row"], e["column"]) for e in errors] == [(3, "impressions")]


def test_missing_files_and_viewers_are_refused(session, capsys):
    make_user(session, "viewer", "vic")
    sample = str(SAMPLES / "internal_kpis.csv")

    assert cli.main(["import-kpis", "nope.csv", "--as", "vic"]) == 1
    assert "no such file: nope.csv" in capsys.readouterr().err
    assert cli.main(["import-kpis", sample, "--as", "vic"]) == 1
    assert "may not create" in capsys.readouterr().err
