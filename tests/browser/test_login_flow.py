"""In a real browser: the demo analyst logs in, sees the overview, reloads, logs out."""

from __future__ import annotations

from tests.browser.conftest import LiveApp, log_in, submit_login, wait_for_app


def test_demo_analyst_logs_in_and_sees_the_overview(live_app: LiveApp, browser) -> None:
    assert set(live_app.passwords) == {"admin", "analyst", "approver", "viewer"}
    context = browser.new_context()
    page = context.new_page()
    page.goto(live_app.url)
    wait_for_app(page)

    log_in(page, "analyst", live_app.passwords["analyst"])

    page.get_by_role("heading", name="Campaigns").first.wait_for(timeout=30_000)
    assert page.get_by_text("Sam Patel").first.is_visible()
    page.locator('[data-testid="stDataFrame"]').first.wait_for(timeout=30_000)
    context.close()


def test_wrong_password_is_refused_in_the_browser(live_app: LiveApp, browser) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto(live_app.url)
    wait_for_app(page)

    submit_login(page, "analyst", "not-the-password")

    page.get_by_text("Username or password is incorrect.").first.wait_for(
        timeout=30_000
    )
    assert page.get_by_role("heading", name="Campaigns").count() == 0
    context.close()


def test_reload_keeps_the_login_and_logout_ends_it(live_app: LiveApp, browser) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto(live_app.url)
    wait_for_app(page)
    log_in(page, "viewer", live_app.passwords["viewer"])
    page.get_by_role("heading", name="Campaigns").first.wait_for(timeout=30_000)
    # The cookie is written by a component a moment after login.
    page.wait_for_function(
        "() => document.cookie.includes('retro_auth')", timeout=15_000
    )

    page.reload()
    wait_for_app(page)
    page.get_by_role("heading", name="Campaigns").first.wait_for(timeout=30_000)

    page.get_by_role("button", name="Log out").click()
    page.locator(".st-key-login_username").first.wait_for(timeout=30_000)
    page.wait_for_function(
        "() => !document.cookie.includes('retro_auth')", timeout=15_000
    )
    page.reload()
    wait_for_app(page)
    page.locator(".st-key-login_username").first.wait_for(timeout=30_000)
    assert page.get_by_role("heading", name="Campaigns").count() == 0
    context.close()


def test_reload_of_another_page_stays_on_that_page(live_app: LiveApp, browser) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto(live_app.url)
    wait_for_app(page)
    log_in(page, "analyst", live_app.passwords["analyst"])
    page.get_by_role("heading", name="Campaigns").first.wait_for(timeout=30_000)
    page.wait_for_function(
        "() => document.cookie.includes('retro_auth')", timeout=15_000
    )

    page.get_by_role("link", name="Campaign", exact=True).click()
    page.locator(".st-key-campaign_select").first.wait_for(timeout=30_000)
    wait_for_app(page)
    page.reload()
    wait_for_app(page)

    page.locator(".st-key-campaign_select").first.wait_for(timeout=30_000)
    assert "/campaign" in page.url
    context.close()
