"""Alerts end to end: an admin's /alert reaches every subscriber of the area once, through the
outbox at Telegram's pace, and its button lives beside a tip in progress."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from bot.app import Core, start_broadcasts
from storage.models import AuditEntry, Chat, Subscription, utcnow
from storage.repositories import bulletins
from tests.fake_telegram import FakeTelegramServer
from tests.telegram_user import TelegramUser
from tests.test_subscriptions_e2e import ADMIN_ID, citizen, joined, subscribe
from tests.test_telegram_e2e import TOKEN, running_bot, server

__all__ = ["server"]  # the fake Bot API fixture, shared

ALERT = "Cháy lớn tại chợ Bến Thành, tránh khu vực cổng Nam, làm theo hướng dẫn của công an."
STOP = "🔕 Dừng nhận cảnh báo này"


@pytest.fixture
async def bot(tmp_path: Path, server: FakeTelegramServer) -> AsyncIterator[Core]:
    """A bot with its outbox running."""
    overrides = {"provinces": ("01", "79"), "admin_telegram_ids": (ADMIN_ID,)}
    async with running_bot(tmp_path, server, **overrides) as (core, channel):
        await start_broadcasts(core, channel)
        yield core


def alerts_received(user: TelegramUser) -> list[str]:
    """The alerts this user's chat got."""
    return [text for text in user.texts(user.history()) if text.startswith("🚨 CẢNH BÁO")]


async def until(check: Callable[[], bool], seconds: float = 10.0) -> None:
    """Wait until a condition holds (bounded)."""
    deadline = asyncio.get_running_loop().time() + seconds
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("timed out waiting")
        await asyncio.sleep(0.05)


async def send_alert(admin: TelegramUser, area: str) -> str:
    """Walk /alert as an admin; the preview's text."""
    await admin.send("/alert")
    await admin.send(ALERT)
    await admin.send(area)
    preview = admin.last_text() or ""
    await asyncio.sleep(1.1)  # the conversation's own replies keep to 1/s per chat too
    # From here on the fake refuses what Telegram would: the outbox must keep to the limits.
    admin.server.enforce_limits(
        overall_per_second=30, per_chat_per_second=1, per_group_per_minute=20
    )
    await admin.press("🚨 Gửi ngay")
    return preview


async def test_alert_reaches_each_subscriber_once_beside_a_tip(
    bot: Core, server: FakeTelegramServer
) -> None:
    residents = [citizen(server, 921000000 + n) for n in range(3)]
    for resident in residents:
        await subscribe(resident, "ben thanh")
    elsewhere = citizen(server, 921000010)
    await subscribe(elsewhere, "hoan kiem")
    blocked = citizen(server, 921000011)
    await subscribe(blocked, "ben thanh")
    server.blocked_chats.add(blocked.chat_id)
    writer = residents[0]
    await writer.send("/tip")
    await writer.press("Ma túy")  # mid-tip: the area prompt is open

    admin = citizen(server, ADMIN_ID)
    preview = await send_alert(admin, "ben thanh")
    assert ALERT in preview and "Phường Bến Thành" in preview and STOP in preview
    assert "4 người đăng ký" in joined(admin.history()), "the reach is shown before sending"

    await until(lambda: all(alerts_received(r) for r in residents))
    await until(lambda: "📊" in (admin.last_text() or ""))
    for resident in residents:
        assert len(alerts_received(resident)) == 1
        assert ALERT in alerts_received(resident)[0]
    assert alerts_received(elsewhere) == [], "another ward's subscribers get nothing"
    report = admin.last_text() or ""
    assert "đã đến 3 người dân và 0 nhóm" in report and "bị chặn 1" in report
    assert server.flood_refusals.total == 0, "Telegram's limits were never tripped"
    server.enforce_limits(None)

    # The alert's button and the tip's prompt are both live.
    replies = await writer.press(STOP)
    assert "không nhận cảnh báo" in joined(replies)
    replies = await writer.press("📂 Xem danh sách")  # the tip's area prompt, pressed after
    assert "Chọn một" in joined(replies), "the tip goes on"
    async with bot.dispatcher.services.sessions() as session:
        rows = list(await session.scalars(select(Subscription)))
        actions = [entry.action for entry in await session.scalars(select(AuditEntry))]
    by_chat = {row.address_hash: row for row in rows}
    assert len(rows) == 4, "the writer's subscription is gone, the others stay"
    assert sum(1 for row in by_chat.values() if not row.active) == 1, "the blocked one paused"
    assert actions == ["alert.created", "alert.sent"]


async def test_alert_is_no_command_for_citizens(bot: Core, server: FakeTelegramServer) -> None:
    resident = citizen(server, 921000020)
    await resident.send("/no-such-command")
    unknown = resident.last_text()
    await resident.send("/alert")
    assert resident.last_text() == unknown
    forged = await resident.press_data("AbCdEfGh.0")  # the shape of a message's own buttons
    assert any(record["method"] == "answerCallbackQuery" for record in forged)


