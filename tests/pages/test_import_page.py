"""The Import page through Streamlit's AppTest, on the test database."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import func, select
from streamlit.testing.v1 import AppTest

from core import jobs
from core.models import Import, KpiDaily
from tests.factories import make_campaign, make_user
from tests.pages.conftest import page_as, run_queued_jobs

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def _page(actor) -> AppTest:
    return page_as("pages/import.py", actor).run()


def _upload(at: AppTest, *files: tuple[str, bytes]) -> AppTest:
    at.file_uploader(key="import_files").set_value(
        [(name, data, "text/csv") for name, data in files]
    )
    return at.run()


def _texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [e.value for e in at.error]
    return "\n".join([*parts, *(s.value for s in at.success)])


def _count(session, model) -> int:
    count = session.exec(select(func.count()).select_from(model)).one()
    session.rollback()  # end the transaction: on SQLite it holds the write lock
    return count


def test_viewers_and_approvers_are_turned_away(session):
    for role in ("viewer", "approver"):
        at = _page(make_user(session, role, name="Pat"))
        assert [e.value for e in at.error] == [
            f"Pat ({role}) may not create retrospectives, generate insights and "
            "import data."
        ]
        assert not at.file_uploader


def test_preview_then_import_with_new_campaigns(session):
    at = _page(make_user(session, "analyst"))
    at.checkbox(key="import_create").check()
    at.run()

    at = _upload(
        at, ("google.csv", (SAMPLES / "google_ads_campaigns_by_day.csv").read_bytes())
    )

    assert not at.exception
    fmt = at.selectbox[0]
    assert fmt.value == "google_ads"
    assert "14 rows read: 14 new, 0 to update, 0 rejected" in _texts(at).replace(
        "\\", ""
    )
    unknown = _table(at, "state")
    assert unknown["state"].tolist() == ["will be created"] * 2
    preview = _table(at, "campaign", "impressions")
    assert len(preview) == 14 and preview["campaign"].iloc[0] == "Winter Sale 2026"
    assert _count(session, KpiDaily) == 0

    go = next(b for b in at.button if b.label == "Import")
    at = go.click().run()

    assert not at.exception
    assert "imported" in at.success[0].value
    assert not [b for b in at.button if b.label == "Import"]
    assert _count(session, KpiDaily) == 14
    history = _table(at, "file_name", "rows_inserted")
    assert history[["file_name", "rows_inserted"]].values.tolist() == [
        ["google.csv", 14]
    ]


def test_a_broken_file_shows_row_level_errors_and_cannot_be_imported(session):
    analyst = make_user(session, "analyst")
    make_campaign(session, analyst, name="Spring")
    broken = (
        b"campaign,day,impressions,clicks,spend\n"
        b"Spring,2026-11-01,100,5,1.00\n"
        b"Spring,2026-11-02,-4,5,1.00\n"
    )
    at = _page(analyst)

    at = _upload(at, ("broken.csv", broken))

    issues = _table(at, "level", "message")
    errors = issues[issues["level"] == "error"]
    assert errors[["row", "column"]].values.tolist() == [[3, "impressions"]]
    assert "negative value (-4)" in errors["message"].iloc[0]
    assert issues["level"].iloc[0] == "error"  # errors come first
    go = next(b for b in at.button if b.label == "Import")
    assert go.disabled
    at.checkbox(key="import_keep_valid").check()
    at = at.run()
    go = next(b for b in at.button if b.label == "Import")
    assert not go.disabled
    at = go.click().run()
    assert "partial" in at.success[0].value
    assert _count(session, KpiDaily) == 1 and _count(session, Import) == 1


def test_a_wrong_format_choice_explains_the_missing_columns(session):
    at = _page(make_user(session, "analyst"))
    at = _upload(at, ("internal.csv", (SAMPLES / "internal_kpis.csv").read_bytes()))
    assert at.selectbox[0].value == "internal"

    at = at.selectbox[0].select("meta").run()

    issues = _table(at, "level", "message")
    assert (
        "missing columns: campaign name or campaign id, link clicks, amount spent"
        in (issues["message"].iloc[0])
    )
    assert next(b for b in at.button if b.label == "Import").disabled


def _table(at: AppTest, *columns: str):
    """The first table with these columns (st.dataframe keys are not exposed)."""
    for table in at.dataframe:
        if set(columns) <= set(table.value.columns):
            return table.value
    raise AssertionError(f"no table with columns {columns}")


@pytest.fixture(autouse=True)
def _uses_engine(engine):
    """Every test here runs against the parametrised test database."""
    return engine


def test_a_large_file_imports_as_a_job_with_progress_then_its_report(
    session, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(jobs, "IMPORT_INLINE_MAX_BYTES", 100)
    at = _page(make_user(session, "analyst"))
    at.checkbox(key="import_create").check()
    at.text_input(key="import_currency").input("EUR")
    at.run()
    at = _upload(at, ("big.csv", (SAMPLES / "internal_kpis.csv").read_bytes()))

    at = next(b for b in at.button if b.label == "Import").click().run()

    assert not at.exception
    assert at.get("progress")
    assert _count(session, KpiDaily) == 0
    assert [j.status for j in run_queued_jobs()] == ["succeeded"]

    at = at.run()

    assert not at.exception
    assert not at.get("progress")
    assert "imported; 14 rows read" in at.success[0].value.replace("\\", "")
    assert _count(session, KpiDaily) == 14
