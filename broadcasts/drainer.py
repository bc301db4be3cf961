"""Drains one channel's outbox at the platform's pace and records what became of each delivery.

Deliveries are claimed in batches and sent as one chain per chat, in order. Pacing, all in this
process: overall with `aiolimiter`, a little under the rate (a bucket of a hundredth of it, so
sends are spaced evenly with no burst past a rolling second: a bucket of one would wake the
loop once per send, which alone caps it near 800 a second); per chat one message per interval
and per group N a minute, timed from when the previous send to that chat came back (the
platform counted it no later). A flood wait pauses the whole drainer. A claimed delivery whose
turn is not within `hold` seconds goes back to the queue uncounted, so no claim outlives its
lease. The next batch is claimed while the last one's stragglers are still out, so one slow
send stalls nobody else. Outcomes are written a few statements per short transaction, never
around a send.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache, partial

from aiolimiter import AsyncLimiter
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from broadcasts.senders import OutboundMessage, Outcome, Sender, SendResult
from storage.crypto import Vault
from storage.models import utcnow
from storage.repositories import outbox

log = logging.getLogger(__name__)

IDLE_WAIT = 1.0
FLUSH_EVERY = 0.25  # seconds between writes of the outcomes so far
MIN_REST = 0.05
REPORT_EVERY = 60.0
STATEMENTS_PER_TRANSACTION = 10
SENT_PER_STATEMENT = 200
GROUP_WINDOW = 60.0
PACER_SIZE = 10_000  # chats remembered before an early prune
ERROR_PAUSE = 1.0
DUE_MARGIN = 0.01  # wake just after a put-off delivery is due, not just before
# Paced this far under the overall rate: sends leave evenly but arrive with a few milliseconds
# of jitter, and at exactly the rate one late send puts the rate + 1st inside a second.
RATE_MARGIN = 0.01
MESSAGES_KEPT = 64  # parsed payloads: a run has one per language
UNPACED_CLAIM = 5  # batches per claim when no overall rate is set

Operation = Callable[[AsyncSession], Awaitable[None]]


@dataclass(frozen=True)
class _Job:
    """A claimed delivery, opened: never logged, the address is in plain text."""

    id: int
    address_hash: str
    address: str
    group: bool
    message: OutboundMessage
    attempts: int
    deadline: float  # monotonic time after which it goes back rather than wait for its turn
    lease_ends: float  # monotonic time its claim runs out: past it, another claim may send it
    claimed_until: datetime  # the claim's lease end as stored, to give back only this claim


@lru_cache(maxsize=MESSAGES_KEPT)
def _parsed(payload: str) -> OutboundMessage:
    """A stored payload parsed, once for all the copies of a run's message."""
    return OutboundMessage.from_payload(json.loads(payload))


class _Pacer:
    """When each chat may be sent to next, by keyed hash: small maps, pruned as they go.

    Private chats keep only their last send, forgotten once their interval has passed; groups
    keep their sends of the last minute. A 100,000-chat run so remembers about a second's chats.
    """

    def __init__(self, per_chat_interval: float, per_group_per_minute: int) -> None:
        self._chat_interval = per_chat_interval
        self._group_limit = per_group_per_minute
        self._chats: dict[str, float] = {}
        self._groups: dict[str, deque[float]] = {}
        self._pruned = time.monotonic()

    def wait(self, key: str, group: bool, now: float) -> float:
        """Seconds until this chat may have one more message (0: now)."""
        if not group:
            last = self._chats.get(key)
            return 0.0 if last is None else max(0.0, last + self._chat_interval - now)
        sent = self._groups.get(key)
        if not sent:
            return 0.0
        while sent and sent[0] <= now - GROUP_WINDOW:
            sent.popleft()
        return 0.0 if len(sent) < self._group_limit else sent[0] + GROUP_WINDOW - now

    def record(self, key: str, group: bool, now: float) -> None:
        """A send to this chat just came back."""
        if group:
            sent = self._groups.get(key)
            if sent is None:
                sent = self._groups[key] = deque(maxlen=self._group_limit)
            sent.append(now)
        else:
            self._chats[key] = now
        since = now - self._pruned
        if since > GROUP_WINDOW or (len(self._chats) > PACER_SIZE and since > 1.0):
            self._prune(now)

    def _prune(self, now: float) -> None:
        """Forget chats whose window has passed."""
        self._pruned = now
        chats_cutoff, groups_cutoff = now - self._chat_interval, now - GROUP_WINDOW
        self._chats = {key: last for key, last in self._chats.items() if last > chats_cutoff}
        self._groups = {key: sent for key, sent in self._groups.items() if sent[-1] > groups_cutoff}


