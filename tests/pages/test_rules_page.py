"""Rules page: everyone reads, admins edit with a preview and add new rules."""

from __future__ import annotations

from datetime import date

import pytest
from sqlmodel import Session, select
from streamlit.testing.v1 import AppTest

from core.models import Role, Rule
from core.services import retrospectives
from core.services import rules as rule_service
from core.services.permissions import Actor
from tests.factories import add_kpis, make_campaign, make_user
from tests.pages.conftest import page_as

PAGE = "pages/rules.py"
START = date(2026, 11, 1)


def open_page(actor: Actor) -> AppTest:
    return page_as(PAGE, actor).run()


@pytest.fixture
def seeded(session: Session) -> Session:
    rule_service.ensure_builtin_rules(session)
    session.commit()
    return session


def borderline_retrospective(session: Session) -> None:
    """One retrospective at ROAS 0.75: not poor now, poor below 0.8."""
    analyst = make_user(session, Role.ANALYST)
    campaign = make_campaign(session, analyst, name="Borderline", end_date=START)
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
        revenue=750.0,
    )
    retrospectives.create_retrospective(
        session, actor=analyst, campaign_id=campaign.id or 0
    )
    session.commit()


def stored(session: Session, key: str) -> Rule:
    session.expire_all()
    rule = session.scalars(select(Rule).where(Rule.key == key)).one()
    session.commit()
    return rule


def test_viewer_reads_rules_without_edit_controls(seeded: Session) -> None:
    viewer = make_user(seeded, Role.VIEWER)

    at = open_page(viewer)

    assert not at.exception
    table = at.dataframe[0].value
    assert set(table["Key"]) >= {"poor_roas", "low_ctr"}
    assert "CTR < 0.50%" in set(table["Condition"])
    assert not [b for b in at.button if b.key == "rules_save"]
    assert "Only admins change rules." in [c.value for c in at.caption]


def test_admin_sees_the_impact_before_saving(seeded: Session) -> None:
    admin = make_user(seeded, Role.ADMIN)
    borderline_retrospective(seeded)
    at = open_page(admin)

    at.selectbox(key="rules_pick").set_value("poor_roas").run()
    at.number_input(key="rules_poor_roas_v1_threshold").set_value(0.8).run()

    assert not at.exception
    warnings = [w.value for w in at.warning]
    assert any("add 2 and remove 0 insights" in w for w in warnings)
    examples = at.dataframe[1].value
    assert set(examples["Campaign"]) == {"Borderline"}
    assert stored(seeded, "poor_roas").threshold == 0.7


def test_admin_saves_an_edit(seeded: Session) -> None:
    admin = make_user(seeded, Role.ADMIN)
    at = open_page(admin)
    at.selectbox(key="rules_pick").set_value("low_ctr").run()

    at.number_input(key="rules_low_ctr_v1_threshold").set_value(0.8)
    at.selectbox(key="rules_low_ctr_v1_severity").set_value("high")
    at.text_area(key="rules_low_ctr_v1_actions").set_value("Test new hooks.\n\n")
    at.button(key="rules_save").click().run()

    assert not at.exception
    rule = stored(seeded, "low_ctr")
    assert (rule.threshold, rule.severity, rule.version) == (0.008, "high", 2)
    assert rule.actions == ["Test new hooks."]
    assert "Saved rule low\\_ctr \\(version 2\\)\\." in [s.value for s in at.success]
    # The form now shows the stored version's values.
    assert at.number_input(key="rules_low_ctr_v2_threshold").value == pytest.approx(0.8)


def test_untouched_percent_threshold_is_not_an_edit(seeded: Session) -> None:
    admin = make_user(seeded, Role.ADMIN)
    at = open_page(admin)

    at.selectbox(key="rules_pick").set_value("overspend").run()

    # 110% typed back as 1.1 exactly: no preview, nothing to save.
    assert not at.warning and not at.info
    at.button(key="rules_save").click().run()
    assert stored(seeded, "overspend").version == 1


def test_admin_adds_a_rule_on_another_metric(seeded: Session) -> None:
    admin = make_user(seeded, Role.ADMIN)
    at = open_page(admin)

    at.text_input(key="rules_new_key").set_value("high_cpa").run()
    at.selectbox(key="rules_new_metric").set_value("cpa").run()
    at.text_input(key="rules_new_cpa_name").set_value("High CPA")
    at.selectbox(key="rules_new_cpa_comparison").set_value(">")
    at.number_input(key="rules_new_cpa_threshold").set_value(80.0)
    at.number_input(key="rules_new_cpa_floor").set_value(20.0)
    at.button(key="rules_create").click().run()

    assert not at.exception
    rule = stored(seeded, "high_cpa")
    assert (rule.metric, rule.comparison, rule.threshold) == ("cpa", ">", 80.0)
    assert (rule.evidence_floor, rule.builtin) == (20.0, False)


def test_invalid_new_rule_shows_the_field(seeded: Session) -> None:
    admin = make_user(seeded, Role.ADMIN)
    at = open_page(admin)

    at.text_input(key="rules_new_key").set_value("Bad Key").run()
    at.button(key="rules_create").click().run()

    assert at.error[0].value.startswith("key\\:")
