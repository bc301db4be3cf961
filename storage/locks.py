"""Locks held across processes: one holder at a time, released when the holder dies.

On PostgreSQL a session-level advisory lock on a connection of its own: the server frees it
when that connection closes, so a process killed with SIGKILL gives it up at once. SQLite
serves one process, which always holds it.
"""

from __future__ import annotations

import hashlib
import logging

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = logging.getLogger(__name__)


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for a lock's name."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


class ProcessLock:
    """A named lock that at most one process holds at a time."""

    def __init__(self, engine: AsyncEngine, name: str) -> None:
        self.engine = engine
        self.name = name
        self.key = lock_key(name)
        self._connection: AsyncConnection | None = None

    @property
    def shared(self) -> bool:
        """Whether other processes can be on this database (only PostgreSQL's are)."""
        return self.engine.dialect.name == "postgresql"

    @property
    def held(self) -> bool:
        """Whether this process holds it (as far as it knows)."""
        return self._connection is not None or not self.shared

    async def acquire(self) -> bool:
        """Take the lock if nobody holds it; True when this process now holds it."""
        if not self.shared or self._connection is not None:
            return True
        connection = await self.engine.connect()
        try:
            taken = await connection.scalar(
                text("SELECT pg_try_advisory_lock(:key)"), {"key": self.key}
            )
            await connection.commit()  # the lock outlives the transaction; the connection idles
        except Exception:
            await connection.close()
            raise
        if not taken:
            await connection.close()
            return False
        self._connection = connection
        return True

    async def alive(self) -> bool:
        """Whether the lock is still held: its connection answers (a dead one freed it)."""
        if not self.shared:
            return True
        if self._connection is None:
            return False
        try:
            await self._connection.scalar(text("SELECT 1"))
            await self._connection.commit()
        except Exception as exc:
            log.warning("lock %s lost: %s", self.name, type(exc).__name__)
            await self._forget()
            return False
        return True

    async def release(self) -> None:
        """Give the lock up (closing its connection frees it even if the unlock fails)."""
        if self._connection is None:
            return
        try:
            await self._connection.scalar(
                text("SELECT pg_advisory_unlock(:key)"), {"key": self.key}
            )
            await self._connection.commit()
        except Exception as exc:
            log.warning("lock %s: unlock failed: %s", self.name, type(exc).__name__)
        await self._forget()

    async def _forget(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                # Invalidated, not returned to the pool: the server session ends, and with it
                # the lock, even when the unlock above failed.
                await connection.invalidate()
                await connection.close()
            except Exception as exc:  # already broken: the server frees the lock with it
                log.warning("lock %s: close failed: %s", self.name, type(exc).__name__)
