"""Telegram: python-telegram-bot's Application as transport, polling or webhook."""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import secrets
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from enum import Enum
from typing import Any, NamedTuple

from aiohttp import web
from telegram import (
    BotCommand,
    BotCommandScopeAllPrivateChats,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputFile,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    Update,
)
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError, TimedOut
from telegram.ext import Application, ContextTypes, TypeHandler

from bot.channels.telegram_http import AiohttpRequest
from bot.channels.text import split_text, utf16_length
from bot.config import Settings
from bot.i18n import Catalog
from handlers.dispatcher import Dispatcher, listed_commands
from handlers.types import (
    Attachment,
    AttachmentKind,
    InboundEvent,
    Location,
    OutgoingFile,
    Reply,
    Response,
)

# Opt in to PTB's timedelta retry_after now (its default changes in the next major version).
os.environ.setdefault("PTB_TIMEDELTA", "1")
log = logging.getLogger(__name__)

CHANNEL = "telegram"
TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name
ALLOWED_UPDATES = [Update.MESSAGE, Update.EDITED_MESSAGE, Update.CALLBACK_QUERY]
# A short pause between long polls lets updates arriving together come in one getUpdates.
POLL_INTERVAL = 0.05
# Bot API connections: enough to keep Telegram busy, few enough that none sits idle for long.
HTTP_CONNECTIONS = 32
SEND_ATTEMPTS = 4
JOIN_PAYLOAD = "join_"  # /start join_CODE: an invite link
MAX_RETRY_WAIT = 30.0
_MEDIA = (
    ("document", AttachmentKind.DOCUMENT, "application/octet-stream"),
    ("video", AttachmentKind.VIDEO, "video/mp4"),
    ("voice", AttachmentKind.VOICE, "audio/ogg"),
    ("audio", AttachmentKind.AUDIO, "audio/mpeg"),
    ("video_note", AttachmentKind.VIDEO, "video/mp4"),
)


