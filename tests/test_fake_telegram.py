"""The fake Bot API server and TelegramUser driver, exercised by the real python-telegram-bot."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeAllPrivateChats,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputMediaPhoto,
    Message,
    Update,
)
from telegram.error import (
    BadRequest,
    EndPointNotFound,
    Forbidden,
    NetworkError,
    RetryAfter,
    TimedOut,
)
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from tests.fake_telegram import FakeTelegramServer, FloodLimits, FloodRefusals, parse_entities
from tests.telegram_user import TelegramUser

TOKEN = "123:ABC"
App = Application[Any, Any, Any, Any, Any, Any]
KEYBOARD = InlineKeyboardMarkup(
    [
        [
            InlineKeyboardButton("Yes please", callback_data="yes"),
            InlineKeyboardButton("No", callback_data="no"),
        ]
    ]
)


async def echo(update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
    """Echo text back with a two-button keyboard."""
    assert update.message is not None
    await update.message.reply_text(f"echo: {update.message.text}", reply_markup=KEYBOARD)


async def start(update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
    """Greet on /start."""
    assert update.message is not None
    await update.message.reply_text("welcome")


async def photo(update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
    """Download the photo and report its size."""
    assert update.message is not None
    data = await (await update.message.photo[-1].get_file()).download_as_bytearray()
    await update.message.reply_text(f"photo {len(data)} bytes")


async def button(update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
    """Answer the press and append the choice to the message (dropping the keyboard)."""
    query = update.callback_query
    assert query is not None and isinstance(query.message, Message)
    await query.answer(text=f"chose {query.data}")
    await query.edit_message_text(f"{query.message.text} -> {query.data}")


@pytest_asyncio.fixture
async def server() -> AsyncIterator[FakeTelegramServer]:
    """A running fake server."""
    async with FakeTelegramServer() as fake:
        yield fake


@pytest_asyncio.fixture
async def app(server: FakeTelegramServer) -> AsyncIterator[App]:
    """A real PTB Application polling the fake server."""
    application: App = (
        ApplicationBuilder()
        .token(TOKEN)
        .base_url(server.base_url)
        .base_file_url(server.base_file_url)
        .build()
    )
    application.add_handler(CommandHandler("start", start))
    application.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, echo))
    application.add_handler(MessageHandler(filters.PHOTO, photo))
    application.add_handler(CallbackQueryHandler(button))
    await application.initialize()
    await application.start()
    assert application.updater is not None
    await application.updater.start_polling(poll_interval=0, timeout=1)
    yield application
    await application.updater.stop()
    await application.stop()
    await application.shutdown()


@pytest.mark.asyncio
async def test_echo_roundtrip(server: FakeTelegramServer, app: App) -> None:
    user = TelegramUser(server, TOKEN, 1001, username="alice", language_code="en")
    first = await user.send("hello")
    assert [r["method"] for r in first] == ["sendMessage"]
    assert user.texts(first) == ["echo: hello"]
    assert first[0]["params"]["chat_id"] == 1001
    assert first[0]["params"]["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "yes"
    assert user.keyboard_labels() == ["Yes please", "No"]
    second = await user.send("again")
    assert second[0]["result"]["message_id"] > first[0]["result"]["message_id"]
    assert user.last_text() == "echo: again"
    assert app.bot.username == "tipline_test_bot"
    assert server.calls_of("getMe") and server.calls_of("getUpdates")


@pytest.mark.asyncio
async def test_command_has_bot_command_entity(server: FakeTelegramServer, app: App) -> None:
    user = TelegramUser(server, TOKEN, 1002)
    assert user.texts(await user.send("/start")) == ["welcome"]


@pytest.mark.asyncio
async def test_press_answers_and_edits(server: FakeTelegramServer, app: App) -> None:
    user = TelegramUser(server, TOKEN, 1003)
    await user.send("pick")
    records = await user.press("Yes")
    assert [r["method"] for r in records] == ["answerCallbackQuery", "editMessageText"]
    query_id = records[0]["params"]["callback_query_id"]
    assert server.answered_callbacks[query_id]["text"] == "chose yes"
    assert user.last_text() == "echo: pick -> yes"
    assert user.keyboard_labels() == []
    with pytest.raises(AssertionError, match="no inline button 'No'"):
        await user.press("No")
    forged = await user.press_data("forged")
    assert user.texts(forged) == ["echo: pick -> yes -> forged"]


@pytest.mark.asyncio
async def test_get_file_and_download(server: FakeTelegramServer, app: App) -> None:
    server.register_file("doc-1", b"hello bytes", file_name="notes.txt")
    telegram_file = await app.bot.get_file("doc-1")
    assert telegram_file.file_size == 11
    assert bytes(await telegram_file.download_as_bytearray()) == b"hello bytes"
    user = TelegramUser(server, TOKEN, 1004)
    assert user.texts(await user.send_photo(data=b"\x89PNG-fake", caption="look")) == [
        "photo 9 bytes"
    ]
    with pytest.raises(BadRequest, match=r"(?i)invalid file_id"):
        await app.bot.get_file("missing")


@pytest.mark.asyncio
async def test_multipart_upload(server: FakeTelegramServer, app: App) -> None:
    message = await app.bot.send_photo(
        1005, photo=b"binary-photo", caption="<b>hi</b> &amp; bye", parse_mode="HTML"
    )
    record = server.sent_to(1005)[-1]
    upload = record["params"]["photo"]
    assert record["method"] == "sendPhoto" and upload["upload"] is True
    assert server.file_bytes(upload["file_id"]) == b"binary-photo"
    assert message.photo[-1].file_id == upload["file_id"]
    assert message.caption == "hi & bye"
    assert message.caption_entities[0].type == "bold"


@pytest.mark.asyncio
async def test_set_my_commands_recorded(server: FakeTelegramServer, app: App) -> None:
    scope = BotCommandScopeAllPrivateChats()
    commands = [BotCommand("start", "Start"), BotCommand("tip", "Send a tip")]
    await app.bot.set_my_commands(commands, scope=scope, language_code="en")
    await app.bot.set_my_commands([BotCommand("start", "Bắt đầu")])
    assert server.commands[("all_private_chats", "en")] == [
        {"command": "start", "description": "Start"},
        {"command": "tip", "description": "Send a tip"},
    ]
    assert server.commands[("default", "")][0]["description"] == "Bắt đầu"
    got = await app.bot.get_my_commands(scope=scope, language_code="en")
    assert [c.command for c in got] == ["start", "tip"]
    await app.bot.delete_my_commands(scope=scope, language_code="en")
    assert ("all_private_chats", "en") not in server.commands
    with pytest.raises(BadRequest, match=r"(?i)bot_command_invalid"):
        await app.bot.set_my_commands([BotCommand("Bad-Cmd", "x")])


@pytest.mark.asyncio
@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
async def test_retry_after(server: FakeTelegramServer, app: App) -> None:
    server.fail_next("sendMessage", status=429, retry_after=3)
    with pytest.raises(RetryAfter, match=r"Retry in (3|0:00:03)"):
        await app.bot.send_message(1006, "x")
    await app.bot.send_message(1006, "y")
    failed, delivered = server.sent_to(1006, include_failed=True)
    assert failed["error"] == {
        "ok": False,
        "error_code": 429,
        "description": "Too Many Requests: retry after 3",
        "parameters": {"retry_after": 3},
    }
    assert delivered["ok"] and [r["params"]["text"] for r in server.sent_to(1006)] == ["y"]


@pytest.mark.asyncio
async def test_forbidden_and_server_errors(server: FakeTelegramServer, app: App) -> None:
    server.fail_next("sendMessage", status=403, chat_id=1007)
    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        await app.bot.send_message(1007, "x")
    server.fail_next("*", status=502)
    with pytest.raises(NetworkError, match="Bad Gateway"):
        await app.bot.send_message(1007, "x")
    server.blocked_chats.add(1008)
    user = TelegramUser(server, TOKEN, 1008)
    assert await user.send("anyone there?") == []
    assert server.sent_to(1008, include_failed=True)[0]["error"] == {
        "ok": False,
        "error_code": 403,
        "description": "Forbidden: bot was blocked by the user",
    }


@pytest.mark.asyncio
async def test_unknown_method_and_strictness(server: FakeTelegramServer, app: App) -> None:
    with pytest.raises(EndPointNotFound):
        await app.bot.do_api_request("frobnicate", api_kwargs={"chat_id": 1})
    assert server.calls_of("frobnicate")[0]["error"] == {
        "ok": False,
        "error_code": 404,
        "description": "Not Found: method not found",
    }
    with pytest.raises(BadRequest, match=r"(?i)can't parse entities"):
        await app.bot.send_message(1009, "<b>bold", parse_mode="HTML")
    with pytest.raises(BadRequest, match=r"(?i)character '\.' is reserved"):
        await app.bot.send_message(1009, "v1.2", parse_mode="MarkdownV2")
    with pytest.raises(BadRequest, match=r"(?i)message is too long"):
        await app.bot.send_message(1009, "x" * 4097)
    too_long = InlineKeyboardMarkup([[InlineKeyboardButton("x", callback_data="d" * 65)]])
    with pytest.raises(BadRequest, match=r"(?i)button_data_invalid"):
        await app.bot.send_message(1009, "x", reply_markup=too_long)
    message = await app.bot.send_message(1009, "same", reply_markup=KEYBOARD)
    with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
        await message.edit_text("same", reply_markup=KEYBOARD)
    assert parse_entities("*a* \\. _b_", "MarkdownV2")[0] == "a . b"


@pytest.mark.asyncio
async def test_slow_response_times_out(server: FakeTelegramServer, app: App) -> None:
    server.fail_next("sendMessage", delay=0.4)
    with pytest.raises(TimedOut):
        await app.bot.send_message(1010, "slow", read_timeout=0.1)
    record = await server.wait_for_call("sendMessage", max_wait=2)
    assert record["ok"] and record["params"]["text"] == "slow"


@pytest.mark.asyncio
async def test_raw_request_encodings(server: FakeTelegramServer) -> None:
    url = f"{server.base_url}9:RAW/sendMessage"
    markup = {"inline_keyboard": [[{"text": "A", "callback_data": "a"}]]}
    async with aiohttp.ClientSession() as session:
        form = {
            "chat_id": "77",
            "text": "[1, 2]",
            "reply_markup": json.dumps(markup),
            "disable_notification": "true",
        }
        async with session.post(url, data=form) as response:
            assert (await response.json())["result"]["reply_markup"] == markup
        async with session.post(url, json={"chat_id": 77, "text": "json", "reply_markup": markup}):
            pass
        multipart = aiohttp.FormData()
        multipart.add_field("chat_id", "77")
        multipart.add_field(
            "document", b"pdf-bytes", filename="a.pdf", content_type="application/pdf"
        )
        async with session.post(f"{server.base_url}9:RAW/sendDocument", data=multipart) as response:
            document = (await response.json())["result"]["document"]
    form_params, json_params, upload_params = (r["params"] for r in server.sent_to(77))
    assert form_params == {
        "chat_id": 77,
        "text": "[1, 2]",
        "reply_markup": markup,
        "disable_notification": True,
    }
    assert json_params["reply_markup"] == markup and json_params["chat_id"] == 77
    assert upload_params["document"]["file_name"] == "a.pdf"
    assert server.file_bytes(document["file_id"]) == b"pdf-bytes"


@pytest.mark.asyncio
async def test_long_poll_offsets(server: FakeTelegramServer) -> None:
    token = "42:POLL"
    url = f"{server.base_url}{token}/getUpdates"
    user = {"id": 5, "first_name": "Eve"}
    async with aiohttp.ClientSession() as session:

        async def poll(**params: str) -> list[dict[str, Any]]:
            async with session.post(url, data=params) as response:
                result: list[dict[str, Any]] = (await response.json())["result"]
                return result

        waiting = asyncio.create_task(poll(timeout="2"))
        await asyncio.sleep(0.05)
        started = time.monotonic()
        update_id = server.inject_update(token, server.message_update(user, 5, "hi"))
        assert [u["update_id"] for u in await waiting] == [update_id]
        assert time.monotonic() - started < 0.5
        assert [u["update_id"] for u in await poll(offset="0")] == [update_id]
        assert await poll(offset=str(update_id + 1)) == []
        assert server.bot(token).updates == type(server.bot(token).updates)()
        started = time.monotonic()
        assert await poll(timeout="0.2") == []
        assert 0.15 < time.monotonic() - started < 1


@pytest.mark.asyncio
async def test_builders_are_valid_updates(server: FakeTelegramServer, app: App) -> None:
    user = {"id": 7, "first_name": "Kim", "language_code": "vi"}
    kinds: dict[str, Any] = {
        "sticker": True,
        "location": (10.5, 106.7),
        "document": "doc-7",
        "voice": "voice-7",
        "video": "video-7",
        "photo": "photo-7",
    }
    for kind, value in kinds.items():
        update = Update.de_json(
            {"update_id": 1, **server.message_update(user, 7, **{kind: value})}, app.bot
        )
        assert update.message is not None and getattr(update.message, kind)
    sent = await app.bot.send_message(7, "hi", reply_markup=KEYBOARD)
    stored = server.message(7, sent.message_id)
    assert stored is not None
    query = Update.de_json(
        {"update_id": 2, **server.callback_update(user, 7, stored, "yes")}, app.bot
    ).callback_query
    assert query is not None and query.data == "yes" and isinstance(query.message, Message)


@pytest.mark.asyncio
async def test_two_hundred_concurrent_users(server: FakeTelegramServer, app: App) -> None:
    users = [TelegramUser(server, TOKEN, 20_000 + i) for i in range(200)]
    results = await asyncio.gather(*(u.send(f"hi {i}") for i, u in enumerate(users)))
    assert [TelegramUser.texts(r) for r in results] == [[f"echo: hi {i}"] for i in range(200)]


# --- flood limits ------------------------------------------------------------------------

IGNORE_PTB_DEPRECATION = pytest.mark.filterwarnings(
    "ignore::telegram.warnings.PTBDeprecationWarning"
)
RETRY_IN_1 = r"Retry in (1 seconds|0:00:01)"


class SteppedClock:
    """An injectable monotonic clock that moves only when told to."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Step time forward without sleeping."""
        self.now += seconds


