"""Review controls shared by the retrospective and approval pages.

Every control runs one service call in its own transaction with the version
the page showed, then reruns; the outcome is shown at the top of the next run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import streamlit as st
from sqlmodel import Session

from core.db import session_scope
from core.errors import DomainError
from core.models import Severity
from core.services import review
from core.services.permissions import Actor
from core.services.retrospectives import InsightRow, RetroRow
from ui.text import escape, plain

NOTICE_KEY = "review_notice"
ERROR_KEY = "review_error"
SEVERITIES = [s.value for s in Severity]


def show_outcome() -> None:
    """The notice or error the last action left for this run."""
    notice = st.session_state.pop(NOTICE_KEY, None)
    if notice:
        st.success(escape(notice))
    error = st.session_state.pop(ERROR_KEY, None)
    if error:
        st.error(escape(error))


def run_action(call: Callable[[Session], Any], notice: str) -> None:
    """Run one service call in a write transaction, remember the outcome, rerun."""
    try:
        with session_scope() as session:
            call(session)
    except DomainError as exc:
        st.session_state[ERROR_KEY] = str(exc)
    else:
        st.session_state[NOTICE_KEY] = notice
    st.rerun()


def as_shown(retro: RetroRow) -> RetroRow:
    """The retrospective with the version the user saw when they clicked.

    A click reruns the whole script, which reads the retrospective afresh
    before the button is handled; acting on that fresh version would quietly
    apply a form filled in on an older one. So each run remembers the version
    it showed, and actions in the next run expect that one.
    """
    key = f"shown_version_{retro.id}"
    shown = st.session_state.get(key, retro.version)
    st.session_state[key] = retro.version
    return replace(retro, version=int(shown))


def lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def decision_banner(retro: RetroRow) -> None:
    """What the approver decided, in the words they typed (shown inert)."""
    when = f" on {retro.decided_at:%Y-%m-%d %H:%M} UTC" if retro.decided_at else ""
    who = f" by {retro.decided_by}" if retro.decided_by else ""
    if retro.status == "changes_requested":
        st.warning(escape(f"Changes requested{who}{when}:"), icon=":material/undo:")
        plain(retro.decision_comment)
    elif retro.status == "approved":
        st.success(
            escape(f"Approved{who}{when}. Frozen: later imports do not change it."),
            icon=":material/verified:",
        )
        if retro.decision_comment:
            plain(retro.decision_comment)


def show_summary(retro: RetroRow) -> None:
    st.subheader("Analyst's summary", anchor=False)
    if retro.summary:
        plain(retro.summary)
    else:
        st.caption("No summary written yet.")
    if retro.no_findings_note:
        st.caption("No findings note:")
        plain(retro.no_findings_note)


def summary_form(actor: Actor, retro: RetroRow) -> None:
    with st.form("summary_form"):
        summary = st.text_area(
            "Analyst's summary", value=retro.summary, key="review_summary"
        )
        note = st.text_area(
            "No findings note (only when nothing needs reporting)",
            value=retro.no_findings_note,
            key="review_no_findings",
        )
        if st.form_submit_button("Save summary", key="review_save_summary"):
            run_action(
                lambda s: review.write_summary(
                    s,
                    actor=actor,
                    retrospective_id=retro.id,
                    summary=summary,
                    no_findings_note=note,
                    expected_version=retro.version,
                ),
                "Summary saved.",
            )


def insight_controls(actor: Actor, retro: RetroRow) -> Callable[[InsightRow], None]:
    """Edit in place and dismiss or restore, for one insight of a draft."""

    def controls(insight: InsightRow) -> None:
        with st.expander("Edit", expanded=False, key=f"edit_box_{insight.id}"):
            _edit_form(actor, retro, insight)
        _dismiss_form(actor, retro, insight)

    return controls


def _edit_form(actor: Actor, retro: RetroRow, insight: InsightRow) -> None:
    with st.form(f"edit_{insight.id}"):
        title = st.text_input("Title", value=insight.title, key=f"title_{insight.id}")
        text = st.text_area("Text", value=insight.text, key=f"text_{insight.id}")
        severity = st.selectbox(
            "Severity",
            SEVERITIES,
            index=SEVERITIES.index(insight.severity),
            key=f"severity_{insight.id}",
        )
        actions = st.text_area(
            "Suggested actions, one a line",
            value="\n".join(insight.actions),
            key=f"actions_{insight.id}",
        )
        if st.form_submit_button("Save", key=f"save_{insight.id}"):
            run_action(
                lambda s: review.edit_insight(
                    s,
                    actor=actor,
                    retrospective_id=retro.id,
                    insight_id=insight.id,
                    changes=review.InsightEdit(
                        title=title,
                        text=text,
                        severity=severity,
                        actions=lines(actions),
                    ),
                    expected_version=retro.version,
                ),
                f"Insight #{insight.id} saved.",
            )


def _dismiss_form(actor: Actor, retro: RetroRow, insight: InsightRow) -> None:
    verb = "Restore" if insight.dismissed else "Dismiss"
    done = "restored" if insight.dismissed else "dismissed"
    with st.form(f"dismiss_{insight.id}", border=False):
        reason = st.text_input(f"Reason to {verb.lower()}", key=f"reason_{insight.id}")
        if st.form_submit_button(verb, key=f"dismiss_button_{insight.id}"):
            run_action(
                lambda s: review.set_dismissed(
                    s,
                    actor=actor,
                    retrospective_id=retro.id,
                    insight_id=insight.id,
                    dismissed=not insight.dismissed,
                    reason=reason,
                    expected_version=retro.version,
                ),
                f"Insight #{insight.id} {done}.",
            )


def add_insight_form(actor: Actor, retro: RetroRow) -> None:
    with (
        st.expander("Add an insight of your own", expanded=False),
        st.form("add_insight", clear_on_submit=True),
    ):
        title = st.text_input("Title", key="new_title")
        text = st.text_area("Text", key="new_text")
        severity = st.selectbox("Severity", SEVERITIES, index=1, key="new_severity")
        actions = st.text_area("Suggested actions, one a line", key="new_actions")
        if st.form_submit_button("Add insight", key="new_add"):
            run_action(
                lambda s: review.add_insight(
                    s,
                    actor=actor,
                    retrospective_id=retro.id,
                    title=title,
                    text=text,
                    severity=severity,
                    actions=lines(actions),
                    expected_version=retro.version,
                ),
                "Insight added.",
            )


def submit_button(actor: Actor, retro: RetroRow) -> None:
    st.caption(
        "Submitting needs a saved summary and at least one finding that is not "
        "dismissed, or a no findings note."
    )
    if st.button("Submit for approval", type="primary", key="review_submit"):
        run_action(
            lambda s: review.submit(
                s,
                actor=actor,
                retrospective_id=retro.id,
                expected_version=retro.version,
            ),
            "Submitted for approval.",
        )


def reopen_form(actor: Actor, retro: RetroRow) -> None:
    with (
        st.expander("Reopen (admin)", expanded=False),
        st.form("reopen_form"),
    ):
        reason = st.text_input("Reason (kept in the audit log)", key="reopen_reason")
        if st.form_submit_button("Reopen as draft", key="reopen_button"):
            run_action(
                lambda s: review.reopen(
                    s,
                    actor=actor,
                    retrospective_id=retro.id,
                    reason=reason,
                    expected_version=retro.version,
                ),
                "Reopened: it is a draft again.",
            )


def decision_forms(actor: Actor, retro: RetroRow) -> None:
    """Approve, or request changes with a required comment (approval queue)."""
    if retro.submitted_by_id == actor.id:
        st.info("You submitted this retrospective; another approver must decide on it.")
        return
    approve_col, back_col = st.columns(2)
    with approve_col, st.form("approve_form"):
        comment = st.text_area("Comment (optional)", key="approve_comment")
        if st.form_submit_button("Approve", type="primary", key="approve_button"):
            run_action(
                lambda s: review.approve(
                    s,
                    actor=actor,
                    retrospective_id=retro.id,
                    comment=comment,
                    expected_version=retro.version,
                ),
                f"Retrospective #{retro.id} approved.",
            )
    with back_col, st.form("request_changes_form"):
        reason = st.text_area(
            "What should the analyst change? (required)", key="changes_comment"
        )
        if st.form_submit_button("Request changes", key="request_changes_button"):
            run_action(
                lambda s: review.request_changes(
                    s,
                    actor=actor,
                    retrospective_id=retro.id,
                    comment=reason,
                    expected_version=retro.version,
                ),
                f"Retrospective #{retro.id} sent back to the analyst.",
            )
