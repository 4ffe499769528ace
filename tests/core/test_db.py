"""Engine and sessions: SQLite locking settings, transactions, one engine per URL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import SQLModel, select

from core import db
from core.db import get_engine, is_sqlite, read_session, session_scope
from core.models import Campaign, LoginThrottle, Role, User
from tests.factories import password_hash

THREADS = 8
INCREMENTS = 20


@pytest.fixture
def file_engine(tmp_path: Path) -> Iterator[Engine]:
    """A SQLite file database with the schema, made the way the app makes it."""
    engine = db.make_engine(f"sqlite:///{tmp_path / 'locks.db'}")
    SQLModel.metadata.create_all(engine)
    yield engine
    engine.dispose()


def _pragma(connection: Any, name: str) -> object:
    cursor = connection.cursor()
    cursor.execute(f"PRAGMA {name}")
    value = cursor.fetchone()[0]
    cursor.close()
    return value


def _new_user(username: str) -> User:
    return User(
        username=username,
        name=username.title(),
        email=f"{username}@example.com",
        role=Role.ANALYST.value,
        password_hash=password_hash(),
    )


def test_every_sqlite_connection_gets_wal_busy_timeout_and_foreign_keys(
    file_engine: Engine,
):
    # Two connections open at once are two separate driver connections.
    first, second = file_engine.raw_connection(), file_engine.raw_connection()
    try:
        for connection in (first, second):
            assert str(_pragma(connection, "journal_mode")).lower() == "wal"
            assert _pragma(connection, "busy_timeout") == db.SQLITE_BUSY_TIMEOUT_MS
            assert _pragma(connection, "foreign_keys") == 1
    finally:
        first.close()
        second.close()


def test_sqlite_foreign_keys_are_enforced(file_engine: Engine):
    orphan = Campaign(
        name="Orphan",
        currency="USD",
        start_date=date(2026, 1, 1),
        end_date=date(2026, 1, 2),
        status="planned",
        owner_id=999,
    )
    with (
        pytest.raises(IntegrityError, match=r"(?i)foreign key"),
        session_scope(file_engine) as session,
    ):
        session.add(orphan)


def test_session_scope_starts_write_transactions_with_begin_immediate(
    file_engine: Engine,
):
    statements: list[str] = []

    @event.listens_for(file_engine, "before_cursor_execute")
    def _capture(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        statements.append(statement)

    with session_scope(file_engine) as session:
        session.exec(select(User)).all()
    with read_session(file_engine) as session:
        session.exec(select(User)).all()

    begins = [s for s in statements if s.startswith("BEGIN")]
    assert begins == ["BEGIN IMMEDIATE", "BEGIN"]


def test_concurrent_read_modify_write_never_fails_with_database_locked(
    file_engine: Engine,
):
    with session_scope(file_engine) as session:
        session.add(LoginThrottle(username="counter", failures=0))
    errors: list[BaseException] = []
    start = threading.Barrier(THREADS)

    def work() -> None:
        try:
            start.wait()
            for _ in range(INCREMENTS):
                # Read first, then write: a deferred BEGIN would fail here when
                # another thread wrote between the read and the write.
                with session_scope(file_engine) as session:
                    row = session.get(LoginThrottle, "counter")
                    assert row is not None
                    row.failures += 1
                    session.add(row)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    with read_session(file_engine) as session:
        row = session.get(LoginThrottle, "counter")
    assert row is not None
    assert row.failures == THREADS * INCREMENTS


def test_read_session_reads_while_another_thread_holds_the_write_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    # A short busy timeout turns any wait for the write lock into an error.
    monkeypatch.setattr(db, "SQLITE_BUSY_TIMEOUT_MS", 200)
    engine = db.make_engine(f"sqlite:///{tmp_path / 'read.db'}")
    SQLModel.metadata.create_all(engine)
    with session_scope(engine) as session:
        session.add(_new_user("before"))
    writing, release = threading.Event(), threading.Event()

    def hold_write_lock() -> None:
        with session_scope(engine) as session:
            session.add(_new_user("during"))
            session.flush()
            writing.set()
            release.wait(10)

    writer = threading.Thread(target=hold_write_lock)
    writer.start()
    try:
        assert writing.wait(10)
        with read_session(engine) as session:
            names = session.exec(select(User.username)).all()
        # The lock really is held: a second writer gives up after the timeout.
        with (
            pytest.raises(OperationalError, match="database is locked"),
            session_scope(engine) as session,
        ):
            session.exec(select(User)).all()
    finally:
        release.set()
        writer.join()
        engine.dispose()

    assert names == ["before"]


def test_session_scope_rolls_back_on_error(engine: Engine):
    with pytest.raises(RuntimeError), session_scope(engine) as session:
        session.add(_new_user("ghost"))
        session.flush()
        raise RuntimeError("boom")

    with read_session(engine) as session:
        assert session.exec(select(User)).all() == []


def test_session_scope_commits_and_read_session_reads_on_both_databases(
    engine: Engine,
):
    with session_scope(engine) as session:
        session.add(_new_user("kept"))

    with read_session(engine) as session:
        names = session.exec(select(User.username)).all()
    assert names == ["kept"]


def test_read_session_does_not_commit(engine: Engine):
    with read_session(engine) as session:
        session.add(_new_user("unsaved"))
        session.flush()

    with read_session(engine) as session:
        assert session.exec(select(User)).all() == []


def test_objects_stay_readable_after_the_scope_closes(engine: Engine):
    with session_scope(engine) as session:
        user = _new_user("lasting")
        session.add(user)

    # expire_on_commit=True would make this a DetachedInstanceError.
    assert user.username == "lasting"
    assert user.id is not None


def test_objects_read_in_a_read_session_stay_readable_after_it(engine: Engine):
    with session_scope(engine) as session:
        session.add(_new_user("reader"))

    with read_session(engine) as session:
        user = session.exec(select(User)).one()

    # A rollback on the way out would expire the object and make this fail.
    assert user.username == "reader"


def test_the_default_engine_follows_the_settings(engine: Engine):
    with session_scope() as session:
        session.add(_new_user("through_settings"))

    with read_session(engine) as session:
        assert session.exec(select(User.username)).all() == ["through_settings"]


def test_one_engine_per_url(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'one.db'}"
    other = f"sqlite:///{tmp_path / 'two.db'}"

    assert get_engine(url) is get_engine(url)
    assert get_engine(other) is not get_engine(url)
    assert get_engine() is get_engine()


def test_dispose_engines_forgets_cached_engines(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'one.db'}"
    first = get_engine(url)

    db.dispose_engines()

    assert get_engine(url) is not first


def test_sqlite_file_folder_is_created(tmp_path: Path):
    path = tmp_path / "nested" / "deeper" / "app.db"
    engine = db.make_engine(f"sqlite:///{path}")
    with engine.connect() as connection:
        connection.execute(text("select 1"))
    engine.dispose()

    assert path.is_file()


def test_is_sqlite_tells_the_backends_apart():
    # Making an engine does not connect, so no server is needed here.
    assert is_sqlite(db.make_engine("sqlite://"))
    assert not is_sqlite(db.make_engine("postgresql+psycopg://nobody@localhost/x"))
