"""Campaigns service: who sees what, filters, and totals as ratios of sums."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime

import pandas as pd
import pytest
from sqlmodel import Session

from core.errors import NotFound, PermissionDenied
from core.models import Retrospective, Role
from core.services import campaigns
from core.services.campaigns import CampaignFilter
from core.services.permissions import Actor
from tests.factories import add_kpis, make_campaign, make_user

NOV = date(2026, 11, 1)
DEC = date(2026, 12, 1)


@pytest.fixture
def owners(session: Session) -> tuple[Actor, Actor]:
    return (
        make_user(session, Role.VIEWER, "vera", name="Vera Viewer"),
        make_user(session, Role.VIEWER, "otto", name="Otto Owner"),
    )


def _ids(frame: pd.DataFrame) -> set[int]:
    return {int(i) for i in frame["id"]}


def _listed(session: Session, actor: Actor, **filters: object) -> set[int]:
    frame = campaigns.list_campaigns(
        session,
        actor=actor,
        filters=CampaignFilter(**filters),  # type: ignore[arg-type]
    )
    return _ids(frame)


# -- who sees what ------------------------------------------------------------


def test_a_viewer_sees_only_their_own_campaigns(
    session: Session, owners: tuple[Actor, Actor]
):
    vera, otto = owners
    mine = make_campaign(session, vera)
    make_campaign(session, otto)

    frame = campaigns.list_campaigns(session, actor=vera)

    assert _ids(frame) == {mine.id}
    assert list(frame["owner"]) == ["Vera Viewer"]
    assert campaigns.owners(session, actor=vera) == {vera.id: "Vera Viewer"}


@pytest.mark.parametrize("role", [Role.ANALYST, Role.APPROVER, Role.ADMIN])
def test_staff_see_every_campaign(
    session: Session, owners: tuple[Actor, Actor], role: Role
):
    vera, otto = owners
    first = make_campaign(session, vera)
    second = make_campaign(session, otto)
    staff = make_user(session, role)

    assert _ids(campaigns.list_campaigns(session, actor=staff)) == {
        first.id,
        second.id,
    }
    assert campaigns.get_campaign(session, actor=staff, campaign_id=second.id)
    assert set(campaigns.owners(session, actor=staff)) == {vera.id, otto.id}


def test_a_viewer_is_refused_someone_elses_campaign(
    session: Session, owners: tuple[Actor, Actor]
):
    vera, otto = owners
    theirs = make_campaign(session, otto)
    add_kpis(session, theirs)

    with pytest.raises(PermissionDenied, match="belongs to someone else"):
        campaigns.get_campaign(session, actor=vera, campaign_id=theirs.id)
    with pytest.raises(PermissionDenied):
        campaigns.campaign_kpis(session, actor=vera, campaign_id=theirs.id)


def test_a_viewer_opens_their_own_campaign(
    session: Session, owners: tuple[Actor, Actor]
):
    vera, _ = owners
    mine = make_campaign(
        session,
        vera,
        name="Winter Sale",
        currency="EUR",
        external_ids={"meta": "123"},
    )

    info = campaigns.get_campaign(session, actor=vera, campaign_id=mine.id)

    assert info.name == "Winter Sale"
    assert info.owner_name == "Vera Viewer"
    assert info.currency == "EUR"
    assert info.external_ids == {"meta": "123"}
    assert (info.start_date, info.end_date) == (mine.start_date, mine.end_date)


def test_a_missing_campaign_is_not_found(session: Session):
    analyst = make_user(session, Role.ANALYST)

    with pytest.raises(NotFound, match="Campaign 999 does not exist"):
        campaigns.get_campaign(session, actor=analyst, campaign_id=999)


# -- filters -------------------------------------------------------------------


@pytest.fixture
def spread(session: Session, owners: tuple[Actor, Actor]) -> dict[str, int]:
    """Four campaigns that differ in status, source, owner and period."""
    vera, otto = owners
    made = {
        "nov_google": make_campaign(session, vera, status="completed"),
        "nov_meta": make_campaign(session, otto, status="completed"),
        "dec_tiktok": make_campaign(
            session,
            vera,
            status="active",
            start_date=DEC,
            end_date=date(2026, 12, 10),
        ),
        "planned": make_campaign(
            session,
            otto,
            status="planned",
            start_date=date(2027, 1, 1),
            end_date=date(2027, 1, 31),
        ),
    }
    add_kpis(session, made["nov_google"], "google_ads", days=3)
    add_kpis(session, made["nov_meta"], "meta", days=3)
    add_kpis(session, made["nov_meta"], "internal", days=3)
    add_kpis(session, made["dec_tiktok"], "tiktok", days=2)
    return {key: int(c.id) for key, c in made.items()}  # type: ignore[arg-type]


def test_filter_by_status(session: Session, spread: dict[str, int]):
    analyst = make_user(session, Role.ANALYST)

    assert _listed(session, analyst, statuses=("completed",)) == {
        spread["nov_google"],
        spread["nov_meta"],
    }
    assert _listed(session, analyst, statuses=("active", "planned")) == {
        spread["dec_tiktok"],
        spread["planned"],
    }


def test_filter_by_source_keeps_campaigns_with_rows_there(
    session: Session, spread: dict[str, int]
):
    analyst = make_user(session, Role.ANALYST)

    assert _listed(session, analyst, sources=("meta",)) == {spread["nov_meta"]}
    assert _listed(session, analyst, sources=("tiktok", "google_ads")) == {
        spread["nov_google"],
        spread["dec_tiktok"],
    }


def test_filter_by_source_totals_only_that_source(
    session: Session, spread: dict[str, int]
):
    analyst = make_user(session, Role.ANALYST)

    frame = campaigns.list_campaigns(
        session, actor=analyst, filters=CampaignFilter(sources=("internal",))
    )

    # nov_meta has 3 days on meta and 3 on internal, 30.0 spend a day each.
    assert frame["spend"].tolist() == [90.0]
    assert frame["sources"].tolist() == ["internal"]


def test_filter_by_owner(
    session: Session, owners: tuple[Actor, Actor], spread: dict[str, int]
):
    _, otto = owners
    analyst = make_user(session, Role.ANALYST)

    assert _listed(session, analyst, owner_ids=(otto.id,)) == {
        spread["nov_meta"],
        spread["planned"],
    }


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (date(2026, 11, 10), date(2026, 11, 20), {"nov_google", "nov_meta"}),
        (date(2026, 11, 15), date(2026, 12, 1), {"dec_tiktok"}),
        (date(2026, 12, 10), None, {"dec_tiktok", "planned"}),
        (None, date(2026, 11, 1), {"nov_google", "nov_meta"}),
        (date(2026, 10, 1), date(2026, 10, 31), set()),
    ],
)
def test_filter_by_overlapping_period(
    session: Session,
    spread: dict[str, int],
    start: date | None,
    end: date | None,
    expected: set[str],
):
    analyst = make_user(session, Role.ANALYST)

    found = _listed(session, analyst, start=start, end=end)

    assert found == {spread[key] for key in expected}


def test_filters_combine(
    session: Session, owners: tuple[Actor, Actor], spread: dict[str, int]
):
    vera, _ = owners
    analyst = make_user(session, Role.ANALYST)

    found = _listed(
        session,
        analyst,
        statuses=("completed", "active"),
        owner_ids=(vera.id,),
        start=DEC,
    )

    assert found == {spread["dec_tiktok"]}


def test_viewer_filters_never_reach_other_owners(
    session: Session, owners: tuple[Actor, Actor], spread: dict[str, int]
):
    vera, otto = owners

    assert _listed(session, vera, owner_ids=(otto.id,)) == set()


# -- totals --------------------------------------------------------------------


def test_list_totals_are_ratios_of_sums_not_means_of_daily_ratios(
    session: Session, owners: tuple[Actor, Actor]
):
    vera, _ = owners
    campaign = make_campaign(session, vera)
    # Daily ROAS 1.0 and 5.0: their mean is 3.0, the true ROAS 150 / 110.
    add_kpis(session, campaign, "google_ads", spend=100.0, revenue=100.0)
    add_kpis(
        session,
        campaign,
        "meta",
        start=date(2026, 11, 2),
        spend=10.0,
        revenue=50.0,
    )

    row = campaigns.list_campaigns(session, actor=vera).iloc[0]

    assert row["spend"] == pytest.approx(110.0)
    assert row["revenue"] == pytest.approx(150.0)
    assert row["roas"] == pytest.approx(150.0 / 110.0)
    assert row["sources"] == "google_ads, meta"


def test_a_campaign_without_kpis_has_no_totals(
    session: Session, owners: tuple[Actor, Actor]
):
    vera, _ = owners
    make_campaign(session, vera)

    row = campaigns.list_campaigns(session, actor=vera).iloc[0]

    assert math.isnan(row["spend"]) and math.isnan(row["roas"])
    assert pd.isna(row["retrospective"])


def test_zero_spend_gives_no_roas_rather_than_infinity(
    session: Session, owners: tuple[Actor, Actor]
):
    vera, _ = owners
    campaign = make_campaign(session, vera)
    add_kpis(session, campaign, spend=0.0, revenue=80.0)

    row = campaigns.list_campaigns(session, actor=vera).iloc[0]

    assert row["revenue"] == 80.0
    assert math.isnan(row["roas"])


def test_the_list_shows_the_newest_retrospective_status(
    session: Session, owners: tuple[Actor, Actor]
):
    vera, _ = owners
    campaign = make_campaign(session, vera)
    for status, day in (("approved", 2), ("draft", 5)):
        session.add(
            Retrospective(
                campaign_id=campaign.id,  # type: ignore[arg-type]
                status=status,
                period_start=campaign.start_date,
                period_end=campaign.end_date,
                created_at=datetime(2026, 12, day, tzinfo=UTC),
            )
        )
    session.commit()

    row = campaigns.list_campaigns(session, actor=vera).iloc[0]

    assert row["retrospective"] == "draft"


def test_the_list_is_newest_first_then_by_name(
    session: Session, owners: tuple[Actor, Actor]
):
    vera, _ = owners
    make_campaign(session, vera, name="B old", start_date=NOV)
    make_campaign(session, vera, name="Z new", start_date=DEC, end_date=DEC)
    make_campaign(session, vera, name="A old", start_date=NOV)

    frame = campaigns.list_campaigns(session, actor=vera)

    assert frame["name"].tolist() == ["Z new", "A old", "B old"]


def test_an_empty_list_keeps_its_columns(session: Session):
    analyst = make_user(session, Role.ANALYST)

    frame = campaigns.list_campaigns(session, actor=analyst)

    assert frame.empty
    for column in ("id", "name", "status", "start", "end", "spend", "roas"):
        assert column in frame.columns


def test_headline_adds_up_money_and_takes_roas_from_the_sums():
    frame = pd.DataFrame(
        {"spend": [100.0, 10.0, float("nan")], "revenue": [100.0, 50.0, float("nan")]}
    )

    tiles = campaigns.headline(frame)

    assert tiles["campaigns"] == 3
    assert tiles["spend"] == pytest.approx(110.0)
    assert tiles["revenue"] == pytest.approx(150.0)
    assert tiles["roas"] == pytest.approx(150.0 / 110.0)


def test_headline_of_nothing_has_no_roas():
    tiles = campaigns.headline(pd.DataFrame({"spend": [], "revenue": []}))

    assert tiles == {"campaigns": 0, "spend": 0.0, "revenue": 0.0, "roas": None}


# -- daily rows ------------------------------------------------------------------


def test_campaign_kpis_are_oldest_first_then_by_source(
    session: Session, owners: tuple[Actor, Actor]
):
    vera, _ = owners
    campaign = make_campaign(session, vera)
    add_kpis(session, campaign, "tiktok", start=date(2026, 11, 2), days=2)
    add_kpis(session, campaign, "google_ads", start=date(2026, 11, 1), days=3)
    add_kpis(session, campaign, "meta", start=date(2026, 11, 3), clicks=7)

    kpis = campaigns.campaign_kpis(session, actor=vera, campaign_id=campaign.id)

    assert list(zip(kpis["day"], kpis["source"], strict=True)) == [
        (date(2026, 11, 1), "google_ads"),
        (date(2026, 11, 2), "google_ads"),
        (date(2026, 11, 2), "tiktok"),
        (date(2026, 11, 3), "google_ads"),
        (date(2026, 11, 3), "meta"),
        (date(2026, 11, 3), "tiktok"),
    ]
    assert list(kpis.columns) == list(campaigns.KPI_COLUMNS)
    assert kpis["clicks"].dtype == "int64"
    assert kpis.loc[kpis["source"] == "meta", "clicks"].tolist() == [7]


def test_campaign_kpis_of_a_campaign_without_rows_is_empty(
    session: Session, owners: tuple[Actor, Actor]
):
    vera, _ = owners
    campaign = make_campaign(session, vera)

    kpis = campaigns.campaign_kpis(session, actor=vera, campaign_id=campaign.id)

    assert kpis.empty
    assert list(kpis.columns) == list(campaigns.KPI_COLUMNS)
