"""One drainer per channel across every process, so the platform's limits are paced once.

Several `tipline run` processes share one PostgreSQL outbox. Each paces its sends itself, so two
drainers of one channel would each allow Telegram's 30 a second. The drainer of a channel runs
only in the process that holds that channel's lock; the others wait and take over within
seconds when it stops or dies (its claims come back when their leases end). Claims stay
`FOR UPDATE SKIP LOCKED`, so a lost lock's last sends and the next holder's never overlap.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from broadcasts.drainer import Drainer
from storage.locks import ProcessLock

log = logging.getLogger(__name__)

RETRY_SECONDS = 5.0  # a process without the lock asks again this often
CHECK_SECONDS = 5.0  # the holder checks that its lock is still there this often


async def drain_alone(
    drainer: Drainer,
    lock: ProcessLock,
    *,
    retry: float = RETRY_SECONDS,
    check: float = CHECK_SECONDS,
) -> None:
    """Run the drainer whenever this process holds its channel's lock, until cancelled."""
    while True:
        try:
            taken = await lock.acquire()
        except Exception as exc:  # the database is away: ask again later
            log.warning("outbox %s: lock unavailable: %s", drainer.channel, type(exc).__name__)
            taken = False
        if not taken:
            await asyncio.sleep(retry)
            continue
        log.info("outbox %s: draining in this process", drainer.channel)
        try:
            await _drain_while_held(drainer, lock, check)
        except Exception as exc:  # the type only; start again after a pause
            log.error("outbox %s: drainer stopped: %s", drainer.channel, type(exc).__name__)
            await asyncio.sleep(retry)
        finally:
            await lock.release()


async def _drain_while_held(drainer: Drainer, lock: ProcessLock, check: float) -> None:
    """Drain until the lock is lost (then stop, giving back what is claimed)."""
    task = asyncio.create_task(drainer.run())
    try:
        while not task.done():
            await asyncio.wait({task}, timeout=check)
            if not task.done() and not await lock.alive():
                log.warning("outbox %s: lock lost, draining stops here", drainer.channel)
                return
        task.result()  # a drainer that ended by itself: raise why
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
