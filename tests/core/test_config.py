from pathlib import Path

import pytest

from core.config import ConfigError, Settings, cookie_key_problem, get_settings

GOOD_KEY = "9f2Kq1x7Lm3Np8Rt5Vw0Yz4Bc6Dh2Gj8Hk1Mn5Pq7St"


def test_placeholder_cookie_key_is_refused_outside_demo_mode(monkeypatch):
    monkeypatch.setenv("RETRO_COOKIE_KEY", "change-me-to-a-long-random-string-please")
    with pytest.raises(ConfigError, match="RETRO_COOKIE_KEY"):
        Settings().signing_key()


def test_missing_cookie_key_names_the_setting(monkeypatch):
    monkeypatch.delenv("RETRO_COOKIE_KEY")
    with pytest.raises(ConfigError, match=r"RETRO_COOKIE_KEY .*is not set"):
        Settings().signing_key()


def test_short_cookie_key_is_refused(monkeypatch):
    monkeypatch.setenv("RETRO_COOKIE_KEY", "Zq81mP0")
    with pytest.raises(ConfigError, match="shorter than 32"):
        Settings().signing_key()


def test_good_cookie_key_is_used(monkeypatch):
    monkeypatch.setenv("RETRO_COOKIE_KEY", GOOD_KEY)
    assert Settings().signing_key() == GOOD_KEY


def test_demo_mode_keeps_a_generated_key_across_restarts(monkeypatch):
    monkeypatch.delenv("RETRO_COOKIE_KEY")
    monkeypatch.setenv("RETRO_DEMO_MODE", "true")
    first = Settings().signing_key()
    assert cookie_key_problem(first) is None
    assert Settings().signing_key() == first


def test_secrets_toml_is_read_and_env_wins(tmp_path: Path, monkeypatch):
    secrets = tmp_path / "secrets.toml"
    secrets.write_text(
        f'cookie_key = "{GOOD_KEY}"\ncookie_name = "from_file"\n'
        'database_url = "sqlite:///from-file.db"\n'
    )
    monkeypatch.setenv("RETRO_SECRETS_FILE", str(secrets))
    monkeypatch.delenv("RETRO_COOKIE_KEY")
    monkeypatch.setenv("RETRO_COOKIE_NAME", "from_env")
    settings = Settings()
    assert settings.signing_key() == GOOD_KEY
    assert settings.cookie_name == "from_env"


def test_relative_sqlite_path_is_anchored_at_the_project(monkeypatch):
    monkeypatch.setenv("RETRO_DATABASE_URL", "sqlite:///data/retro.db")
    url = Settings().resolved_database_url
    assert url.startswith("sqlite:////") and url.endswith("/data/retro.db")


def test_cookie_expiry_above_one_day_is_refused(monkeypatch):
    monkeypatch.setenv("RETRO_COOKIE_EXPIRY_DAYS", "30")
    with pytest.raises(ValueError, match="cookie_expiry_days"):
        Settings()


def test_settings_are_cached_per_process():
    assert get_settings() is get_settings()


def test_schedules_and_time_zone_are_checked(monkeypatch):
    from pydantic import ValidationError

    monkeypatch.setenv("RETRO_SCHEDULE_CLEANUP", "every night")
    with pytest.raises(ValidationError, match="is not a crontab expression"):
        Settings()
    monkeypatch.setenv("RETRO_SCHEDULE_CLEANUP", "15 4 * * 1")
    monkeypatch.setenv("RETRO_TIMEZONE", "Mars/Olympus")
    with pytest.raises(ValidationError, match="is not a time zone name"):
        Settings()
    monkeypatch.setenv("RETRO_TIMEZONE", "Europe/Berlin")

    settings = Settings()

    assert settings.schedule_cleanup == "15 4 * * 1"
    assert str(settings.tz) == "Europe/Berlin"
    assert settings.due_days == 2
    assert settings.uploads_dir == settings.data_dir / "uploads"
