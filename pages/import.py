"""Import: upload platform exports, check them, import them, see past imports."""

from __future__ import annotations

from typing import Any

import streamlit as st

from core import jobs
from core.db import read_session, session_scope
from core.errors import DomainError
from core.jobs import JobRow
from core.services import imports
from core.services.permissions import Action, require
from ui.imports import (
    format_choices,
    format_label,
    issues_frame,
    preview_frame,
    status_line,
    unknown_frame,
    unlisted_note,
)
from ui.jobs import follow, read_job
from ui.session import current_actor
from ui.text import escape, plain_heading

PREVIEWS_KEY = "import_previews"
RESULTS_KEY = "import_results"
JOBS_KEY = "import_jobs"

actor = current_actor()
st.title("Import KPIs")
try:
    require(actor, Action.CREATE)
except DomainError as exc:
    st.error(str(exc))
    st.stop()
st.caption(
    "Daily campaign reports from Google Ads, Meta Ads Manager, TikTok Ads Manager "
    "or the internal CSV format, as CSV or XLSX. Re-importing a file updates its "
    "rows in place; a file with errors writes nothing unless you keep the valid rows."
)

uploads = st.file_uploader(
    "Export files",
    type=["csv", "tsv", "txt", "xlsx"],
    accept_multiple_files=True,
    key="import_files",
)
columns = st.columns(3)
create = columns[0].checkbox("Create unknown campaigns", key="import_create")
currency = columns[1].text_input(
    "Currency of new campaigns",
    max_chars=3,
    placeholder="e.g. EUR",
    help="Used only when the file names no currency (the internal format).",
    key="import_currency",
)
keep_valid = columns[2].checkbox(
    "Import the valid rows of a file with errors", key="import_keep_valid"
)


def preview(name: str, data: bytes, options: imports.ImportOptions) -> Any:
    """The preview of a file with these options, computed once per change."""
    cache: dict[str, tuple[imports.ImportOptions, Any]] = st.session_state.setdefault(
        PREVIEWS_KEY, {}
    )
    sha = imports.file_digest(data)
    if sha in cache and cache[sha][0] == options:
        return cache[sha][1]
    try:
        with read_session() as session:
            result: Any = imports.preview_file(
                session, actor=actor, file_name=name, data=data, options=options
            )
    except DomainError as exc:
        result = exc
    cache[sha] = (options, result)
    return result


def show_report(report: dict[str, Any], *, key: str) -> None:
    issues = issues_frame(report)
    if issues.empty:
        st.success("No errors or warnings.")
    else:
        st.dataframe(issues, hide_index=True, key=f"{key}_issues")
    note = unlisted_note(report)
    if note:
        st.caption(note)
    notes = issues_frame(report, levels=("info",))
    if not notes.empty:
        with st.expander(f"{len(notes)} notes"):
            st.dataframe(notes, hide_index=True, key=f"{key}_notes")


def run_import(name: str, data: bytes, options: imports.ImportOptions) -> None:
    if len(data) > jobs.IMPORT_INLINE_MAX_BYTES:
        # Large files import as a background job: the page stays usable.
        try:
            job = jobs.submit_import(
                actor=actor, file_name=name, data=data, options=options
            )
        except DomainError as exc:
            st.error(str(exc))
            return
        st.session_state.setdefault(JOBS_KEY, {})[imports.file_digest(data)] = job.id
        return
    bar = st.progress(0.0, text="Importing…")

    def progress(done: int, total: int) -> None:
        bar.progress(min(done / max(total, 1), 1.0), text=f"{done:,} of {total:,} rows")

    try:
        with session_scope() as session:
            summary = imports.import_file(
                session,
                actor=actor,
                file_name=name,
                data=data,
                options=options,
                progress=progress,
            )
    except DomainError as exc:
        bar.empty()
        st.error(str(exc))
        return
    bar.empty()
    st.session_state.setdefault(RESULTS_KEY, {})[imports.file_digest(data)] = summary
    st.session_state.get(PREVIEWS_KEY, {}).pop(imports.file_digest(data), None)


