"""In a real browser: the demo analyst imports every sample from the Import page."""

from __future__ import annotations

from pathlib import Path

from tests.browser.conftest import LiveApp, wait_for_app

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def test_the_samples_import_from_the_page(live_app: LiveApp, browser) -> None:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.goto(live_app.url)
    wait_for_app(page)
    _log_in_steadily(page, "analyst", live_app.passwords["analyst"])
    page.get_by_role("heading", name="Campaigns").wait_for(timeout=30_000)

    page.get_by_role("link", name="Import", exact=True).click()
    page.get_by_role("heading", name="Import KPIs").wait_for(timeout=30_000)
    page.locator(".st-key-import_create label").click()
    wait_for_app(page)
    page.locator(".st-key-import_currency input").fill("USD")
    page.locator(".st-key-import_currency input").press("Enter")
    wait_for_app(page)
    files = sorted(SAMPLES.glob("*.csv"))
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(files)
    page.get_by_text("14 rows read: 14 new").first.wait_for(timeout=60_000)
    wait_for_app(page)

    for done in range(1, len(files) + 1):
        wait_for_app(page)
        page.get_by_role("button", name="Import", exact=True).first.click()
        # One more file shows its outcome, with a button to check it again.
        page.wait_for_function(
            f"""() => [...document.querySelectorAll('button')]
                .filter(b => b.innerText.trim() === 'Check this file again')
                .length >= {done}""",
            timeout=90_000,
        )

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
