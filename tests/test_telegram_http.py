"""The aiohttp transport for python-telegram-bot, against the fake Bot API over real HTTP."""

from __future__ import annotations

import socket

import pytest
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import Forbidden, NetworkError, TimedOut

from bot.channels.telegram_http import AiohttpRequest
from tests.fake_telegram import FakeTelegramServer

TOKEN = "123456:AAE-http-transport-test-token-0123456789"
CHAT = 42_000_001


def _bot(base_url: str, file_url: str = "", **request: float) -> Bot:
    transport = AiohttpRequest(**request)  # type: ignore[arg-type]
    return Bot(TOKEN, base_url=base_url, base_file_url=file_url or base_url, request=transport)


async def test_calls_uploads_and_downloads() -> None:
    async with FakeTelegramServer() as server:
        server.message_update({"id": CHAT, "first_name": "A"}, CHAT, "hi")  # the chat exists
        async with _bot(server.base_url, server.base_file_url) as bot:
            assert (await bot.get_me()).username
            markup = InlineKeyboardMarkup([[InlineKeyboardButton("Có", callback_data="t.0")]])
            sent = await bot.send_message(CHAT, "Xin chào — ẩn danh", reply_markup=markup)
            assert sent.text == "Xin chào — ẩn danh"
            params = server.sent_to(CHAT)[-1]["params"]
            assert params["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "t.0"
            photo = await bot.send_photo(CHAT, photo=b"\x89PNG-bytes", caption="ảnh")
            file_id = photo.photo[-1].file_id
            assert server.file_bytes(file_id) == b"\x89PNG-bytes", "multipart upload"
            fetched = await (await bot.get_file(file_id)).download_as_bytearray()
            assert bytes(fetched) == b"\x89PNG-bytes", "GET download"


async def test_errors_become_ptb_errors_without_the_token() -> None:
    async with FakeTelegramServer() as server:
        server.message_update({"id": CHAT, "first_name": "A"}, CHAT, "hi")
        async with _bot(server.base_url, read_timeout=0.2) as bot:
            server.fail_next("sendMessage", status=403, description="Forbidden: bot was blocked")
            with pytest.raises(Forbidden):
                await bot.send_message(CHAT, "x")
            server.fail_next("sendMessage", delay=1.0)
            with pytest.raises(TimedOut):
                await bot.send_message(CHAT, "x")
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    transport = AiohttpRequest()
    await transport.initialize()
    with pytest.raises(NetworkError) as failure:
        await transport.post(f"http://127.0.0.1:{port}/bot{TOKEN}/getMe")
    assert "AAE" not in str(failure.value), "the message never carries the URL and its token"
    await transport.shutdown()