@pytest.fixture
def clock(server: FakeTelegramServer) -> SteppedClock:
    """A stepped clock installed as the server's flood-limit clock."""
    stepped = SteppedClock()
    server.clock = stepped
    return stepped


@pytest_asyncio.fixture
async def bot(server: FakeTelegramServer) -> AsyncIterator[Bot]:
    """A bare PTB Bot (no rate limiter, no polling) talking to the fake server."""
    async with Bot(TOKEN, base_url=server.base_url, base_file_url=server.base_file_url) as client:
        yield client


def too_many(retry_after: int) -> dict[str, Any]:
    """Telegram's 429 body."""
    return {
        "ok": False,
        "error_code": 429,
        "description": f"Too Many Requests: retry after {retry_after}",
        "parameters": {"retry_after": retry_after},
    }


async def raw_send(
    session: aiohttp.ClientSession, server: FakeTelegramServer, chat_id: int, token: str = TOKEN
) -> tuple[int, dict[str, Any]]:
    """POST sendMessage without PTB; return (HTTP status, JSON body)."""
    url = f"{server.base_url}{token}/sendMessage"
    async with session.post(url, json={"chat_id": chat_id, "text": "hi"}) as response:
        body: dict[str, Any] = await response.json()
        return response.status, body


def texts(server: FakeTelegramServer, chat_id: int) -> list[str]:
    """Texts of the messages the bot has in a chat."""
    return [str(message.get("text")) for message in server.bot_messages(chat_id)]


