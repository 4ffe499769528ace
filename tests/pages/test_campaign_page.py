"""The campaign page: charts per source and a KPI table whose totals are sums first."""

from __future__ import annotations

from datetime import date

import pytest
from sqlmodel import Session
from streamlit.testing.v1 import AppTest

from core.models import Role
from tests.factories import add_kpis, make_campaign, make_user
from tests.pages.conftest import logged_in


def _open(at: AppTest, campaign_id: int | None = None) -> AppTest:
    at.switch_page("pages/campaign.py")
    if campaign_id is not None:
        at.query_params["id"] = str(campaign_id)
    return at.run()


def _headings(at: AppTest) -> list[str]:
    return [str(m.value) for m in at.markdown if str(m.value).startswith("# ")]


@pytest.fixture
def campaigns_of_two(page_session: Session) -> dict[str, int]:
    vera = make_user(page_session, Role.VIEWER, "vera")
    otto = make_user(page_session, Role.VIEWER, "otto")
    make_user(page_session, Role.ANALYST, "sam")
    mine = make_campaign(page_session, vera, name="Vera sale")
    theirs = make_campaign(page_session, otto, name="Otto sale")
    # Per-source ROAS 1.0 and 5.0: the total is 150 / 110, not their mean 3.0.
    add_kpis(page_session, mine, "google_ads", spend=100.0, revenue=100.0)
    add_kpis(page_session, mine, "meta", spend=10.0, revenue=50.0, clicks=5)
    add_kpis(page_session, mine, "meta", start=date(2026, 11, 9), spend=0.0)
    add_kpis(page_session, theirs, "tiktok", days=2)
    return {"mine": int(mine.id), "theirs": int(theirs.id)}  # type: ignore[arg-type]


def test_the_campaign_page_shows_two_charts_and_a_summary_of_sums(
    app: AppTest, campaigns_of_two: dict[str, int]
):
    logged_in(app, "sam")

    _open(app, campaigns_of_two["mine"])

    assert _headings(app) == ["# Vera sale"]
    assert len(app.get("plotly_chart")) == 2
    summary = app.dataframe[0].value.set_index("source")
    assert list(summary.index) == ["google_ads", "meta", "Total"]
    assert summary.loc["Total", "spend"] == pytest.approx(110.0)
    assert summary.loc["Total", "revenue"] == pytest.approx(210.0)
    assert summary.loc["Total", "roas"] == pytest.approx(210.0 / 110.0)
    assert summary.loc["Total", "ctr"] == pytest.approx(45 / 3000)
    assert not app.exception


def test_grouping_by_week_keeps_the_charts(
    app: AppTest, campaigns_of_two: dict[str, int]
):
    logged_in(app, "sam")
    _open(app, campaigns_of_two["mine"])

    app.get("segmented_control")[0].set_value("week").run()

    assert len(app.get("plotly_chart")) == 2
    assert not app.exception


def test_a_viewer_cannot_open_someone_elses_campaign(
    app: AppTest, campaigns_of_two: dict[str, int]
):
    logged_in(app, "vera")

    _open(app, campaigns_of_two["theirs"])

    # The other owner's id is ignored: only Vera's campaign can be chosen.
    assert _headings(app) == ["# Vera sale"]
    assert app.selectbox(key="campaign_select").options == [
        "Vera sale (2026-11-01 – 2026-11-14)"
    ]
    assert app.query_params["id"] == str(campaigns_of_two["mine"])


def test_an_unreadable_id_in_the_address_opens_the_first_campaign(
    app: AppTest, campaigns_of_two: dict[str, int]
):
    logged_in(app, "vera")

    app.switch_page("pages/campaign.py")
    app.query_params["id"] = "not-a-number"
    app.run()

    assert _headings(app) == ["# Vera sale"]
    assert not app.exception


def test_a_campaign_without_data_says_so(app: AppTest, page_session: Session):
    sam = make_user(page_session, Role.ANALYST, "sam")
    empty = make_campaign(page_session, sam, name="Nothing yet")
    logged_in(app, "sam")

    _open(app, int(empty.id))  # type: ignore[arg-type]

    assert [i.value for i in app.info] == [
        "No KPI data has been imported for this campaign yet."
    ]
    assert not app.get("plotly_chart")


def test_no_campaigns_at_all_says_so(app: AppTest, page_session: Session):
    make_user(page_session, Role.VIEWER, "vera")
    logged_in(app, "vera")

    _open(app)

    assert [i.value for i in app.info] == ["There are no campaigns you can see yet."]
