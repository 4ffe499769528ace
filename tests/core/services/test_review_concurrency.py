"""Twenty approvers press Approve at once: exactly one wins, on both databases."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from core.db import session_scope
from core.errors import DomainError, InvalidTransition, StaleVersion
from core.models import AuditEvent, Retrospective, Role
from core.services import retrospectives, review
from core.services import rules as rule_service
from core.services.permissions import Actor
from tests.core.services.test_review import poor_campaign
from tests.factories import make_user

THREADS = 20
SOMEONE_ELSE = "Someone else"


def submitted_retrospective(session: Session) -> tuple[int, int]:
    rule_service.ensure_builtin_rules(session)
    session.commit()
    viewer = make_user(session, Role.VIEWER)
    analyst = make_user(session, Role.ANALYST)
    campaign = poor_campaign(session, viewer)
    row = retrospectives.create_retrospective(
        session, actor=analyst, campaign_id=campaign.id or 0
    )
    retrospectives.generate_insights(session, actor=analyst, retrospective_id=row.id)
    review.submit(session, actor=analyst, retrospective_id=row.id, summary="Poor.")
    session.commit()
    retro = session.get(Retrospective, row.id)
    assert retro is not None
    return row.id, retro.version


def approve_at_once(
    engine: Engine, approvers: list[Actor], retro_id: int, version: int | None
) -> list[object]:
    """Each thread its own transaction, all released together by a barrier."""
    barrier = threading.Barrier(len(approvers))
    outcomes: list[object] = [None] * len(approvers)

    def press(index: int, approver: Actor) -> None:
        barrier.wait()
        try:
            with session_scope(engine) as session:
                review.approve(
                    session,
                    actor=approver,
                    retrospective_id=retro_id,
                    expected_version=version,
                )
            outcomes[index] = "approved"
        except DomainError as exc:
            outcomes[index] = exc

    threads = [
        threading.Thread(target=press, args=(i, a)) for i, a in enumerate(approvers)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return outcomes


@pytest.mark.parametrize("with_version", [True, False], ids=["page", "cli"])
def test_twenty_approvers_at_once_exactly_one_wins(
    engine: Engine, session: Session, with_version: bool
):
    retro_id, version = submitted_retrospective(session)
    approvers = [make_user(session, Role.APPROVER) for _ in range(THREADS)]
    session.close()

    outcomes = approve_at_once(
        engine, approvers, retro_id, version if with_version else None
    )

    kinds = Counter(type(o).__name__ if o != "approved" else o for o in outcomes)
    refusals = [o for o in outcomes if isinstance(o, DomainError)]
    assert kinds["approved"] == 1, kinds
    assert len(refusals) == THREADS - 1, kinds
    for refusal in refusals:
        assert isinstance(refusal, StaleVersion | InvalidTransition)
        assert str(refusal).startswith(SOMEONE_ELSE), str(refusal)
    if with_version:
        # The page sends the version it showed: every loser is stale.
        assert kinds["StaleVersion"] == THREADS - 1, kinds
    with Session(engine) as check:
        approvals = check.scalars(
            select(AuditEvent).where(AuditEvent.action == "retrospective.approve")
        ).all()
        retro = check.get(Retrospective, retro_id)
    assert len(approvals) == 1
    assert retro is not None
    assert (retro.status, retro.version) == ("approved", version + 1)
    winner = approvers[outcomes.index("approved")]
    assert retro.approved_by_id == winner.id == approvals[0].user_id
    print(f"{engine.url.get_backend_name()} {dict(kinds)}")