@pytest.mark.asyncio
async def test_flood_limits_off_by_default(server: FakeTelegramServer, bot: Bot) -> None:
    assert server.flood_limits is None
    for i in range(40):
        await bot.send_message(3001, f"quick {i}")
    for i in range(25):
        await bot.send_message(-1003001, f"group {i}")
    assert len(server.sent_to(3001)) == 40 and len(server.sent_to(-1003001)) == 25
    assert all(record["ok"] for record in server.calls)
    assert server.flood_refusals == FloodRefusals() and server.flood_refusals.total == 0


@pytest.mark.asyncio
@IGNORE_PTB_DEPRECATION
async def test_flood_private_chat_limit(
    server: FakeTelegramServer, bot: Bot, clock: SteppedClock
) -> None:
    assert server.enforce_limits() == FloodLimits(30, 1, 20) == server.flood_limits
    await bot.send_message(3101, "first")
    with pytest.raises(RetryAfter, match=RETRY_IN_1):
        await bot.send_message(3101, "second")
    refused = server.sent_to(3101, include_failed=True)[-1]
    assert refused["method"] == "sendMessage" and not refused["ok"]
    assert refused["error"] == too_many(1) and refused["result"] is None
    assert texts(server, 3101) == ["first"]
    await bot.send_message(3102, "another chat, same instant")
    clock.advance(0.5)
    with pytest.raises(RetryAfter, match=RETRY_IN_1):
        await bot.send_message(3101, "still too soon")
    clock.advance(0.5)
    await bot.send_message(3101, "a second after the first")
    assert texts(server, 3101) == ["first", "a second after the first"]
    assert server.flood_refusals == FloodRefusals(chat=2) and server.flood_refusals.total == 2


