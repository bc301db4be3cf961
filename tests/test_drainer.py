"""The outbox drainer end to end: a real telegram.Bot over HTTP to the fake Bot API."""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from telegram import Bot

from bot.app import Core
from bot.channels.telegram_http import AiohttpRequest
from bot.channels.telegram_sender import TelegramSender
from bot.channels.text import split_text
from broadcasts.drainer import Drainer
from broadcasts.senders import OutboundButton, OutboundMessage, Outcome, Sender, SendResult
from storage.crypto import Vault
from storage.models import Chat, Delivery, Subscription, utcnow
from storage.repositories import outbox
from tests.fake_telegram import CallRecord, FakeTelegramServer, inline_buttons

TOKEN = "777333:AAEdrainer-test-token-0123456789abcdefg"
GROUP = -1001234567890
READ_TIMEOUT = 0.5
Buttons = tuple[tuple[OutboundButton, ...], ...]


@pytest.fixture
async def server() -> AsyncIterator[FakeTelegramServer]:
    """A fake Bot API server on loopback."""
    async with FakeTelegramServer() as fake:
        yield fake


@pytest.fixture
async def bot(server: FakeTelegramServer) -> AsyncIterator[Bot]:
    """A real Bot on the project's aiohttp transport, with a short read timeout."""
    telegram_bot = Bot(
        TOKEN,
        base_url=server.base_url,
        request=AiohttpRequest(read_timeout=READ_TIMEOUT),
        get_updates_request=AiohttpRequest(connections=1),
    )
    async with telegram_bot:
        yield telegram_bot


def make_drainer(core: Core, bot: Bot, **overrides: Any) -> Drainer:
    """A drainer on the core's database, quick to retry unless told otherwise."""
    services = core.dispatcher.services
    options: dict[str, Any] = {
        "overall_per_second": 20.0,
        "per_chat_interval": 0.2,
        "backoff": 0.05,
    }
    options.update(overrides)
    sender: Sender = TelegramSender(bot, part_gap=0.0)
    return Drainer(services.sessions, sender, services.vault, **options)


def address_hash(core: Core, chat_id: int) -> str:
    """The keyed hash a chat's rows are found by."""
    return core.dispatcher.services.vault.keyed_hash(f"telegram:{chat_id}")


async def queue(
    core: Core,
    chat_ids: Sequence[int],
    text: str = "Cảnh báo: giả danh công an gọi điện đòi chuyển tiền.",
    buttons: Buttons = (),
    vault: Vault | None = None,
) -> list[int]:
    """Queue one delivery per chat id; their ids in order."""
    services = core.dispatcher.services
    sealer = vault or services.vault
    payload = OutboundMessage(text, buttons).to_payload()
    rows = [
        {
            "channel": "telegram",
            "address_hash": address_hash(core, chat_id),
            "address_enc": sealer.encrypt(f"telegram:{chat_id}"),
            "payload": payload,
            "created_at": utcnow(),
        }
        for chat_id in chat_ids
    ]
    async with services.sessions() as session, session.begin():
        await outbox.enqueue(session, rows)
        newest = await session.scalars(
            select(Delivery.id).order_by(Delivery.id.desc()).limit(len(rows))
        )
        return sorted(newest)


async def deliveries(core: Core) -> dict[int, Delivery]:
    """Every delivery by id, as stored now."""
    async with core.dispatcher.services.sessions() as session:
        return {row.id: row for row in await session.scalars(select(Delivery))}


async def settled(core: Core, within: float = 10.0) -> dict[int, Delivery]:
    """Wait until nothing is queued or sending; the deliveries then."""
    deadline = time.monotonic() + within
    while True:
        rows = await deliveries(core)
        if all(row.status not in {"queued", "sending"} for row in rows.values()):
            return rows
        if time.monotonic() > deadline:
            raise AssertionError({row.id: row.status for row in rows.values()})
        await asyncio.sleep(0.05)


