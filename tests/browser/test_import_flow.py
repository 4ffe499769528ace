"""In a real browser: the demo analyst imports every sample from the Import page."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.browser.conftest import LiveApp, wait_for_app

sync_api = pytest.importorskip("playwright.sync_api")

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def test_the_samples_import_from_the_page(live_app: LiveApp, browser) -> None:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.goto(live_app.url)
    wait_for_app(page)
    _log_in_steadily(page, "analyst", live_app.passwords["analyst"])
    page.get_by_role("heading", name="Campaigns").first.wait_for(timeout=30_000)

    page.get_by_role("link", name="Import", exact=True).click()
    page.get_by_role("heading", name="Import KPIs").first.wait_for(timeout=30_000)
    page.locator(".st-key-import_create label").click()
    wait_for_app(page)
    page.locator(".st-key-import_currency input").fill("USD")
    page.locator(".st-key-import_currency input").press("Enter")
    wait_for_app(page)
    files = sorted(SAMPLES.glob("*.csv"))
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(files)
    wait_for_app(page)
    page.get_by_text("14 rows read: 14 new").first.wait_for(timeout=60_000)

    for index, path in enumerate(files):
        key = f"import_{index}_{hashlib.sha256(path.read_bytes()).hexdigest()[:12]}"
        _click_until(page, f".st-key-{key}_go button", f".st-key-{key}_again")

    assert page.get_by_text(": imported.").count() == len(files)
    assert page.get_by_text("No KPI rows were written").count() == 0
    context.close()


def _log_in_steadily(page, username: str, password: str) -> None:
    """Each field committed (and the rerun it causes finished) before the next."""
    for key, value in (("login_username", username), ("login_password", password)):
        field = page.locator(f".st-key-{key} input")
        field.fill(value)
        field.press("Tab")
        wait_for_app(page)
    page.get_by_role("button", name="Log in").click()


def _click_until(page, button: str, outcome: str, attempts: int = 3) -> None:
    """Click until the outcome shows; a click landing mid-rerun can be dropped."""
    for _ in range(attempts):
        wait_for_app(page)
        if page.locator(outcome).count():
            return
        page.locator(button).click()
        try:
            page.locator(outcome).first.wait_for(timeout=30_000)
            return
        except sync_api.TimeoutError:
            continue
    page.locator(outcome).first.wait_for(timeout=30_000)
