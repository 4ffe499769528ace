"""Creating retrospectives and generating their insights, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from core import rules as engine
from core.errors import (
    InvalidTransition,
    NotFound,
    PermissionDenied,
    StaleVersion,
    ValidationFailed,
)
from core.models import AuditEvent, Campaign, Insight, Retrospective, Role, utcnow
from core.services import evaluation, retrospectives
from core.services import rules as rule_service
from core.services.permissions import Actor
from tests.factories import add_kpis, make_campaign, make_user

START = date(2026, 11, 1)


@pytest.fixture
def analyst(session: Session) -> Actor:
    rule_service.ensure_builtin_rules(session)
    session.commit()
    return make_user(session, Role.ANALYST)


def failing_campaign(session: Session, owner: Actor, **fields: Any) -> Campaign:
    """Meta: ROAS 3.0 on day 1 (100 spend), 0.1 on day 2 (900 spend).

    The mean of the daily ratios is 1.55; the ratio of sums is 390 / 1,000 = 0.39.
    Google Ads is healthy and too small for the ROAS floor on its own.
    """
    campaign = make_campaign(
        session, owner, end_date=date(2026, 11, 2), currency="EUR", **fields
    )
    healthy = {"impressions": 50_000, "clicks": 1_000, "conversions": 50.0}
    add_kpis(session, campaign, "meta", START, 1, spend=100.0, revenue=300.0, **healthy)
    add_kpis(
        session,
        campaign,
        "meta",
        date(2026, 11, 2),
        1,
        spend=900.0,
        revenue=90.0,
        **healthy,
    )
    add_kpis(
        session,
        campaign,
        "google_ads",
        START,
        2,
        spend=100.0,
        revenue=400.0,
        **healthy,
    )
    return campaign


def created(session: Session, actor: Actor, campaign: Campaign) -> int:
    assert campaign.id is not None
    row = retrospectives.create_retrospective(
        session, actor=actor, campaign_id=campaign.id
    )
    session.commit()
    return row.id


def generate(session: Session, actor: Actor, retro_id: int, **kwargs: Any) -> Any:
    result = retrospectives.generate_insights(
        session, actor=actor, retrospective_id=retro_id, **kwargs
    )
    session.commit()
    return result


def insights(session: Session, retro_id: int) -> list[Insight]:
    query = select(Insight).where(Insight.retrospective_id == retro_id)
    return list(session.scalars(query.order_by(col(Insight.id))))


# -- creating -----------------------------------------------------------------


def test_analyst_creates_a_pending_retrospective_over_the_campaign_run(
    session: Session, analyst: Actor
) -> None:
    campaign = failing_campaign(session, analyst)

    row = retrospectives.create_retrospective(
        session, actor=analyst, campaign_id=campaign.id or 0
    )

    assert row.status == "pending"
    assert (row.period_start, row.period_end) == (START, date(2026, 11, 2))
    assert row.campaign == campaign.name
    events = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "retrospective.create")
    ).all()
    assert [e.target_id for e in events] == [str(row.id)]


@pytest.mark.parametrize("role", [Role.VIEWER, Role.APPROVER])
def test_only_analysts_and_admins_create(
    session: Session, analyst: Actor, role: Role
) -> None:
    someone = make_user(session, role)
    campaign = failing_campaign(session, someone)

    with pytest.raises(PermissionDenied):
        retrospectives.create_retrospective(
            session, actor=someone, campaign_id=campaign.id or 0
        )


def test_second_retrospective_for_a_campaign_is_refused(
    session: Session, analyst: Actor
) -> None:
    campaign = failing_campaign(session, analyst, name="Winter Sale")
    first = created(session, analyst, campaign)

    with pytest.raises(ValidationFailed, match=f"already has retrospective #{first}"):
        retrospectives.create_retrospective(
            session, actor=analyst, campaign_id=campaign.id or 0
        )


def test_campaign_without_kpi_data_is_refused(session: Session, analyst: Actor) -> None:
    campaign = make_campaign(session, analyst, name="Empty")

    with pytest.raises(ValidationFailed, match="no KPI data"):
        retrospectives.create_retrospective(
            session, actor=analyst, campaign_id=campaign.id or 0
        )
    assert session.scalars(select(Retrospective)).all() == []


def test_period_with_start_after_end_is_refused(
    session: Session, analyst: Actor
) -> None:
    campaign = failing_campaign(session, analyst)

    with pytest.raises(ValidationFailed, match=r"^period:"):
        retrospectives.create_retrospective(
            session,
            actor=analyst,
            campaign_id=campaign.id or 0,
            period_start=date(2026, 11, 5),
            period_end=START,
        )


def test_unknown_campaign_is_not_found(session: Session, analyst: Actor) -> None:
    with pytest.raises(NotFound):
        retrospectives.create_retrospective(session, actor=analyst, campaign_id=999)


# -- generating ---------------------------------------------------------------


def test_generation_follows_the_ratio_of_sums(session: Session, analyst: Actor) -> None:
    retro_id = created(session, analyst, failing_campaign(session, analyst))

    result = generate(session, analyst, retro_id)

    stored = insights(session, retro_id)
    problems = {(i.source, i.rule_key) for i in stored if i.finding == "triggered"}
    thin = {(i.source, i.rule_key) for i in stored if i.finding == "not_enough_data"}
    # Meta: 390 / 1,000 = 0.39; whole campaign: 1,190 / 1,200 = 0.99, healthy.
    assert problems == {("meta", "critical_roas")}
    # Google Ads has 200 of spend, below the ROAS floor of 500.
    assert thin == {("google_ads", "critical_roas")}
    assert result.status == "draft"
    assert (result.problems, result.not_enough_data) == (1, 1)


def test_insight_carries_its_evidence_and_actions(
    session: Session, analyst: Actor
) -> None:
    retro_id = created(session, analyst, failing_campaign(session, analyst))

    generate(session, analyst, retro_id)

    meta = next(i for i in insights(session, retro_id) if i.source == "meta")
    assert meta.metric == "roas"
    assert meta.observed == pytest.approx(0.39)
    assert meta.threshold == 0.5
    assert meta.severity == "critical"
    assert meta.sample_size == 1_000
    assert meta.rule_version == 1
    assert meta.interval_low is None and meta.interval_high is None
    assert meta.origin == "rule"
    assert meta.title == "Critical ROAS: ROAS 0.39 on Meta"
    assert "0.39 on Meta from 1 Nov 2026 to 2 Nov 2026" in meta.text
    assert "1,000.00 EUR of spend" in meta.text
    assert meta.actions == list(engine.builtin("critical_roas").actions)


def test_rate_insight_stores_its_wilson_interval(
    session: Session, analyst: Actor
) -> None:
    campaign = make_campaign(session, analyst, end_date=START)
    add_kpis(
        session,
        campaign,
        "tiktok",
        START,
        1,
        impressions=100_000,
        clicks=300,
        spend=300.0,
        conversions=30.0,
        revenue=3_000.0,
    )
    retro_id = created(session, analyst, campaign)

    generate(session, analyst, retro_id)

    ctr = [i for i in insights(session, retro_id) if i.rule_key == "low_ctr"]
    assert {i.source for i in ctr} == {None, "tiktok"}
    assert ctr[0].interval_low == pytest.approx(0.002680, abs=1e-6)
    assert ctr[0].interval_high == pytest.approx(0.003359, abs=1e-6)
    assert "0.27% to 0.34%" in ctr[0].text


def test_generation_uses_only_the_retrospective_period(
    session: Session, analyst: Actor
) -> None:
    campaign = failing_campaign(session, analyst)
    # After the campaign ended: a great day that must not rescue its ROAS.
    add_kpis(
        session, campaign, "meta", date(2026, 11, 3), 1, spend=100.0, revenue=9_000.0
    )
    retro_id = created(session, analyst, campaign)

    generate(session, analyst, retro_id)

    meta = [i for i in insights(session, retro_id) if i.source == "meta"]
    assert [i.observed for i in meta] == [pytest.approx(0.39)]


def test_generation_moves_pending_to_draft_through_generating(
    session: Session, analyst: Actor
) -> None:
    retro_id = created(session, analyst, failing_campaign(session, analyst))
    seen: list[tuple[int, str]] = []

    generate(session, analyst, retro_id, progress=lambda p, m: seen.append((p, m)))

    retro = session.get(Retrospective, retro_id)
    assert retro is not None and retro.status == "draft"
    assert retro.version == 3
    steps = session.scalars(
        select(AuditEvent)
        .where(AuditEvent.action == "retrospective.status")
        .order_by(col(AuditEvent.id))
    ).all()
    assert [e.after["status"] for e in steps if e.after] == ["generating", "draft"]
    percents = [p for p, _ in seen]
    assert percents == sorted(percents) and percents[-1] == 100


def test_generation_without_regenerate_refuses_when_insights_exist(
    session: Session, analyst: Actor
) -> None:
    retro_id = created(session, analyst, failing_campaign(session, analyst))
    generate(session, analyst, retro_id)

    with pytest.raises(InvalidTransition, match="has insights already"):
        retrospectives.generate_insights(
            session, actor=analyst, retrospective_id=retro_id
        )


def add_manual(session: Session, retro_id: int) -> None:
    session.add(
        Insight(
            retrospective_id=retro_id,
            origin="manual",
            severity="medium",
            title="Creative fatigue after week 2",
            text="Seen in the ad-level report.",
        )
    )
    session.commit()


def dismiss(session: Session, retro_id: int, source: str | None) -> None:
    for insight in insights(session, retro_id):
        if insight.source == source and insight.origin == "rule":
            insight.dismissed = True
            insight.dismissed_reason = "known tracking gap"
            session.add(insight)
    session.commit()


def test_regeneration_replaces_rule_insights_and_keeps_manual_ones(
    session: Session, analyst: Actor
) -> None:
    retro_id = created(session, analyst, failing_campaign(session, analyst))
    generate(session, analyst, retro_id)
    add_manual(session, retro_id)
    dismiss(session, retro_id, "meta")
    before = {i.id for i in insights(session, retro_id) if i.origin == "rule"}

    result = generate(session, analyst, retro_id, regenerate=True)

    after = insights(session, retro_id)
    rule_ids = {i.id for i in after if i.origin == "rule"}
    assert rule_ids and not rule_ids & before
    assert [i.title for i in after if i.origin == "manual"] == [
        "Creative fatigue after week 2"
    ]
    meta = next(i for i in after if i.source == "meta")
    assert meta.dismissed and meta.dismissed_reason == "known tracking gap"
    google = next(i for i in after if i.source == "google_ads")
    assert not google.dismissed
    assert result.manual_kept == 1


def test_regeneration_records_the_edited_rule_version(
    session: Session, analyst: Actor
) -> None:
    admin = make_user(session, Role.ADMIN)
    retro_id = created(session, analyst, failing_campaign(session, analyst))
    generate(session, analyst, retro_id)
    current = rule_service.get_rule(session, actor=admin, key="critical_roas")
    rule_service.update_rule(
        session,
        actor=admin,
        spec=engine.RuleSpec(**{**current.spec.__dict__, "threshold": 0.3}),
        expected_version=current.version,
    )
    session.commit()

    generate(session, analyst, retro_id, regenerate=True)

    meta = next(i for i in insights(session, retro_id) if i.source == "meta")
    # 0.39 is no longer below the critical 0.3: the ladder falls to poor_roas.
    assert (meta.rule_key, meta.rule_version) == ("poor_roas", 1)
    thin = next(i for i in insights(session, retro_id) if i.source == "google_ads")
    assert (thin.rule_key, thin.rule_version) == ("critical_roas", 2)


def approve_directly(session: Session, retro_id: int, approver: Actor) -> None:
    retro = session.get(Retrospective, retro_id)
    assert retro is not None
    retro.status = "approved"
    retro.approved_by_id = approver.id
    retro.approved_at = utcnow().replace(year=2026, month=12, day=3)
    session.add(retro)
    session.commit()


@pytest.mark.parametrize("regenerate", [False, True])
def test_approved_retrospective_is_never_touched(
    session: Session, analyst: Actor, regenerate: bool
) -> None:
    approver = make_user(session, Role.APPROVER, name="Dana Reyes")
    retro_id = created(session, analyst, failing_campaign(session, analyst))
    generate(session, analyst, retro_id)
    approve_directly(session, retro_id, approver)
    before = [(i.id, i.title) for i in insights(session, retro_id)]

    with pytest.raises(InvalidTransition, match="Approved on 3 Dec by Dana Reyes"):
        retrospectives.generate_insights(
            session, actor=analyst, retrospective_id=retro_id, regenerate=regenerate
        )
    session.rollback()

    assert [(i.id, i.title) for i in insights(session, retro_id)] == before


def test_failure_marks_failed_keeps_old_insights_and_records_error(
    session: Session, analyst: Actor, monkeypatch: pytest.MonkeyPatch
) -> None:
    retro_id = created(session, analyst, failing_campaign(session, analyst))
    generate(session, analyst, retro_id)
    add_manual(session, retro_id)
    before = [i.id for i in insights(session, retro_id)]

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(engine, "text_for", broken)
    result = generate(session, analyst, retro_id, regenerate=True)

    retro = session.get(Retrospective, retro_id)
    assert retro is not None
    assert result.status == retro.status == "failed"
    assert retro.error == "RuntimeError: disk on fire"
    assert [i.id for i in insights(session, retro_id)] == before


def test_failed_retrospective_can_be_generated_again(
    session: Session, analyst: Actor, monkeypatch: pytest.MonkeyPatch
) -> None:
    retro_id = created(session, analyst, failing_campaign(session, analyst))
    with monkeypatch.context() as patch:
        patch.setattr(engine, "evaluate", lambda *a, **k: 1 / 0)
        assert generate(session, analyst, retro_id).status == "failed"

    result = generate(session, analyst, retro_id)

    retro = session.get(Retrospective, retro_id)
    assert retro is not None
    assert result.status == retro.status == "draft"
    assert retro.error is None


def test_stale_version_is_refused(session: Session, analyst: Actor) -> None:
    retro_id = created(session, analyst, failing_campaign(session, analyst))

    with pytest.raises(StaleVersion):
        retrospectives.generate_insights(
            session, actor=analyst, retrospective_id=retro_id, expected_version=7
        )


def test_viewer_cannot_generate(session: Session, analyst: Actor) -> None:
    viewer = make_user(session, Role.VIEWER)
    retro_id = created(session, analyst, failing_campaign(session, viewer))

    with pytest.raises(PermissionDenied):
        retrospectives.generate_insights(
            session, actor=viewer, retrospective_id=retro_id
        )


def test_generation_without_kpis_in_the_period_is_refused(
    session: Session, analyst: Actor
) -> None:
    campaign = failing_campaign(session, analyst)
    retro = Retrospective(
        campaign_id=campaign.id or 0,
        status="pending",
        period_start=date(2027, 1, 1),
        period_end=date(2027, 1, 31),
    )
    session.add(retro)
    session.commit()

    with pytest.raises(ValidationFailed, match="no KPI data"):
        retrospectives.generate_insights(
            session, actor=analyst, retrospective_id=retro.id or 0
        )
    session.rollback()
    assert session.get(Retrospective, retro.id).status == "pending"  # type: ignore[union-attr]


# -- reading ------------------------------------------------------------------


def test_viewer_sees_only_retrospectives_of_own_campaigns(
    session: Session, analyst: Actor
) -> None:
    viewer = make_user(session, Role.VIEWER)
    other = make_user(session, Role.VIEWER)
    mine = created(session, analyst, failing_campaign(session, viewer))
    theirs = created(session, analyst, failing_campaign(session, other))

    listed = retrospectives.list_retrospectives(session, actor=viewer)
    everything = retrospectives.list_retrospectives(session, actor=analyst)

    assert [r.id for r in listed] == [mine]
    assert {r.id for r in everything} == {mine, theirs}
    with pytest.raises(PermissionDenied):
        retrospectives.get_retrospective(session, actor=viewer, retrospective_id=theirs)


def test_list_counts_open_problems_and_top_severity(
    session: Session, analyst: Actor
) -> None:
    retro_id = created(session, analyst, failing_campaign(session, analyst))
    generate(session, analyst, retro_id)

    (row,) = retrospectives.list_retrospectives(session, actor=analyst)

    assert (row.problems, row.not_enough_data, row.top_severity) == (1, 1, "critical")
    dismiss(session, retro_id, "meta")
    (row,) = retrospectives.list_retrospectives(session, actor=analyst)
    assert (row.problems, row.top_severity) == (0, None)


def test_detail_has_kpis_per_source_and_overall(
    session: Session, analyst: Actor
) -> None:
    retro_id = created(session, analyst, failing_campaign(session, analyst))
    generate(session, analyst, retro_id)

    detail = retrospectives.get_retrospective(
        session, actor=analyst, retrospective_id=retro_id
    )

    kpis = detail.kpis.set_index(detail.kpis["source"].fillna("overall"))
    assert list(kpis.index) == ["google_ads", "meta", "overall"]
    assert kpis.loc["meta", "roas"] == pytest.approx(0.39)
    assert kpis.loc["overall", "roas"] == pytest.approx(1_190 / 1_200)
    assert kpis.loc["overall", "roi"] == pytest.approx(1_190 / 1_200 - 1)
    assert [i.finding for i in detail.insights] == ["triggered", "not_enough_data"]


def test_detail_as_dict_is_json_ready(session: Session, analyst: Actor) -> None:
    retro_id = created(session, analyst, failing_campaign(session, analyst))
    generate(session, analyst, retro_id)
    add_manual(session, retro_id)
    detail = retrospectives.get_retrospective(
        session, actor=analyst, retrospective_id=retro_id
    )

    data = retrospectives.detail_as_dict(detail)

    assert data["kpis"]["sources"]["meta"]["roas"] == pytest.approx(0.39)
    assert data["kpis"]["overall"]["budget_utilisation"] is None
    manual = next(i for i in data["insights"] if i["origin"] == "manual")
    assert manual["rule_key"] is None and manual["interval"] is None


# -- batch --------------------------------------------------------------------


def count_queries(engine_: Engine) -> list[str]:
    statements: list[str] = []

    def remember(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append(statement)

    event.listen(engine_, "before_cursor_execute", remember)
    return statements


def test_batch_evaluates_many_campaigns_with_one_aggregate(
    engine: Engine, session: Session, analyst: Actor
) -> None:
    campaigns = [failing_campaign(session, analyst) for _ in range(6)]
    specs = evaluation.stored_rules(session)
    statements = count_queries(engine)

    found = evaluation.evaluate_campaigns(
        session, campaign_ids=[c.id or 0 for c in campaigns], rule_set=specs
    )

    assert len(statements) == 1
    problems = found[found["finding"] == "triggered"]
    assert sorted(problems["campaign_id"]) == sorted(c.id for c in campaigns)
    assert set(problems["source"]) == {"meta"}
