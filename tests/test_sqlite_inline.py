"""SQLite on the event loop: waits for another writer without blocking the loop."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from storage.engine import create_engine, create_read_engine


async def test_waiting_for_another_writer_does_not_block_the_loop(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    engine = create_engine(f"sqlite:///{path}")
    async with engine.begin() as connection:
        await connection.execute(text("CREATE TABLE t (n INTEGER)"))
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process's write, holding the lock
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    async def write() -> float:
        started = time.monotonic()
        async with engine.begin() as connection:
            await connection.execute(text("INSERT INTO t VALUES (1)"))
        return time.monotonic() - started

    ticker = asyncio.create_task(tick())
    writer = asyncio.create_task(write())
    await asyncio.sleep(0.3)
    assert not writer.done(), "the write waits for the lock"
    assert ticks >= 10, "while it waits, the loop keeps running"
    other.execute("COMMIT")
    waited = await asyncio.wait_for(writer, 5)
    ticker.cancel()
    assert waited >= 0.3
    async with engine.connect() as connection:
        assert (await connection.execute(text("SELECT count(*) FROM t"))).scalar() == 1
    other.close()
    await engine.dispose()


async def test_read_engine_reads_off_the_loop_and_never_writes(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite3'}"
    engine = create_engine(url)
    async with engine.begin() as connection:
        await connection.execute(text("CREATE TABLE t (n INTEGER)"))
        await connection.execute(text("INSERT INTO t VALUES (7)"))
    reads = create_read_engine(url)
    assert reads is not None and reads.dialect.driver == "aiosqlite"
    async with reads.connect() as connection:
        assert (await connection.execute(text("SELECT n FROM t"))).scalar() == 7
        with pytest.raises(OperationalError, match="readonly"):  # query_only: writes refused
            await connection.execute(text("DELETE FROM t"))
    assert create_read_engine("postgresql+asyncpg://u@127.0.0.1/db") is None
    await reads.dispose()
    await engine.dispose()
