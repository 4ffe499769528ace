"""In a real browser: an analyst edits and submits, an approver in another context
approves, and the analyst then sees the retrospective approved."""

from __future__ import annotations

import json
from typing import Any

from tests.browser.conftest import LiveApp, log_in, wait_for_app
from tests.browser.test_retrospective_flow import cli

NEW_TITLE = "Meta spend did not pay back"
WAIT = 30_000


def generated_retrospective(live_app: LiveApp) -> dict[str, Any]:
    """A fresh retrospective (made through the CLI) with an open finding."""
    listing = json.loads(cli(live_app, "list-campaigns", "--json").stdout)
    for campaign in listing:
        if campaign["status"] != "completed":
            continue
        created = cli(live_app, "create-retrospective", str(campaign["id"]))
        if created.returncode != 0:
            continue
        retro_id = created.stdout.strip()
        cli(live_app, "generate", retro_id)
        shown = json.loads(cli(live_app, "show", retro_id, "--json").stdout)
        if any(i["finding"] == "triggered" for i in shown["insights"]):
            return dict(shown)
    raise AssertionError("no demo campaign is left with a finding to review")


def logged_in_page(browser: Any, live_app: LiveApp, username: str) -> Any:
    context = browser.new_context()
    page = context.new_page()
    page.goto(live_app.url)
    wait_for_app(page)
    log_in(page, username, live_app.passwords[username])
    page.get_by_role("heading", name="Campaigns").first.wait_for(timeout=WAIT)
    return page


def test_analyst_edits_and_submits_approver_approves(
    live_app: LiveApp, browser: Any
) -> None:
    retro = generated_retrospective(live_app)
    finding = next(i for i in retro["insights"] if i["finding"] == "triggered")
    view_url = f"{live_app.url}/retrospective?id={retro['id']}"

    analyst = logged_in_page(browser, live_app, "analyst")
    analyst.goto(view_url)
    wait_for_app(analyst)
    analyst.locator(f".st-key-edit_box_{finding['id']} summary").click()
    title = analyst.locator(f".st-key-title_{finding['id']} input")
    title.fill(NEW_TITLE)
    analyst.locator(f".st-key-save_{finding['id']} button").click()
    analyst.get_by_text(f"Insight #{finding['id']} saved.").first.wait_for(timeout=WAIT)
    analyst.get_by_text(NEW_TITLE).first.wait_for(timeout=WAIT)
    analyst.get_by_text("Rule insight, edited by").first.wait_for(timeout=WAIT)
    analyst.locator(".st-key-review_summary textarea").fill("Meta lost money.")
    analyst.locator(".st-key-review_save_summary button").click()
    analyst.get_by_text("Summary saved.").first.wait_for(timeout=WAIT)
    analyst.locator(".st-key-review_submit button").click()
    analyst.get_by_text("Submitted for approval.").first.wait_for(timeout=WAIT)

    approver = logged_in_page(browser, live_app, "approver")
    approver.get_by_role("link", name="Approvals").click()
    approver.get_by_role("heading", name="Approvals").first.wait_for(timeout=WAIT)
    wait_for_app(approver)
    approver.get_by_text(NEW_TITLE).first.wait_for(timeout=WAIT)
    approver.locator(".st-key-approve_button button").click()
    approver.get_by_text(f"Retrospective #{retro['id']} approved.").first.wait_for(
        timeout=WAIT
    )

    analyst.goto(view_url)
    wait_for_app(analyst)
    analyst.get_by_text("Approved by").first.wait_for(timeout=WAIT)
    assert analyst.locator(".st-key-review_submit").count() == 0
    shown = json.loads(cli(live_app, "show", str(retro["id"]), "--json").stdout)
    assert shown["status"] == "approved"
    assert shown["frozen"] is True
    analyst.context.close()
    approver.context.close()
