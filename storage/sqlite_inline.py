"""SQLite run on the event loop's own thread: an async dialect with no worker thread.

With WAL and `synchronous=NORMAL` a conversation step's statements take microseconds and a
commit does not wait on the disk, so handing each of them to aiosqlite's thread (four hops per
statement) costs far more wall time than the work. This dialect runs Python's `sqlite3` directly
inside SQLAlchemy's async greenlet: a transaction never yields to the loop, so it holds the
database for exactly as long as it works. Waiting for another process's write lock is the one
slow thing, and that wait sleeps on the loop instead of blocking it (see `begin_immediate`).
Long reads belong on the threaded engine (`storage.engine.create_read_engine`).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from typing import Any

from sqlalchemy import pool
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.engine import URL
from sqlalchemy.util import await_

DRIVER = "inline"
_BUSY = ("SQLITE_BUSY", "SQLITE_LOCKED")
_FIRST_PAUSE, _MAX_PAUSE = 0.002, 0.05


class InlineCursor(sqlite3.Cursor):
    """A sqlite3 cursor that SQLAlchemy's async results can close the way they close others."""

    async def _async_soft_close(self) -> None:
        """Nothing to do: rows are read from this cursor in place, so it stays open until read."""


class InlineConnection(sqlite3.Connection):
    """A sqlite3 connection whose cursors are InlineCursors."""

    def cursor(self, factory: Any = InlineCursor) -> Any:
        """A new cursor."""
        return super().cursor(factory)


class InlineSQLiteDialect(SQLiteDialect_pysqlite):
    """pysqlite, declared async so `create_async_engine` takes it; statements run in place."""

    driver = DRIVER
    is_async = True
    supports_statement_cache = True

    def connect(self, *cargs: Any, **cparams: Any) -> Any:
        """A sqlite3 connection with cursors SQLAlchemy's async layer can use."""
        cparams.setdefault("factory", InlineConnection)
        return super().connect(*cargs, **cparams)

    def do_execute(self, cursor: Any, statement: Any, parameters: Any, context: Any = None) -> None:
        """Execute in place (see `_checkpoint`)."""
        _checkpoint()
        super().do_execute(cursor, statement, parameters, context)  # type: ignore[no-untyped-call]

    def do_execute_no_params(self, cursor: Any, statement: Any, context: Any = None) -> None:
        """Execute in place (see `_checkpoint`)."""
        _checkpoint()
        super().do_execute_no_params(cursor, statement, context)  # type: ignore[no-untyped-call]

    def do_executemany(
        self, cursor: Any, statement: Any, parameters: Any, context: Any = None
    ) -> None:
        """Execute in place (see `_checkpoint`)."""
        _checkpoint()
        super().do_executemany(cursor, statement, parameters, context)  # type: ignore[no-untyped-call]

    @classmethod
    def get_pool_class(cls, url: URL) -> type[pool.Pool]:
        """An asyncio-aware queue, so a session waiting for the connection awaits it."""
        if cls._is_url_file_db(url):
            return pool.AsyncAdaptedQueuePool
        return pool.StaticPool


async def _ready() -> None:
    """An awaitable that finishes at once, without yielding to the loop."""


def _checkpoint() -> None:
    """Await nothing: AsyncConnection.execute insists its driver awaited something at least once.

    Awaiting a coroutine that returns at once switches greenlets but never yields to the loop.
    """
    await_(_ready())


def begin_immediate(dbapi_connection: sqlite3.Connection, timeout: float) -> None:
    """BEGIN IMMEDIATE; while another process holds the write lock, sleep on the loop and retry.

    The connection's own busy_timeout is 0: SQLite's busy handler would block the whole loop.
    """
    deadline = time.monotonic() + timeout
    pause = _FIRST_PAUSE
    while True:
        try:
            dbapi_connection.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if getattr(exc, "sqlite_errorname", "") not in _BUSY or time.monotonic() > deadline:
                raise
        await_(asyncio.sleep(pause))
        pause = min(pause * 2, _MAX_PAUSE)


def _register() -> None:
    """Make `sqlite+inline://` URLs resolve to this dialect."""
    registry.register(f"sqlite.{DRIVER}", __name__, InlineSQLiteDialect.__name__)


_register()
