"""In a real browser: Generate runs as a background job, the page follows it to
the insights while another tab stays usable, and the admin sees the job."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.browser.conftest import LiveApp, log_in, wait_for_app
from tests.browser.test_retrospective_flow import cli

sync_api = pytest.importorskip("playwright.sync_api")

WAIT = 60_000


def pending_retrospective(live_app: LiveApp) -> str:
    """A retrospective opened through the CLI and not generated yet."""
    listing = json.loads(cli(live_app, "list-campaigns", "--json").stdout)
    for campaign in listing:
        if campaign["status"] != "completed":
            continue
        created = cli(live_app, "create-retrospective", str(campaign["id"]))
        if created.returncode == 0:
            return created.stdout.strip()
    raise AssertionError("no demo campaign is left without a retrospective")


def logged_in_page(browser: Any, live_app: LiveApp, username: str) -> Any:
    page = browser.new_context().new_page()
    page.goto(live_app.url)
    wait_for_app(page)
    log_in(page, username, live_app.passwords[username])
    # .first: a rerun may briefly show the old and the new page together.
    page.get_by_role("heading", name="Campaigns").first.wait_for(timeout=WAIT)
    return page


def test_generate_follows_the_job_to_the_insights(live_app: LiveApp, browser: Any):
    retro_id = pending_retrospective(live_app)
    page = logged_in_page(browser, live_app, "analyst")
    other = page.context.new_page()

    page.goto(f"{live_app.url}/retrospective?id={retro_id}")
    wait_for_app(page)
    generate = page.locator(".st-key-retro_view_generate button")
    generate.click()
    other.goto(f"{live_app.url}/retrospectives")

    outcome = page.get_by_text("manual kept").first
    for _ in range(2):
        # A click landing as a rerun starts can be dropped; a second one is
        # harmless (the job is deduplicated, and the button goes once it runs).
        try:
            outcome.wait_for(timeout=WAIT // 3)
            break
        except sync_api.TimeoutError:
            if generate.is_visible():
                generate.click()
    outcome.wait_for(timeout=WAIT)
    other.get_by_role("heading", name="Retrospectives").first.wait_for(timeout=WAIT)
    shown = json.loads(cli(live_app, "show", retro_id, "--json").stdout)
    assert shown["status"] == "draft"
    page.get_by_text("status draft").first.wait_for(timeout=WAIT)
    page.context.close()

    admin = logged_in_page(browser, live_app, "admin")
    admin.goto(f"{live_app.url}/jobs")
    wait_for_app(admin)
    admin.get_by_role("heading", name="Schedules").first.wait_for(timeout=WAIT)
    admin.locator(".st-key-jobs_run_cleanup button").first.wait_for(timeout=WAIT)
    # Shown only under a non-empty job list.
    admin.locator(".st-key-jobs_refresh button").first.wait_for(timeout=WAIT)
    admin.context.close()
