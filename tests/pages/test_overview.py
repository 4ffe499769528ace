"""The overview page: filters narrow the table; viewers see only their campaigns."""

from __future__ import annotations

from datetime import date

import pytest
from sqlmodel import Session
from streamlit.testing.v1 import AppTest

from core.models import Role
from tests.factories import add_kpis, make_campaign, make_user
from tests.pages.conftest import logged_in, titles


@pytest.fixture
def portfolio(page_session: Session) -> dict[str, int]:
    """Three campaigns of two owners that differ in status, source and period."""
    vera = make_user(page_session, Role.VIEWER, "vera", name="Vera Viewer")
    otto = make_user(page_session, Role.VIEWER, "otto", name="Otto Owner")
    make_user(page_session, Role.ANALYST, "sam")
    november = make_campaign(page_session, vera, name="November push")
    december = make_campaign(
        page_session,
        otto,
        name="December deals",
        status="active",
        start_date=date(2026, 12, 1),
        end_date=date(2026, 12, 20),
    )
    make_campaign(
        page_session,
        vera,
        name="January plan",
        status="planned",
        start_date=date(2027, 1, 5),
        end_date=date(2027, 1, 25),
    )
    add_kpis(page_session, november, "google_ads", spend=100.0, revenue=100.0)
    add_kpis(
        page_session,
        november,
        "google_ads",
        start=date(2026, 11, 2),
        spend=10.0,
        revenue=50.0,
    )
    add_kpis(page_session, december, "meta", days=3)
    return {"vera": vera.id, "otto": otto.id}


def _names(at: AppTest) -> list[str]:
    if not at.dataframe:
        return []
    return sorted(at.dataframe[0].value["name"])


@pytest.fixture
def overview(app: AppTest, portfolio: dict[str, int]) -> AppTest:
    logged_in(app, "sam")
    assert "Campaigns" in titles(app)
    return app


def test_the_overview_lists_every_campaign_with_ratio_of_sums_roas(
    overview: AppTest,
):
    table = overview.dataframe[0].value.set_index("name")

    assert sorted(table.index) == ["December deals", "January plan", "November push"]
    # Daily ROAS 1.0 and 5.0; the campaign's ROAS is 150 / 110, not their mean.
    assert table.loc["November push", "roas"] == pytest.approx(150 / 110)
    assert table.loc["January plan", "retrospective"] == "none"
    tiles = {m.label: m.value for m in overview.metric}
    # Spend 110 + 3 x 30, revenue 150 + 3 x 60: ROAS 330 / 200.
    assert tiles == {
        "Campaigns (USD)": "3",
        "Spend (USD)": "200.00",
        "Revenue (USD)": "330.00",
        "ROAS": "1.65",
    }


def test_the_status_filter_narrows_the_table(overview: AppTest):
    overview.multiselect(key="overview_status").set_value(["active"]).run()

    assert _names(overview) == ["December deals"]


def test_the_source_filter_narrows_the_table(overview: AppTest):
    overview.multiselect(key="overview_source").set_value(["google_ads"]).run()

    assert _names(overview) == ["November push"]


def test_the_owner_filter_narrows_the_table(
    overview: AppTest, portfolio: dict[str, int]
):
    overview.multiselect(key="overview_owner").set_value([portfolio["otto"]]).run()

    assert _names(overview) == ["December deals"]


def test_the_date_filter_keeps_overlapping_campaigns(overview: AppTest):
    period = overview.date_input(key="overview_period")
    period.set_value((date(2026, 12, 15), date(2027, 1, 10))).run()

    assert _names(overview) == ["December deals", "January plan"]


def test_filters_that_match_nothing_say_so(overview: AppTest):
    overview.multiselect(key="overview_status").set_value(["planned"])
    overview.multiselect(key="overview_source").set_value(["tiktok"]).run()

    assert _names(overview) == []
    assert [i.value for i in overview.info] == ["No campaigns match these filters."]


def test_a_viewer_sees_only_their_own_campaigns(
    app: AppTest, portfolio: dict[str, int]
):
    logged_in(app, "vera")

    assert _names(app) == ["January plan", "November push"]
    # There is no owner to choose between.
    assert not [m for m in app.multiselect if m.key == "overview_owner"]


def test_selecting_a_row_opens_that_campaign(overview: AppTest):
    table = overview.dataframe[0].value
    row = table["name"].tolist().index("December deals")

    overview.session_state["overview_table"] = {
        "selection": {"rows": [row], "columns": [], "cells": []}
    }
    overview.run()

    headings = [str(m.value) for m in overview.markdown if str(m.value).startswith("#")]
    assert headings == ["# December deals"]
    assert len(overview.get("plotly_chart")) == 2
