"""Engine, sessions and schema upgrades; the same code runs on SQLite and PostgreSQL."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session, create_engine

from core.config import PROJECT_ROOT, get_settings

logger = logging.getLogger(__name__)

# How long a SQLite writer waits for another one before giving up.
SQLITE_BUSY_TIMEOUT_MS = 30_000
MIGRATIONS_DIR = PROJECT_ROOT / "migrations"

_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def make_engine(url: str) -> Engine:
    """A new engine; SQLite gets WAL, busy timeout, foreign keys, BEGIN IMMEDIATE."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)

    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url, connect_args={"check_same_thread": False, "timeout": 30}
    )
    _configure_sqlite(engine)
    return engine


def _configure_sqlite(engine: Engine) -> None:
    # pysqlite's own transaction handling issues a deferred BEGIN lazily; a
    # read that later upgrades to a write then fails at once with "database is
    # locked". So the driver is put in autocommit and SQLAlchemy emits BEGIN
    # itself: IMMEDIATE (take the write lock now, waiting up to the busy
    # timeout) unless the connection asked for a read-only transaction.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        read_only = connection.get_execution_options().get("retro_read_only", False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def get_engine(url: str | None = None) -> Engine:
    """The process-wide engine for a URL (the configured one by default)."""
    url = url or get_settings().resolved_database_url
    with _engines_lock:
        engine = _engines.get(url)
        if engine is None:
            engine = make_engine(url)
            _engines[url] = engine
        return engine


def dispose_engines() -> None:
    """Close every cached engine (tests, and processes that fork)."""
    with _engines_lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


def _session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, class_=Session, expire_on_commit=False)


@contextmanager
def session_scope(engine: Engine | None = None) -> Iterator[Session]:
    """A write transaction: committed on success, rolled back on any error."""
    session = _session_factory(engine or get_engine())()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


@contextmanager
def read_session(engine: Engine | None = None) -> Iterator[Session]:
    """A read-only transaction; on SQLite it does not take the write lock."""
    engine = engine or get_engine()
    session = _session_factory(engine)()
    if is_sqlite(engine):
        session.connection(execution_options={"retro_read_only": True})
    try:
        yield session
    finally:
        # close() alone ends the transaction without writing anything; an
        # explicit rollback() would also expire every object read here, so
        # values read in the scope could not be used after it.
        session.close()


def alembic_config(url: str) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade_schema(url: str | None = None) -> None:
    """Bring the database to the newest migration (creates it when empty)."""
    from alembic import command

    url = url or get_settings().resolved_database_url
    command.upgrade(alembic_config(url), "head")
    logger.info("schema upgraded to head on %s", make_url(url).render_as_string())
