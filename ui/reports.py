"""The PDF download of a retrospective, shared by its page and the approval queue.

The bytes are produced only when the button is clicked (Streamlit runs a
callable `data` on click, in its own thread): a draft is rendered then, an
approved report is read from its stored file and checked against its SHA-256.
A rerun of the page costs nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import streamlit as st

from core import jobs
from core.db import read_session, session_scope
from core.services import reports
from core.services.permissions import Actor
from core.services.retrospectives import RetroRow
from ui.jobs import follow

logger = logging.getLogger(__name__)


def pdf_bytes(actor: Actor, retrospective_id: int) -> Callable[[], bytes]:
    """What the download button calls on click: the PDF the actor may have."""

    def produce() -> bytes:
        try:
            # A write session: an approved report missing its file is stored again.
            with session_scope() as session:
                report = reports.report_pdf(
                    session, actor=actor, retrospective_id=retrospective_id
                )
        except Exception:
            logger.exception("PDF of retrospective %s failed", retrospective_id)
            raise
        return report.data

    return produce


def download_button(actor: Actor, retro: RetroRow, *, key: str) -> None:
    """ "Download PDF" for an approved report, "Download draft PDF" otherwise."""
    if not reports.can_download(actor, retro):
        if retro.status in reports.DRAFT_STATUSES:
            st.caption("The PDF report can be downloaded once it is approved.")
        return
    approved = retro.status == "approved"
    if approved and not retro.report_sha256 and _rendering(actor, retro):
        return
    st.download_button(
        "Download PDF" if approved else "Download draft PDF",
        data=pdf_bytes(actor, retro.id),
        file_name=reports.download_name(retro),
        mime=reports.PDF_MIME,
        key=key,
        icon=":material/picture_as_pdf:",
        on_click="ignore",
        type="primary" if approved else "secondary",
    )
    if approved and retro.report_sha256:
        st.caption(f"SHA-256 of the signed PDF: `{retro.report_sha256}`")
    elif not approved:
        st.caption("Rendered when you click, with a DRAFT mark on every page.")


def _rendering(actor: Actor, retro: RetroRow) -> bool:
    """A live progress bar while a job renders a large signed PDF."""
    with read_session() as session:
        job = jobs.latest_job(
            session, actor=actor, kind=reports.RENDER_JOB_KIND, target=str(retro.id)
        )
    if job is None or not job.active:
        return False
    st.caption("The signed PDF is being rendered; it can be downloaded when done.")
    follow(job, key=f"render_job_{retro.id}")
    return True
