"""In a real browser: an approver downloads the signed PDF of an approved
retrospective, and it is the stored file with every section."""

from __future__ import annotations

import hashlib
import re
import sqlite3
import subprocess
import sys
from io import BytesIO
from pathlib import Path
from typing import Any

from pypdf import PdfReader

from tests.browser.conftest import ROOT, LiveApp, wait_for_app
from tests.browser.test_review_flow import generated_retrospective, logged_in_page

WAIT = 30_000


def run_as(live_app: LiveApp, username: str, *argv: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "core.cli", *argv, "--as", username],
        cwd=ROOT,
        env=live_app.env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def stored_sha256(live_app: LiveApp, retro_id: int) -> str:
    path = live_app.env["RETRO_DATABASE_URL"].removeprefix("sqlite:///")
    with sqlite3.connect(path) as connection:
        (value,) = connection.execute(
            "select report_sha256 from retrospective where id = ?", (retro_id,)
        ).fetchone()
    return str(value)


def test_approver_downloads_the_signed_pdf(live_app: LiveApp, browser: Any) -> None:
    retro = generated_retrospective(live_app)
    rid = str(retro["id"])
    run_as(live_app, "analyst", "submit", rid, "--summary", "Meta lost money.")
    run_as(live_app, "approver", "approve", rid, "--comment", "Signed off in test.")
    expected = stored_sha256(live_app, retro["id"])

    page = logged_in_page(browser, live_app, "approver")
    page.goto(f"{live_app.url}/retrospective?id={rid}")
    wait_for_app(page)
    page.get_by_text(expected).first.wait_for(timeout=WAIT)
    with page.expect_download(timeout=WAIT) as info:
        page.locator(".st-key-retro_view_pdf button").click()
    download = info.value
    data = Path(download.path()).read_bytes()

    assert data.startswith(b"%PDF")
    assert hashlib.sha256(data).hexdigest() == expected
    assert download.suggested_filename.startswith(f"retrospective-{rid}-")
    assert not download.suggested_filename.endswith("-draft.pdf")
    pages = [p.extract_text() for p in PdfReader(BytesIO(data)).pages]
    text = re.sub(r"\s+", " ", " ".join(pages))
    for section in (
        retro["campaign"]["name"],
        "Sign-off",
        "Approved by",
        "Signed off in test.",
        "Analyst's summary",
        "Meta lost money.",
        "KPI summary",
        "Spend and ROAS per day, by source",
        "Sources side by side",
        "Funnel: impressions, clicks, conversions",
        "Insights",
    ):
        assert section in text, section
    assert "DRAFT" not in text
    for number, page_text in enumerate(pages, start=1):
        assert f"Page {number} of {len(pages)}" in page_text
        assert f"Report RETRO-{rid}-V" in page_text
    page.context.close()
