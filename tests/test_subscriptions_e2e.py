"""End to end over the fake Bot API: subscribing by search, location and browsing, and leaving."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.app import Core, load_areas
from storage.area_import import read_file
from storage.models import StaffMember, Subscription
from storage.repositories import areas
from tests.fake_telegram import CallRecord, FakeTelegramServer
from tests.telegram_user import TelegramUser
from tests.test_telegram_e2e import TOKEN, running_bot, walk_tip_vi

ADMIN_ID = 555000111


@pytest.fixture
async def server() -> AsyncIterator[FakeTelegramServer]:
    """A fake Bot API server on loopback."""
    async with FakeTelegramServer() as fake:
        yield fake


@pytest.fixture
async def bot(tmp_path: Path, server: FakeTelegramServer) -> AsyncIterator[Core]:
    """A bot serving Hà Nội and Hồ Chí Minh, with two neighbourhoods under Phường Hoàn Kiếm."""
    overrides = {"provinces": ("01", "79"), "admin_telegram_ids": (ADMIN_ID,)}
    async with running_bot(tmp_path, server, **overrides) as (core, _channel):
        await install_neighbourhoods(core, tmp_path)
        yield core


async def install_neighbourhoods(core: Core, tmp_path: Path) -> None:
    """Import neighbourhoods with map positions, as `tipline areas import` would."""
    path = tmp_path / "hoan-kiem.csv"
    path.write_text(
        "name,ward_code,latitude,longitude\n"
        "Tổ dân phố 5,70,21.0290,105.8520\n"
        "Khu phố Hàng Bạc,70,21.0340,105.8530\n",
        encoding="utf-8",
    )
    services = core.dispatcher.services
    rows = read_file(path, services.areas)
    async with services.sessions() as session, session.begin():
        await areas.upsert_neighbourhoods(session, rows)
    services.areas = await load_areas(services.sessions, core.settings.provinces)


def citizen(server: FakeTelegramServer, user_id: int) -> TelegramUser:
    """A citizen in a private chat with the bot."""
    return TelegramUser(server, TOKEN, user_id)


async def subscribe(user: TelegramUser, name: str) -> None:
    """Subscribe to the one area a name finds, every topic."""
    await user.send("/subscribe")
    await user.send(name)
    await user.press("💾 Lưu")


async def rows(core: Core) -> list[Subscription]:
    """Every subscription row."""
    async with core.dispatcher.services.sessions() as session:
        return list(await session.scalars(select(Subscription).order_by(Subscription.id)))


def joined(replies: list[CallRecord]) -> str:
    """The texts of some replies."""
    return "\n".join(TelegramUser.texts(replies))


async def test_subscribe_by_search_with_topics(bot: Core, server: FakeTelegramServer) -> None:
    user = citizen(server, 911000001)
    await user.send("/subscribe")
    await user.send("ben thanh")
    assert "Cảnh báo cho Phường Bến Thành · Hồ Chí Minh" in (user.last_text() or "")
    await user.press("⬜ Lừa đảo")
    await user.press("⬜ Ma túy")
    replies = await user.press("💾 Lưu")
    assert "Đã đăng ký: Phường Bến Thành · Hồ Chí Minh — Lừa đảo, Ma túy" in joined(replies)
    [row] = await rows(bot)
    assert row.area_code == "W26743" and row.topics == ["scams", "drugs"] and row.active
    vault = bot.dispatcher.services.vault
    assert vault.decrypt(row.address_enc) == "telegram:911000001"
    assert "911000001" not in row.address_enc


async def test_a_ward_with_neighbourhoods_offers_them(
    bot: Core, server: FakeTelegramServer
) -> None:
    user = citizen(server, 911000002)
    await user.send("/subscribe")
    await user.send("Hoàn Kiếm")
    labels = user.keyboard_labels()
    assert "✅ Toàn bộ Phường Hoàn Kiếm" in labels
    assert any("Tổ dân phố 5" in label for label in labels)
    await user.press("✅ Toàn bộ Phường Hoàn Kiếm")
    await user.press("💾 Lưu")
    [row] = await rows(bot)
    assert row.area_code == "W00070" and row.topics == ["all"]


async def test_subscribe_by_location(bot: Core, server: FakeTelegramServer) -> None:
    user = citizen(server, 911000003)
    replies = await user.send("/subscribe")
    markups = [r["params"].get("reply_markup") or {} for r in replies]
    assert len(replies) == 1 and "inline_keyboard" in markups[0], "one message, inline buttons"
    replies = await user.press("📍 Gửi vị trí của tôi")
    markups = [r["params"].get("reply_markup") or {} for r in replies]
    assert any("keyboard" in m for m in markups), "the press opens a location keyboard"
    assert "📂 Xem danh sách" in user.keyboard_labels(), "browsing stays one tap away"
    replies = await user.send_location(21.0291, 105.8521)
    assert "Khu vực: Tổ dân phố 5 · Phường Hoàn Kiếm · Hà Nội" in joined(replies)
    await user.press("💾 Lưu")
    [row] = await rows(bot)
    assert row.area_code == "N00070-to-dan-pho-5"


async def test_location_far_away_is_refused(bot: Core, server: FakeTelegramServer) -> None:
    user = citizen(server, 911000004)
    await user.send("/subscribe")
    replies = await user.send_location(16.0544, 108.2022)  # Đà Nẵng, far from both provinces
    assert "km" in joined(replies) and "gần nhất" in joined(replies)
    assert await rows(bot) == []
    assert "📂 Xem danh sách" in user.keyboard_labels()


async def test_subscribe_by_browsing(bot: Core, server: FakeTelegramServer) -> None:
    user = citizen(server, 911000005)
    await user.send("/subscribe")
    await user.press("📂 Xem danh sách")
    assert {"Hà Nội", "Hồ Chí Minh"} <= set(user.keyboard_labels())
    await user.press("Hà Nội")
    assert "trang 1/" in (user.last_text() or "")
    await user.press("Trang sau ▶")
    assert "trang 2/" in (user.last_text() or "")
    await user.press("◀ Trang trước")
    await user.press("⬆ Lên trên")
    assert "Hồ Chí Minh" in user.keyboard_labels()
    await user.press("Hà Nội")
    first_ward = next(
        label for label in user.keyboard_labels() if label.startswith(("Phường", "Xã"))
    )
    await user.press(first_ward)
    await user.press("💾 Lưu")
    [row] = await rows(bot)
    area = bot.dispatcher.services.areas.get(row.area_code)
    assert area is not None and bot.dispatcher.services.areas.label(area) == first_ward


async def test_list_unsubscribe_stop_and_resubscribe(bot: Core, server: FakeTelegramServer) -> None:
    user = citizen(server, 911000006)
    for name in ("ben thanh", "sai gon"):
        await subscribe(user, name)
    await user.send("/mysubscriptions")
    listing = user.last_text() or ""
    assert "Phường Bến Thành" in listing and "Phường Sài Gòn" in listing
    replies = await user.press("❌ Phường Bến Thành")
    assert "Đã hủy đăng ký" in joined(replies)
    assert [r.area_code for r in await rows(bot)] == ["W26740"]
    replies = await user.send("HỦY")
    assert "đã xóa 1 đăng ký" in joined(replies)
    assert await rows(bot) == []
    await subscribe(user, "sai gon")
    replies = await user.send("/stop")
    assert "đã xóa 1 đăng ký" in joined(replies)
    await user.send("/unsubscribe")
    assert "chưa đăng ký" in (user.last_text() or "")


async def test_offer_after_a_tip(bot: Core, server: FakeTelegramServer) -> None:
    user = citizen(server, 911000007)
    await walk_tip_vi(user)
    assert "cảnh báo an ninh cho Phường Bến Thành" in (user.last_text() or "")
    replies = await user.press("🔔 Có, gửi cảnh báo cho tôi")
    assert "Đã đăng ký: Phường Bến Thành" in joined(replies)
    [row] = await rows(bot)
    assert row.area_code == "W26743" and row.topics == ["all"]


async def test_forged_and_stale_buttons_change_nothing(
    bot: Core, server: FakeTelegramServer
) -> None:
    user = citizen(server, 911000008)
    await user.send("/subscribe")
    await user.send("ben thanh")
    replies = await user.press_data("forged.9")
    answers = [r for r in replies if r["method"] == "answerCallbackQuery"]
    assert answers and answers[0]["params"].get("text")
    await user.press("💾 Lưu")
    stale = server.bot_messages(user.chat_id)[-1]
    replies = await user.press_data("W00070", message=stale)  # an area code as raw data
    assert [r.area_code for r in await rows(bot)] == ["W26743"]
    assert any(r["method"] == "answerCallbackQuery" for r in replies)


async def test_blocked_chat_is_paused_then_resumed(bot: Core, server: FakeTelegramServer) -> None:
    user = citizen(server, 911000009)
    await subscribe(user, "sai gon")
    server.blocked_chats.add(user.chat_id)
    await user.send("/help")
    [row] = await rows(bot)
    assert not row.active
    server.blocked_chats.discard(user.chat_id)
    await user.send("/mysubscriptions")
    [row] = await rows(bot)
    assert row.active


async def test_admins_see_subscriber_counts(bot: Core, server: FakeTelegramServer) -> None:
    resident = citizen(server, 911000010)
    await resident.send("/subscribe")
    await resident.send("ben thanh")
    await resident.press("⬜ Lừa đảo")
    await resident.press("💾 Lưu")
    await resident.send("/areas")
    unknown = resident.last_text() or ""
    await resident.send("/no-such-command")
    assert unknown == resident.last_text(), "a citizen cannot tell a staff command exists"
    admin = citizen(server, ADMIN_ID)
    replies = await admin.send("/areas")
    text = joined(replies)
    assert "Phường Bến Thành · Hồ Chí Minh: 1" in text and "Lừa đảo 1" in text


async def test_invite_link_and_join_over_telegram(bot: Core, server: FakeTelegramServer) -> None:
    admin = citizen(server, ADMIN_ID)  # an admin by TIPLINE_ADMIN_TELEGRAM_IDS
    await admin.send("/invite Officer Minh")
    await admin.press("cán bộ")
    await admin.send("ben thanh")
    if "Phường Bến Thành" not in (admin.last_text() or "").split("Đã chọn:")[-1]:
        await admin.press("Phường Bến Thành")
    replies = await admin.press("Xong: tạo mã")
    text = joined(replies)
    assert "Phường Bến Thành" in text, "the officer's area is in the code's message"
    link = re.search(r"https://t\.me/tipline_test_bot\?start=(join_[0-9A-Z]{10})", text)
    assert link is not None, text
    invitee = citizen(server, 911000020)
    replies = await invitee.send(f"/start {link.group(1)}")  # what opening the link sends
    assert "Officer Minh" in joined(replies) and "cán bộ" in joined(replies)
    replies = await admin.send("/staff")
    assert "Officer Minh — cán bộ" in joined(replies)
    again = citizen(server, 911000021)
    replies = await again.send(f"/start {link.group(1)}")
    assert "không dùng được" in joined(replies), "the link works once"
    async with bot.dispatcher.services.sessions() as session:
        stored = " ".join(
            f"{m.address_hash} {m.label} {m.channel}"
            for m in await session.scalars(select(StaffMember))
        )
    assert "911000020" not in stored, "staff rows hold no platform id"