def show_file(index: int, name: str, data: bytes) -> None:
    sha = imports.file_digest(data)
    key = f"import_{index}_{sha[:12]}"
    plain_heading(name, level=3)
    if st.session_state.get(f"{key}_go"):
        # Clicked in the previous run: import first, so the page shows the
        # progress and the outcome instead of the preview it replaces.
        run_import(name, data, options_for(st.session_state.get(f"{key}_format")))
    done = st.session_state.get(RESULTS_KEY, {}).get(sha)
    if done is not None:
        show_result(done, key=key)
        return
    job_id = st.session_state.get(JOBS_KEY, {}).get(sha)
    job = read_job(job_id) if job_id is not None else None
    if job is not None:
        show_job(job, sha=sha, key=key)
        return

    detected = preview(name, data, options_for(None))
    guess = detected.format if isinstance(detected, imports.ImportSummary) else None
    choices = format_choices()
    chosen = st.selectbox(
        "Format",
        choices,
        index=choices.index(guess) if guess in choices else None,
        format_func=format_label,
        help="Detected from the header row; change it if the guess is wrong.",
        key=f"{key}_format",
    )
    summary = preview(name, data, options_for(chosen))
    if isinstance(summary, DomainError):
        st.error(str(summary))
        return
    st.markdown(escape(status_line(summary)))
    unknown = unknown_frame(summary)
    if not unknown.empty:
        st.markdown("**Campaigns not in the database**")
        st.dataframe(unknown, hide_index=True, key=f"{key}_unknown")
    show_report(summary.report, key=key)
    if summary.preview:
        with st.expander("First normalised rows", expanded=True):
            st.dataframe(preview_frame(summary), hide_index=True, key=f"{key}_rows")
    st.button(
        "Import",
        type="primary",
        disabled=not summary.ok,
        help=None if summary.ok else "Fix the errors, or import only the valid rows.",
        key=f"{key}_go",
    )


def show_result(summary: imports.ImportSummary, *, key: str) -> None:
    line = escape(
        f"Import {summary.import_id}: {summary.status}. {status_line(summary)}"
    )
    if summary.ok:
        st.success(line)
    else:
        st.error(line + " No KPI rows were written.")
    if summary.unknown_campaigns:
        st.dataframe(unknown_frame(summary), hide_index=True, key=f"{key}_created")
    show_report(summary.report, key=f"{key}_done")
    if st.button("Check this file again", key=f"{key}_again"):
        st.session_state.get(RESULTS_KEY, {}).pop(summary.sha256, None)
        st.rerun()


def show_job(job: JobRow, *, sha: str, key: str) -> None:
    """A large file's import job: live progress, then its outcome and report."""
    if job.active:
        follow(job, key=f"{key}_job")
        return
    result = job.result or {}
    if job.status == "succeeded" and result.get("ok"):
        st.success(escape(job.message))
    else:
        st.error(escape(job.error or job.message))
    if result.get("import_id"):
        with read_session() as session:
            report = imports.import_report(
                session, actor=actor, import_id=int(result["import_id"])
            )
        show_report(report, key=f"{key}_job")
    if st.button("Check this file again", key=f"{key}_job_again"):
        st.session_state.get(JOBS_KEY, {}).pop(sha, None)
        st.session_state.get(PREVIEWS_KEY, {}).pop(sha, None)
        st.rerun()


def options_for(format: str | None) -> imports.ImportOptions:
    return imports.ImportOptions(
        format=format,
        create_campaigns=create,
        keep_valid=keep_valid,
        currency=currency.strip() or None,
    )


for position, upload in enumerate(uploads or []):
    with st.container(border=True):
        show_file(position, upload.name, upload.getvalue())

st.subheader("Recent imports", anchor=False)
with read_session() as session:
    history = imports.list_imports(session, actor=actor)
if history.empty:
    st.info("No imports yet.")
    st.stop()
st.dataframe(history.drop(columns=["sha256"]), hide_index=True, key="import_history")
chosen_id = st.selectbox(
    "Report of import",
    history["id"].tolist(),
    format_func=lambda i: f"{i}: {history.set_index('id').at[i, 'file_name']}",
    key="import_history_pick",
)
if chosen_id is not None:
    with read_session() as session:
        stored = imports.import_report(session, actor=actor, import_id=int(chosen_id))
    show_report(stored, key="import_history_report")
