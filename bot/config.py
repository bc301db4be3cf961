"""Settings read from TIPLINE_* environment variables and an optional .env file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict, SettingsError

DEFAULT_CATEGORIES = (
    "drugs",
    "theft",
    "fraud",
    "weapons",
    "traffic",
    "fire",
    "gambling",
    "gangs",
    "environment",
    "other",
)


class Settings(BaseSettings):
    """One frozen settings object for the whole process."""

    model_config = SettingsConfigDict(
        env_prefix="TIPLINE_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
    )

    data_dir: Path = Path("./data")
    database_url: str = ""
    secret_key: str = ""
    telegram_token: str = ""
    telegram_api_url: str = "https://api.telegram.org/bot"
    telegram_file_url: str = ""
    telegram_webhook_url: str = ""
    telegram_webhook_secret: str = ""
    telegram_webhook_path: str = "/telegram/webhook"
    web_enabled: bool = True
    web_host: str = "127.0.0.1"
    web_port: int = Field(default=8080, ge=0, le=65535)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    conversation_timeout_minutes: int = Field(default=30, ge=1, le=7 * 24 * 60)
    tips_per_hour: int = Field(default=5, ge=1, le=10_000)
    flood_messages: int = Field(default=20, ge=1, le=100_000)
    flood_window_seconds: int = Field(default=10, ge=1, le=3600)
    tip_categories: Annotated[tuple[str, ...], NoDecode] = DEFAULT_CATEGORIES
    retention_days: int = Field(default=90, ge=1, le=36_500)
    max_attachment_mb: int = Field(default=20, ge=1, le=20)
    provinces: Annotated[tuple[str, ...], NoDecode] = ()
    area_radius_km: float = Field(default=3.0, gt=0, le=100)
    admin_telegram_ids: Annotated[tuple[int, ...], NoDecode] = ()

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("tip_categories", mode="before")
    @classmethod
    def _split_categories(cls, value: object) -> object:
        if isinstance(value, str):
            items = tuple(part.strip() for part in value.split(",") if part.strip())
            if not items:
                raise ValueError("needs at least one category")
            if any(len(item) > 32 for item in items):
                raise ValueError("category keys are at most 32 characters")
            return items
        return value

    @field_validator("provinces", mode="before")
    @classmethod
    def _split_provinces(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("admin_telegram_ids", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        if isinstance(value, str):
            parts = [part.strip() for part in value.split(",") if part.strip()]
            if not all(part.lstrip("-").isdigit() for part in parts):
                raise ValueError("must be comma-separated numeric Telegram user ids")
            return tuple(int(part) for part in parts)
        return value

    @field_validator("telegram_api_url", "telegram_file_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value

    @field_validator("telegram_webhook_path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("must start with /")
        return value

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to a SQLite file in the data folder."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'tipline.sqlite3').resolve()}"

    @property
    def resolved_telegram_file_url(self) -> str:
        """The Bot API file URL, derived from the API URL unless set."""
        if self.telegram_file_url:
            return self.telegram_file_url
        base = self.telegram_api_url
        if base.endswith("/bot"):
            return base[: -len("bot")] + "file/bot"
        return base.rstrip("/") + "/file/bot"


class ConfigError(Exception):
    """A configuration value is invalid; the message names the variable."""


def load_settings(**overrides: object) -> Settings:
    """Read settings, turning a validation error into one line naming the variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "?"
        raise ConfigError(f"invalid TIPLINE_{field.upper()}: {first['msg']}") from None
    except SettingsError as exc:
        raise ConfigError(str(exc).replace('field "', "TIPLINE_").split('"')[0]) from None
