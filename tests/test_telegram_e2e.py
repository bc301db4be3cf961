"""End to end: the real python-telegram-bot Application, polling a fake Bot API over HTTP."""

from __future__ import annotations

import asyncio
import io
import os
import re
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from PIL import Image
from sqlalchemy import select

from bot.app import Core, build_core, start_web
from bot.channels.telegram import TelegramChannel
from storage.models import Chat, Tip
from storage.repositories import tips
from tests.conftest import make_settings
from tests.fake_telegram import FakeTelegramServer
from tests.telegram_user import TelegramUser

TOKEN = "777111:AAEtipline-test-token-0123456789abcdefg"
CODE_RE = re.compile(r"\b[2-9A-HJKMNP-Z]{3}-[2-9A-HJKMNP-Z]{4}\b")


@pytest.fixture
async def server() -> AsyncIterator[FakeTelegramServer]:
    """A fake Bot API server on loopback."""
    async with FakeTelegramServer() as fake:
        yield fake


@asynccontextmanager
async def running_bot(
    tmp_path: Path, server: FakeTelegramServer, **overrides: Any
) -> AsyncIterator[tuple[Core, TelegramChannel]]:
    """The core and the Telegram channel, polling the fake server."""
    values: dict[str, Any] = {
        "telegram_token": TOKEN,
        "telegram_api_url": server.base_url,
        "telegram_file_url": server.base_file_url,
        "flood_messages": 1000,
    }
    values.update(overrides)
    settings = make_settings(tmp_path, **values)
    core = await build_core(settings, migrate_in_child=False)
    channel = TelegramChannel(settings, core.dispatcher, core.catalog)
    await channel.start()
    try:
        yield core, channel
    finally:
        await channel.stop()
        await core.close()


@pytest.fixture
async def bot(tmp_path: Path, server: FakeTelegramServer) -> AsyncIterator[Core]:
    """A running bot with default limits (but no flood limit in the way)."""
    async with running_bot(tmp_path, server) as (core, _channel):
        yield core


def citizen(server: FakeTelegramServer, user_id: int = 912345678, **kw: Any) -> TelegramUser:
    """A citizen in a private chat with the bot."""
    return TelegramUser(server, TOKEN, user_id, **kw)


def jpeg_with_gps() -> bytes:
    """A JPEG carrying camera and GPS metadata."""
    exif = Image.Exif()
    exif[0x010F] = "TipsterPhone"
    exif[0x8825] = {1: "N", 2: (10.0, 46.0, 37.0)}
    out = io.BytesIO()
    Image.new("RGB", (32, 24), "green").save(out, format="JPEG", exif=exif)
    return out.getvalue()


async def walk_tip_vi(user: TelegramUser, photo: bytes | None = None) -> str:
    """The whole tip flow in Vietnamese; returns the tip code."""
    await user.send("/start")
    assert "113" in (user.last_text() or "")
    await user.press("🚨 Gửi tin báo")
    assert "Bước 1/7" in (user.last_text() or "")
    await user.press("Ma túy")
    await user.send("Bến Thành")
    assert "Bước 3/7" in (user.last_text() or "")
    await user.send("Quán nước đầu hẻm 45 Nguyễn Trãi")
    assert "Bước 4/7" in (user.last_text() or "")
    await user.send("Có nhóm thanh niên bán ma túy vào buổi tối, khoảng 21 giờ.")
    if photo is not None:
        await user.send_photo(data=photo)
        assert "Đã nhận 1 tệp" in (user.last_text() or "")
        await user.press("✅ Xong")
    else:
        await user.press("Bỏ qua ➡")
    await user.press("Lúc trước, trong hôm nay")
    await user.press("🕶 Giữ ẩn danh")
    assert "Vui lòng kiểm tra" in (user.last_text() or "")
    replies = await user.press("✅ Gửi tin báo")
    text = "\n".join(TelegramUser.texts(replies))
    match = CODE_RE.search(text)
    assert match, text
    assert "PIN" in text
    return match.group(0)


