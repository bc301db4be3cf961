"""One drainer per channel across processes: the lock's holder drains, another takes over."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter

import pytest
from sqlalchemy import text

from bot.app import Core
from broadcasts.drainer import Drainer
from broadcasts.leadership import drain_alone
from broadcasts.senders import OutboundMessage, Outcome, SendResult
from storage.engine import create_engine
from storage.locks import ProcessLock
from tests.test_drainer import queue, settled


class Recorder:
    """A sender that records which drainer sent to which address."""

    def __init__(self, name: str, sent: list[tuple[str, str]]) -> None:
        self.name = name
        self.sent = sent

    @property
    def channel(self) -> str:
        return "telegram"

    def is_group(self, address: str) -> bool:
        return False

    async def send(self, address: str, message: OutboundMessage) -> SendResult:
        self.sent.append((self.name, address))
        return SendResult(Outcome.SENT)


def postgres_only(core: Core) -> None:
    if core.engine.dialect.name != "postgresql":
        pytest.skip("only PostgreSQL is shared by processes")


async def test_sqlite_always_holds_the_lock(core: Core) -> None:
    if core.engine.dialect.name != "sqlite":
        pytest.skip("SQLite serves one process")
    lock = ProcessLock(core.engine, "outbox:telegram")
    assert await lock.acquire() and await lock.alive() and lock.held


async def test_one_holder_at_a_time_and_freed_when_it_dies(core: Core) -> None:
    postgres_only(core)
    other_process = create_engine(core.settings.resolved_database_url)
    try:
        first = ProcessLock(core.engine, "outbox:telegram")
        second = ProcessLock(other_process, "outbox:telegram")
        assert await first.acquire()
        assert not await second.acquire(), "taken by the first"
        web = ProcessLock(other_process, "outbox:web")
        assert await web.acquire(), "another channel's lock is another lock"
        await web.release()
        await first.release()
        assert await second.acquire()
        async with core.engine.connect() as killer:  # the holder dies: its connection is gone
            await killer.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory'")
            )
        assert await first.acquire(), "the server freed a dead holder's lock"
        assert not await second.alive(), "and the holder finds out it lost it"
        await first.release()
    finally:
        await other_process.dispose()


async def test_only_the_holder_drains_and_another_takes_over(core: Core) -> None:
    postgres_only(core)
    services = core.dispatcher.services
    other_process = create_engine(core.settings.resolved_database_url)
    sent: list[tuple[str, str]] = []

    def drainer(name: str) -> Drainer:
        return Drainer(
            services.sessions, Recorder(name, sent), services.vault, overall_per_second=None
        )

    locks = {
        "a": ProcessLock(core.engine, "outbox:telegram"),
        "b": ProcessLock(other_process, "outbox:telegram"),
    }
    tasks = {
        name: asyncio.create_task(drain_alone(drainer(name), lock, retry=0.1, check=0.1))
        for name, lock in locks.items()
    }
    try:
        await queue(core, range(940000000, 940000050))
        await settled(core)
        first = {name for name, _ in sent}
        assert len(first) == 1, "one process drained"
        assert Counter(address for _, address in sent) == {
            str(chat): 1 for chat in range(940000000, 940000050)
        }
        holder = first.pop()
        tasks[holder].cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await tasks[holder]
        await queue(core, range(940000100, 940000110))
        await settled(core)
        later = {name for name, address in sent if address.startswith("9400001")}
        assert later == {"b" if holder == "a" else "a"}, "the other took over"
    finally:
        for task in tasks.values():
            task.cancel()
        await asyncio.gather(*tasks.values(), return_exceptions=True)
        await other_process.dispose()