@pytest.mark.asyncio
async def test_flood_overall_limit(server: FakeTelegramServer, clock: SteppedClock) -> None:
    server.enforce_limits(overall_per_second=30)
    async with aiohttp.ClientSession() as session:
        sent = await asyncio.gather(*(raw_send(session, server, 3200 + i) for i in range(30)))
        assert [status for status, _ in sent] == [200] * 30
        assert await raw_send(session, server, 3299) == (429, too_many(1))
        assert server.bot_messages(3299) == [] and not server.calls[-1]["ok"]
        assert (await raw_send(session, server, 3299, token="456:OTHER"))[0] == 200
        clock.advance(1)
        assert (await raw_send(session, server, 3299))[0] == 200
    assert server.flood_refusals == FloodRefusals(overall=1)


@pytest.mark.asyncio
@IGNORE_PTB_DEPRECATION
async def test_flood_group_limit(server: FakeTelegramServer, bot: Bot, clock: SteppedClock) -> None:
    group = -1001234567890
    server.enforce_limits()
    for i in range(20):
        await bot.send_message(group, f"burst {i}")
    with pytest.raises(RetryAfter, match=r"Retry in (60 seconds|0:01:00)"):
        await bot.send_message(group, "21st")
    assert server.sent_to(group, include_failed=True)[-1]["error"] == too_many(60)
    clock.advance(59)
    with pytest.raises(RetryAfter, match=RETRY_IN_1):
        await bot.send_message(group, "a second early")
    clock.advance(1)
    await bot.send_message(group, "a minute later")
    assert len(server.bot_messages(group)) == 21
    assert server.flood_refusals == FloodRefusals(group=2)


