"""Review and sign-off: edit insights on drafts, submit, approve or send back, reopen.

Every write checks and bumps the retrospective's version through
`retrospectives.change_status`, so two people acting on the same
retrospective never both succeed. Pages pass the version they showed
(`expected_version`); the CLI acts on the current one (None).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, select

from core import jobs
from core import rules as engine
from core.errors import InvalidTransition, PermissionDenied, ValidationFailed
from core.models import (
    Campaign,
    Insight,
    Retrospective,
    RetroStatus,
    Severity,
    User,
    utcnow,
)
from core.services import audit, reports, retrospectives
from core.services.permissions import Action, Actor, require
from core.services.retrospectives import RetroRow
from core.workflow import Step, next_status

logger = logging.getLogger(__name__)

S = RetroStatus
# Column limits and what a person can sensibly read in one insight.
MAX_TITLE = 300
MAX_TEXT = 10_000
MAX_ACTIONS = 20
MAX_ACTION = 500
MAX_NOTE = 20_000
# The fields of an insight an analyst may change in place.
EDITABLE = ("title", "text", "severity", "actions")

# Called inside approve() with the session and the retrospective id, after the
# snapshot is stored: renders and stores the signed PDF in the same transaction.
ReportHook = Callable[..., Any]


@dataclass(frozen=True)
class InsightEdit:
    """New values for an insight; None leaves a field as it is."""

    title: str | None = None
    text: str | None = None
    severity: str | None = None
    actions: Sequence[str] | None = None


# -- checks -------------------------------------------------------------------


def _retro(session: Session, actor: Actor, retrospective_id: int) -> Retrospective:
    return retrospectives.visible_retrospective(
        session, actor=actor, retro_id=retrospective_id
    )


def _text(value: str, field: str, *, limit: int, required: bool = True) -> str:
    cleaned = value.strip()
    if required and not cleaned:
        raise ValidationFailed(f"{field}: write something; it cannot be empty.")
    if len(cleaned) > limit:
        raise ValidationFailed(
            f"{field}: {len(cleaned):,} characters; at most {limit:,} are allowed."
        )
    return cleaned


def _severity(value: str) -> str:
    try:
        return Severity(value.strip().lower()).value
    except ValueError:
        allowed = ", ".join(s.value for s in Severity)
        raise ValidationFailed(
            f"severity: {value!r} is not one of {allowed}."
        ) from None


def _actions(values: Iterable[str]) -> list[str]:
    cleaned = [v.strip() for v in values if v and v.strip()]
    if len(cleaned) > MAX_ACTIONS:
        raise ValidationFailed(
            f"suggested actions: {len(cleaned)} given; at most {MAX_ACTIONS}."
        )
    for number, action in enumerate(cleaned, start=1):
        _text(action, f"suggested action {number}", limit=MAX_ACTION)
    return cleaned


def _insight_of(session: Session, retro: Retrospective, insight_id: int) -> Insight:
    insight = session.get(Insight, insight_id)
    if insight is None or insight.retrospective_id != retro.id:
        raise ValidationFailed(
            f"insight: #{insight_id} is not part of retrospective #{retro.id}."
        )
    return insight


def _check_step(
    session: Session, retro: Retrospective, step: Step, expected_version: int | None
) -> None:
    """Refuse early, before validating input, when the step cannot happen now."""
    retrospectives.check_version(retro, expected_version)
    next_status(retro.status, step, retrospectives.state_context(session, retro))


def _start_edit(
    session: Session, retro: Retrospective, actor: Actor, expected_version: int | None
) -> None:
    """The EDIT step: only drafts (and sent-back ones, which become drafts again)."""
    retrospectives.change_status(
        session,
        retro=retro,
        step=Step.EDIT,
        actor=actor,
        expected_version=expected_version,
        # Only a sent-back retrospective changes status here; that is audited.
        audit_action=(
            "retrospective.status" if retro.status == S.CHANGES_REQUESTED else None
        ),
    )


def _snapshot_of(insight: Insight) -> dict[str, Any]:
    return {
        "title": insight.title,
        "text": insight.text,
        "severity": insight.severity,
        "actions": list(insight.actions or ()),
        "dismissed": insight.dismissed,
        "dismissed_reason": insight.dismissed_reason,
    }


def _record_insight(
    session: Session,
    *,
    actor: Actor,
    action: str,
    insight: Insight,
    before: dict[str, Any] | None,
    reason: str | None = None,
) -> None:
    after = _snapshot_of(insight)
    if before is not None:
        changed = [k for k in after if before.get(k) != after[k]]
        before = {k: before[k] for k in changed}
        after = {k: after[k] for k in changed}
    audit.record(
        session,
        actor=actor,
        action=action,
        target_type="insight",
        target_id=insight.id,
        before={"retrospective_id": insight.retrospective_id, **(before or {})},
        after={
            "retrospective_id": insight.retrospective_id,
            **after,
            **({"reason": reason} if reason is not None else {}),
        },
    )


def _touch(insight: Insight, actor: Actor) -> None:
    insight.edited_by_id = actor.id
    insight.edited_at = utcnow()


# -- editing ------------------------------------------------------------------


def edit_insight(
    session: Session,
    *,
    actor: Actor,
    retrospective_id: int,
    insight_id: int,
    changes: InsightEdit,
    expected_version: int | None = None,
) -> None:
    """Change an insight's title, text, severity or suggested actions in place."""
    require(actor, Action.EDIT)
    retro = _retro(session, actor, retrospective_id)
    _check_step(session, retro, Step.EDIT, expected_version)
    insight = _insight_of(session, retro, insight_id)
    new: dict[str, Any] = {}
    if changes.title is not None:
        new["title"] = _text(changes.title, "title", limit=MAX_TITLE)
    if changes.text is not None:
        new["text"] = _text(changes.text, "text", limit=MAX_TEXT, required=False)
    if changes.severity is not None:
        new["severity"] = _severity(changes.severity)
    if changes.actions is not None:
        new["actions"] = _actions(changes.actions)
    before = _snapshot_of(insight)
    if all(before[k] == v for k, v in new.items()):
        raise ValidationFailed("Nothing changed: the insight already reads like that.")

    _start_edit(session, retro, actor, expected_version)
    for key, value in new.items():
        setattr(insight, key, value)
    _touch(insight, actor)
    session.add(insight)
    session.flush()
    _record_insight(
        session, actor=actor, action="insight.edit", insight=insight, before=before
    )


