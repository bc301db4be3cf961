"""Async engines and session factory, with SQLite tuned for a chat bot."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from storage import sqlite_inline

SQLITE_BUSY_TIMEOUT_MS = 15_000


def is_sqlite(url: str) -> bool:
    """Whether a database URL names SQLite."""
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(url: str) -> AsyncEngine:
    """The engine conversations use; SQLite runs on the loop (WAL, BEGIN IMMEDIATE)."""
    # hide_parameters: an error message must never carry a citizen's text into the logs.
    if not is_sqlite(url):
        return create_async_engine(url, pool_pre_ping=True, hide_parameters=True)
    # SQLite has one writer: one pooled connection queues writers in asyncio instead of
    # letting them spin in SQLite's busy handler.
    engine = create_async_engine(
        _with_driver(url, sqlite_inline.DRIVER),
        connect_args={"check_same_thread": False, "timeout": 0},
        hide_parameters=True,
        pool_size=1,
        max_overflow=0,
        pool_timeout=60,
        # Every session ends its transaction itself (commit or rollback); skip the extra
        # ROLLBACK the pool would send on each check-in.
        pool_reset_on_return=None,
    )
    _tune_sqlite(engine, busy_timeout_ms=0)

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        # A writer that starts deferred can fail with SQLITE_BUSY on upgrade; immediate waits.
        raw = connection.connection.driver_connection
        sqlite_inline.begin_immediate(raw, SQLITE_BUSY_TIMEOUT_MS / 1000)

    return engine


def create_read_engine(url: str) -> AsyncEngine | None:
    """For long reads (counts, catalogue loads): SQLite's own thread, off the loop; else None."""
    if not is_sqlite(url):
        return None  # the main engine's driver already waits without blocking the loop
    engine = create_async_engine(
        _with_driver(url, "aiosqlite"),
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
        hide_parameters=True,
        pool_size=2,
        max_overflow=0,
    )
    _tune_sqlite(engine, busy_timeout_ms=SQLITE_BUSY_TIMEOUT_MS, query_only=True)

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN")  # one snapshot for every statement of a read

    return engine


def _with_driver(url: str, driver: str) -> URL:
    """The same SQLite URL with another driver."""
    return make_url(url).set(drivername=f"sqlite+{driver}")


def _tune_sqlite(engine: AsyncEngine, *, busy_timeout_ms: int, query_only: bool = False) -> None:
    """Set pragmas on each connection; SQLAlchemy, not the driver, emits BEGIN."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # Wait for the lock while switching to WAL; afterwards the configured timeout holds.
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        if query_only:
            cursor.execute("PRAGMA query_only=ON")
        cursor.close()


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Session factory; objects stay usable after commit."""
    return async_sessionmaker(engine, expire_on_commit=False)
