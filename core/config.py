"""One settings object, read from RETRO_* environment variables and secrets.toml."""

from __future__ import annotations

import os
import secrets
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SECRETS_FILE = PROJECT_ROOT / ".streamlit" / "secrets.toml"

# A signing key shorter than this can be brute-forced offline from one cookie.
MIN_COOKIE_KEY_LENGTH = 32
PLACEHOLDER_MARKERS = ("change", "replace", "example", "placeholder", "secret", "xxx")


class ConfigError(Exception):
    """A setting is missing or unusable; the message names the setting."""


class SecretsTomlSource(PydanticBaseSettingsSource):
    """Top-level keys of .streamlit/secrets.toml, named like the settings fields."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path) -> None:
        super().__init__(settings_cls)
        self.path = path

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self().get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        if not self.path.is_file():
            return {}
        with self.path.open("rb") as handle:
            data = tomllib.load(handle)
        names = set(self.settings_cls.model_fields)
        return {key: value for key, value in data.items() if key in names}


def secrets_file_path() -> Path:
    return Path(os.environ.get("RETRO_SECRETS_FILE", DEFAULT_SECRETS_FILE))


class Settings(BaseSettings):
    """Everything the app can be told from outside; env vars win over secrets.toml."""

    model_config = SettingsConfigDict(env_prefix="RETRO_", extra="ignore")

    database_url: str = "sqlite:///data/retro.db"
    data_dir: Path = Path("data")
    cookie_name: str = "retro_auth"
    cookie_key: SecretStr | None = None
    cookie_expiry_days: float = Field(default=1.0, gt=0, le=1)
    demo_mode: bool = False
    scheduler_enabled: bool = True
    timezone: str = "UTC"
    # Crontab expressions (minute hour day month weekday) in `timezone`.
    schedule_create_due: str = "0 2 * * *"
    schedule_cleanup: str = "30 3 * * *"
    schedule_import_inbox: str = "*/5 * * * *"
    # Days after a campaign's end before its retrospective is opened, so the
    # platforms' late conversions and corrections have settled.
    due_days: int = Field(default=2, ge=0)
    # Drafts and failed retrospectives untouched this long are deleted.
    retention_days: int = Field(default=90, ge=1)
    # Who scheduled runs act as (their permissions, their name in the audit
    # log); empty: the oldest active admin.
    automation_user: str = ""
    # Lock-out after this many failed logins in a row; it doubles with each
    # further failure, so guessing stays slow without locking people out for good.
    login_max_failures: int = Field(default=5, ge=1)
    login_lockout_minutes: float = Field(default=1.0, gt=0)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        secrets_source = SecretsTomlSource(settings_cls, secrets_file_path())
        return init_settings, env_settings, secrets_source

    @field_validator("data_dir")
    @classmethod
    def _anchor_data_dir(cls, value: Path) -> Path:
        return value if value.is_absolute() else PROJECT_ROOT / value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"{value!r} is not a time zone name such as UTC or Europe/Berlin"
            ) from None
        return value

    @field_validator("schedule_create_due", "schedule_cleanup", "schedule_import_inbox")
    @classmethod
    def _crontab(cls, value: str) -> str:
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger.from_crontab(value, timezone="UTC")
        except ValueError as exc:
            raise ValueError(
                f"{value!r} is not a crontab expression such as '0 2 * * *' ({exc})"
            ) from None
        return value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def resolved_database_url(self) -> str:
        """The URL with a relative SQLite path anchored at the project root."""
        prefix = "sqlite:///"
        if self.database_url.startswith(prefix):
            path = self.database_url.removeprefix(prefix)
            if path and path != ":memory:" and not Path(path).is_absolute():
                return prefix + str(PROJECT_ROOT / path)
        return self.database_url

    @property
    def reports_dir(self) -> Path:
        return self.data_dir / "reports"

    @property
    def inbox_dir(self) -> Path:
        return self.data_dir / "inbox"

    @property
    def uploads_dir(self) -> Path:
        """Uploads too large to import on the page wait here for their job."""
        return self.data_dir / "uploads"

    def signing_key(self) -> str:
        """The cookie key, refused when missing or a placeholder outside demo mode."""
        key = self.cookie_key.get_secret_value() if self.cookie_key else ""
        problem = cookie_key_problem(key)
        if problem is None:
            return key
        if self.demo_mode:
            return self._demo_key()
        raise ConfigError(
            f"RETRO_COOKIE_KEY (cookie_key in .streamlit/secrets.toml) {problem}. "
            "Set it to a random string of at least "
            f"{MIN_COOKIE_KEY_LENGTH} characters, for example the output of "
            "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`."
        )

    def _demo_key(self) -> str:
        # Demo mode keeps a generated key in the data folder so that a restart
        # does not log everybody out.
        path = self.data_dir / ".demo_cookie_key"
        if path.is_file():
            return path.read_text().strip()
        path.parent.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        path.write_text(key)
        return key


def cookie_key_problem(key: str) -> str | None:
    """Why a cookie key is unusable, or None when it is fine."""
    if not key.strip():
        return "is not set"
    lowered = key.lower()
    if any(marker in lowered for marker in PLACEHOLDER_MARKERS):
        return "is still a placeholder"
    if len(key) < MIN_COOKIE_KEY_LENGTH:
        return f"is shorter than {MIN_COOKIE_KEY_LENGTH} characters"
    return None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
