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

SCRATCH_SCHEMA = "retro_migration_check"


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
    """An empty PostgreSQL namespace of its own, dropped again afterwards.

    A schema in the test database rather than a database of its own: DROP
    DATABASE forces a checkpoint, which took up to 19 s on a busy server.
    """
    base = postgres_url()
    if base is None:
        pytest.skip("PostgreSQL is not reachable (set RETRO_TEST_POSTGRES_URL)")
    url = make_url(base)
    server = make_engine(url.render_as_string(False))
    try:
        _run(server, f"DROP SCHEMA IF EXISTS {SCRATCH_SCHEMA} CASCADE")
        _run(server, f"CREATE SCHEMA {SCRATCH_SCHEMA}")
    except Exception as exc:
        server.dispose()
        pytest.skip(f"PostgreSQL does not answer: {exc}")
    scratch = url.update_query_dict({"options": f"-csearch_path={SCRATCH_SCHEMA}"})
    try:
        yield scratch.render_as_string(False)
    finally:
        _run(server, f"DROP SCHEMA IF EXISTS {SCRATCH_SCHEMA} CASCADE")
        server.dispose()


def _run(engine: Engine, statement: str) -> None:
    with engine.begin() as connection:
        connection.execute(text(statement))


@pytest.mark.postgres
def test_upgrade_head_on_empty_postgres_matches_the_models(
    scratch_postgres_url: str,
):
    _assert_upgraded_to_match_models(scratch_postgres_url)

    engine = make_engine(scratch_postgres_url)
    try:
        # The tables were made in the empty schema, not next to other tests' ones.
        assert inspect(engine).default_schema_name == SCRATCH_SCHEMA
        assert "alembic_version" in inspect(engine).get_table_names()
    finally:
        engine.dispose()


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
