"""Role navigation: each role is offered exactly its pages; the rest are refused."""

from __future__ import annotations

import pytest
from sqlmodel import Session
from streamlit.testing.v1 import AppTest

from core.models import Role
from tests.factories import make_user
from tests.pages.conftest import errors, logged_in, page_as, page_titles, titles
from ui.text import escape

# The menu each role gets, in order. Extend it when a page is added to app.py.
EVERYONE = ["Overview", "Campaign", "Retrospectives", "Retrospective"]
MENU = {
    Role.VIEWER: [*EVERYONE, "Rules"],
    Role.ANALYST: [*EVERYONE, "Rules", "Import"],
    Role.APPROVER: [*EVERYONE, "Approvals", "Rules"],
    Role.ADMIN: [
        *EVERYONE,
        "Approvals",
        "Rules",
        "Import",
        "Users",
        "Audit log",
        "Jobs",
    ],
}
ADMIN_PAGES = {
    "pages/users.py": "may not manage rules, users and schedules.",
    "pages/audit.py": "may not read the audit log.",
    "pages/jobs.py": "may not manage rules, users and schedules.",
}


@pytest.mark.parametrize("role", list(Role))
def test_each_role_is_offered_exactly_its_pages(
    app: AppTest, page_session: Session, role: Role
):
    make_user(page_session, role, "someone")

    logged_in(app, "someone")

    assert page_titles(app) == MENU[role]
    assert "Campaigns" in titles(app)


@pytest.mark.parametrize("role", [Role.VIEWER, Role.ANALYST, Role.APPROVER])
def test_admin_pages_cannot_be_opened_by_other_roles(
    app: AppTest, page_session: Session, role: Role
):
    make_user(page_session, role, "someone")
    logged_in(app, "someone")

    for path in ADMIN_PAGES:
        with pytest.raises(ValueError, match="Could not find a navigation page"):
            app.switch_page(path)


@pytest.mark.parametrize(("path", "refusal"), ADMIN_PAGES.items())
def test_admin_pages_refuse_other_roles_in_core_too(
    page_session: Session, path: str, refusal: str
):
    # Even run without the router, the page only shows the service's refusal.
    analyst = make_user(page_session, Role.ANALYST, name="Sam Patel")

    at = page_as(path, analyst).run()

    assert errors(at) == [f"Sam Patel (analyst) {refusal}"]
    assert not at.dataframe
    assert not at.exception


@pytest.mark.parametrize("role", [Role.VIEWER, Role.ANALYST])
def test_approval_queue_is_refused_in_core_for_non_approvers(
    page_session: Session, role: Role
):
    actor = make_user(page_session, role, name="Sam Patel")

    at = page_as("pages/approvals.py", actor).run()

    refusal = f"Sam Patel ({role.value}) may not approve or request changes."
    assert errors(at) == [escape(refusal)]
    assert not at.dataframe
    assert not at.exception
