"""Shared fixtures: a migrated temporary database and a core built from real settings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.app import Core, build_core
from bot.config import Settings
from tests.flowchat import FlowChat

SECRET = "test-secret-key-0123456789-abcdefghijklmnop"


def make_settings(data_dir: Path, **overrides: object) -> Settings:
    """Settings for a test: a temporary data folder, a fixed key, no Telegram."""
    values: dict[str, object] = {
        "data_dir": data_dir,
        "secret_key": SECRET,
        "telegram_token": "",
        "web_port": 0,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg, arg-type]


@pytest.fixture
async def core(tmp_path: Path) -> AsyncIterator[Core]:
    """A core on a fresh SQLite file."""
    built = await build_core(make_settings(tmp_path, flood_messages=10_000))
    yield built
    await built.close()


@pytest.fixture
def chat(core: Core) -> FlowChat:
    """A web-chat visitor talking to the core."""
    return FlowChat(core.dispatcher, address="visitor-cookie-0123456789abcdefghijklmnopq")