def set_dismissed(
    session: Session,
    *,
    actor: Actor,
    retrospective_id: int,
    insight_id: int,
    dismissed: bool,
    reason: str,
    expected_version: int | None = None,
) -> None:
    """Dismiss an insight, or restore it; either way with a reason."""
    require(actor, Action.EDIT)
    retro = _retro(session, actor, retrospective_id)
    _check_step(session, retro, Step.EDIT, expected_version)
    insight = _insight_of(session, retro, insight_id)
    reason = _text(reason, "reason", limit=MAX_TEXT)
    if insight.dismissed == dismissed:
        state = "dismissed" if dismissed else "not dismissed"
        raise ValidationFailed(f"Insight #{insight_id} is {state} already.")
    before = _snapshot_of(insight)

    _start_edit(session, retro, actor, expected_version)
    insight.dismissed = dismissed
    # Restoring keeps why in the audit trail; the insight itself no longer needs it.
    insight.dismissed_reason = reason if dismissed else ""
    _touch(insight, actor)
    session.add(insight)
    session.flush()
    _record_insight(
        session,
        actor=actor,
        action="insight.dismiss" if dismissed else "insight.restore",
        insight=insight,
        before=before,
        reason=reason,
    )


def add_insight(
    session: Session,
    *,
    actor: Actor,
    retrospective_id: int,
    title: str,
    text: str,
    severity: str,
    actions: Sequence[str] = (),
    source: str | None = None,
    expected_version: int | None = None,
) -> int:
    """Add an analyst's own insight; regeneration keeps it."""
    require(actor, Action.EDIT)
    retro = _retro(session, actor, retrospective_id)
    assert retro.id is not None
    _check_step(session, retro, Step.EDIT, expected_version)
    insight = Insight(
        retrospective_id=retro.id,
        source=source or None,
        severity=_severity(severity),
        title=_text(title, "title", limit=MAX_TITLE),
        text=_text(text, "text", limit=MAX_TEXT, required=False),
        actions=_actions(actions),
        origin="manual",
        finding=engine.Finding.TRIGGERED.value,
        edited_by_id=actor.id,
        edited_at=utcnow(),
    )

    _start_edit(session, retro, actor, expected_version)
    session.add(insight)
    session.flush()
    _record_insight(
        session, actor=actor, action="insight.add", insight=insight, before=None
    )
    assert insight.id is not None
    return insight.id