class _Recorder:
    """Outcomes waiting to be written, in short transactions, and the claims not yet settled."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Callable[[], datetime],
        put_off: Callable[[], None],
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._put_off = put_off
        self._put_off_pending = False
        self._sent: list[int] = []
        self._operations: list[Operation] = []
        self._lock = asyncio.Lock()
        self.unsettled: set[int] = set()
        self.settled = asyncio.Event()  # set whenever a claim gets its outcome
        self.tally: Counter[str] = Counter()
        # Monotonic time: every outcome recorded before it is in the database.
        self.written_through = 0.0

    def claimed(self, delivery_ids: Sequence[int]) -> None:
        """These are out for sending now."""
        self.unsettled.update(delivery_ids)

    def sent(self, delivery_id: int) -> None:
        """Accepted by the platform."""
        self._settle([delivery_id], "sent")
        self._sent.append(delivery_id)

    def retry(self, delivery_id: int, at: datetime, error: str) -> None:
        """A failed attempt: again at `at`."""
        self._settle([delivery_id], "retried")
        self._put_off_pending = True
        self._operations.append(
            partial(outbox.retry_later, delivery_id=delivery_id, at=at, error=error)
        )

    def give_up(self, delivery_id: int, error: str) -> None:
        """Failed for good."""
        self._settle([delivery_id], "failed")
        self._operations.append(partial(outbox.give_up, delivery_id=delivery_id, error=error))

    def blocked(self, delivery_ids: Sequence[int], address_hash: str) -> None:
        """The chat blocked the bot: these and its queued deliveries are not sent."""
        self._settle(delivery_ids, "blocked")
        for delivery_id in delivery_ids:
            self._operations.append(
                partial(outbox.mark_blocked, delivery_id=delivery_id, address_hash=address_hash)
            )

    def release(
        self,
        delivery_ids: Sequence[int],
        at: datetime,
        error: str | None = None,
        claimed_until: datetime | None = None,
    ) -> None:
        """Not sent now: back to the queue, due at `at`, the attempt not counted (only while
        still under the claim `claimed_until`, when given)."""
        if delivery_ids:
            self._settle(delivery_ids, "deferred")
            self._put_off_pending = True
            self._operations.append(
                partial(
                    outbox.release,
                    delivery_ids=list(delivery_ids),
                    at=at,
                    error=error,
                    claimed_until=claimed_until,
                )
            )

    def abandon(self, delivery_ids: Sequence[int]) -> None:
        """No outcome to write (a bug stopped its chain): its lease brings it back."""
        self._settle([i for i in delivery_ids if i in self.unsettled], "abandoned")

    def report(self) -> Counter[str]:
        """The outcomes counted since the last report."""
        tally, self.tally = self.tally, Counter()
        return tally

    def _settle(self, delivery_ids: Sequence[int], outcome: str) -> None:
        self.unsettled.difference_update(delivery_ids)
        self.tally[outcome] += len(delivery_ids)
        self.settled.set()

    async def flush(self) -> None:
        """Write what is waiting; on a database error it stays waiting and the error is raised."""
        async with self._lock:
            put_off, self._put_off_pending = self._put_off_pending, False
            started = time.monotonic()
            try:
                while self._sent or self._operations:
                    await self._write_some()
            except BaseException:
                self._put_off_pending = self._put_off_pending or put_off
                raise
            self.written_through = started
        if put_off:
            self._put_off()  # the drainer's rest was timed before these were due

    async def _write_some(self) -> None:
        """One short transaction: a bulk UPDATE of successes and a few other outcomes."""
        sent = self._sent[:SENT_PER_STATEMENT]
        operations = self._operations[: STATEMENTS_PER_TRANSACTION - 1]
        del self._sent[: len(sent)], self._operations[: len(operations)]
        try:
            async with self._sessions() as session, session.begin():
                await outbox.mark_sent_many(session, sent, self._clock())
                for operation in operations:
                    await operation(session)
        except BaseException:
            self._sent[:0], self._operations[:0] = sent, operations
            raise


class Drainer:
    """Sends one channel's outbox: claims batches, sends them at the platform's pace, records."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        sender: Sender,
        vault: Vault,
        *,
        overall_per_second: float | None = 30.0,
        per_chat_interval: float = 1.0,
        per_group_per_minute: int = 20,
        batch: int = 200,
        concurrency: int = 32,  # the Telegram sender's own pool has as many connections
        max_attempts: int = 5,
        lease: timedelta = timedelta(seconds=60),
        backoff: float = 2.0,
        max_backoff: float = 300.0,
        hold: float = 2.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        if overall_per_second is not None and overall_per_second <= 0:
            raise ValueError("the overall rate must be positive (or None: unpaced)")
        if batch < 1 or concurrency < 1 or max_attempts < 1:
            raise ValueError("batch, concurrency and max_attempts must be positive")
        self.sessions = sessions
        self.sender = sender
        self.vault = vault
        self.max_attempts = max_attempts
        self.lease = lease
        self.backoff = backoff
        self.max_backoff = max_backoff
        # A claim waits at most `hold` for its turn, plus its place in the limiter's queue
        # (about 1.5 batches): together well inside the lease.
        self.hold = min(hold, lease.total_seconds() / 4)
        self.clock = clock
        self._limiter: AsyncLimiter | None = None
        self._overall_rate = 0.0
        # Unpaced, claims are bigger: fewer statements, and fewer pauses of the loop for them.
        self._claim_size = batch * UNPACED_CLAIM
        if overall_per_second is not None:
            rate = overall_per_second * (1 - RATE_MARGIN)
            burst = max(1, int(rate // 100))
            self._limiter = AsyncLimiter(burst, burst / rate)
            self._overall_rate = rate
            # Claim no more than can go out within `hold` at the overall rate.
            self._claim_size = max(1, min(batch, int(overall_per_second * self.hold)))
        self._in_flight = asyncio.Semaphore(concurrency)
        self._pacer = _Pacer(per_chat_interval, per_group_per_minute)
        self._recorder = _Recorder(sessions, clock, self.notify)
        # Chats that blocked the bot lately: a claim racing their outcome's write sends nothing.
        self._blocked: dict[str, float] = {}
        self._chains: dict[str, deque[_Job]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._paused_until = 0.0
        self._wakeup = asyncio.Event()
        self._counted_waiting = 0  # conversation replies waiting to take a limiter slot
        self._tasks_counted: set[asyncio.Task[None]] = set()

    @property
    def channel(self) -> str:
        """The channel this drainer sends."""
        return self.sender.channel

    def notify(self) -> None:
        """Deliveries were queued: drain now instead of at the next idle tick."""
        self._wakeup.set()

    def count_send(self) -> None:
        """The channel sent a conversation reply: it counts against the same overall rate.

        The reply itself never waits; it takes the limiter's next slot, so the outbox sends one
        message fewer. Beyond a second's worth of them waiting, the rest go uncounted rather
        than queue up without end.
        """
        if self._limiter is None or self._counted_waiting >= self._overall_rate:
            return
        self._counted_waiting += 1
        task = asyncio.get_running_loop().create_task(self._limiter.acquire())
        self._tasks_counted.add(task)
        task.add_done_callback(self._counted)

    def _counted(self, task: asyncio.Task[None]) -> None:
        self._tasks_counted.discard(task)
        self._counted_waiting -= 1

    async def run(self) -> None:
        """Drain until cancelled, resting while the outbox is empty or the platform said wait."""
        writer = asyncio.create_task(self._write_outcomes())
        try:
            while True:
                await self._wait_out_pause()
                await self._wait_for_room()
                try:
                    handled = await self._claim_and_start()
                except Exception as exc:
                    log.error("outbox %s: claiming failed: %s", self.channel, type(exc).__name__)
                    await asyncio.sleep(ERROR_PAUSE)
                    continue
                if not handled:
                    await self._rest()
        finally:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
            await self._stop()

    async def drain_once(self) -> int:
        """Claim one batch, send it, record every outcome; how many were claimed (not with run)."""
        try:
            handled = await self._claim_and_start()
            while self._tasks:
                await asyncio.wait(set(self._tasks), timeout=FLUSH_EVERY)
                await self._recorder.flush()
        except BaseException:
            await self._stop()
            raise
        await self._recorder.flush()
        self._report()
        return handled

    async def _claim_and_start(self) -> int:
        """Claim a batch and hand each delivery to its chat's chain; how many were claimed."""
        written = self._recorder.written_through
        claimed_at = time.monotonic()
        async with self.sessions() as session, session.begin():
            claimed = await outbox.claim(
                session, self.channel, self.clock(), self._claim_size, self.lease
            )
        # A delivery still in a chain here (its lease ran out while it waited) is that chain's:
        # a second job for it would send it twice. Its new lease is only a longer hold.
        fresh = [delivery for delivery in claimed if delivery.id not in self._recorder.unsettled]
        self._recorder.claimed([delivery.id for delivery in fresh])
        # Blocks written before this claim began kept their chats' old rows out of it: what it
        # found for them is new (they unblocked the bot and subscribed again), so it goes.
        self._blocked = {key: at for key, at in self._blocked.items() if at > written}
        deadline = time.monotonic() + self.hold
        lease_ends = claimed_at + self.lease.total_seconds()
        for delivery in fresh:
            job = self._job(delivery, deadline, lease_ends)
            if job is not None:
                self._start(job)
        return len(claimed)

    def _job(self, delivery: outbox.Claimed, deadline: float, lease_ends: float) -> _Job | None:
        """Decrypt and parse one delivery, or give it up (the reason only, never the address)."""
        plain = self.vault.decrypt(delivery.address_enc)
        if plain is None:
            self._recorder.give_up(delivery.id, "undecryptable")
            return None
        channel, _, address = plain.partition(":")
        if channel != self.channel or not address:
            self._recorder.give_up(delivery.id, "bad address")
            return None
        try:
            message = _parsed(delivery.payload)
        except (TypeError, ValueError):
            self._recorder.give_up(delivery.id, "bad payload")
            return None
        group = self.sender.is_group(address)
        return _Job(
            delivery.id,
            delivery.address_hash,
            address,
            group,
            message,
            delivery.attempts,
            deadline,
            lease_ends,
            delivery.claimed_until,
        )

    def _start(self, job: _Job) -> None:
        """Queue a job behind its chat's running chain, or start a chain for it."""
        if job.address_hash in self._blocked:
            self._recorder.blocked([job.id], job.address_hash)
            return
        chain = self._chains.get(job.address_hash)
        if chain is not None:
            chain.append(job)
            return
        self._chains[job.address_hash] = deque([job])
        task = asyncio.create_task(self._run_chain(job.address_hash))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_chain(self, key: str) -> None:
        """Send one chat's jobs in order until none is left or one puts the rest off."""
        chain = self._chains[key]
        job: _Job | None = None
        try:
            while chain:
                job = chain.popleft()
                if not await self._send_job(job, chain):
                    chain.clear()
        except Exception as exc:
            log.error("outbox %s: a chain failed: %s", self.channel, type(exc).__name__)
            self._recorder.abandon([j.id for j in (job, *chain) if j is not None])
        finally:
            del self._chains[key]

    async def _send_job(self, job: _Job, chain: deque[_Job]) -> bool:
        """Send one job when its turn comes and record it; False when the chain was put off."""
        wait = await self._take_turn(job)
        # The chain's rest as it is now: another claim may have added to it meanwhile.
        if wait is not None:
            self._recorder.release([job.id, *(later.id for later in chain)], self._after(wait))
            return False
        result = await self._send(job)
        if result is None:
            # So slow to get a send slot that its claim could end mid-send: give back only what
            # is still under this claim, to go once under the next.
            for unsent in (job, *chain):
                self._recorder.release(
                    [unsent.id], self.clock(), claimed_until=unsent.claimed_until
                )
            return False
        self._pacer.record(job.address_hash, job.group, time.monotonic())
        return self._settle(job, result, [later.id for later in chain])

    async def _take_turn(self, job: _Job) -> float | None:
        """Wait for the chat's turn and the overall rate: None to send now, or seconds to defer."""
        while True:
            now = time.monotonic()
            wait = max(self._pacer.wait(job.address_hash, job.group, now), self._paused_until - now)
            if wait <= 0:
                if self._limiter is not None:
                    await self._limiter.acquire()
                if self._paused_until <= time.monotonic():
                    return None
                continue  # a flood wait began while this one queued for the limiter
            if now + wait > job.deadline:
                return wait
            await asyncio.sleep(wait)

    async def _send(self, job: _Job) -> SendResult | None:
        """One send, at most `concurrency` at a time; a sender that raises counts as a failure.
        None, unsent, when less than half its lease is left once a slot is free."""
        async with self._in_flight:
            if time.monotonic() > job.lease_ends - self.lease.total_seconds() / 2:
                return None
            try:
                return await self.sender.send(job.address, job.message)
            except Exception as exc:
                return SendResult(Outcome.FAILED, error=type(exc).__name__)

    def _settle(self, job: _Job, result: SendResult, rest: list[int]) -> bool:
        """Record one send's outcome; False when the chat's later deliveries must wait too."""
        recorder = self._recorder
        error = result.error or result.outcome.value
        if result.outcome is Outcome.SENT:
            recorder.sent(job.id)
        elif result.outcome is Outcome.REJECTED:
            recorder.give_up(job.id, error)
        elif result.outcome is Outcome.BLOCKED:
            recorder.blocked([job.id, *rest], job.address_hash)
            self._remember_blocked(job.address_hash)
            return False
        elif result.outcome is Outcome.RETRY_AFTER:
            wait = max(result.retry_after, 1.0)
            self._pause(wait)
            # The chat's later messages wait with it, so they arrive in order.
            recorder.release([job.id, *rest], self._after(wait), "retry after")
            return False
        elif job.attempts >= self.max_attempts:
            recorder.give_up(job.id, error)
        else:
            at = self._after(min(self.backoff * 2 ** (job.attempts - 1), self.max_backoff))
            recorder.retry(job.id, at, error)
            recorder.release(rest, at)
            return False
        return True

    def _remember_blocked(self, key: str) -> None:
        """Remember a blocked chat until its block is written and a claim has begun after."""
        self._blocked[key] = time.monotonic()

    def _pause(self, seconds: float) -> None:
        """The platform's flood wait applies to the bot, not to one chat."""
        until = time.monotonic() + seconds
        if until > self._paused_until:
            self._paused_until = until
            log.warning("outbox %s: flood wait of %.0f s", self.channel, seconds)

    async def _wait_out_pause(self) -> None:
        """Sleep through a flood wait before claiming more."""
        remaining = self._paused_until - time.monotonic()
        if remaining > 0:
            await asyncio.sleep(remaining)

    async def _wait_for_room(self) -> None:
        """Claim the next batch once half of the last one is settled, not before."""
        while len(self._recorder.unsettled) > self._claim_size // 2:
            self._recorder.settled.clear()
            await self._recorder.settled.wait()

    async def _rest(self) -> None:
        """Nothing due: write outcomes, report, then sleep until notified or something is due."""
        with contextlib.suppress(Exception):  # the writer retries; the report can wait
            await self._recorder.flush()
            self._report()
        idle = await self._idle_time()  # first: a cancel here leaves no wait() unawaited
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wakeup.wait(), idle)
        self._wakeup.clear()

    async def _idle_time(self) -> float:
        """Until the soonest put-off delivery is due, at most IDLE_WAIT."""
        try:
            async with self.sessions() as session, session.begin():
                due = await outbox.next_due(session, self.channel)
        except Exception as exc:
            log.warning("outbox %s: next due unknown: %s", self.channel, type(exc).__name__)
            return IDLE_WAIT
        if due is None:
            return IDLE_WAIT
        seconds = (due - self.clock()).total_seconds() + DUE_MARGIN
        return min(IDLE_WAIT, max(seconds, MIN_REST))

    async def _write_outcomes(self) -> None:
        """While running: write outcomes every FLUSH_EVERY seconds, report every minute."""
        reported = time.monotonic()
        while True:
            await asyncio.sleep(FLUSH_EVERY)
            try:
                await self._recorder.flush()
            except Exception as exc:  # kept for the next round
                log.warning("outbox %s: recording deferred: %s", self.channel, type(exc).__name__)
            if time.monotonic() - reported >= REPORT_EVERY:
                reported = time.monotonic()
                self._report()

    async def _stop(self) -> None:
        """Stopping: end the chains, give back what was not sent, write every outcome."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        # A send in flight when stopped goes again: at least once, never lost.
        self._recorder.release(sorted(self._recorder.unsettled), self.clock())
        try:
            await self._recorder.flush()
        except Exception as exc:  # the leases bring the rest back
            log.warning("outbox %s: recording lost: %s", self.channel, type(exc).__name__)
        self._report()

    def _after(self, seconds: float) -> datetime:
        return self.clock() + timedelta(seconds=seconds)

    def _report(self) -> None:
        """Counts only: no address, chat id or text."""
        tally = self._recorder.report()
        if tally:
            log.info(
                "outbox %s: %d sent, %d retried, %d deferred, %d failed, %d blocked",
                self.channel,
                tally["sent"],
                tally["retried"],
                tally["deferred"],
                tally["failed"],
                tally["blocked"],
            )
