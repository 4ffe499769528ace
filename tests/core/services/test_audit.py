import csv
import io
from datetime import timedelta

import pytest

from core.errors import PermissionDenied
from core.models import utcnow
from core.services import audit
from tests.factories import make_user


def _event(session, actor, action, **fields):
    audit.record(session, actor=actor, action=action, **fields)
    session.commit()


def test_only_admins_read_the_audit_log(session):
    for role in ("viewer", "analyst", "approver"):
        with pytest.raises(PermissionDenied):
            audit.list_events(session, actor=make_user(session, role))
    assert audit.list_events(session, actor=make_user(session, "admin")).empty


def test_filters_by_user_action_target_and_dates(session):
    admin = make_user(session, "admin", "root")
    analyst = make_user(session, "analyst", "sam")
    _event(session, analyst, "insight.edit", target_type="insight", target_id=7)
    _event(session, admin, "user.role", target_type="user", target_id=2)
    _event(
        session,
        analyst,
        "retrospective.submit",
        target_type="retrospective",
        target_id=7,
    )

    by_user = audit.list_events(
        session, actor=admin, filters=audit.AuditFilter(user="sam")
    )
    assert set(by_user["action"]) == {"insight.edit", "retrospective.submit"}
    by_action = audit.list_events(
        session, actor=admin, filters=audit.AuditFilter(action="user.role")
    )
    assert list(by_action["username"]) == ["root"]
    by_target = audit.list_events(
        session,
        actor=admin,
        filters=audit.AuditFilter(target_type="retrospective", target_id="7"),
    )
    assert list(by_target["action"]) == ["retrospective.submit"]
    today = utcnow().date()
    future = audit.AuditFilter(start=today + timedelta(days=1))
    assert audit.list_events(session, actor=admin, filters=future).empty
    assert (
        len(
            audit.list_events(
                session, actor=admin, filters=audit.AuditFilter(start=today, end=today)
            )
        )
        == 3
    )


def test_before_and_after_values_are_kept(session):
    admin = make_user(session, "admin")
    _event(
        session, admin, "rule.edit", before={"threshold": 0.7}, after={"threshold": 0.6}
    )
    row = audit.list_events(session, actor=admin).iloc[0]
    assert '"threshold": 0.7' in row["before"] and '"threshold": 0.6' in row["after"]


@pytest.mark.parametrize(
    "payload", ['=HYPERLINK("http://x")', "+1+2", "-3+4", "@SUM(A1)", " =1"]
)
def test_csv_cells_can_never_be_formulas(session, payload):
    admin = make_user(session, "admin")
    _event(session, admin, "insight.edit", target_id=payload, after={"text": payload})
    data = audit.to_csv(audit.list_events(session, actor=admin)).decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(data)))
    assert rows[0]["target_id"] == "'" + payload
    assert rows[0]["action"] == "insight.edit"


def test_plain_cells_are_unchanged_in_csv(session):
    admin = make_user(session, "admin", "plain")
    _event(session, admin, "user.create", target_type="user", target_id=5)
    rows = list(
        csv.DictReader(
            io.StringIO(
                audit.to_csv(audit.list_events(session, actor=admin)).decode(
                    "utf-8-sig"
                )
            )
        )
    )
    assert rows[0]["username"] == "plain" and rows[0]["target_id"] == "5"