@asynccontextmanager
async def running(drainer: Drainer) -> AsyncIterator[None]:
    """The drainer's loop as a task, cancelled on leaving."""
    task = asyncio.create_task(drainer.run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def sends(server: FakeTelegramServer, chat_id: int) -> list[CallRecord]:
    """Accepted sendMessage calls to a chat."""
    return [r for r in server.sent_to(chat_id) if r["method"] == "sendMessage"]


def tries(server: FakeTelegramServer, chat_id: int) -> list[CallRecord]:
    """Every sendMessage call to a chat the server answered, accepted or not."""
    return [r for r in server.sent_to(chat_id, include_failed=True) if r["method"] == "sendMessage"]


def busiest_second(times: Sequence[float]) -> int:
    """The most calls inside any one-second window."""
    ordered = sorted(times)
    return max((bisect.bisect_left(ordered, t + 1.0) - i for i, t in enumerate(ordered)), default=0)


async def test_fan_out_keeps_telegram_limits(
    core: Core, server: FakeTelegramServer, bot: Bot
) -> None:
    """60 chats and 3 messages to a group: each sent once, no 429, never past the rate."""
    server.enforce_limits(overall_per_second=30, per_chat_per_second=1, per_group_per_minute=20)
    chats = list(range(5_000_001, 5_000_061))
    await queue(core, chats)
    await queue(core, [GROUP] * 3)
    drainer = make_drainer(core, bot, overall_per_second=25.0, per_chat_interval=1.0)

    async with running(drainer):
        rows = await settled(core, within=15.0)

    assert {row.status for row in rows.values()} == {"sent"}
    assert all(len(sends(server, chat)) == 1 for chat in chats)
    assert len(sends(server, GROUP)) == 3
    assert server.flood_refusals.total == 0
    times = [r["time"] for r in server.calls_of("sendMessage")]
    assert len(times) == 63
    assert busiest_second(times) <= 26  # 25/s evenly spaced: at most one more in a window


async def test_flood_wait_is_honoured(core: Core, server: FakeTelegramServer, bot: Bot) -> None:
    """A 429 with retry_after=1: sent once, a second later, and the whole bot waited."""
    first, second = 6_000_001, 6_000_002
    server.fail_next("sendMessage", status=429, retry_after=1, chat_id=first)
    ids = await queue(core, [first, second])
    # Slow enough that the 429 is back before the second chat's turn.
    drainer = make_drainer(core, bot, overall_per_second=5.0)

    async with running(drainer):
        rows = await settled(core)

    assert [rows[i].status for i in ids] == ["sent", "sent"]
    assert rows[ids[0]].attempts == 1  # a flood wait is the platform's pace, not a failure
    refused = [r for r in tries(server, first) if not r["ok"]]
    assert len(refused) == 1
    assert refused[0]["error"] is not None
    assert refused[0]["error"]["error_code"] == 429
    assert len(sends(server, first)) == 1
    assert sends(server, first)[0]["time"] - refused[0]["time"] >= 0.95
    assert len(sends(server, second)) == 1
    assert sends(server, second)[0]["time"] - refused[0]["time"] >= 0.95


async def test_transient_failures_are_retried_then_given_up(
    core: Core, server: FakeTelegramServer, bot: Bot
) -> None:
    """A 502 and a timeout are retried and the message sent once; three 500s: failed."""
    lucky, unlucky = 7_000_001, 7_000_002
    server.fail_next("sendMessage", status=502, chat_id=lucky)
    # A timeout that did not deliver: the answer (a 500) comes after the client gave up.
    server.fail_next("sendMessage", status=500, delay=READ_TIMEOUT + 0.5, chat_id=lucky)
    server.fail_next("sendMessage", status=500, count=3, chat_id=unlucky)
    ids = await queue(core, [lucky, unlucky])
    drainer = make_drainer(core, bot, max_attempts=3)

    async with running(drainer):
        rows = await settled(core)

    sent, failed = rows[ids[0]], rows[ids[1]]
    assert (sent.status, sent.attempts, sent.last_error) == ("sent", 3, None)
    assert len(sends(server, lucky)) == 1
    assert (failed.status, failed.attempts, failed.last_error) == ("failed", 3, "NetworkError")
    assert sends(server, unlucky) == []
    assert len(tries(server, unlucky)) == 3


async def test_slow_sends_hold_up_no_other_chat(
    core: Core, server: FakeTelegramServer, bot: Bot
) -> None:
    """Three sends that time out, in three batches: the other chats' batches go on meanwhile."""
    slow = [7_100_001, 7_100_002, 7_100_003]
    fast = list(range(7_200_001, 7_200_013))
    for chat_id in slow:
        server.fail_next("sendMessage", status=500, delay=READ_TIMEOUT + 0.5, chat_id=chat_id)
    order = [slow[0], *fast[:4], slow[1], *fast[4:8], slow[2], *fast[8:]]
    await queue(core, order)

    async with running(make_drainer(core, bot, batch=5)):
        rows = await settled(core)

    assert {row.status for row in rows.values()} == {"sent"}
    assert all(len(sends(server, chat_id)) == 1 for chat_id in order)
    first = min(r["time"] for r in server.calls_of("sendMessage"))
    # Twelve at 20/s take 0.6 s; waiting out each timeout before the next batch takes 2 s.
    assert max(sends(server, chat_id)[0]["time"] for chat_id in fast) - first < 1.2


@pytest.mark.parametrize("batch", [1, 50])
async def test_blocked_chat_stops_its_deliveries_and_subscriptions(
    core: Core,
    server: FakeTelegramServer,
    bot: Bot,
    batch: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A 403: blocked, subscriptions paused, its other deliveries (in the batch or not) unsent."""
    caplog.set_level(logging.DEBUG, logger="broadcasts")
    caplog.set_level(logging.DEBUG, logger="bot")
    blocker, other = 8_000_001, 8_000_002
    server.blocked_chats.add(blocker)
    vault = core.dispatcher.services.vault
    async with core.dispatcher.services.sessions() as session, session.begin():
        session.add(Chat(address_hash=address_hash(core, blocker), channel="telegram"))
        for chat_id, area in ((blocker, "79"), (blocker, "01"), (other, "79")):
            session.add(
                Subscription(
                    address_hash=address_hash(core, chat_id),
                    address_enc=vault.encrypt(f"telegram:{chat_id}"),
                    channel="telegram",
                    area_code=area,
                    topics=["scam"],
                )
            )
    ids = await queue(core, [blocker, blocker, other, blocker])
    drainer = make_drainer(core, bot, batch=batch)

    async with running(drainer):
        rows = await settled(core)

    assert [rows[i].status for i in ids] == ["blocked", "blocked", "sent", "blocked"]
    assert len(tries(server, blocker)) == 1
    assert len(sends(server, other)) == 1
    async with core.dispatcher.services.sessions() as session:
        active = {
            (s.address_hash, s.area_code): s.active
            for s in await session.scalars(select(Subscription))
        }
        chat = await session.scalar(select(Chat))
    assert active == {
        (address_hash(core, blocker), "79"): False,
        (address_hash(core, blocker), "01"): False,
        (address_hash(core, other), "79"): True,
    }
    assert chat is not None and chat.blocked
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "sent" in logged
    assert str(blocker) not in logged and str(other) not in logged


async def test_lease_decides_whether_a_claimed_delivery_is_sent_again(
    core: Core, server: FakeTelegramServer, bot: Bot
) -> None:
    """Left `sending` by a crash: sent again once its lease ended, not while it runs."""
    crashed, in_flight = 9_000_001, 9_000_002
    ids = await queue(core, [crashed, in_flight])
    now = utcnow()
    async with core.dispatcher.services.sessions() as session, session.begin():
        for delivery_id, lease_end in zip(
            ids, (now - timedelta(seconds=1), now + timedelta(60)), strict=True
        ):
            await session.execute(
                update(Delivery)
                .where(Delivery.id == delivery_id)
                .values(status="sending", attempts=1, next_attempt_at=lease_end)
            )
    drainer = make_drainer(core, bot)

    assert await drainer.drain_once() == 1
    assert await drainer.drain_once() == 0

    rows = await deliveries(core)
    assert (rows[ids[0]].status, rows[ids[0]].attempts) == ("sent", 2)
    assert rows[ids[1]].status == "sending"
    assert len(sends(server, crashed)) == 1
    assert tries(server, in_flight) == []


async def test_undecryptable_address_is_given_up(
    core: Core, server: FakeTelegramServer, bot: Bot
) -> None:
    """A delivery sealed with another key: failed as undecryptable, nothing sent."""
    stranger = Vault(b"another-secret-key-0123456789abcdef")
    ids = await queue(core, [9_100_001], vault=stranger)

    assert await make_drainer(core, bot).drain_once() == 1

    rows = await deliveries(core)
    assert (rows[ids[0]].status, rows[ids[0]].last_error) == ("failed", "undecryptable")
    assert server.calls_of("sendMessage") == []


async def test_long_text_is_split_in_order_with_buttons_last(
    core: Core, server: FakeTelegramServer, bot: Bot
) -> None:
    """A text past 4096 goes as ordered parts; the buttons come with the last one."""
    chat_id = 9_200_001
    text = "\n\n".join(
        f"Đoạn {n}: " + "cảnh báo lừa đảo qua mạng xã hội 🚨 " * 12 for n in range(40)
    )
    buttons = ((OutboundButton("Dừng nhận cảnh báo", "stop1"),), (OutboundButton("Trả lời", "a1"),))
    await queue(core, [chat_id], text=text, buttons=buttons)

    async with running(make_drainer(core, bot)):
        rows = await settled(core)

    assert [row.status for row in rows.values()] == ["sent"]
    messages = sorted(server.bot_messages(chat_id), key=lambda m: int(m["message_id"]))
    parts = split_text(text, 4096)
    assert len(parts) >= 3
    assert [m["text"] for m in messages] == parts
    assert " ".join(m["text"] for m in messages).split() == text.split()
    assert all("reply_markup" not in m for m in messages[:-1])
    assert [b["callback_data"] for b in inline_buttons(messages[-1])] == ["stop1", "a1"]


async def test_stopping_mid_batch_loses_nothing(
    core: Core, server: FakeTelegramServer, bot: Bot
) -> None:
    """Cancelled mid-batch: what went out is recorded sent, the rest queued, then sent once."""
    chats = list(range(9_400_001, 9_400_021))
    ids = await queue(core, chats)
    async with running(make_drainer(core, bot, overall_per_second=10.0)):
        await asyncio.sleep(0.55)

    rows = await deliveries(core)
    statuses = Counter(row.status for row in rows.values())
    assert set(statuses) == {"sent", "queued"}
    assert statuses["sent"] >= 3
    recorded = {chat for chat, i in zip(chats, ids, strict=True) if rows[i].status == "sent"}
    reached = {chat for chat in chats if sends(server, chat)}
    assert recorded <= reached
    assert len(reached - recorded) <= 1  # a send in flight at the stop goes again

    async with running(make_drainer(core, bot, overall_per_second=50.0)):
        await settled(core)
    assert all(sends(server, chat) for chat in chats)
    assert sum(len(sends(server, chat)) for chat in chats) <= len(chats) + 1


async def test_sender_maps_telegram_answers(server: FakeTelegramServer, bot: Bot) -> None:
    """Each Bot API answer becomes its outcome, by type only; groups are negative ids."""
    sender = TelegramSender(bot)
    chat_id = 9_500_001
    server.fail_next("sendMessage", status=400, description="Bad Request: chat not found")
    server.fail_next("sendMessage", status=400, description="Bad Request: message text is empty")
    server.fail_next("sendMessage", status=429, retry_after=7)
    server.fail_next("sendMessage", status=403)
    server.fail_next("sendMessage", status=502)
    message = OutboundMessage("Xin chào")

    results = [await sender.send(str(chat_id), message) for _ in range(6)]

    assert results == [
        SendResult(Outcome.BLOCKED, error="ChatNotFound"),
        SendResult(Outcome.REJECTED, error="BadRequest"),
        SendResult(Outcome.RETRY_AFTER, 7.0, "RetryAfter"),
        SendResult(Outcome.BLOCKED, error="Forbidden"),
        SendResult(Outcome.FAILED, error="NetworkError"),
        SendResult(Outcome.SENT),
    ]
    assert sender.is_group(str(GROUP))
    assert not sender.is_group(str(chat_id))


async def test_run_wakes_on_notify(core: Core, server: FakeTelegramServer, bot: Bot) -> None:
    """An idle drainer sends as soon as it is told something was queued."""
    drainer = make_drainer(core, bot)
    async with running(drainer):
        await asyncio.sleep(0.1)  # idle now, for up to a second
        started = time.monotonic()
        await queue(core, [9_300_001])
        drainer.notify()
        await server.wait_for_call("sendMessage", max_wait=2.0)
        assert time.monotonic() - started < 0.6


async def test_a_chat_that_unblocks_the_bot_is_sent_to_again_at_once(
    core: Core, server: FakeTelegramServer, bot: Bot
) -> None:
    """The drainer forgets a block once it is written: a new alert minutes later is sent."""
    chat = 8_100_001
    server.blocked_chats.add(chat)
    [first] = await queue(core, [chat])
    drainer = make_drainer(core, bot)
    async with running(drainer):
        rows = await settled(core)
        assert rows[first].status == "blocked"
        server.blocked_chats.discard(chat)  # they unblocked the bot and subscribed again
        await asyncio.sleep(0.5)
        [second] = await queue(core, [chat], text="Cảnh báo mới: cháy ở chợ Bến Thành.")
        drainer.notify()
        rows = await settled(core)
    assert rows[second].status == "sent", "well inside the minute the old memory lasted"
    assert len(sends(server, chat)) == 1


class SlowFirstSender:
    """Records each send's time; the first takes `slow` seconds (a stalled connection)."""

    def __init__(self, slow: float) -> None:
        self.slow = slow
        self.sent: list[tuple[str, float]] = []

    @property
    def channel(self) -> str:
        return "telegram"

    def is_group(self, address: str) -> bool:
        return False

    async def send(self, address: str, message: OutboundMessage) -> SendResult:
        if not self.sent:
            self.sent.append((address, time.monotonic()))
            await asyncio.sleep(self.slow)
            return SendResult(Outcome.SENT)
        self.sent.append((address, time.monotonic()))
        return SendResult(Outcome.SENT)


async def test_a_claim_that_runs_out_waiting_for_a_send_slot_is_not_sent_twice(
    core: Core,
) -> None:
    """One send slot, held past the others' lease: each is still sent once, under a live claim."""
    services = core.dispatcher.services
    sender = SlowFirstSender(slow=2.6)
    lease = timedelta(seconds=2)
    drainer = Drainer(
        services.sessions,
        sender,
        services.vault,
        overall_per_second=None,
        concurrency=1,
        lease=lease,
        per_chat_interval=0.0,
    )
    chats = [8_200_001, 8_200_002, 8_200_003]
    await queue(core, chats)
    async with running(drainer):
        rows = await settled(core, within=15.0)
    assert {row.status for row in rows.values()} == {"sent"}
    assert sorted(address for address, _ in sender.sent) == sorted(map(str, chats))


async def test_conversation_replies_take_their_share_of_the_overall_rate(core: Core) -> None:
    """A second's worth of replies just sent: the outbox's next message waits about a second."""
    services = core.dispatcher.services
    sender = SlowFirstSender(slow=0.0)
    drainer = Drainer(services.sessions, sender, services.vault, overall_per_second=20.0)
    started = time.monotonic()
    for _ in range(20):
        drainer.count_send()  # what the Telegram channel does after each reply it sends
    await queue(core, [8_300_001])
    async with running(drainer):
        await settled(core)
    [(_, sent_at)] = sender.sent
    assert sent_at - started >= 0.8, "the replies' slots came first"


async def test_enqueue_stores_what_the_orm_reads_back(core: Core) -> None:
    """Rows sharing a payload and a time, and rows with their own, read back as given."""
    now = utcnow()
    later = now + timedelta(minutes=5)
    shared = OutboundMessage("Cảnh báo “lừa đảo”", ((OutboundButton("Dừng", "t.1"),),))
    rows: list[dict[str, Any]] = [
        {
            "channel": "telegram",
            "address_hash": f"h{n}",
            "address_enc": "x",
            "payload": shared.to_payload(),
            "created_at": now,
        }
        for n in range(3)
    ]
    rows.append(
        {
            "channel": "web",
            "address_hash": "h-own",
            "address_enc": "y",
            "payload": {"text": "riêng", "buttons": []},
            "created_at": now,
            "next_attempt_at": later,
        }
    )
    async with core.dispatcher.services.sessions() as session, session.begin():
        assert await outbox.enqueue(session, rows) == 4
        assert await outbox.enqueue(session, rows[:1]) == 1, "no run: not a duplicate"
    stored = sorted((await deliveries(core)).values(), key=lambda row: row.id)
    assert [row.address_hash for row in stored] == ["h0", "h1", "h2", "h-own", "h0"]
    for row in stored[:3]:
        assert OutboundMessage.from_payload(row.payload) == shared
        assert (row.status, row.attempts, row.created_at, row.next_attempt_at) == (
            "queued",
            0,
            now,
            now,
        )
    own = stored[3]
    assert own.payload == {"text": "riêng", "buttons": []}
    assert (own.channel, own.created_at, own.next_attempt_at) == ("web", now, later)
