"""Settings read from TIPLINE_* environment variables and an optional .env file.

A frozen dataclass checked as it is built, rather than pydantic-settings: pydantic held 8 MB of
the running bot's memory for reading two dozen variables once.
"""

from __future__ import annotations

import os
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from dotenv import dotenv_values

PREFIX = "TIPLINE_"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
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
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


class ConfigError(Exception):
    """A configuration value is invalid; the message names the variable."""


def _between(low: float, high: float, *, above: bool = False) -> dict[str, Any]:
    """Field metadata: the value's allowed range (`above`: strictly greater than low)."""
    return {"range": (low, high, above)}


@dataclass(frozen=True)
class Settings:
    """One frozen settings object for the whole process."""

    data_dir: Path = Path("./data")
    database_url: str = ""
    secret_key: str = ""
    telegram_token: str = ""
    telegram_api_url: str = "https://api.telegram.org/bot"
    telegram_file_url: str = ""
    telegram_webhook_url: str = ""
    telegram_webhook_secret: str = ""
    telegram_webhook_path: str = "/telegram/webhook"
    telegram_bot_username: str = ""
    web_enabled: bool = True
    web_host: str = "127.0.0.1"
    web_port: int = field(default=8080, metadata=_between(0, 65535))
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    conversation_timeout_minutes: int = field(default=30, metadata=_between(1, 7 * 24 * 60))
    tips_per_hour: int = field(default=5, metadata=_between(1, 10_000))
    flood_messages: int = field(default=20, metadata=_between(1, 100_000))
    flood_window_seconds: int = field(default=10, metadata=_between(1, 3600))
    tip_categories: tuple[str, ...] = DEFAULT_CATEGORIES
    retention_days: int = field(default=90, metadata=_between(1, 36_500))
    max_attachment_mb: int = field(default=20, metadata=_between(1, 20))
    provinces: tuple[str, ...] = ()
    area_radius_km: float = field(default=3.0, metadata=_between(0, 100, above=True))
    admin_telegram_ids: tuple[int, ...] = ()
    # Telegram's limits for bots; paid broadcasts allow up to 1,000 messages per second;
    # 0 sends unpaced, for a test server only (Telegram itself would answer 429).
    telegram_messages_per_second: float = field(default=30.0, metadata=_between(0, 1000))
    telegram_group_messages_per_minute: int = field(default=20, metadata=_between(1, 60))
    # A bulletin whose time passed while the bot was down is still sent within this many minutes.
    bulletin_grace_minutes: int = field(default=60, metadata=_between(1, 7 * 24 * 60))
    # New-tip notices: the officers' group chat, and groups for areas (AREA=CHAT, comma-separated).
    officer_chat: str = ""
    officer_chats_by_area: tuple[str, ...] = ()
    # How replies to tipsters are signed, and how a tipster claims a reward without a name.
    unit_name: str = ""
    reward_instructions: str = ""

    def __post_init__(self) -> None:
        """Turn text (from the environment) into typed values and check every one."""
        hints = typing.get_type_hints(type(self))
        for spec in fields(self):
            value = getattr(self, spec.name)
            try:
                value = _check(spec.name, _coerce(hints[spec.name], value), spec.metadata)
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"invalid {PREFIX}{spec.name.upper()}: {exc}") from None
            object.__setattr__(self, spec.name, value)

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


def _split(text: str) -> tuple[str, ...]:
    """Comma-separated items, trimmed, empty ones dropped."""
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _coerce(kind: Any, value: object) -> object:
    """A value of the declared type; text is parsed as an environment variable is."""
    if not isinstance(value, str):
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        return value
    text = value.strip()
    if kind is bool:
        if text.lower() in _TRUE | _FALSE:
            return text.lower() in _TRUE
        raise ValueError("must be true or false")
    if kind is int:
        return int(text)
    if kind is float:
        return float(text)
    if kind is Path:
        return Path(text)
    if kind == tuple[int, ...]:
        parts = _split(text)
        if not all(part.lstrip("-").isdigit() for part in parts):
            raise ValueError("must be comma-separated numeric Telegram user ids")
        return tuple(int(part) for part in parts)
    if kind == tuple[str, ...]:
        return _split(text)
    if typing.get_origin(kind) is Literal:
        return text.upper()
    return value


def _check(name: str, value: object, metadata: Any) -> object:
    """The value if it is allowed, else ValueError saying what is."""
    if "range" in metadata:
        low, high, above = metadata["range"]
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise ValueError("must be a number")
        if value > high or value < low or (above and value == low):
            bound = "greater than" if above else "at least"
            raise ValueError(f"must be {bound} {low:g} and at most {high:g}")
    if name == "log_level" and value not in LOG_LEVELS:
        raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
    if name == "tip_categories":
        assert isinstance(value, tuple)
        if not value:
            raise ValueError("needs at least one category")
        if any(len(item) > 32 for item in value):
            raise ValueError("category keys are at most 32 characters")
    is_url = name in ("telegram_api_url", "telegram_file_url")
    if is_url and value and not str(value).startswith(("http://", "https://")):
        raise ValueError("must start with http:// or https://")
    if name == "telegram_webhook_path" and not str(value).startswith("/"):
        raise ValueError("must start with /")
    if name == "officer_chat" and value and not _chat_id(str(value)):
        raise ValueError("must be a Telegram group chat id like -1001234567890")
    if name == "officer_chats_by_area":
        assert isinstance(value, tuple)
        for pair in value:
            area, _, chat = pair.partition("=")
            if not area.strip() or not _chat_id(chat.strip()):
                raise ValueError("takes AREA=CHAT pairs, e.g. 79=-1001234567890,01=-1009876543210")
    return value


def _chat_id(text: str) -> bool:
    """Whether text is a Telegram chat id (groups are negative)."""
    return text.lstrip("-").isdigit() and len(text) <= 20


def _from_environment(env_file: str | Path | None) -> dict[str, str]:
    """TIPLINE_* values: the .env file first, the environment over it."""
    raw: dict[str, str] = {}
    if env_file is not None and Path(env_file).is_file():
        raw.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    raw.update(os.environ)
    names = {spec.name for spec in fields(Settings)}
    return {
        key[len(PREFIX) :].lower(): value
        for key, value in raw.items()
        if key.startswith(PREFIX) and key[len(PREFIX) :].lower() in names
    }


def load_settings(_env_file: str | Path | None = ".env", **overrides: object) -> Settings:
    """Read settings; an invalid value raises ConfigError naming its variable."""
    values: dict[str, object] = {**_from_environment(_env_file), **overrides}
    return Settings(**values)  # type: ignore[arg-type]
