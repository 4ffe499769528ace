"""Shared fixtures: isolated settings per test; databases on SQLite and PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session, SQLModel

import core.models  # noqa: F401  (registers the tables)
from core.config import get_settings
from core.db import dispose_engines, make_engine

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@localhost:5432/retro_test"
_postgres_state: dict[str, object] = {}


def postgres_url() -> str | None:
    """The test PostgreSQL URL: the one set in the environment, or the local
    default when a server answers there (its database is created if missing)."""
    if "url" not in _postgres_state:
        explicit = os.environ.get("RETRO_TEST_POSTGRES_URL")
        if explicit:
            _postgres_state["url"] = explicit
        else:
            _postgres_state["url"] = DEFAULT_POSTGRES_URL if _ensure_local() else None
    value = _postgres_state["url"]
    return value if isinstance(value, str) else None


def _ensure_local() -> bool:
    url = make_url(DEFAULT_POSTGRES_URL)
    try:
        server = make_engine(url.set(database="postgres").render_as_string(False))
        with server.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            exists = conn.execute(
                text("select 1 from pg_database where datname = :name"),
                {"name": url.database},
            ).first()
            if not exists:
                conn.execute(text(f'create database "{url.database}"'))
        server.dispose()
    except Exception:
        return False
    return True


@pytest.fixture(autouse=True)
def isolated_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """Every test gets its own data folder and SQLite file, and no secrets file."""
    monkeypatch.setenv("RETRO_SECRETS_FILE", str(tmp_path / "no-secrets.toml"))
    monkeypatch.setenv("RETRO_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("RETRO_DATABASE_URL", f"sqlite:///{tmp_path / 'retro.db'}")
    monkeypatch.setenv("RETRO_SCHEDULER_ENABLED", "false")
    monkeypatch.setenv(
        "RETRO_COOKIE_KEY", "k" * 8 + "-test-cookie-key-for-the-suite-0123"
    )
    for name in list(os.environ):
        if name.startswith("RETRO_") and name not in {
            "RETRO_SECRETS_FILE",
            "RETRO_DATA_DIR",
            "RETRO_DATABASE_URL",
            "RETRO_SCHEDULER_ENABLED",
            "RETRO_COOKIE_KEY",
            "RETRO_TEST_POSTGRES_URL",
        }:
            monkeypatch.delenv(name)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
    dispose_engines()


# bcrypt's lowest cost: the services hash with the default cost (about 0.2 s a
# hash), which would make every created user slow without testing anything more.
FAST_BCRYPT_ROUNDS = 4


@pytest.fixture(autouse=True)
def fast_bcrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    real_gensalt = bcrypt.gensalt

    def gensalt(rounds: int = FAST_BCRYPT_ROUNDS, prefix: bytes = b"2b") -> bytes:
        return real_gensalt(FAST_BCRYPT_ROUNDS, prefix)

    monkeypatch.setattr(bcrypt, "gensalt", gensalt)


@pytest.fixture(scope="session")
def postgres_engine() -> Iterator[Engine]:
    url = postgres_url()
    if url is None:
        pytest.skip("PostgreSQL is not reachable (set RETRO_TEST_POSTGRES_URL)")
    engine = make_engine(url)
    # The whole schema, not just the known tables: a table left by another
    # branch or an older run would otherwise block dropping the ones it refers to.
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    SQLModel.metadata.create_all(engine)
    yield engine
    engine.dispose()


def _truncate_all(engine: Engine) -> None:
    names = ", ".join(f'"{t.name}"' for t in SQLModel.metadata.sorted_tables)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Engine]:
    """A database with a fresh schema, on SQLite and on PostgreSQL.

    The app settings point at the same database, so code that opens its own
    sessions (CLI, jobs) sees what the test wrote.
    """
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'retro.db'}"
        db = make_engine(url)
        SQLModel.metadata.create_all(db)
    else:
        db = request.getfixturevalue("postgres_engine")
        _truncate_all(db)
        url = db.url.render_as_string(hide_password=False)
    monkeypatch.setenv("RETRO_DATABASE_URL", url)
    get_settings.cache_clear()
    yield db
    if request.param == "sqlite":
        db.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session on the test database; tests commit when they mean to."""
    with Session(engine, expire_on_commit=False) as db_session:
        yield db_session


def database_kind(engine: Engine) -> str:
    return make_url(str(engine.url)).get_backend_name()