def write_summary(
    session: Session,
    *,
    actor: Actor,
    retrospective_id: int,
    summary: str,
    no_findings_note: str | None = None,
    expected_version: int | None = None,
) -> None:
    """The analyst's summary, and optionally the note that nothing needs doing."""
    require(actor, Action.EDIT)
    retro = _retro(session, actor, retrospective_id)
    _check_step(session, retro, Step.EDIT, expected_version)
    new = {"summary": _text(summary, "summary", limit=MAX_NOTE, required=False)}
    if no_findings_note is not None:
        new["no_findings_note"] = _text(
            no_findings_note, "no findings note", limit=MAX_NOTE, required=False
        )
    before = {key: getattr(retro, key) for key in new}
    if before == new:
        raise ValidationFailed("Nothing changed: the summary already reads like that.")

    retrospectives.change_status(
        session,
        retro=retro,
        step=Step.EDIT,
        actor=actor,
        expected_version=expected_version,
        fields=new,
        audit_action="retrospective.summary",
        details={"before": before, **new},
    )


# -- submit and decide ----------------------------------------------------------


def _open_findings(session: Session, retro_id: int) -> int:
    query = select(Insight.id).where(
        Insight.retrospective_id == retro_id,
        ~col(Insight.dismissed),
        Insight.finding == engine.Finding.TRIGGERED.value,
    )
    return len(session.scalars(query).all())


def submit(
    session: Session,
    *,
    actor: Actor,
    retrospective_id: int,
    summary: str | None = None,
    no_findings_note: str | None = None,
    expected_version: int | None = None,
) -> RetroRow:
    """Send a draft to the approvers.

    Needs a summary, and at least one finding that is not dismissed or an
    explicit note that there is nothing to report.
    """
    require(actor, Action.SUBMIT)
    retro = _retro(session, actor, retrospective_id)
    assert retro.id is not None
    _check_step(session, retro, Step.SUBMIT, expected_version)
    text = retro.summary if summary is None else summary
    note = retro.no_findings_note if no_findings_note is None else no_findings_note
    text = _text(text, "summary", limit=MAX_NOTE, required=False)
    note = _text(note, "no findings note", limit=MAX_NOTE, required=False)
    if not text:
        raise ValidationFailed(
            "summary: write the analyst's summary before submitting."
        )
    if not note and not _open_findings(session, retro.id):
        raise ValidationFailed(
            "Every finding is dismissed or there is none: add an insight, or "
            "write a 'no findings' note saying why there is nothing to report."
        )

    now = utcnow()
    retrospectives.change_status(
        session,
        retro=retro,
        step=Step.SUBMIT,
        actor=actor,
        expected_version=expected_version,
        fields={
            "summary": text,
            "no_findings_note": note,
            "submitted_by_id": actor.id,
            "submitted_at": now,
        },
        audit_action="retrospective.submit",
        details={"summary": text, "no_findings_note": note},
    )
    logger.info("retrospective %s submitted by %s", retro.id, actor.username)
    return retrospectives.row_of(session, retro)


def _decide(
    session: Session, actor: Actor, retrospective_id: int, expected_version: int | None
) -> Retrospective:
    """The checks approving and sending back share: role, four eyes, still open."""
    require(actor, Action.APPROVE)
    retro = _retro(session, actor, retrospective_id)
    retrospectives.check_version(retro, expected_version)
    if retro.status in (S.APPROVED, S.CHANGES_REQUESTED) and expected_version is None:
        # Read after another decision was committed: say so, not just "not allowed".
        raise InvalidTransition(_decided_already(session, retro, actor))
    if retro.status == S.IN_REVIEW and retro.submitted_by_id == actor.id:
        raise PermissionDenied(
            f"{actor.name} submitted retrospective #{retro.id}; another approver "
            "must approve it or request changes (four eyes)."
        )
    return retro


def _decided_already(session: Session, retro: Retrospective, actor: Actor) -> str:
    decider = session.get(User, retro.decided_by_id) if retro.decided_by_id else None
    when = f" on {retro.decided_at:%d %b %H:%M} UTC" if retro.decided_at else ""
    what = (
        "approved this retrospective"
        if retro.status == S.APPROVED
        else "requested changes on this retrospective"
    )
    if decider is not None and decider.id == actor.id:
        return f"You {what} already{when}."
    who = f" ({decider.name})" if decider is not None else ""
    return f"Someone else{who} {what} first{when}; reload to see their decision."