async def test_expired_draft_is_told_at_once_through_the_outbox(
    bot: Core, server: FakeTelegramServer
) -> None:
    resident = citizen(server, 921000030)
    await resident.send("/tip")
    await resident.press("Ma túy")
    async with bot.dispatcher.services.sessions() as session, session.begin():
        await session.execute(update(Chat).values(updated_at=utcnow() - timedelta(hours=1)))
    assert await bot.dispatcher.sweep_expired() == 1
    await until(lambda: "đã bị xóa sau 30 phút" in (resident.last_text() or ""))
    async with bot.dispatcher.services.sessions() as session:
        chat = await session.scalar(select(Chat))
    assert chat is not None and chat.data == {}, "the draft, and the address it kept, are gone"
    replies = await resident.send("/start")
    assert "đã bị xóa" not in joined(replies), "told once, not again with the next message"


async def test_scheduled_bulletin_reaches_topic_subscribers(
    bot: Core, server: FakeTelegramServer
) -> None:
    scams, traffic = citizen(server, 921000040), citizen(server, 921000041)
    for user, topic in ((scams, "⬜ Lừa đảo"), (traffic, "⬜ Giao thông")):
        await user.send("/subscribe")
        await user.send("ben thanh")
        await user.press(topic)
        await user.press("💾 Lưu")
    at = (utcnow() + timedelta(seconds=1)).isoformat()
    async with bot.dispatcher.services.sessions() as session, session.begin():
        bulletin = await bulletins.create_bulletin(
            session,
            text="Cảnh giác cuộc gọi giả danh công an yêu cầu chuyển tiền.",
            target="W26743",
            areas=["W26743"],
            topic="scams",
            schedule={"at": at},
            timezone="Asia/Ho_Chi_Minh",
            created_by="test",
            creator_address_enc=None,
            now=utcnow(),
        )
    bot.dispatcher.services.bulletin_changed(bulletin.id)
    await until(lambda: "📢 BẢN TIN" in (scams.last_text() or ""), seconds=15)
    assert "giả danh công an" in (scams.last_text() or "")
    assert scams.keyboard_labels() == [STOP], "the bulletin carries its stop button"
    await asyncio.sleep(0.5)
    assert "📢" not in joined(traffic.history()), "a bulletin about scams skips traffic-only"


async def test_linked_group_gets_alerts_and_takes_no_tips(
    bot: Core, server: FakeTelegramServer
) -> None:
    group = -1001234500
    admin_there = TelegramUser(server, TOKEN, ADMIN_ID, chat_id=group)
    neighbour = TelegramUser(server, TOKEN, 921000050, chat_id=group)
    await neighbour.send("/linkgroup ben thanh", expect_reply=False)
    await neighbour.send("xin chào cả nhóm", expect_reply=False)
    assert neighbour.history() == [], "in a group the bot answers no citizen but /tip"
    replies = await neighbour.send("/tip")
    assert "nhắn riêng cho bot" in joined(replies)
    replies = await admin_there.send("/linkgroup ben thanh")
    assert "Phường Bến Thành" in joined(replies) and "✅" in joined(replies)
    admin = citizen(server, ADMIN_ID)
    await send_alert(admin, "ben thanh")
    await until(lambda: any(ALERT in text for text in admin_there.texts(admin_there.history())))
    await until(lambda: "📊" in (admin.last_text() or ""))
    server.enforce_limits(None)
    assert "đã đến 0 người dân và 1 nhóm" in (admin.last_text() or ""), "the group counted apart"
    async with bot.dispatcher.services.sessions() as session:
        actions = [entry.action for entry in await session.scalars(select(AuditEntry))]
    assert actions[:2] == ["group.linked", "alert.created"]


async def test_bulletin_sent_now_from_the_chat(bot: Core, server: FakeTelegramServer) -> None:
    resident = citizen(server, 921000060)
    await subscribe(resident, "ben thanh")
    admin = citizen(server, ADMIN_ID)
    await admin.send("/bulletin")
    await admin.send("Tết an toàn: không đốt pháo, không uống rượu khi lái xe.")
    await admin.send("ben thanh")
    await admin.press("Tất cả chủ đề")
    await admin.press("Ngay bây giờ")
    assert "📢 BẢN TIN — Phường Bến Thành" in (admin.last_text() or "")
    await admin.press("✅ Lưu bản tin")
    await until(lambda: "Tết an toàn" in (resident.last_text() or ""))
    assert (resident.last_text() or "").startswith("📢 BẢN TIN")
    await until(lambda: "📊" in (admin.last_text() or ""))


async def test_a_citizens_press_on_a_groups_staff_choice_leaves_it_for_staff(
    bot: Core, server: FakeTelegramServer
) -> None:
    group = -1001234501
    admin_there = TelegramUser(server, TOKEN, ADMIN_ID, chat_id=group)
    neighbour = TelegramUser(server, TOKEN, 921000070, chat_id=group)
    await admin_there.send("/linkgroup thanh")
    offered = admin_there.keyboard_labels()
    assert len(offered) > 1, "an unclear name is offered as choices"
    await neighbour.send("có ai biết không?", expect_reply=False)
    records = await neighbour.press(offered[0], expect_reply=False)
    answers = [r for r in records if r["method"] == "answerCallbackQuery"]
    assert answers and "Chỉ cán bộ" in str(answers[-1]["params"].get("text"))
    assert admin_there.keyboard_labels() == offered, "the choices stay for the staff member"
    replies = await admin_there.press(offered[0])
    assert "✅" in joined(replies)
