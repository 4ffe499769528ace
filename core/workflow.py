"""The retrospective state machine (DESIGN.md, "Workflow"); pure, no I/O.

pending -> generating -> draft -> in_review -> approved
              |            ^          |
              v            |          v
            failed --------+    changes_requested -> (edit) -> draft
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from core.errors import InvalidTransition
from core.models import RetroStatus


class Step(StrEnum):
    GENERATE = "generate"
    FINISH_GENERATION = "finish generation"
    FAIL = "fail"
    EDIT = "edit"
    SUBMIT = "submit"
    APPROVE = "approve"
    REQUEST_CHANGES = "request changes"
    REOPEN = "reopen"


S = RetroStatus
TRANSITIONS: dict[tuple[RetroStatus, Step], RetroStatus] = {
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


@dataclass(frozen=True)
class StateContext:
    """What a refusal message may mention: who decided and when."""

    approved_by: str | None = None
    approved_at: datetime | None = None
    submitted_by: str | None = None
    submitted_at: datetime | None = None


def allowed_steps(status: RetroStatus) -> list[Step]:
    return [step for (source, step) in TRANSITIONS if source is status]


def next_status(
    status: RetroStatus | str, step: Step, context: StateContext | None = None
) -> RetroStatus:
    """The status after `step`; InvalidTransition with a message a user can act on."""
    current = RetroStatus(status)
    target = TRANSITIONS.get((current, step))
    if target is None:
        raise InvalidTransition(refusal(current, step, context or StateContext()))
    return target


def _when(moment: datetime | None) -> str:
    return f" on {moment.day} {moment:%b}" if moment else ""


def refusal(status: RetroStatus, step: Step, context: StateContext) -> str:
    """Why `step` cannot happen now, and what would make it possible."""
    if status is S.APPROVED:
        who = f" by {context.approved_by}" if context.approved_by else ""
        return (
            f"Approved{_when(context.approved_at)}{who}; it can no longer be "
            "edited. An admin can reopen it with a reason."
        )
    if status is S.IN_REVIEW:
        who = f" by {context.submitted_by}" if context.submitted_by else ""
        return (
            f"Submitted for approval{_when(context.submitted_at)}{who}; it cannot "
            f"{step.value} until an approver approves it or requests changes."
        )
    if status is S.GENERATING:
        return "Insights are being generated; wait for the job to finish."
    if status is S.PENDING:
        return "No insights have been generated yet; generate them first."
    if status is S.FAILED:
        return "Generation failed; retry generation first."
    if status is S.CHANGES_REQUESTED and step is Step.SUBMIT:
        return "Changes were requested; edit the retrospective before submitting again."
    if step is Step.REOPEN:
        return "Only an approved retrospective can be reopened."
    label = status.value.replace("_", " ")
    return f"A retrospective in status '{label}' cannot {step.value}."
