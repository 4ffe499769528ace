"""Importing exports into the database, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from sqlmodel import Session, col, func, select

from core import importers
from core.errors import NotFound, PermissionDenied, ValidationFailed
from core.models import AuditEvent, Campaign, Import, KpiDaily
from core.services import campaigns, imports
from core.services.imports import ImportOptions, import_file, preview_file, upsert_kpis
from tests.factories import add_kpis, make_campaign, make_user

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
TODAY = date(2026, 12, 1)
CREATE = ImportOptions(create_campaigns=True, currency="usd")
INTERNAL_HEADER = "campaign,day,impressions,clicks,spend,conversions,revenue"


def _csv(*lines: str) -> bytes:
    return ("\n".join(lines) + "\n").encode()


def _import(session, actor, data, name="export.csv", options=None, **kwargs):
    summary = import_file(
        session,
        actor=actor,
        file_name=name,
        data=data,
        options=options or ImportOptions(),
        today=TODAY,
        **kwargs,
    )
    session.commit()
    return summary


def _sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def _kpi_rows(session) -> list[tuple]:
    query = select(
        KpiDaily.campaign_id,
        KpiDaily.source,
        KpiDaily.day,
        KpiDaily.impressions,
        KpiDaily.clicks,
        KpiDaily.spend,
        KpiDaily.import_id,
    ).order_by(col(KpiDaily.campaign_id), col(KpiDaily.source), col(KpiDaily.day))
    return list(session.exec(query).all())


def _count(session, model) -> int:
    return session.exec(select(func.count()).select_from(model)).one()


def _internal_rows(campaign: str, first: date, days: int, impressions: int = 100):
    return [
        f"{campaign},{first + timedelta(days=i)},{impressions},10,5.00,1,9.00"
        for i in range(days)
    ]


# -- the samples ------------------------------------------------------------------


def test_every_sample_imports_and_the_campaign_totals_match_the_files(session):
    analyst = make_user(session, "analyst")
    files = {
        "google_ads_campaigns_by_day.csv": ("google_ads", "Cost", "Impr."),
        "meta_ads_campaigns_by_day.csv": ("meta", "Amount spent (USD)", "Impressions"),
        "tiktok_ads_campaigns_by_day.csv": ("tiktok", "Cost", "Impressions"),
        "internal_kpis.csv": ("internal", "spend", "impressions"),
    }
    for name in files:
        summary = _import(session, analyst, _sample(name), name, CREATE)
        assert summary.status == "imported", summary.messages()
        assert (summary.rows_read, summary.inserted, summary.rejected) == (14, 14, 0)

    listing = campaigns.list_campaigns(session, actor=analyst)
    assert sorted(listing["name"]) == ["Café Lumière – Launch", "Winter Sale 2026"]
    for row in listing.itertuples():
        kpis = campaigns.campaign_kpis(session, actor=analyst, campaign_id=row.id)
        for name, (source, spend, impressions) in files.items():
            lines = list(csv.DictReader(io.StringIO(_sample(name).decode())))
            mine = [r for r in lines if row.name in r.values()]
            stored = kpis[kpis["source"] == source]
            assert stored["spend"].sum() == pytest.approx(
                sum(float(r[spend]) for r in mine)
            )
            assert stored["impressions"].sum() == sum(int(r[impressions]) for r in mine)


def test_campaigns_created_from_a_file_take_name_currency_period_and_owner(session):
    analyst = make_user(session, "analyst")

    summary = _import(
        session,
        analyst,
        _sample("google_ads_campaigns_by_day.csv"),
        options=CREATE,
    )

    created = session.exec(select(Campaign).order_by(col(Campaign.id))).all()
    assert [(c.name, c.currency, c.owner_id) for c in created] == [
        ("Winter Sale 2026", "USD", analyst.id),
        ("Café Lumière – Launch", "USD", analyst.id),
    ]
    assert {(c.start_date, c.end_date, c.status) for c in created} == {
        (date(2026, 11, 1), date(2026, 11, 7), "completed")
    }
    assert created[0].external_ids == {"google_ads": "9876543210"}
    assert [u.created_id for u in summary.unknown_campaigns] == [c.id for c in created]
    actions = session.exec(select(AuditEvent.action)).all()
    assert actions.count("campaign.create") == 2 and "import.kpis" in actions


# -- unknown campaigns, matching -------------------------------------------------------


def test_unknown_campaigns_are_listed_and_the_file_is_rejected(session):
    analyst = make_user(session, "analyst")

    summary = _import(session, analyst, _sample("meta_ads_campaigns_by_day.csv"))

    assert summary.status == "rejected" and summary.rejected == 14
    unknown = {u.name: u for u in summary.unknown_campaigns}
    assert set(unknown) == {"Winter Sale 2026", "Café Lumière – Launch"}
    winter = unknown["Winter Sale 2026"]
    assert (winter.rows, winter.first_row, winter.currency) == (7, 2, "USD")
    assert (winter.first_day, winter.last_day) == (date(2026, 11, 1), date(2026, 11, 7))
    assert winter.created_id is None
    first = summary.messages()[0]
    assert first.startswith("export.csv, row 2, column 'Campaign name': campaign")
    assert _count(session, KpiDaily) == 0 and _count(session, Campaign) == 0


def test_matching_by_platform_id_first_then_by_trimmed_case_insensitive_name(session):
    analyst = make_user(session, "analyst")
    renamed = make_campaign(
        session, analyst, name="Old name", external_ids={"google_ads": "9876543210"}
    )
    by_name = make_campaign(session, analyst, name="  café lumière – LAUNCH ")

    summary = _import(session, analyst, _sample("google_ads_campaigns_by_day.csv"))

    assert summary.status == "imported"
    stored = {(r[0], r[2]) for r in _kpi_rows(session)}
    assert {c for c, _ in stored} == {renamed.id, by_name.id}
    session.refresh(by_name)
    assert by_name.external_ids == {"google_ads": "1234509876"}
    assert any("is now stored" in m for m in summary.messages("info"))


def test_a_name_shared_by_two_campaigns_is_an_error(session):
    analyst = make_user(session, "analyst")
    make_campaign(session, analyst, name="Spring")
    make_campaign(session, analyst, name="spring")

    summary = _import(
        session, analyst, _csv(INTERNAL_HEADER, "Spring,2026-11-01,10,1,1.00,0,0")
    )

    assert summary.status == "rejected"
    assert summary.issues[0]["code"] == "ambiguous_campaign"


def test_a_name_match_with_another_platform_id_is_kept_with_a_warning(session):
    analyst = make_user(session, "analyst")
    winter = make_campaign(
        session, analyst, name="Winter Sale 2026", external_ids={"google_ads": "1"}
    )
    make_campaign(session, analyst, name="Café Lumière – Launch")

    summary = _import(session, analyst, _sample("google_ads_campaigns_by_day.csv"))

    assert (summary.status, summary.inserted) == ("imported", 14)
    assert summary.messages("warning") == [
        "export.csv: 'Winter Sale 2026' matched campaign "
        f"{winter.id} by name, but the file's google_ads id 9876543210 is not the "
        "stored 1; the stored id is kept"
    ]
    session.refresh(winter)
    assert winter.external_ids == {"google_ads": "1"}


def test_internal_campaign_id_is_this_applications_id(session):
    analyst = make_user(session, "analyst")
    spring = make_campaign(session, analyst, name="Spring")
    data = _csv(
        "campaign_id,campaign,day,impressions,clicks,spend",
        f"{spring.id},Another name,2026-11-01,10,1,1.00",
        "999,Spring,2026-11-02,10,1,1.00",
    )

    summary = _import(session, analyst, data, options=ImportOptions(keep_valid=True))

    assert (summary.inserted, summary.rejected) == (1, 1)
    assert summary.issues[-1]["code"] == "unknown_campaign_id"


# -- validation -----------------------------------------------------------------------


def test_a_currency_other_than_the_campaigns_is_an_error(session):
    analyst = make_user(session, "analyst")
    make_campaign(session, analyst, name="Winter Sale 2026", currency="EUR")
    make_campaign(session, analyst, name="Café Lumière – Launch", currency="USD")

    summary = _import(session, analyst, _sample("meta_ads_campaigns_by_day.csv"))

    assert summary.status == "rejected" and summary.rejected == 7
    error = summary.issues[0]
    assert (error["row"], error["column"], error["code"]) == (
        2,
        "Currency",
        "currency_mismatch",
    )
    assert "differs from the campaign's (EUR)" in error["message"]
    assert _count(session, KpiDaily) == 0


def test_days_outside_the_campaign_period_are_warnings(session):
    analyst = make_user(session, "analyst")
    make_campaign(
        session,
        analyst,
        name="Spring",
        start_date=date(2026, 11, 2),
        end_date=date(2026, 11, 3),
    )
    data = _csv(INTERNAL_HEADER, *_internal_rows("Spring", date(2026, 11, 1), 4))

    summary = _import(session, analyst, data)

    assert summary.status == "imported" and summary.inserted == 4
    warnings = [i for i in summary.issues if i["code"] == "outside_period"]
    assert [w["row"] for w in warnings] == [2, 5]
    assert (
        "outside the campaign's period (2026-11-02 to 2026-11-03)"
        in (warnings[0]["message"])
    )


@pytest.mark.parametrize("chunk_rows", [100, 3])
def test_the_same_campaign_source_and_day_twice_is_an_error(
    session, monkeypatch, chunk_rows
):
    monkeypatch.setattr(importers, "CHUNK_ROWS", chunk_rows)
    analyst = make_user(session, "analyst")
    make_campaign(session, analyst, name="Spring")
    rows = _internal_rows("Spring", date(2026, 11, 1), 5)
    data = _csv(INTERNAL_HEADER, *rows, rows[1], rows[4].replace("spring", "SPRING"))

    summary = _import(session, analyst, data)

    assert summary.status == "rejected"
    duplicates = [i for i in summary.issues if i["code"] == "duplicate_row"]
    assert [(d["row"], d["column"]) for d in duplicates] == [(7, "day"), (8, "day")]
    assert duplicates[0]["message"].endswith("2026-11-02 is already in row 3")
    assert _count(session, KpiDaily) == 0


# -- writing: all or nothing, idempotent --------------------------------------------


def test_a_file_with_an_error_changes_nothing(session):
    analyst = make_user(session, "analyst")
    spring = make_campaign(session, analyst, name="Spring")
    add_kpis(session, spring, "internal", date(2026, 11, 1), days=2, impressions=50)
    before = _kpi_rows(session)
    rows = _internal_rows("Spring", date(2026, 11, 1), 3, impressions=999)
    data = _csv(
        INTERNAL_HEADER + ",currency",
        *(f"{row},USD" for row in rows),
        "New one,2026-11-01,10,1,1.00,0,0,USD",
        "Spring,x,1,1,1,1,1,USD",
    )

    summary = _import(session, analyst, data, options=CREATE)

    assert summary.status == "rejected"
    assert (summary.inserted, summary.updated) == (0, 0)
    assert _kpi_rows(session) == before
    assert session.exec(select(Campaign.name)).all() == ["Spring"]
    record = session.get(Import, summary.import_id)
    assert record is not None and record.status == "rejected"
    assert record.report["errors"] == 1 and record.rows_rejected == 1
    assert record.report["issues"][0]["row"] == 6


def test_keep_valid_imports_the_good_rows_only(session):
    analyst = make_user(session, "analyst")
    make_campaign(session, analyst, name="Spring")
    data = _csv(
        INTERNAL_HEADER,
        *_internal_rows("Spring", date(2026, 11, 1), 3),
        "Spring,2026-11-04,ten,1,1,1,1",
        "Nobody,2026-11-04,10,1,1,1,1",
    )

    summary = _import(session, analyst, data, options=ImportOptions(keep_valid=True))

    assert summary.status == "partial"
    assert (summary.rows_read, summary.inserted, summary.rejected) == (5, 3, 2)
    assert len(_kpi_rows(session)) == 3


def test_reimporting_updates_in_place_and_says_the_file_is_identical(session):
    analyst = make_user(session, "analyst")
    data = _sample("tiktok_ads_campaigns_by_day.csv")
    first = _import(session, analyst, data, options=CREATE)

    again = _import(session, analyst, data)

    assert (again.inserted, again.updated, again.identical_to) == (
        0,
        14,
        first.import_id,
    )
    assert any("identical to import" in m for m in again.messages("warning"))
    rows = _kpi_rows(session)
    assert len(rows) == 14 and {r[-1] for r in rows} == {again.import_id}


def test_an_overlapping_file_updates_the_shared_days_and_adds_the_rest(session):
    analyst = make_user(session, "analyst")
    make_campaign(session, analyst, name="Spring")
    _import(
        session,
        analyst,
        _csv(INTERNAL_HEADER, *_internal_rows("Spring", date(2026, 11, 1), 7)),
    )

    summary = _import(
        session,
        analyst,
        _csv(INTERNAL_HEADER, *_internal_rows("Spring", date(2026, 11, 5), 5, 555)),
    )

    assert (summary.inserted, summary.updated) == (2, 3)
    rows = _kpi_rows(session)
    assert len(rows) == 9
    assert [r[3] for r in rows] == [100] * 4 + [555] * 5


def test_preview_reports_without_writing(session):
    analyst = make_user(session, "analyst")
    make_campaign(session, analyst, name="Winter Sale 2026")

    summary = preview_file(
        session,
        actor=analyst,
        file_name="g.csv",
        data=_sample("google_ads_campaigns_by_day.csv"),
        options=CREATE,
        today=TODAY,
    )

    assert summary.status == "preview" and summary.ok
    assert (summary.inserted, summary.updated, summary.rejected) == (14, 0, 0)
    assert [u.name for u in summary.unknown_campaigns] == ["Café Lumière – Launch"]
    assert summary.preview[0]["campaign"] == "Winter Sale 2026"
    assert summary.preview[7]["campaign_id"] is None  # to be created
    assert len(summary.preview) == 14
    assert _count(session, KpiDaily) == 0 and _count(session, Import) == 0
    assert _count(session, Campaign) == 1


def test_progress_is_reported_per_chunk(session, monkeypatch):
    monkeypatch.setattr(importers, "CHUNK_ROWS", 4)
    analyst = make_user(session, "analyst")
    calls = []

    _import(
        session,
        analyst,
        _sample("internal_kpis.csv"),
        options=ImportOptions(create_campaigns=False, keep_valid=True),
        progress=lambda done, total: calls.append((done, total)),
    )

    assert calls == [(4, 14), (8, 14), (12, 14), (14, 14)]


def test_an_unreadable_file_is_recorded_as_rejected(session):
    analyst = make_user(session, "analyst")

    summary = _import(session, analyst, b"a,b\n1,2\n", "odd.csv")

    assert summary.status == "rejected" and summary.format is None
    assert "no known header row" in summary.messages()[0]
    record = session.get(Import, summary.import_id)
    assert record is not None and record.format == "unknown"


def test_only_analysts_and_admins_import(session):
    for role in ("viewer", "approver"):
        actor = make_user(session, role)
        with pytest.raises(PermissionDenied):
            import_file(session, actor=actor, file_name="x.csv", data=b"x")
        with pytest.raises(PermissionDenied):
            imports.list_imports(session, actor=actor)
    admin = make_user(session, "admin")
    assert _import(session, admin, _sample("internal_kpis.csv"), options=CREATE).ok


def test_history_lists_imports_newest_first_with_their_reports(session):
    analyst = make_user(session, "analyst", "ana")
    first = _import(session, analyst, _sample("internal_kpis.csv"))
    second = _import(session, analyst, _sample("internal_kpis.csv"), options=CREATE)

    history = imports.list_imports(session, actor=analyst)

    assert history["id"].tolist() == [second.import_id, first.import_id]
    assert history["status"].tolist() == ["imported", "rejected"]
    assert history["user"].tolist() == ["ana", "ana"]
    report = imports.import_report(session, actor=analyst, import_id=first.import_id)
    assert report["unknown_campaigns"][0]["name"] == "Winter Sale 2026"
    with pytest.raises(NotFound):
        imports.import_report(session, actor=analyst, import_id=999)


# -- the upsert on its own ----------------------------------------------------


def test_upsert_kpis_inserts_then_updates_and_refuses_repeated_keys(session: Session):
    analyst = make_user(session, "analyst")
    spring = make_campaign(session, analyst, name="Spring")
    frame = pd.DataFrame(
        {
            "campaign_id": [spring.id] * 2,
            "source": ["meta", "meta"],
            "day": [date(2026, 11, 1), date(2026, 11, 2)],
            "impressions": [10, 20],
            "clicks": [1, 2],
            "spend": [1.0, 2.0],
            "conversions": [0.0, 1.0],
            "revenue": [0.0, 5.0],
            "budget": [float("nan"), 30.0],
        }
    )

    assert upsert_kpis(session, frame) == (2, 0)
    assert upsert_kpis(session, frame.assign(impressions=[11, 21])) == (0, 2)
    session.commit()

    rows = session.exec(select(KpiDaily).order_by(col(KpiDaily.day))).all()
    assert [(r.impressions, r.budget, r.eligible_impressions) for r in rows] == [
        (11, None, None),
        (21, 30.0, None),
    ]
    with pytest.raises(ValueError, match="appears twice"):
        upsert_kpis(session, pd.concat([frame, frame]))


def test_a_campaign_created_in_one_chunk_gets_the_period_of_the_whole_file(
    session, monkeypatch
):
    monkeypatch.setattr(importers, "CHUNK_ROWS", 3)
    analyst = make_user(session, "analyst")
    rows = _internal_rows("Spring", date(2026, 11, 1), 8)

    summary = _import(session, analyst, _csv(INTERNAL_HEADER, *rows), options=CREATE)

    assert (summary.status, summary.inserted) == ("imported", 8)
    assert summary.report["warnings"] == 0
    spring = session.exec(select(Campaign)).one()
    assert (spring.start_date, spring.end_date) == (
        date(2026, 11, 1),
        date(2026, 11, 8),
    )
    assert spring.currency == "USD"


def test_a_new_campaign_on_several_sources_is_created_once(session):
    analyst = make_user(session, "analyst")
    data = _csv(
        "campaign,day,source,impressions,clicks,spend",
        "Spring,2026-11-01,meta,10,1,1.00",
        "Spring,2026-11-01,tiktok,10,1,1.00",
        "spring ,2026-11-02,google_ads,10,1,1.00",
    )

    summary = _import(session, analyst, data, options=CREATE)

    assert (summary.status, summary.inserted) == ("imported", 3)
    (spring,) = session.exec(select(Campaign)).all()
    assert (spring.name, spring.end_date) == ("Spring", date(2026, 11, 2))
    assert len(summary.unknown_campaigns) == 1
    assert summary.unknown_campaigns[0].rows == 3


def test_a_new_campaign_needs_a_currency_from_the_file_or_the_options(session):
    analyst = make_user(session, "analyst")
    data = _sample("internal_kpis.csv")

    summary = _import(
        session, analyst, data, options=ImportOptions(create_campaigns=True)
    )

    assert summary.status == "rejected"
    assert "choose a currency for new campaigns" in summary.messages()[0]
    with pytest.raises(ValidationFailed, match="currency"):
        _import(session, analyst, data, options=ImportOptions(currency="dollars"))
    with pytest.raises(ValidationFailed, match="format"):
        _import(session, analyst, data, options=ImportOptions(format="bing"))


def test_a_messy_utf16_export_and_an_xlsx_store_the_same_facts(session):
    analyst = make_user(session, "analyst")
    spring = make_campaign(session, analyst, name="Spring", currency="EUR")
    lines = [
        "Campaign report",
        "November 1, 2026 - November 2, 2026",
        "Day\tCampaign\tCost (EUR)\tImpr.\tClicks\tConv. value\tSearch impr. share",
        '2026-11-01\tSpring\t"1,200.50"\t"12,000"\t300\t--\t< 10%',
        "2026-11-02\tSpring\t99.50\t8000\t200\t12.00\t80%",
        "Total: Account\t--\t1,300.00\t20,000\t500\t12.00\t--",
    ]
    messy = "\r\n".join(lines).encode("utf-16")
    book = openpyxl.Workbook()
    for row in [
        ["Campaign report"],
        [
            "Day",
            "Campaign",
            "Cost",
            "Currency code",
            "Impr.",
            "Clicks",
            "Conv. value",
            "Search impr. share",
        ],
        [date(2026, 11, 1), "spring ", 1200.5, "EUR", 12000, 300, "--", "< 10%"],
        ["2026-11-02", "Spring", "99.50", "EUR", "8,000", 200, 12, 0.8],
    ]:
        book.active.append(row)
    buffer = io.BytesIO()
    book.save(buffer)

    stored = []
    for name, data in (("messy.csv", messy), ("messy.xlsx", buffer.getvalue())):
        summary = _import(session, analyst, data, name)
        assert summary.status == "imported", summary.messages()
        warnings = [i["code"] for i in summary.issues if i["level"] == "warning"]
        assert warnings == ["no_conversions", "share_bound"]
        stored.append(
            [
                (
                    r.day,
                    r.spend,
                    r.impressions,
                    r.clicks,
                    r.revenue,
                    round(r.eligible_impressions),
                )
                for r in session.exec(
                    select(KpiDaily).order_by(col(KpiDaily.day))
                ).all()
            ]
        )
    assert (
        stored[0]
        == stored[1]
        == [
            (date(2026, 11, 1), 1200.5, 12000, 300, 0.0, 120000),
            (date(2026, 11, 2), 99.5, 8000, 200, 12.0, 10000),
        ]
    )
    assert {r[0] for r in _kpi_rows(session)} == {spring.id}