async def test_whole_tip_in_vietnamese(bot: Core, server: FakeTelegramServer) -> None:
    user = citizen(server)
    code = await walk_tip_vi(user)
    async with bot.dispatcher.services.sessions() as session:
        tip = await tips.find_by_code(session, code)
    assert tip is not None and tip.category == "drugs" and tip.occurred == "today"
    await user.send("/mytips")
    assert code in "\n".join(TelegramUser.texts(user.history()[-3:]))


async def test_whole_tip_in_english(bot: Core, server: FakeTelegramServer) -> None:
    user = citizen(server, 923456789, language_code="en")
    await user.send("/start")
    assert "emergency" in (user.last_text() or "")
    await user.press("🚨 Send a tip")
    await user.press("Fraud and online scams")
    await user.send("hoan kiem")
    await user.send_location(21.0285, 105.8542)
    assert "Step 4 of 7" in (user.last_text() or "")
    await user.send("A caller pretending to be a police officer asked me to transfer money.")
    await user.press("Skip ➡")
    await user.press("Before today")
    await user.press("☎ Leave contact details")
    await user.send("Evenings after 6 pm, ask for Lan")
    assert "Evenings after 6 pm" in (user.last_text() or "")
    replies = await user.press("✅ Send tip")
    text = "\n".join(TelegramUser.texts(replies))
    assert "Tip code:" in text and CODE_RE.search(text)


async def test_command_menu_in_both_languages(bot: Core, server: FakeTelegramServer) -> None:
    commands = server.commands
    vi = commands[("all_private_chats", "")]
    en = commands[("all_private_chats", "en")]
    assert [c["command"] for c in vi] == [c["command"] for c in en]
    assert any("tin báo" in c["description"] for c in vi)
    assert any("tip" in c["description"] for c in en)


async def test_bad_input_is_answered_and_changes_nothing(
    bot: Core, server: FakeTelegramServer
) -> None:
    user = citizen(server, 934567890)
    await user.send("/tip")
    await user.send("cái gì đây")  # text where a button is expected
    assert "nút" in " ".join(TelegramUser.texts(user.history()[-2:]))
    old_keyboard_message = server.bot_messages(user.chat_id)[-1]
    await user.press("Trộm cắp, cướp giật")
    await user.send("Bến Thành")
    replies = await user.send_sticker()  # sticker where text is expected
    assert "không dùng được" in "\n".join(TelegramUser.texts(replies))
    assert "Bước 3/7" in (user.last_text() or "")
    replies = await user.send_photo(data=jpeg_with_gps())  # photo where text is expected
    assert "không nhận tệp" in "\n".join(TelegramUser.texts(replies))
    await user.send("Chợ Bến Thành, cổng số 3")
    replies = await user.send("a" * 4001)  # over-long description
    joined = "\n".join(TelegramUser.texts(replies))
    assert "4000" in joined and "4001" in joined
    replies = await user.press_data("forged-token.0")  # forged button
    answers = [r for r in replies if r["method"] == "answerCallbackQuery"]
    assert answers and answers[0]["params"].get("text")
    assert "Bước 4/7" in (user.last_text() or "")
    replies = await user.press_data(  # a stale button from an earlier message
        old_keyboard_message["reply_markup"]["inline_keyboard"][0][0]["callback_data"],
        message=old_keyboard_message,
    )
    assert "Bước 4/7" in (user.last_text() or "")
    await user.edit_last("sửa tin nhắn cũ")
    assert "Bước 4/7" in (user.last_text() or "")
    async with bot.dispatcher.services.sessions() as session:
        chat = await session.scalar(select(Chat).where(Chat.channel == "telegram"))
        assert await session.scalar(select(Tip.id)) is None
    assert chat is not None and chat.step == "description"
    assert chat.data["place_text"] == "Chợ Bến Thành, cổng số 3"
    assert "description" not in chat.data and chat.data["attachments"] == []


