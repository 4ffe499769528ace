"""Router: page config, login gate, the pages of the user's role, the scheduler."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlparse

import streamlit as st

from core import jobs
from core.config import ConfigError, get_settings
from core.db import session_scope, upgrade_schema
from core.models import Role
from core.services.permissions import Actor
from ui import auth
from ui.session import set_current_actor
from ui.text import escape

EVERYONE = frozenset(Role)
STAFF = frozenset({Role.ANALYST, Role.ADMIN})
ADMINS = frozenset({Role.ADMIN})
APPROVERS = frozenset({Role.APPROVER, Role.ADMIN})
FIRST_URL_KEY = "first_url_path"


@dataclass(frozen=True)
class PageSpec:
    path: str
    title: str
    icon: str
    roles: frozenset[Role]
    default: bool = False


PAGES: tuple[PageSpec, ...] = (
    PageSpec("pages/overview.py", "Overview", ":material/dashboard:", EVERYONE, True),
    PageSpec("pages/campaign.py", "Campaign", ":material/monitoring:", EVERYONE),
    PageSpec(
        "pages/retrospectives.py", "Retrospectives", ":material/fact_check:", EVERYONE
    ),
    PageSpec("pages/retrospective.py", "Retrospective", ":material/article:", EVERYONE),
    PageSpec("pages/approvals.py", "Approvals", ":material/approval:", APPROVERS),
    PageSpec("pages/rules.py", "Rules", ":material/rule:", EVERYONE),
    PageSpec("pages/import.py", "Import", ":material/upload_file:", STAFF),
    PageSpec("pages/users.py", "Users", ":material/group:", ADMINS),
    PageSpec("pages/audit.py", "Audit log", ":material/policy:", ADMINS),
    PageSpec("pages/jobs.py", "Jobs", ":material/schedule:", ADMINS),
)


def _page(spec: PageSpec) -> st.Page:
    return st.Page(spec.path, title=spec.title, icon=spec.icon, default=spec.default)


def pages_for(role: Role) -> list[st.Page]:
    return [_page(spec) for spec in PAGES if role in spec.roles]


def remember_first_url() -> None:
    # A reload lands on the default page when the cookie component's rerun cuts
    # the first run short; the page the tab asked for, with its query (say, a
    # retrospective's id), is restored after login.
    if FIRST_URL_KEY not in st.session_state:
        path = urlparse(st.context.url or "").path.strip("/")
        st.session_state[FIRST_URL_KEY] = (path, st.query_params.to_dict())


def restore_first_url(pages: list[st.Page], current: st.Page) -> None:
    wanted, query = st.session_state.pop(FIRST_URL_KEY, ("", {}))
    if not wanted or current.url_path == wanted.rsplit("/", 1)[-1]:
        return
    for page in pages:
        if page.url_path and wanted.endswith(page.url_path):
            st.switch_page(page, query_params=query or None)


def sidebar(actor: Actor, area: st.delta_generator.DeltaGenerator) -> None:
    with area:
        st.markdown(f"**{escape(actor.name)}**")
        st.caption(escape(f"{actor.username} · {actor.role.value}"))


@st.cache_resource(show_spinner="Preparing the database…")
def prepare_database() -> bool:
    """Once per server process: bring the schema up to date."""
    upgrade_schema()
    return True


@st.cache_resource(show_spinner=False, on_release=jobs.stop_scheduler)
def background_scheduler() -> object:
    """Once per server process, not per rerun or session: the job scheduler.

    None when the settings turn it off (tests, extra replicas). Starting it
    also fails the jobs a stopped process left running.
    """
    return jobs.start_scheduler()


@st.cache_resource(show_spinner=False)
def prepare_rules() -> bool:
    """Once per server process, after the first login: add missing built-in rules.

    Not before the login form: importing the rule engine (pandas, numpy) makes
    that first run long, and the login cookie component's rerun then wipes a
    login typed meanwhile.
    """
    from core.services import rules

    with session_scope() as session:
        rules.ensure_builtin_rules(session)
    return True


def main() -> None:
    st.set_page_config(page_title="Retrospective Engine", page_icon="📊", layout="wide")
    try:
        get_settings().signing_key()
    except ConfigError as exc:
        st.error(f"Configuration error: {exc}")
        st.stop()

    prepare_database()
    background_scheduler()
    remember_first_url()
    authenticator = auth.make_authenticator()
    who = st.sidebar.container()
    if auth.is_logged_in():
        # Logout is rendered before the login form so a click shows the form at once.
        authenticator.logout("Log out", "sidebar", key="logout_button")
    auth.restore_from_cookie(authenticator)
    actor = auth.checked_actor(authenticator)
    if actor is None:
        auth.login_form(authenticator)
        actor = auth.checked_actor(authenticator)
    set_current_actor(actor)
    if actor is None:
        st.stop()

    prepare_rules()
    sidebar(actor, who)
    pages = pages_for(actor.role)
    # On top: .streamlit/config.toml hides sidebar navigation, so that a fresh
    # server never lists the pages/ folder on the login screen.
    current = st.navigation(pages, position="top")
    restore_first_url(pages, current)
    current.run()


main()
