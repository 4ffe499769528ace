from datetime import UTC, datetime
from itertools import product

import pytest

from core.errors import InvalidTransition
from core.models import RetroStatus as S
from core.workflow import TRANSITIONS, StateContext, Step, allowed_steps, next_status

EXPECTED = {
    (S.PENDING, Step.GENERATE): S.GENERATING,
    (S.DRAFT, Step.GENERATE): S.GENERATING,
    (S.FAILED, Step.GENERATE): S.GENERATING,
    (S.CHANGES_REQUESTED, Step.GENERATE): S.GENERATING,
    (S.GENERATING, Step.FINISH_GENERATION): S.DRAFT,
    (S.GENERATING, Step.FAIL): S.FAILED,
    (S.PENDING, Step.FAIL): S.FAILED,
    (S.DRAFT, Step.EDIT): S.DRAFT,
    (S.CHANGES_REQUESTED, Step.EDIT): S.DRAFT,
    (S.DRAFT, Step.SUBMIT): S.IN_REVIEW,
    (S.IN_REVIEW, Step.APPROVE): S.APPROVED,
    (S.IN_REVIEW, Step.REQUEST_CHANGES): S.CHANGES_REQUESTED,
    (S.APPROVED, Step.REOPEN): S.DRAFT,
}


@pytest.mark.parametrize(("status", "step"), list(product(S, Step)))
def test_every_pair_follows_the_design(status, step):
    if (status, step) in EXPECTED:
        assert next_status(status, step) is EXPECTED[(status, step)]
    else:
        with pytest.raises(InvalidTransition):
            next_status(status, step)


def test_the_table_is_exactly_the_design():
    assert TRANSITIONS == EXPECTED


def test_editing_an_approved_retrospective_names_who_approved_it_and_when():
    context = StateContext(
        approved_by="Dana Reyes", approved_at=datetime(2026, 12, 3, tzinfo=UTC)
    )
    with pytest.raises(InvalidTransition) as refused:
        next_status("approved", Step.EDIT, context)
    assert str(refused.value).startswith(
        "Approved on 3 Dec by Dana Reyes; it can no longer be edited."
    )


def test_submitting_twice_says_it_waits_for_an_approver():
    with pytest.raises(InvalidTransition, match="until an approver"):
        next_status(S.IN_REVIEW, Step.SUBMIT, StateContext(submitted_by="Sam Patel"))


def test_reopening_a_draft_is_refused_with_a_reason():
    with pytest.raises(InvalidTransition, match="Only an approved"):
        next_status(S.DRAFT, Step.REOPEN)


def test_allowed_steps_of_a_draft():
    assert set(allowed_steps(S.DRAFT)) == {Step.GENERATE, Step.EDIT, Step.SUBMIT}