@pytest.mark.parametrize("steps_before_cancel", range(9))
async def test_cancel_at_each_step(
    bot: Core, server: FakeTelegramServer, steps_before_cancel: int
) -> None:
    user = citizen(server, 945678901 + steps_before_cancel)
    script: list[Callable[[], Awaitable[object]]] = [
        lambda: user.press("Ma túy"),
        lambda: user.send("Sài Gòn"),
        lambda: user.send("Ngõ 5 phố Huế"),
        lambda: user.send("Mua bán chất cấm ở quán cà phê"),
        lambda: user.press("Bỏ qua ➡"),
        lambda: user.press("Đang xảy ra"),
        lambda: user.press("☎ Để lại thông tin liên hệ"),
        lambda: user.send("Gọi 0909 sau 8 giờ tối"),
    ]
    await user.send("/tip")
    for step in script[:steps_before_cancel]:
        await step()
    replies = await user.send("/cancel")
    assert "Đã hủy" in "\n".join(TelegramUser.texts(replies))
    async with bot.dispatcher.services.sessions() as session:
        assert await session.scalar(select(Tip.id)) is None
        chat = await session.scalar(select(Chat).where(Chat.channel == "telegram"))
    assert chat is not None and chat.flow is None and chat.data == {}


async def test_flooding_is_answered_once(tmp_path: Path, server: FakeTelegramServer) -> None:
    async with running_bot(tmp_path, server, flood_messages=5, flood_window_seconds=60):
        user = citizen(server, 956789012)
        for _ in range(5):
            await user.send("/help")
        warned = await user.send("/help")
        assert "quá nhanh" in "\n".join(TelegramUser.texts(warned))
        assert await user.send("/help", expect_reply=False) == []


async def test_restart_mid_flow_resumes(tmp_path: Path, server: FakeTelegramServer) -> None:
    user = citizen(server, 967890123)
    async with running_bot(tmp_path, server):
        await user.send("/tip")
        await user.press("Cờ bạc và tệ nạn xã hội khác")
        await user.send("Sài Gòn")
        await user.send("Sân sau nhà văn hóa khu phố 4")
    async with running_bot(tmp_path, server):
        await user.send("Tụ tập đánh bạc ăn tiền mỗi tối thứ bảy")
        assert "Bước 5/7" in (user.last_text() or "")
        await user.press("Bỏ qua ➡")
        await user.press("Không rõ")
        await user.press("🕶 Giữ ẩn danh")
        replies = await user.press("✅ Gửi tin báo")
        assert CODE_RE.search("\n".join(TelegramUser.texts(replies)))


async def test_photo_is_downloaded_and_stripped(
    tmp_path: Path, bot: Core, server: FakeTelegramServer
) -> None:
    user = citizen(server, 978901234)
    code = await walk_tip_vi(user, photo=jpeg_with_gps())
    async with bot.dispatcher.services.sessions() as session:
        tip = await tips.find_by_code(session, code)
    assert tip is not None and len(tip.attachments) == 1
    path = bot.dispatcher.services.files.path(tip.attachments[0].file_ref)
    assert path is not None and path.exists()
    assert b"TipsterPhone" not in path.read_bytes()
    assert server.calls_of("getFile")


async def test_rate_limited_reply_is_retried(bot: Core, server: FakeTelegramServer) -> None:
    user = citizen(server, 989012345)
    server.fail_next("sendMessage", status=429, retry_after=1)
    since = len(server.calls)
    await user.send("/help")
    refused = await server.wait_for_call("sendMessage", since=since)
    assert not refused["ok"]
    delivered = await server.wait_for_call("sendMessage", since=server.calls.index(refused) + 1)
    assert delivered["ok"] and "/tip" in delivered["params"]["text"]