class TelegramChannel:
    """Turns Telegram updates into events and the core's responses into Bot API calls."""

    def __init__(self, settings: Settings, dispatcher: Dispatcher, catalog: Catalog) -> None:
        self.settings = settings
        self.dispatcher = dispatcher
        self.catalog = catalog
        self.webhook_mode = bool(settings.telegram_webhook_url)
        self.webhook_secret = settings.telegram_webhook_secret or secrets.token_urlsafe(32)
        # Chats showing a location keyboard, so the next plain message can close it (memory only).
        self._location_keyboards: set[int] = set()
        # Told of every reply sent, so the outbox counts it against Telegram's overall rate.
        self.on_sent: Callable[[], None] = lambda: None
        builder = (
            Application.builder()
            .token(settings.telegram_token)
            .base_url(settings.telegram_api_url)
            .base_file_url(settings.resolved_telegram_file_url)
            .concurrent_updates(True)
            .request(AiohttpRequest(connections=HTTP_CONNECTIONS))
            .get_updates_request(AiohttpRequest(connections=1))
        )
        if self.webhook_mode:
            builder = builder.updater(None)
        self.application = builder.build()
        self.application.add_handler(TypeHandler(Update, self.on_update))
        self.application.add_error_handler(self.on_error)

    async def start(self) -> None:
        """Connect, publish the command menu, then poll or register the webhook."""
        app = self.application
        await app.initialize()
        # Invite links open the bot with /start join_CODE, which to_event reads as /join CODE.
        self.dispatcher.services.invite_links[CHANNEL] = (
            f"https://t.me/{app.bot.username}?start={JOIN_PAYLOAD}{{code}}"
        )
        await self.publish_commands()
        await app.start()
        if self.webhook_mode:
            await app.bot.set_webhook(
                url=self.settings.telegram_webhook_url,
                secret_token=self.webhook_secret,
                allowed_updates=ALLOWED_UPDATES,
            )
            log.info("telegram webhook registered")
        else:
            assert app.updater is not None
            await app.bot.delete_webhook()
            await app.updater.start_polling(
                poll_interval=POLL_INTERVAL, timeout=10, allowed_updates=ALLOWED_UPDATES
            )
            log.info("telegram polling started")

    async def stop(self) -> None:
        """Stop polling and close the connection pool."""
        app = self.application
        if app.updater is not None and app.updater.running:
            await app.updater.stop()
        if app.running:
            await app.stop()
        await app.shutdown()

    async def publish_commands(self) -> None:
        """Set the command menu in Vietnamese (default) and English."""
        scope = BotCommandScopeAllPrivateChats()
        for language in self.catalog.languages:
            commands = [
                BotCommand(c, self.catalog(language, f"commands.{c}")) for c in listed_commands()
            ]
            code = None if language == "vi" else language
            await self.application.bot.set_my_commands(commands, scope=scope, language_code=code)

    def add_webhook_route(self, app: web.Application) -> None:
        """Serve the webhook on the web server; the secret header is checked first."""
        app.router.add_post(self.settings.telegram_webhook_path, self.receive_webhook)

    async def receive_webhook(self, request: web.Request) -> web.Response:
        """Handle a webhook update, only when Telegram's secret header matches.

        The update is handled before Telegram gets its 200, so one lost to a crash is sent again.
        """
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), self.webhook_secret.encode()):
            return web.Response(status=403)
        try:
            payload = await request.json()
            update = Update.de_json(payload, self.application.bot)
        except (ValueError, TypeError, KeyError):
            return web.Response(status=400)
        await self.application.process_update(update)
        return web.Response(status=200)

    async def on_update(self, update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        """Hand a private-chat update to the core and send its answer."""
        event = self.to_event(update)
        if event is None:
            if update.callback_query is not None:
                await _quietly(update.callback_query.answer())
            return
        delivered: list[bool] = []

        async def deliver(response: Response) -> None:
            delivered.append(await self.render(update, response))

        await self.dispatcher.handle(event, deliver)
        if delivered == [False]:
            await self.dispatcher.mark_unreachable(event)

    async def on_error(self, _update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Log the error's type only: messages may carry chat ids or citizen text."""
        error = context.error
        log.error("telegram handler failed: %s", type(error).__name__)

    def to_event(self, update: Update) -> InboundEvent | None:
        """The channel-neutral event for an update, or None for chats we do not serve."""
        query = update.callback_query
        if query is not None:
            message = query.message
            if message is None or message.chat.type not in _SERVED_CHATS:
                return None
            return InboundEvent(
                channel=CHANNEL,
                address=str(message.chat.id),
                button=(query.data or "")[:64],
                language_hint=query.from_user.language_code,
                is_admin=query.from_user.id in self.settings.admin_telegram_ids,
                **_group_fields(message.chat.type, query.from_user.id),
            )
        message = update.message or update.edited_message
        if message is None or message.chat.type not in _SERVED_CHATS:
            return None
        if message.chat.type != "private":
            return self._group_event(update, message)
        if update.edited_message is not None and message.location is not None:
            return None  # a live location moving: nothing was said, nothing to answer
        sender = message.from_user
        base: dict[str, Any] = {
            "channel": CHANNEL,
            "address": str(message.chat.id),
            "language_hint": sender.language_code if sender else None,
            "edited": update.edited_message is not None,
            "is_admin": sender is not None and sender.id in self.settings.admin_telegram_ids,
        }
        if message.text is not None:
            return InboundEvent(text=_deep_link(message.text), **base)
        if message.location is not None:
            loc = message.location
            return InboundEvent(location=Location(loc.latitude, loc.longitude), **base)
        attachment = self._attachment(message)
        if attachment is not None:
            return InboundEvent(attachments=(attachment,), text=message.caption, **base)
        return InboundEvent(unsupported=_kind_of(message), **base)

    def _group_event(self, update: Update, message: Message) -> InboundEvent | None:
        """In a group only commands count (the bot keeps quiet otherwise); who sent it rides
        along, so staff commands can be authorised."""
        sender = message.from_user
        text = message.text or ""
        if update.edited_message is not None or sender is None or not text.startswith("/"):
            return None
        return InboundEvent(
            channel=CHANNEL,
            address=str(message.chat.id),
            text=text,
            language_hint=sender.language_code,
            is_admin=sender.id in self.settings.admin_telegram_ids,
            **_group_fields(message.chat.type, sender.id),
        )

    def _attachment(self, message: Message) -> Attachment | None:
        """The file in a message, with a way to download it for metadata stripping."""
        bot = self.application.bot
        media: Any = message.photo[-1] if message.photo else None
        kind, mime = AttachmentKind.PHOTO, "image/jpeg"
        if media is None:
            for attribute, media_kind, default_mime in _MEDIA:
                media = getattr(message, attribute, None)
                if media is not None:
                    kind = media_kind
                    mime = getattr(media, "mime_type", None) or default_mime
                    break
            else:
                return None
        file_id: str = media.file_id
        size: int | None = media.file_size

        async def fetch() -> bytes:
            telegram_file = await bot.get_file(file_id)
            return bytes(await telegram_file.download_as_bytearray())

        return Attachment(kind, f"telegram:{file_id}", mime, size, fetch=fetch)

    async def render(self, update: Update, response: Response) -> bool:
        """Answer the button, then show the replies; False if the chat has blocked the bot.

        After a valid press the pressed message becomes the next prompt (headed by the choice),
        so a flow stays one tidy message instead of a trail of dead keyboards.
        """
        chat = update.effective_chat
        if chat is None:
            return True
        keyboard_open = chat.id in self._location_keyboards
        replies = list(response.replies)
        if response.chosen_label and replies:
            first = replies[0]
            heading = self.catalog(response.language, "button.chosen", label=response.chosen_label)
            replies[0] = replace(first, text=f"{heading}\n\n{first.text}")
        messages, keyboard_open = compose(replies, keyboard_open)
        if keyboard_open:
            self._location_keyboards.add(chat.id)
        else:
            self._location_keyboards.discard(chat.id)
        query = update.callback_query
        if query is not None:
            await _quietly(query.answer(text=response.button_notice))
            pressed = query.message if isinstance(query.message, Message) else None
            if pressed is not None and not response.keep_pressed:
                messages = await self._settle_pressed(pressed, response, messages)
        for message in messages:
            if await self._send_part(chat.id, *message) is Delivery.BLOCKED:
                return False
        return True

    async def _settle_pressed(
        self, pressed: Message, response: Response, messages: list[Outgoing]
    ) -> list[Outgoing]:
        """Turn the pressed message into the first reply if it can be; the messages left to send."""
        first_markup = messages[0].markup if messages else None
        editable = first_markup is None or isinstance(first_markup, InlineKeyboardMarkup)
        if messages and (messages[0].photo is not None or messages[0].file is not None):
            editable = False  # a text message cannot become a photo or a file
        if response.chosen_label and pressed.text and messages and editable:
            text, markup, _, _ = messages[0]
            inline = markup if isinstance(markup, InlineKeyboardMarkup) else None
            try:
                await pressed.edit_text(text, reply_markup=inline)
                return messages[1:]
            except TelegramError as exc:  # too old to edit, or gone: send it instead
                log.info("editing the pressed message failed: %s", type(exc).__name__)
        # A stale press, or a reply that cannot be an edit: just retire the old keyboard.
        await _quietly(pressed.edit_reply_markup(reply_markup=None))
        return messages

    async def _send_part(
        self,
        chat_id: int,
        text: str,
        markup: Any,
        photo: str | None = None,
        file: OutgoingFile | None = None,
    ) -> Delivery:
        """Send one message, waiting out a flood limit or a brief outage a few times."""
        data = await self._photo_bytes(photo)
        if data is None and file is None and not text:
            return Delivery.SENT  # a photo alone that is gone: its text follows on its own
        caption = text or None
        for attempt in range(SEND_ATTEMPTS):
            try:
                bot = self.application.bot
                if data is not None:
                    await bot.send_photo(chat_id, photo=data, caption=caption, reply_markup=markup)
                elif file is not None and file.mime.startswith("image/"):
                    await bot.send_photo(
                        chat_id,
                        photo=InputFile(file.data, filename=file.name),
                        caption=caption,
                        reply_markup=markup,
                    )
                elif file is not None:
                    await bot.send_document(
                        chat_id,
                        document=InputFile(file.data, filename=file.name),
                        caption=caption,
                        reply_markup=markup,
                    )
                else:
                    await self.application.bot.send_message(chat_id, text, reply_markup=markup)
                self.on_sent()
                return Delivery.SENT
            except RetryAfter as exc:
                await asyncio.sleep(min(_seconds(exc.retry_after), MAX_RETRY_WAIT))
            except (TimedOut, NetworkError) as exc:
                if isinstance(exc, BadRequest):
                    log.warning("telegram refused a reply: %s", type(exc).__name__)
                    return Delivery.FAILED
                await asyncio.sleep(0.5 * 2**attempt)
            except Forbidden:
                log.info("telegram chat unreachable (blocked the bot)")
                return Delivery.BLOCKED
        log.warning("telegram reply dropped after %d attempts", SEND_ATTEMPTS)
        return Delivery.FAILED

    async def _photo_bytes(self, ref: str | None) -> bytes | None:
        """A stored photo's bytes (read off the loop), or None without one or when it is gone."""
        path = None if ref is None else self.dispatcher.services.files.path(ref)
        if path is None:
            return None
        try:
            return await asyncio.to_thread(path.read_bytes)
        except OSError:
            log.warning("telegram: a reply's photo could not be read")
            return None


class Delivery(Enum):
    """What became of one outgoing message."""

    SENT = "sent"
    FAILED = "failed"
    BLOCKED = "blocked"


Markup = InlineKeyboardMarkup | ReplyKeyboardMarkup | ReplyKeyboardRemove | None


class Outgoing(NamedTuple):
    """One Telegram message: its text (a caption under a photo or file), markup, a stored
    photo or a made file."""

    text: str
    markup: Markup
    photo: str | None = None
    file: OutgoingFile | None = None


def compose(replies: list[Reply], keyboard_open: bool) -> tuple[list[Outgoing], bool]:
    """The Telegram messages for some replies, and whether a location keyboard is left open.

    A plain reply is folded into the one after it (one message, not two) unless it has to close
    an open location keyboard, which only a message without inline buttons can do. One message
    cannot carry inline buttons and a location keyboard, so that case adds a short message. A
    reply with a photo is the photo with its text as the caption, as the outbox sends it, or
    the photo and then the text when the text is longer than a caption may be.
    """
    messages: list[Outgoing] = []
    pending = ""
    for index, reply in enumerate(replies):
        text = f"{pending}\n\n{reply.text}" if pending else reply.text
        media = reply.photo is not None or reply.file is not None
        if pending and (utf16_length(text) > TEXT_LIMIT or media):
            messages.extend(Outgoing(part, None) for part in split_text(pending, TEXT_LIMIT))
            text = reply.text
        pending = ""
        if media:
            if utf16_length(text) <= CAPTION_LIMIT:
                messages.append(Outgoing(text, _inline(reply), reply.photo, reply.file))
                continue
            messages.append(Outgoing("", None, reply.photo, reply.file))
        plain = not reply.buttons and not reply.request_location
        if plain and not keyboard_open and index < len(replies) - 1:
            pending = text
            continue
        location = _location_keyboard(reply)
        inline = _inline(reply)
        markup: Markup = inline if inline is not None else location
        if plain and keyboard_open:
            markup, keyboard_open = ReplyKeyboardRemove(), False
        parts = split_text(text, TEXT_LIMIT)
        messages.extend(Outgoing(part, None) for part in parts[:-1])
        messages.append(Outgoing(parts[-1], markup))
        if reply.buttons and location is not None:
            hint = reply.location_hint or reply.request_location or "📍"
            messages.append(Outgoing(hint, location))
        keyboard_open = keyboard_open or location is not None
    return messages, keyboard_open


def _inline(reply: Reply) -> InlineKeyboardMarkup | None:
    """A reply's buttons as an inline keyboard, each pressing back its short token."""
    if not reply.buttons:
        return None
    return InlineKeyboardMarkup(
        [
            [InlineKeyboardButton(b.label, callback_data=b.token) for b in row]
            for row in reply.buttons
        ]
    )


def _location_keyboard(reply: Reply) -> ReplyKeyboardMarkup | None:
    """The one-button keyboard that shares the user's location, when the reply asks for it."""
    if not reply.request_location:
        return None
    return ReplyKeyboardMarkup(
        [[KeyboardButton(reply.request_location, request_location=True)]],
        resize_keyboard=True,
        one_time_keyboard=True,
    )


_SERVED_CHATS = ("private", "group", "supergroup")


def _group_fields(chat_type: str, user_id: int) -> dict[str, Any]:
    """An event's group and actor fields: set only in groups."""
    return {"group": True, "actor": str(user_id)} if chat_type != "private" else {}


def _deep_link(text: str) -> str:
    """An invite link's /start join_CODE as the /join CODE it means; other text as it is."""
    command, _, payload = text.partition(" ")
    if command.split("@", 1)[0] == "/start" and payload.strip().startswith(JOIN_PAYLOAD):
        return f"/join {payload.strip()[len(JOIN_PAYLOAD) :]}"
    return text


def _seconds(value: float | timedelta) -> float:
    """retry_after as seconds, whichever type this PTB version gives."""
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def _kind_of(message: Message) -> str:
    """A name for a message the flows cannot use."""
    for kind in ("sticker", "animation", "contact", "poll", "dice", "venue", "game"):
        if getattr(message, kind, None) is not None:
            return kind
    return "other"


async def _quietly(call: Any) -> None:
    """Await a cosmetic Bot API call; an old message or a double answer is not an error."""
    try:
        await call
    except BadRequest:
        pass
    except TelegramError as exc:
        log.warning("telegram call failed: %s", type(exc).__name__)