@pytest.mark.asyncio
@IGNORE_PTB_DEPRECATION
async def test_flood_group_by_recorded_type(
    server: FakeTelegramServer, bot: Bot, clock: SteppedClock
) -> None:
    server.enforce_limits(per_group_per_minute=2)
    user = {"id": 5, "first_name": "Eve"}
    update = server.message_update(user, 3301, "hi")
    update["message"]["chat"] = {"id": 3301, "type": "group", "title": "Street watch"}
    server.inject_update(TOKEN, update)
    await bot.send_message(3301, "one")
    await bot.send_message(3301, "two")
    with pytest.raises(RetryAfter, match=r"Retry in (60 seconds|0:01:00)"):
        await bot.send_message(3301, "three")
    assert server.flood_refusals == FloodRefusals(group=1)


@pytest.mark.asyncio
@IGNORE_PTB_DEPRECATION
async def test_flood_counts_every_send_method(
    server: FakeTelegramServer, bot: Bot, clock: SteppedClock
) -> None:
    server.enforce_limits(overall_per_second=5)
    source = await bot.send_message(3401, "source")
    await bot.send_photo(3402, photo=b"png")
    await bot.copy_message(3403, 3401, source.message_id)
    await bot.forward_message(3404, 3401, source.message_id)
    await bot.send_media_group(3405, [InputMediaPhoto(b"a"), InputMediaPhoto(b"b")])
    with pytest.raises(RetryAfter, match=RETRY_IN_1):
        await bot.send_location(3406, latitude=10.8, longitude=106.7)
    assert server.calls[-1]["method"] == "sendLocation" and server.calls[-1]["error"] == too_many(1)
    assert server.flood_refusals == FloodRefusals(overall=1)


