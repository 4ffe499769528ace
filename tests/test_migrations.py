"""The migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine, make_url
from sqlmodel import SQLModel

import core.models  # noqa: F401  (registers the tables)
from core.db import alembic_config, make_engine, upgrade_schema
from tests.conftest import postgres_url

SCRATCH_SUFFIX = "_mig"


def _differences(engine: Engine) -> list[object]:
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "target_metadata": None}
        )
        return list(compare_metadata(context, SQLModel.metadata))


def _head(url: str) -> str | None:
    return ScriptDirectory.from_config(alembic_config(url)).get_current_head()


def _current(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def _assert_upgraded_to_match_models(url: str) -> None:
    upgrade_schema(url)

    engine = make_engine(url)
    try:
        assert _current(engine) == _head(url)
        assert _differences(engine) == []
        tables = set(inspect(engine).get_table_names())
        assert set(SQLModel.metadata.tables) <= tables
    finally:
        engine.dispose()


def test_upgrade_head_on_empty_sqlite_matches_the_models(tmp_path: Path):
    _assert_upgraded_to_match_models(f"sqlite:///{tmp_path / 'fresh.db'}")


def test_upgrade_head_twice_changes_nothing(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'twice.db'}"
    upgrade_schema(url)

    _assert_upgraded_to_match_models(url)


@pytest.fixture
def scratch_postgres_url() -> Iterator[str]:
    """An empty PostgreSQL database of its own, dropped again afterwards."""
    base = postgres_url()
    if base is None:
        pytest.skip("PostgreSQL is not reachable (set RETRO_TEST_POSTGRES_URL)")
    url = make_url(base)
    scratch = f"{url.database}{SCRATCH_SUFFIX}"
    server = make_engine(url.set(database="postgres").render_as_string(False))
    try:
        _recreate(server, scratch)
    except Exception as exc:
        server.dispose()
        pytest.skip(f"PostgreSQL does not answer: {exc}")
    try:
        yield url.set(database=scratch).render_as_string(False)
    finally:
        _drop(server, scratch)
        server.dispose()


def _recreate(server: Engine, name: str) -> None:
    with server.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))


def _drop(server: Engine, name: str) -> None:
    with server.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.mark.postgres
def test_upgrade_head_on_empty_postgres_matches_the_models(
    scratch_postgres_url: str,
):
    _assert_upgraded_to_match_models(scratch_postgres_url)


def test_the_comparison_notices_a_schema_that_drifted(tmp_path: Path):
    # Guards the tests above: a missing index must show up as a difference.
    url = f"sqlite:///{tmp_path / 'drift.db'}"
    upgrade_schema(url)
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(text("DROP INDEX ix_kpi_campaign_day"))

        differences = _differences(engine)
    finally:
        engine.dispose()

    assert [d[0] for d in differences] == ["add_index"]  # type: ignore[index]
