"""Retrospectives list and the retrospective view, driven through AppTest."""

from __future__ import annotations

from datetime import date

import pytest
from sqlmodel import Session, select
from streamlit.testing.v1 import AppTest

from core import rules as engine
from core.models import Campaign, Insight, Job, Retrospective, Role
from core.services import retrospectives, review
from core.services import rules as rule_service
from core.services.permissions import Actor
from tests.factories import add_kpis, make_campaign, make_user
from tests.pages.conftest import page_as, run_queued_jobs

LIST_PAGE = "pages/retrospectives.py"
VIEW_PAGE = "pages/retrospective.py"
START = date(2026, 11, 1)


def open_page(path: str, actor: Actor, retro_id: int | None = None) -> AppTest:
    at = page_as(path, actor)
    if retro_id is not None:
        at.query_params["id"] = str(retro_id)
    return at.run()


@pytest.fixture
def analyst(session: Session) -> Actor:
    rule_service.ensure_builtin_rules(session)
    session.commit()
    return make_user(session, Role.ANALYST)


def campaign_with_kpis(session: Session, owner: Actor, name: str) -> Campaign:
    """Meta at ROAS 0.40 on 1,000 of spend; TikTok too small to judge anything."""
    campaign = make_campaign(session, owner, name=name, end_date=START, currency="EUR")
    add_kpis(
        session,
        campaign,
        "meta",
        START,
        1,
        impressions=100_000,
        clicks=1_000,
        spend=1_000.0,
        conversions=50.0,
        revenue=400.0,
    )
    add_kpis(
        session,
        campaign,
        "tiktok",
        START,
        1,
        impressions=900,
        clicks=30,
        spend=40.0,
        conversions=2.0,
        revenue=100.0,
    )
    return campaign


def generated(session: Session, actor: Actor, campaign: Campaign) -> int:
    row = retrospectives.create_retrospective(
        session, actor=actor, campaign_id=campaign.id or 0
    )
    retrospectives.generate_insights(session, actor=actor, retrospective_id=row.id)
    session.commit()
    return row.id


def stored_status(session: Session, campaign: Campaign) -> list[str]:
    session.expire_all()
    query = select(Retrospective.status).where(Retrospective.campaign_id == campaign.id)
    statuses = list(session.scalars(query))
    session.commit()
    return statuses


# -- list page ----------------------------------------------------------------


def test_analyst_creates_and_generates_from_the_list(
    session: Session, analyst: Actor
) -> None:
    campaign = campaign_with_kpis(session, analyst, "Winter Sale")
    at = open_page(LIST_PAGE, analyst)

    at.selectbox(key="retro_new_pick").set_value(campaign.id)
    at.button(key="retro_create").click().run()

    assert not at.exception
    # Generation runs as a job: the page follows it with a progress bar.
    assert stored_status(session, campaign) == ["pending"]
    assert at.get("progress")
    assert not [b for b in at.button if b.key == "retro_generate"]

    assert [j.status for j in run_queued_jobs()] == ["succeeded"]
    at.run()

    assert not at.exception
    assert not at.get("progress")
    assert stored_status(session, campaign) == ["draft"]
    table = at.dataframe[0].value
    assert table.iloc[0]["Campaign"] == "Winter Sale"
    assert table.iloc[0]["Status"] == "draft"
    assert table.iloc[0]["Most severe"] == "critical"
    assert any("generated" in s.value for s in at.success)


def test_creating_without_generating_leaves_it_pending(
    session: Session, analyst: Actor
) -> None:
    campaign = campaign_with_kpis(session, analyst, "Spring")
    at = open_page(LIST_PAGE, analyst)

    at.checkbox(key="retro_new_generate").uncheck()
    at.button(key="retro_create").click().run()
    assert stored_status(session, campaign) == ["pending"]

    at.button(key="retro_generate").click().run()
    assert not at.exception
    run_queued_jobs()
    assert stored_status(session, campaign) == ["draft"]


