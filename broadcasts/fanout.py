"""Turns a bulletin's run into outbox deliveries, a page of recipients per short transaction.

A 100,000-recipient run is queued 500 recipients at a time, each page its own transaction with
its keyset cursor saved, so the write lock is held for milliseconds and conversations go on; a
crash resumes from the cursor, and the outbox's (run, address) key keeps anyone from being
queued twice. When every delivery of a run has an outcome, the admin who made it gets a report.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from broadcasts.senders import OutboundMessage
from storage.crypto import Vault
from storage.models import Bulletin, BulletinRun, Chat, utcnow
from storage.repositories import audit, bulletins, outbox

log = logging.getLogger(__name__)

PAGE = 500
RUNS_PER_READ = 50
NO_SENDER = "no sender"
IDLE_SECONDS = 1.0


@dataclass(frozen=True)
class RunReport:
    """What a finished run came to."""

    bulletin: Bulletin
    sent: int
    failed: int
    blocked: int
    seconds: float
    residents: int = 0
    groups: int = 0


Compose = Callable[[str, Bulletin, BulletinRun], OutboundMessage]
ComposeReport = Callable[[str, RunReport], OutboundMessage]


class Fanout:
    """Queues pending runs' recipients and reports finished runs."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        vault: Vault,
        compose: Compose,
        compose_report: ComposeReport,
        *,
        on_queued: Callable[[], None] = lambda: None,
        page: int = PAGE,
        channels: Collection[str] | None = None,
    ) -> None:
        self.sessions = sessions
        # Channels with a drainer here (None: all). A subscriber on another (the web chat
        # turned off, Telegram without a token) is recorded as failed, so the run still ends.
        self.channels = None if channels is None else frozenset(channels)
        self.vault = vault
        self.compose = compose
        self.compose_report = compose_report
        self.on_queued = on_queued
        self.page = page
        self._wake = asyncio.Event()

    def notify(self) -> None:
        """A run was created: look now rather than at the next tick."""
        self._wake.set()

    async def run(self) -> None:
        """Queue and report until cancelled."""
        while True:
            try:
                await self.work_once()
            except Exception as exc:  # keep going; the type only, messages may quote data
                log.error("fan-out round failed: %s", type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), IDLE_SECONDS)
            self._wake.clear()

    async def work_once(self) -> int:
        """Queue every pending run completely, then report finished ones; deliveries queued."""
        queued = 0
        for run_id in await self._run_ids(bulletins.PENDING):
            while (added := await self._queue_page(run_id)) is not None:
                queued += added
                if added:
                    self.on_queued()
        await self._report_finished()
        return queued

    async def _run_ids(self, status: str) -> list[int]:
        """Every run in a state, oldest first, read a page at a time."""
        found: list[int] = []
        while True:
            async with self.sessions() as session:
                page = await bulletins.runs_with_status(
                    session, status, RUNS_PER_READ, found[-1] if found else 0
                )
            found.extend(run.id for run in page)
            if len(page) < RUNS_PER_READ:
                return found

    async def _queue_page(self, run_id: int) -> int | None:
        """Queue one page of a run's recipients; None once the run is fully queued."""
        async with self.sessions() as session, session.begin():
            run = await session.get(BulletinRun, run_id)
            if run is None or run.status != bulletins.PENDING:
                return None
            bulletin = await session.get(Bulletin, run.bulletin_id)
            if bulletin is None or bulletin.status == "cancelled":
                await bulletins.finish(session, run, utcnow())
                return None
            rows = await bulletins.recipients(session, bulletin, run.cursor, self.page)
            now = utcnow()
            payloads: dict[str, dict[str, Any]] = {}  # one per language, not per recipient

            def payload(language: str) -> dict[str, Any]:
                if language not in payloads:
                    payloads[language] = self.compose(language, bulletin, run).to_payload()
                return payloads[language]

            topic = bulletin.topic
            deliveries = [
                {
                    "channel": row.channel,
                    "address_hash": row.address_hash,
                    "address_enc": row.address_enc,
                    "payload": payload(row.language),
                    "run_id": run.id,
                    "is_group": row.is_group,
                    "created_at": now,
                    **self._unsendable(row.channel),
                }
                for row in rows
                if topic == "all" or not row.topics or "all" in row.topics or topic in row.topics
            ]
            await outbox.enqueue(session, deliveries)
            if rows:
                run.cursor = int(rows[-1].id)
            if len(rows) < self.page:
                run.status = bulletins.QUEUED
            return len(deliveries)

    def _unsendable(self, channel: str) -> dict[str, Any]:
        """A delivery's outcome decided at once: none, unless its channel has no sender here."""
        if self.channels is None or channel in self.channels:
            return {}
        return {"status": outbox.FAILED, "last_error": NO_SENDER}

    async def _report_finished(self) -> None:
        """Runs whose every delivery has an outcome: done, and their maker told how it went."""
        for run_id in await self._run_ids(bulletins.QUEUED):
            async with self.sessions() as session:
                if await outbox.unsettled(session, run_id):
                    continue  # checked each second while sending: a probe, not a count
            async with self.sessions() as session, session.begin():
                counts = await outbox.counts(session, run_id)
                if counts.get(outbox.QUEUED, 0) or counts.get(outbox.SENDING, 0):
                    continue
                run = await session.get(BulletinRun, run_id)
                if run is None:
                    continue
                bulletin = await session.get(Bulletin, run.bulletin_id)
                now = utcnow()
                if await bulletins.finish(session, run, now) and bulletin is not None:
                    await audit.record(
                        session,
                        actor="system",
                        action=f"{bulletin.kind}.sent",
                        target=f"bulletin:{bulletin.id}",
                        detail={"run": run.id, **counts},
                        at=now,
                    )
                    await self._queue_report(session, bulletin, run, counts, now)

    async def _queue_report(
        self,
        session: AsyncSession,
        bulletin: Bulletin,
        run: BulletinRun,
        counts: dict[str, int],
        now: datetime,
    ) -> None:
        """The delivery report, through the outbox like every proactive message."""
        address = self.vault.decrypt(bulletin.creator_address_enc or "")
        if address is None:
            return
        channel = address.split(":", 1)[0]
        address_hash = self.vault.keyed_hash(address)
        language = await session.scalar(
            select(Chat.language).where(Chat.address_hash == address_hash)
        )
        residents, groups = await outbox.reached(session, run.id)
        report = RunReport(
            bulletin=bulletin,
            sent=counts.get(outbox.SENT, 0),
            failed=counts.get(outbox.FAILED, 0),
            blocked=counts.get(outbox.BLOCKED, 0),
            seconds=max(0.0, (now - run.scheduled_for).total_seconds()),
            residents=residents,
            groups=groups,
        )
        message = self.compose_report(language or "vi", report)
        await outbox.enqueue(
            session,
            [
                {
                    "channel": channel,
                    "address_hash": address_hash,
                    "address_enc": bulletin.creator_address_enc,
                    "payload": message.to_payload(),
                    "created_at": now,
                }
            ],
        )
        self.on_queued()
