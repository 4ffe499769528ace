"""The command line: exit codes, --as permissions, and each command's effect."""

from __future__ import annotations

import argparse
import io
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, col, select

from core import cli
from core.config import PROJECT_ROOT, get_settings
from core.db import make_engine, read_session, session_scope
from core.models import Campaign, Role, User
from core.services import users
from tests.factories import add_kpis, make_campaign, make_user

LOGIN_LINE = re.compile(r"^\s+(\w+)\s+(\w+)\s+password: (\S+)$", re.MULTILINE)
NEW_PASSWORD = "a new passphrase"


def _run(*argv: str) -> int:
    return cli.main(list(argv))


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    """The single line a refusal writes to stderr; nothing went to stdout."""
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: ")
    assert captured.out == ""
    return lines[0]


def _commands() -> list[str]:
    parser = cli.build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return sorted(action.choices)
    raise AssertionError("the parser has no sub-commands")


def _count(engine: Engine, model: type[SQLModel], *where: object) -> int:
    with read_session(engine) as session:
        query = select(func.count()).select_from(model)
        for clause in where:
            query = query.where(clause)  # type: ignore[arg-type]
        return int(session.exec(query).one())


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_database(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Engine]:
    """A database without any table, which the app settings point at."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'empty.db'}"
        _point_settings_at(url, monkeypatch)
        engine = make_engine(url)
        yield engine
        engine.dispose()
        return
    engine = request.getfixturevalue("postgres_engine")
    _drop_everything(engine)
    _point_settings_at(engine.url.render_as_string(False), monkeypatch)
    try:
        yield engine
    finally:
        # Put back the schema the shared PostgreSQL fixture expects.
        _drop_everything(engine)
        SQLModel.metadata.create_all(engine)


def _point_settings_at(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETRO_DATABASE_URL", url)
    get_settings.cache_clear()


def _drop_everything(engine: Engine) -> None:
    SQLModel.metadata.drop_all(engine)
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE IF EXISTS alembic_version"))


# -- the parser ---------------------------------------------------------------


def test_the_module_runs_as_a_program():
    result = subprocess.run(
        [sys.executable, "-m", "core.cli", "--help"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0
    for command in _commands():
        assert command in result.stdout


@pytest.mark.parametrize("command", _commands())
def test_every_command_has_help(command: str, capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit) as exit_info:
        _run(command, "--help")

    assert exit_info.value.code == 0
    assert f"python -m core.cli {command}" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["no-such-command"],
        ["seed-demo", "--as", "admin"],
        ["seed-demo", "--count", "many", "--as", "admin"],
        ["seed-demo", "--count", "-3", "--as", "admin"],
        ["create-user", "x", "--role", "boss", "--name", "X", "--email", "x@y.z"],
        ["list-campaigns"],
    ],
)
def test_usage_errors_exit_with_2(argv: list[str], capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit) as exit_info:
        _run(*argv)

    assert exit_info.value.code == cli.EXIT_USAGE
    assert "usage:" in capsys.readouterr().err


# -- init-db ---------------------------------------------------------------------


def test_init_db_without_demo_creates_the_schema_only(
    empty_database: Engine, capsys: pytest.CaptureFixture[str]
):
    assert _run("init-db") == cli.EXIT_OK

    assert "schema is up to date" in capsys.readouterr().out
    assert _count(empty_database, User) == 0


def test_init_db_demo_prints_one_login_per_role_once(
    empty_database: Engine, capsys: pytest.CaptureFixture[str]
):
    assert _run("init-db", "--demo") == cli.EXIT_OK
    logins = LOGIN_LINE.findall(capsys.readouterr().out)

    assert sorted(role for role, _, _ in logins) == sorted(r.value for r in Role)
    with session_scope(empty_database) as session:
        for _, username, password in logins:
            result = users.verify_login(session, username=username, password=password)
            assert result.actor is not None
    campaigns = _count(empty_database, Campaign, col(Campaign.is_demo))
    assert campaigns == cli.DEFAULT_DEMO_CAMPAIGNS

    assert _run("init-db", "--demo") == cli.EXIT_OK
    second = capsys.readouterr().out
    assert "demo data left as it is" in second
    assert LOGIN_LINE.findall(second) == []
    assert _count(empty_database, Campaign) == campaigns
    assert _count(empty_database, User) == len(Role)


# -- create-user -----------------------------------------------------------------


def _create_user(
    monkeypatch: pytest.MonkeyPatch,
    username: str,
    *extra: str,
    role: str = "analyst",
    password: str = NEW_PASSWORD,
) -> int:
    monkeypatch.setattr(sys, "stdin", io.StringIO(password + "\n"))
    return _run(
        "create-user",
        username,
        "--role",
        role,
        "--name",
        username.title(),
        "--email",
        f"{username}@example.com",
        "--password-stdin",
        *extra,
    )


def test_the_first_user_needs_no_admin(
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
):
    assert _create_user(monkeypatch, "founder", role="admin") == cli.EXIT_OK

    assert "Created user founder (admin)" in capsys.readouterr().out
    with session_scope(engine) as session:
        result = users.verify_login(session, username="founder", password=NEW_PASSWORD)
    assert result.actor is not None and result.actor.role is Role.ADMIN


def test_later_users_need_an_admin_named_with_as(
    engine: Engine,
    session: Session,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
):
    make_user(session, Role.ADMIN, "boss")
    make_user(session, Role.ANALYST, "sam")

    assert _create_user(monkeypatch, "newbie") == cli.EXIT_REFUSED
    assert "--as" in _one_error_line(capsys)

    assert _create_user(monkeypatch, "newbie", "--as", "sam") == cli.EXIT_REFUSED
    assert "may not manage rules, users" in _one_error_line(capsys)

    assert _create_user(monkeypatch, "newbie", "--as", "boss") == cli.EXIT_OK
    assert _count(engine, User, User.username == "newbie") == 1


def test_create_user_refuses_bad_input_with_one_line(
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
):
    assert _create_user(monkeypatch, "founder", password="short") == cli.EXIT_REFUSED

    assert "password: must be at least" in _one_error_line(capsys)
    assert _count(engine, User) == 0


def test_create_user_asks_for_the_password_twice(
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
):
    answers = iter([NEW_PASSWORD, "something else"])
    monkeypatch.setattr(cli.getpass, "getpass", lambda prompt: next(answers))
    argv = ["create-user", "founder", "--role", "admin", "--name", "F"]

    assert _run(*argv, "--email", "f@example.com") == cli.EXIT_REFUSED
    assert "the two entries differ" in _one_error_line(capsys)

    monkeypatch.setattr(cli.getpass, "getpass", lambda prompt: NEW_PASSWORD)
    assert _run(*argv, "--email", "f@example.com") == cli.EXIT_OK
    assert _count(engine, User) == 1


# -- seed-demo -------------------------------------------------------------------


def test_seed_demo_creates_campaigns_for_the_named_owner(
    engine: Engine, session: Session, capsys: pytest.CaptureFixture[str]
):
    make_user(session, Role.ADMIN, "boss")
    owner = make_user(session, Role.VIEWER, "vera")

    assert _run("seed-demo", "--count", "3", "--user", "vera", "--as", "boss") == 0

    assert "Created 3 demo campaigns" in capsys.readouterr().out
    assert _count(engine, Campaign, Campaign.owner_id == owner.id) == 3


def test_seed_demo_clear_removes_demo_data_only(
    engine: Engine, session: Session, capsys: pytest.CaptureFixture[str]
):
    admin = make_user(session, Role.ADMIN, "boss")
    make_user(session, Role.VIEWER, "vera")
    real = make_campaign(session, admin, name="Real one")
    add_kpis(session, real, days=2)
    assert _run("seed-demo", "--count", "4", "--user", "vera", "--as", "boss") == 0

    argv = ["seed-demo", "--clear", "--count", "2", "--user", "vera", "--as", "boss"]
    assert _run(*argv) == cli.EXIT_OK

    out = capsys.readouterr().out
    assert "Removed 4 demo campaigns" in out
    assert _count(engine, Campaign, col(Campaign.is_demo)) == 2
    assert _count(engine, Campaign, Campaign.name == "Real one") == 1


def test_seed_demo_clear_with_count_zero_only_clears(
    engine: Engine, session: Session, capsys: pytest.CaptureFixture[str]
):
    make_user(session, Role.ADMIN, "boss")
    make_user(session, Role.VIEWER, "vera")
    assert _run("seed-demo", "--count", "2", "--user", "vera", "--as", "boss") == 0

    argv = ["seed-demo", "--clear", "--count", "0", "--as", "boss"]
    assert _run(*argv) == cli.EXIT_OK

    assert "Removed 2 demo campaigns" in capsys.readouterr().out
    assert _count(engine, Campaign) == 0


def test_seed_demo_is_refused_for_a_non_admin(
    engine: Engine, session: Session, capsys: pytest.CaptureFixture[str]
):
    make_user(session, Role.ANALYST, "sam")

    assert _run("seed-demo", "--count", "2", "--user", "sam", "--as", "sam") == 1

    assert "may not manage" in _one_error_line(capsys)
    assert _count(engine, Campaign) == 0


def test_seed_demo_needs_an_existing_owner_and_then_clears_nothing(
    engine: Engine, session: Session, capsys: pytest.CaptureFixture[str]
):
    make_user(session, Role.ADMIN, "boss")
    make_user(session, Role.VIEWER, "vera")
    assert _run("seed-demo", "--count", "2", "--user", "vera", "--as", "boss") == 0
    capsys.readouterr()

    argv = ["seed-demo", "--clear", "--count", "1", "--user", "ghost", "--as", "boss"]
    assert _run(*argv) == cli.EXIT_REFUSED

    assert "No user named 'ghost'" in _one_error_line(capsys)
    assert _count(engine, Campaign) == 2


# -- list-campaigns --------------------------------------------------------------


def test_list_campaigns_json_respects_viewer_ownership(
    engine: Engine, session: Session, capsys: pytest.CaptureFixture[str]
):
    vera = make_user(session, Role.VIEWER, "vera")
    otto = make_user(session, Role.VIEWER, "otto")
    make_user(session, Role.ANALYST, "sam")
    mine = make_campaign(session, vera, name="Mine")
    make_campaign(session, otto, name="Theirs")
    add_kpis(session, mine, spend=40.0, revenue=100.0)

    assert _run("list-campaigns", "--json", "--as", "vera") == cli.EXIT_OK
    listed = json.loads(capsys.readouterr().out)

    assert [c["name"] for c in listed] == ["Mine"]
    record = listed[0]
    assert record["id"] == mine.id
    assert record["status"] == "completed"
    assert (record["start"], record["end"]) == ("2026-11-01", "2026-11-14")
    assert record["roas"] == pytest.approx(2.5)
    assert record["retrospective"] is None

    assert _run("list-campaigns", "--json", "--as", "sam") == cli.EXIT_OK
    names = {c["name"] for c in json.loads(capsys.readouterr().out)}
    assert names == {"Mine", "Theirs"}


def test_list_campaigns_as_text_shows_one_line_each(
    engine: Engine, session: Session, capsys: pytest.CaptureFixture[str]
):
    vera = make_user(session, Role.VIEWER, "vera")
    make_campaign(session, vera, name="First")
    make_campaign(session, vera, name="Second")

    assert _run("list-campaigns", "--as", "vera") == cli.EXIT_OK

    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2
    assert all("2026-11-01 - 2026-11-14" in line for line in lines)


def test_an_empty_json_list_is_still_json(
    engine: Engine, session: Session, capsys: pytest.CaptureFixture[str]
):
    make_user(session, Role.VIEWER, "vera")

    assert _run("list-campaigns", "--json", "--as", "vera") == cli.EXIT_OK

    assert json.loads(capsys.readouterr().out) == []


@pytest.mark.parametrize("who", ["ghost", "retired"])
def test_an_unknown_or_inactive_as_user_is_refused(
    engine: Engine, session: Session, capsys: pytest.CaptureFixture[str], who: str
):
    make_user(session, Role.ADMIN, "retired", active=False)

    assert _run("list-campaigns", "--as", who) == cli.EXIT_REFUSED

    assert f"No active user named '{who}'" in _one_error_line(capsys)