async def test_webhook_checks_the_secret(tmp_path: Path, server: FakeTelegramServer) -> None:
    secret = "webhook-secret-0123456789"
    overrides = {
        "telegram_webhook_url": "https://example.invalid/telegram/webhook",
        "telegram_webhook_secret": secret,
    }
    async with running_bot(tmp_path, server, **overrides) as (core, channel):
        runner = await start_web(core, channel)
        try:
            host, port = runner.addresses[0][:2]
            url = f"http://{host}:{port}/telegram/webhook"
            user = citizen(server, 990123456)
            update = server.message_update(user.user, user.chat_id, "/start")
            update["update_id"] = 1
            async with aiohttp.ClientSession() as http:
                for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": "wrong"}):
                    async with http.post(url, json=update, headers=headers) as response:
                        assert response.status == 403
                assert server.sent_to(user.chat_id) == []
                headers = {"X-Telegram-Bot-Api-Secret-Token": secret}
                async with http.post(url, json=update, headers=headers) as response:
                    assert response.status == 200
                await server.wait_for_chat_activity(user.chat_id, 0)
            assert "113" in (user.last_text() or "")
            assert server.calls_of("setWebhook")[0]["params"]["secret_token"] == secret
        finally:
            await runner.cleanup()


async def test_tipline_run_serves_telegram_and_stops_on_sigterm(
    tmp_path: Path, server: FakeTelegramServer
) -> None:
    env = {
        **os.environ,
        "TIPLINE_DATA_DIR": str(tmp_path),
        "TIPLINE_TELEGRAM_TOKEN": TOKEN,
        "TIPLINE_TELEGRAM_API_URL": server.base_url,
        "TIPLINE_WEB_PORT": "0",
    }
    env.pop("TIPLINE_SECRET_KEY", None)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        "run",
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        await server.wait_for_call("getUpdates", max_wait=30)
        user = citizen(server, 901234567)
        await user.send("/start")
        assert "113" in (user.last_text() or "")
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=15)
    assert process.returncode == 0, stderr.decode()
    log = stderr.decode()
    assert "generated a key" in log and (tmp_path / "secret.key").exists()
    assert "901234567" not in log


async def test_long_review_is_split_not_cut(bot: Core, server: FakeTelegramServer) -> None:
    user = citizen(server, 902345678)
    description = ("Mô tả chi tiết sự việc. " * 200)[:4000]
    await user.send("/tip")
    await user.press("Khác")
    await user.send("Sài Gòn")
    await user.send("Bãi đất trống cạnh trường tiểu học")
    await user.send(description)
    await user.press("Bỏ qua ➡")
    await user.press("Không rõ")
    replies = await user.press("🕶 Giữ ẩn danh")
    sent = [r for r in replies if r["method"] in ("sendMessage", "editMessageText")]
    assert len(sent) >= 2
    assert all(len(r["params"]["text"]) <= 4096 for r in sent)
    joined = " ".join(r["params"]["text"] for r in sent)
    assert " ".join(description.split()) in " ".join(joined.split())
    assert "✅ Gửi tin báo" in user.keyboard_labels()
    replies = await user.press("✅ Gửi tin báo")
    assert CODE_RE.search("\n".join(TelegramUser.texts(replies)))


async def test_live_location_moves_are_ignored_and_captions_count(
    bot: Core, server: FakeTelegramServer
) -> None:
    user = citizen(server, 903456789)
    await user.send("/tip")
    await user.press("Ma túy")
    await user.send("Bến Thành")
    await user.press("Bỏ qua ➡")
    moved = server.message_update(
        user.user, user.chat_id, location={"latitude": 10.77, "longitude": 106.70}
    )
    moved["edited_message"] = {**moved.pop("message"), "edit_date": 1}
    assert await user.send_update(moved, expect_reply=False) == []
    replies = await user.send_photo(
        data=jpeg_with_gps(), caption="Hai người đàn ông giao hàng cấm ở cổng chợ"
    )
    assert "Đã nhận 1 tệp" in "\n".join(TelegramUser.texts(replies))
    async with bot.dispatcher.services.sessions() as session:
        chat = await session.scalar(select(Chat).where(Chat.channel == "telegram"))
    assert chat is not None and chat.step == "attachments"
    assert chat.data["description"] == "Hai người đàn ông giao hàng cấm ở cổng chợ"
    assert len(chat.data["attachments"]) == 1
