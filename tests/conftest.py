"""Shared fixtures: a migrated temporary database and a core built from real settings."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

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
    return Settings(**values)  # type: ignore[arg-type]


POSTGRES_URL = os.environ.get("TIPLINE_TEST_POSTGRES_URL", "")


@asynccontextmanager
async def fresh_postgres_database() -> AsyncIterator[str]:
    """A new, empty PostgreSQL database for one test, dropped afterwards."""
    if not POSTGRES_URL:
        if os.environ.get("CI"):
            pytest.fail("TIPLINE_TEST_POSTGRES_URL is not set (scripts/test starts PostgreSQL)")
        pytest.skip("PostgreSQL not available: set TIPLINE_TEST_POSTGRES_URL or run scripts/test")
    name = f"tipline_test_{secrets.token_hex(6)}"
    admin = create_async_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        await connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as connection:
            await connection.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
async def core(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Core]:
    """A core on a fresh database: a SQLite file, and PostgreSQL when available."""
    async with AsyncExitStack() as stack:
        url = ""
        if request.param == "postgresql":
            url = await stack.enter_async_context(fresh_postgres_database())
        settings = make_settings(tmp_path, flood_messages=10_000, database_url=url)
        built = await build_core(settings, migrate_in_child=False)
        stack.push_async_callback(built.close)
        yield built


@pytest.fixture
def chat(core: Core) -> FlowChat:
    """A web-chat visitor talking to the core."""
    return FlowChat(core.dispatcher, address="visitor-cookie-0123456789abcdefghijklmnopq")