def test_failed_generation_is_shown_after_the_rerun(
    session: Session, analyst: Actor, monkeypatch: pytest.MonkeyPatch
) -> None:
    campaign = campaign_with_kpis(session, analyst, "Broken")
    monkeypatch.setattr(engine, "evaluate", lambda *args, **kwargs: 1 / 0)
    at = open_page(LIST_PAGE, analyst)

    at.button(key="retro_create").click().run()
    run_queued_jobs()
    at.run()

    assert not at.exception
    assert stored_status(session, campaign) == ["failed"]
    assert [b.label for b in at.button if b.key == "retro_generate"] == [
        "Retry generation"
    ]
    errors = [e.value for e in at.error]
    assert any(e.startswith("Generation failed\\: ZeroDivisionError") for e in errors)


def test_campaign_without_kpis_is_refused_on_the_page(
    session: Session, analyst: Actor
) -> None:
    campaign = make_campaign(session, analyst, name="Empty")
    at = open_page(LIST_PAGE, analyst)

    at.selectbox(key="retro_new_pick").set_value(campaign.id)
    at.button(key="retro_create").click().run()

    assert "no KPI data" in at.error[0].value
    assert stored_status(session, campaign) == []


def test_viewer_sees_own_retrospectives_and_cannot_create(
    session: Session, analyst: Actor
) -> None:
    viewer = make_user(session, Role.VIEWER)
    generated(session, analyst, campaign_with_kpis(session, viewer, "Mine"))
    generated(session, analyst, campaign_with_kpis(session, analyst, "Not mine"))

    at = open_page(LIST_PAGE, viewer)

    assert not at.exception
    assert list(at.dataframe[0].value["Campaign"]) == ["Mine"]
    assert not [b for b in at.button if b.key in ("retro_create", "retro_generate")]


def test_list_without_retrospectives_says_so(session: Session, analyst: Actor) -> None:
    at = open_page(LIST_PAGE, analyst)

    assert "There are no retrospectives you can see yet." in [i.value for i in at.info]


# -- view page ----------------------------------------------------------------


def test_view_shows_kpis_and_insights_by_severity(
    session: Session, analyst: Actor
) -> None:
    retro_id = generated(session, analyst, campaign_with_kpis(session, analyst, "W"))

    at = open_page(VIEW_PAGE, analyst, retro_id)

    assert not at.exception
    kpis = at.dataframe[0].value
    assert list(kpis["Source"]) == ["Meta", "TikTok", "Whole campaign"]
    roas = "ROAS (return per unit of spend; 1.0 = spend earned back)"
    assert list(kpis[roas]) == ["0.40", "2.50", "0.48"]
    assert kpis["ROI (profit per unit of spend)"].iloc[0] == "-60.00%"
    headings = [h.value for h in at.subheader]
    assert ":material/error: Critical (2)" in headings
    # TikTok is below the floor of ROAS, CTR, CPC and conversion rate.
    assert "Not enough data (4)" in [e.label for e in at.expander]
    bold = [m.value for m in at.markdown if m.value.startswith("**")]
    assert bold[0] == "**Critical ROAS\\: ROAS 0\\.48 across the campaign**"


def test_view_regenerates_for_analysts_only(session: Session, analyst: Actor) -> None:
    viewer = make_user(session, Role.VIEWER)
    campaign = campaign_with_kpis(session, viewer, "W")
    retro_id = generated(session, analyst, campaign)

    as_viewer = open_page(VIEW_PAGE, viewer, retro_id)
    as_analyst = open_page(VIEW_PAGE, analyst, retro_id)
    as_analyst.button(key="retro_view_regenerate").click().run()
    assert as_analyst.get("progress")
    run_queued_jobs()
    as_analyst.run()

    assert not [b for b in as_viewer.button if b.key == "retro_view_regenerate"]
    assert not as_analyst.exception
    assert any("insights" in s.value for s in as_analyst.success)
    session.expire_all()
    assert session.get(Retrospective, retro_id).version == 5  # type: ignore[union-attr]
    session.commit()


