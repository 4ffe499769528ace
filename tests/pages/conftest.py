"""AppTest helpers: the app on a fresh SQLite database, and logging in through its form.

AppTest runs the script in this process, so it reads the database the
RETRO_DATABASE_URL set here points at; tests write their data with the
factories through `page_session` and must not hold a transaction open while
the app runs (SQLite would make the app wait for the write lock).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select
from streamlit.runtime.pages_manager import PagesManager
from streamlit.testing.v1 import AppTest

from core import jobs
from core.config import PROJECT_ROOT, get_settings
from core.db import make_engine, read_session, upgrade_schema
from core.jobs import JobRow
from core.models import Job
from core.services.permissions import Actor
from tests.factories import TEST_PASSWORD
from ui.session import ACTOR_KEY

APP = PROJECT_ROOT / "app.py"
TIMEOUT = 30


@pytest.fixture(scope="session")
def schema_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file at the newest migration, copied for each test (fast)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade_schema(f"sqlite:///{path}")
    return path


@pytest.fixture
def sqlite_engine(
    schema_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Engine]:
    """A fresh migrated SQLite database that the app under test uses."""
    path = tmp_path / "app.db"
    shutil.copy(schema_template, path)
    url = f"sqlite:///{path}"
    monkeypatch.setenv("RETRO_DATABASE_URL", url)
    get_settings.cache_clear()
    engine = make_engine(url)
    yield engine
    engine.dispose()


@pytest.fixture
def page_session(sqlite_engine: Engine) -> Iterator[Session]:
    """For arranging data; factories commit, so no write lock stays held."""
    with Session(sqlite_engine, expire_on_commit=False) as session:
        yield session


@pytest.fixture
def steady_navigation(monkeypatch: pytest.MonkeyPatch) -> None:
    """Route every run through app.py, as a server does after its first run.

    Streamlit treats a pages/ folder as old-style pages until the process
    first calls st.navigation; AppTest forgets that call before every run, so
    without this a rerun would execute the page file without the router.
    """
    original = PagesManager.__init__

    def init(self: PagesManager, *args: object, **kwargs: object) -> None:
        original(self, *args, **kwargs)  # type: ignore[arg-type]
        PagesManager.uses_pages_directory = False

    monkeypatch.setattr(PagesManager, "__init__", init)


def new_app() -> AppTest:
    return AppTest.from_file(str(APP), default_timeout=TIMEOUT)


@pytest.fixture
def app(sqlite_engine: Engine, steady_navigation: None) -> AppTest:
    """The app, run once: it shows the login form."""
    at = new_app()
    at.run()
    return at


def logged_in(at: AppTest, username: str, password: str = TEST_PASSWORD) -> AppTest:
    """Fill the login form and press "Log in"; the run after it is returned."""
    at.text_input(key="login_username").input(username)
    at.text_input(key="login_password").input(password)
    next(b for b in at.button if b.label == "Log in").click()
    return at.run()


def titles(at: AppTest) -> list[str]:
    return [str(t.value) for t in at.title]


def errors(at: AppTest) -> list[str]:
    return [str(e.value) for e in at.error]


def page_titles(at: AppTest) -> list[str]:
    """The pages the navigation offers after the last run, in menu order."""
    return [str(p.get("page_name")) for p in at._registered_pages.values()]


def run_queued_jobs() -> list[JobRow]:
    """Run what the pages queued, as the scheduler would (it is off in tests)."""
    with read_session() as session:
        query = select(Job.id).where(Job.status == "queued").order_by(col(Job.id))
        queued = [int(i) for i in session.exec(query).all() if i is not None]
    return [row for job_id in queued for row in jobs.run_in_foreground(job_id)]


def page_as(path: str, actor: Actor) -> AppTest:
    """One page file on its own, with the actor the router would have set."""
    at = AppTest.from_file(str(PROJECT_ROOT / path), default_timeout=TIMEOUT)
    at.session_state[ACTOR_KEY] = actor
    return at