@pytest.mark.asyncio
@IGNORE_PTB_DEPRECATION
async def test_flood_ignores_non_send_methods(
    server: FakeTelegramServer, bot: Bot, clock: SteppedClock
) -> None:
    server.enforce_limits(overall_per_second=1)
    sent = await bot.send_message(3501, "v0", reply_markup=KEYBOARD)
    stored = server.message(3501, sent.message_id)
    assert stored is not None
    update = server.callback_update({"id": 3501, "first_name": "Lan"}, 3501, stored, "yes")
    server.inject_update(TOKEN, update)
    for i in range(1, 6):
        await bot.edit_message_text(f"v{i}", chat_id=3501, message_id=sent.message_id)
    assert await bot.answer_callback_query(update["callback_query"]["id"], text="ok")
    for _ in range(3):
        await bot.get_updates(timeout=0)
    await bot.send_chat_action(3501, "typing")
    await bot.set_my_commands([BotCommand("start", "Start")])
    await bot.get_me()
    assert all(record["ok"] for record in server.calls) and server.flood_refusals.total == 0
    with pytest.raises(RetryAfter, match=RETRY_IN_1):
        await bot.send_message(3502, "but sends are still limited")
    assert server.flood_refusals == FloodRefusals(overall=1)


@pytest.mark.asyncio
async def test_flood_limits_turned_off_and_via_constructor(
    server: FakeTelegramServer, clock: SteppedClock
) -> None:
    server.enforce_limits(per_chat_per_second=2)
    async with aiohttp.ClientSession() as session:
        statuses = [(await raw_send(session, server, 3601))[0] for _ in range(3)]
        assert statuses == [200, 200, 429]
        assert server.enforce_limits(None) is None and server.flood_limits is None
        assert {(await raw_send(session, server, 3601))[0] for _ in range(10)} == {200}
        assert server.flood_refusals == FloodRefusals(chat=1)
        limits = FloodLimits(overall_per_second=None, per_chat_per_second=1)
        async with FakeTelegramServer(flood_limits=limits, clock=lambda: 0.0) as fake:
            assert [(await raw_send(session, fake, 3602))[0] for _ in range(2)] == [200, 429]
            chats = await asyncio.gather(*(raw_send(session, fake, 3700 + i) for i in range(40)))
            assert {status for status, _ in chats} == {200}
            assert fake.flood_refusals == FloodRefusals(chat=1)
    with pytest.raises(ValueError, match="per_chat_per_second"):
        FloodLimits(per_chat_per_second=0)


@pytest.mark.asyncio
async def test_flood_windows_are_pruned(server: FakeTelegramServer, clock: SteppedClock) -> None:
    server.enforce_limits()
    async with aiohttp.ClientSession() as session:
        for batch in range(3):
            sends = (raw_send(session, server, 3800 + 30 * batch + i) for i in range(30))
            assert {status for status, _ in await asyncio.gather(*sends)} == {200}
            clock.advance(1)
        windows = server._flood[TOKEN]
        assert len(windows.chats) == 90 and len(windows.overall) == 30
        clock.advance(61)
        assert (await raw_send(session, server, 3800))[0] == 200
    assert list(windows.chats) == [3800] and len(windows.overall) == 1
