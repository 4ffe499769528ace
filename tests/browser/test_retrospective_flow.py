"""In a real browser: an analyst creates a retrospective and reads its insights."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from tests.browser.conftest import ROOT, LiveApp, log_in, wait_for_app


def cli(live_app: LiveApp, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "core.cli", *argv, "--as", "analyst"],
        cwd=ROOT,
        env=live_app.env,
        capture_output=True,
        text=True,
        check=False,
    )


def critical_retrospective(live_app: LiveApp) -> dict[str, Any]:
    """Generate the demo's finished campaigns; return one with a critical finding."""
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
        if any(i["severity"] == "critical" for i in shown["insights"]):
            return dict(shown)
    raise AssertionError("the demo data has no campaign with a critical finding")


def test_analyst_creates_opens_and_reads_insights(live_app: LiveApp, browser) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto(live_app.url)
    wait_for_app(page)
    log_in(page, "analyst", live_app.passwords["analyst"])
    page.get_by_role("heading", name="Campaigns").first.wait_for(timeout=30_000)

    page.get_by_role("link", name="Retrospectives").click()
    page.get_by_role("heading", name="Retrospectives").first.wait_for(timeout=30_000)
    wait_for_app(page)
    create = page.locator(".st-key-retro_create button")
    if not create.is_visible():
        # Collapsed once other tests have made retrospectives in this server.
        page.get_by_text("New retrospective", exact=True).click()
    create.click()
    page.get_by_text("generated:").first.wait_for(timeout=60_000)
    page.locator(".st-key-retro_open button").click()
    page.get_by_role("heading", name="KPI summary").first.wait_for(timeout=30_000)
    page.get_by_role("heading", name="Insights").first.wait_for(timeout=30_000)

    shown = critical_retrospective(live_app)
    page.goto(f"{live_app.url}/retrospective?id={shown['id']}")
    wait_for_app(page)
    critical = sum(
        i["severity"] == "critical" and i["finding"] == "triggered"
        for i in shown["insights"]
    )
    page.get_by_role("heading", name=f"Critical ({critical})").first.wait_for(
        timeout=30_000
    )
    page.get_by_text("ROAS (return per unit of spend) was").first.wait_for()
    context.close()