def test_regenerate_after_someone_else_changed_it_is_refused_as_stale(
    session: Session, analyst: Actor
) -> None:
    campaign = campaign_with_kpis(session, analyst, "W")
    retro_id = generated(session, analyst, campaign)
    at = open_page(VIEW_PAGE, analyst, retro_id)
    jobs_before = len(session.scalars(select(Job)).all())
    review.write_summary(
        session, actor=analyst, retrospective_id=retro_id, summary="Edited elsewhere"
    )
    session.commit()

    at.button(key="retro_view_regenerate").click().run()

    assert not at.exception
    assert "Someone else changed this retrospective first" in at.error[0].value
    session.expire_all()
    assert len(session.scalars(select(Job)).all()) == jobs_before


def test_view_shows_typed_text_inert(session: Session, analyst: Actor) -> None:
    retro_id = generated(session, analyst, campaign_with_kpis(session, analyst, "W"))
    session.add(
        Insight(
            retrospective_id=retro_id,
            origin="manual",
            severity="high",
            title="<script>alert(1)</script> [click](https://evil.example)",
            text="![pixel](https://evil.example/p.png)",
            actions=["**shout**"],
        )
    )
    session.commit()

    at = open_page(VIEW_PAGE, analyst, retro_id)

    markdown = " ".join(m.value for m in at.markdown)
    assert "\\<script\\>" in markdown
    assert "[click](" not in markdown
    assert "- \\*\\*shout\\*\\*" in markdown
    assert "![pixel](https://evil.example/p.png)" in [t.value for t in at.text]


def test_view_of_a_failed_generation_shows_the_error(
    session: Session, analyst: Actor
) -> None:
    campaign = campaign_with_kpis(session, analyst, "W")
    row = retrospectives.create_retrospective(
        session, actor=analyst, campaign_id=campaign.id or 0
    )
    retro = session.get(Retrospective, row.id)
    assert retro is not None
    retro.status = "failed"
    retro.error = "RuntimeError: disk on fire"
    session.add(retro)
    session.commit()

    at = open_page(VIEW_PAGE, analyst, row.id)

    assert "disk on fire" in at.error[0].value
    assert [b.label for b in at.button if b.key == "retro_view_retry"] == [
        "Retry generation"
    ]


def test_viewer_cannot_open_someone_elses_retrospective(
    session: Session, analyst: Actor
) -> None:
    viewer = make_user(session, Role.VIEWER)
    own = generated(session, analyst, campaign_with_kpis(session, viewer, "Mine"))
    other = generated(session, analyst, campaign_with_kpis(session, analyst, "Other"))

    at = open_page(VIEW_PAGE, viewer, other)

    # The id in the address is not among the viewer's: the page shows their own.
    assert at.selectbox(key="retro_view_pick").value == own
    assert not [m for m in at.markdown if "Other" in m.value]
    assert "# Mine" in [m.value for m in at.markdown]


def test_view_offers_retry_after_a_job_that_could_not_run(
    session: Session, analyst: Actor
) -> None:
    campaign = campaign_with_kpis(session, analyst, "W")
    row = retrospectives.create_retrospective(
        session, actor=analyst, campaign_id=campaign.id or 0
    )
    session.add(
        Job(
            kind="generate",
            target=str(row.id),
            status="failed",
            error="The user who asked for this job is not active.",
        )
    )
    session.commit()

    at = open_page(VIEW_PAGE, analyst, row.id)

    assert "Generation could not run" in at.error[0].value
    at.button(key="retro_view_retry").click().run()
    assert at.get("progress")
    assert [j.attempts for j in run_queued_jobs()] == [1]
    at.run()
    assert stored_status(session, campaign) == ["draft"]
    assert any("manual kept" in s.value for s in at.success)