def approve(
    session: Session,
    *,
    actor: Actor,
    retrospective_id: int,
    comment: str = "",
    expected_version: int | None = None,
    report_hook: ReportHook | None = None,
) -> RetroRow:
    """Approve a submitted retrospective and freeze what it shows.

    The snapshot of its KPI summary, insights and daily facts is stored with
    it, so later imports change nothing it shows; then the signed PDF is
    rendered from that snapshot and stored, in the same transaction, or for a
    large report a `render-report` job is queued in it to do so
    (`report_hook(session, retrospective_id=...)` replaces that step).
    """
    retro = _decide(session, actor, retrospective_id, expected_version)
    comment = _text(comment, "comment", limit=MAX_NOTE, required=False)
    snapshot = retrospectives.make_snapshot(
        retrospectives.live_kpis(session, retro),
        retrospectives.live_insights(session, retro),
        retrospectives.daily_kpis(session, retro),
    )

    now = utcnow()
    retrospectives.change_status(
        session,
        retro=retro,
        step=Step.APPROVE,
        actor=actor,
        expected_version=expected_version,
        fields={
            "approved_by_id": actor.id,
            "approved_at": now,
            "decided_by_id": actor.id,
            "decided_at": now,
            "decision_comment": comment,
            "snapshot": snapshot,
        },
        audit_action="retrospective.approve",
        details={
            "comment": comment,
            "snapshot_sha256": retrospectives.snapshot_hash(snapshot),
        },
    )
    assert retro.id is not None
    if report_hook is not None:
        report_hook(session, retrospective_id=retro.id)
    elif reports.renders_inline(snapshot):
        reports.store_approved_report(session, retrospective_id=retro.id, actor=actor)
    else:
        # Queued in the approval's transaction: no approval without its render.
        jobs.enqueue(
            session,
            actor=actor,
            kind=reports.RENDER_JOB_KIND,
            target=str(retro.id),
        )
    logger.info("retrospective %s approved by %s", retro.id, actor.username)
    return retrospectives.row_of(session, retro)


def request_changes(
    session: Session,
    *,
    actor: Actor,
    retrospective_id: int,
    comment: str,
    expected_version: int | None = None,
) -> RetroRow:
    """Send a submitted retrospective back to the analyst with a comment."""
    retro = _decide(session, actor, retrospective_id, expected_version)
    comment = _text(comment, "comment", limit=MAX_NOTE)

    now = utcnow()
    retrospectives.change_status(
        session,
        retro=retro,
        step=Step.REQUEST_CHANGES,
        actor=actor,
        expected_version=expected_version,
        fields={
            "decided_by_id": actor.id,
            "decided_at": now,
            "decision_comment": comment,
        },
        audit_action="retrospective.request_changes",
        details={"comment": comment},
    )
    logger.info("changes requested on retrospective %s", retro.id)
    return retrospectives.row_of(session, retro)


def reopen(
    session: Session,
    *,
    actor: Actor,
    retrospective_id: int,
    reason: str,
    expected_version: int | None = None,
) -> RetroRow:
    """Return an approved retrospective to draft (admin, with a reason).

    The earlier approval stays in the audit trail: approver, time, comment
    and the hash of the snapshot it froze.
    """
    require(actor, Action.REOPEN)
    retro = _retro(session, actor, retrospective_id)
    _check_step(session, retro, Step.REOPEN, expected_version)
    reason = _text(reason, "reason", limit=MAX_NOTE)
    earlier = {
        "approved_by_id": retro.approved_by_id,
        "approved_by": retrospectives.state_context(session, retro).approved_by,
        "approved_at": retro.approved_at.isoformat() if retro.approved_at else None,
        "decision_comment": retro.decision_comment,
        "snapshot_sha256": retrospectives.snapshot_hash(retro.snapshot),
        # The stored file stays until the clean-up job removes unreferenced ones.
        "report_path": retro.report_path,
        "report_sha256": retro.report_sha256,
    }

    retrospectives.change_status(
        session,
        retro=retro,
        step=Step.REOPEN,
        actor=actor,
        expected_version=expected_version,
        fields={
            "approved_by_id": None,
            "approved_at": None,
            "decided_by_id": None,
            "decided_at": None,
            "decision_comment": "",
            "snapshot": None,
            "report_path": None,
            "report_sha256": None,
            "submitted_by_id": None,
            "submitted_at": None,
        },
        audit_action="retrospective.reopen",
        details={"reason": reason, "earlier_approval": earlier},
    )
    logger.info("retrospective %s reopened by %s", retro.id, actor.username)
    return retrospectives.row_of(session, retro)


# -- the approval queue ---------------------------------------------------------


def approval_queue(session: Session, *, actor: Actor) -> list[RetroRow]:
    """Submitted retrospectives, oldest submission first (approvers and admins)."""
    require(actor, Action.APPROVE)
    query = (
        select(Retrospective, Campaign, User.name)
        .join(Campaign, col(Campaign.id) == col(Retrospective.campaign_id))
        .outerjoin(User, col(User.id) == col(Retrospective.created_by_id))
        .where(Retrospective.status == S.IN_REVIEW.value)
        .order_by(col(Retrospective.submitted_at), col(Retrospective.id))
    )
    rows = [(retro, campaign, name) for retro, campaign, name in session.execute(query)]
    return retrospectives.rows_of(session, rows)
