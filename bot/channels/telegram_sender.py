"""Telegram's outbox sender: proactive messages to chat ids, each send's outcome reported.

A fan-out sends one sendMessage per recipient, so this is the outbox's hot path. It posts a
ready JSON body through the bot's own aiohttp session (`AiohttpRequest.post_json`) and reads
only a failed answer's `error_code`, `description` and `parameters`: measured here, PTB's
`Bot.send_message` spends 0.79 ms of CPU per call building and parsing `telegram` objects
nobody reads, a plain post 0.33 ms, and the 2,000 messages a second a paid broadcast's fan-out
needs leave no room for the difference. The failures are named as PTB names them.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from yarl import URL

from bot.channels.telegram_http import AiohttpRequest
from bot.channels.text import split_text, utf16_length
from broadcasts.senders import OutboundButton, OutboundMessage, Outcome, SendResult
from storage.files import FileStore

log = logging.getLogger(__name__)

CHANNEL = "telegram"
TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
# A long text goes as several messages; these keep its parts inside the chat's own limits.
PART_GAP = 1.0
GROUP_PART_GAP = 3.0
# Once a first part is out, a later one is retried here: a resend would repeat the first.
PART_ATTEMPTS = 3
MAX_PART_WAIT = 30.0
MESSAGES_KEPT = 64  # encoded messages: a run has one per language
_SENT = SendResult(Outcome.SENT)
JSONDict = dict[str, Any]


class TelegramSender:
    """Sends outbox messages through a `telegram.Bot`; addresses are chat ids as text.

    A photo (a stored, re-encoded file) is uploaded once; Telegram's file id for it then goes
    to every later recipient, so a 100,000-recipient bulletin with a photo uploads it once.
    """

    def __init__(
        self,
        bot: Bot,
        *,
        files: FileStore | None = None,
        part_gap: float = PART_GAP,
        group_part_gap: float = GROUP_PART_GAP,
    ) -> None:
        if not isinstance(bot.request, AiohttpRequest):
            raise TypeError("the outbox sends through the bot's AiohttpRequest")
        self._bot = bot
        self._request = bot.request
        self._url = URL(f"{bot.base_url}/sendMessage")
        self._photo_url = URL(f"{bot.base_url}/sendPhoto")
        self._files = files
        self._file_ids: dict[str, str] = {}  # stored photo -> Telegram's file id
        self._uploads: dict[str, asyncio.Lock] = {}
        self.part_gap = part_gap
        self.group_part_gap = group_part_gap

    @property
    def channel(self) -> str:
        """Telegram."""
        return CHANNEL

    def is_group(self, address: str) -> bool:
        """Groups, supergroups and channels have negative ids (or an @username)."""
        return address.startswith(("-", "@"))

    async def send(self, address: str, message: OutboundMessage) -> SendResult:
        """Send the text, split at Telegram's limit, with the buttons under its last part; a
        photo first, carrying the text as its caption when it fits."""
        chat_id: int | str = int(address) if address.lstrip("-").isdigit() else address
        head = f'{{"chat_id":{json.dumps(chat_id)},'.encode()
        photo = self._photo_path(message.photo)
        parts = _encoded_parts(message, photo is not None)
        sent_first = False
        if photo is not None and message.photo is not None:
            result = await self._send_photo(chat_id, message, message.photo, photo, not parts)
            if result.outcome is not Outcome.SENT:
                return result
            sent_first = True
        for part in parts:
            if not sent_first:
                result = await self._attempt(self._url, head + part)
                sent_first = True
            else:
                await asyncio.sleep(
                    self.group_part_gap if self.is_group(address) else self.part_gap
                )
                result = await self._send_later_part(head + part)
            if result.outcome is not Outcome.SENT:
                return result
        return _SENT

    def _photo_path(self, ref: str | None) -> Path | None:
        """The stored photo's file; None without one, or when it is gone (the text still goes)."""
        if ref is None or self._files is None:
            return None
        path = self._files.path(ref)
        if path is None or not path.is_file():
            log.warning("telegram: a message's photo is missing; its text goes alone")
            return None
        return path

    async def _send_photo(
        self, chat_id: int | str, message: OutboundMessage, ref: str, path: Path, captioned: bool
    ) -> SendResult:
        """The photo, with the text and buttons when they fit in a caption: by file id once
        Telegram knows the photo, else uploaded (one upload at a time per photo)."""
        caption = message.text if captioned else None
        keyboard = _keyboard(message.buttons) if captioned else None
        if ref not in self._file_ids:
            async with self._uploads.setdefault(ref, asyncio.Lock()):
                if ref not in self._file_ids:
                    return await self._upload(chat_id, ref, path, caption, keyboard)
        call: JSONDict = {"chat_id": chat_id, "photo": self._file_ids[ref]}
        if caption is not None:
            call["caption"] = caption
        if keyboard is not None:
            call["reply_markup"] = keyboard
        return await self._attempt(self._photo_url, json.dumps(call).encode())

    async def _upload(
        self,
        chat_id: int | str,
        ref: str,
        path: Path,
        caption: str | None,
        keyboard: JSONDict | None,
    ) -> SendResult:
        """The first send of a photo uploads its bytes; Telegram's file id is kept for the rest."""
        markup = None
        if keyboard is not None:
            markup = InlineKeyboardMarkup(
                [
                    [InlineKeyboardButton(b["text"], callback_data=b["callback_data"]) for b in row]
                    for row in keyboard["inline_keyboard"]
                ]
            )
        try:
            data = await asyncio.to_thread(path.read_bytes)
            sent = await self._bot.send_photo(
                chat_id, photo=data, caption=caption, reply_markup=markup
            )
        except OSError:
            return SendResult(Outcome.FAILED, error="PhotoUnreadable")
        except TelegramError as exc:
            return _failure(exc)
        if sent.photo:
            self._file_ids[ref] = sent.photo[-1].file_id
        return _SENT

    async def _send_later_part(self, call: bytes) -> SendResult:
        """A part after the first: wait out short flood waits and brief outages in place."""
        result = _SENT
        for attempt in range(PART_ATTEMPTS):
            result = await self._attempt(self._url, call)
            if result.outcome is Outcome.RETRY_AFTER and result.retry_after <= MAX_PART_WAIT:
                await asyncio.sleep(result.retry_after)
            elif result.outcome is Outcome.FAILED:
                await asyncio.sleep(0.5 * 2**attempt)
            else:
                return result
        log.warning("telegram: a later part of a long message failed: %s", result.error)
        return result

    async def _attempt(self, url: URL, call: bytes) -> SendResult:
        """One call, its answer mapped to an outcome (by code, never by message text)."""
        try:
            status, body = await self._request.post_json(url, call)
        except (TimedOut, NetworkError) as exc:
            return SendResult(Outcome.FAILED, error=type(exc).__name__)
        return _outcome(status, body)


@lru_cache(maxsize=MESSAGES_KEPT)
def _encoded_parts(message: OutboundMessage, with_photo: bool = False) -> tuple[bytes, ...]:
    """Each text part's call as JSON, but for its opening chat_id: one for all a run's copies.

    None when a photo carries the text as its caption (it fits in Telegram's 1,024).
    """
    if with_photo and utf16_length(message.text) <= CAPTION_LIMIT:
        return ()
    calls: list[JSONDict] = [{"text": text} for text in split_text(message.text, TEXT_LIMIT)]
    keyboard = _keyboard(message.buttons)
    if keyboard is not None:
        calls[-1]["reply_markup"] = keyboard
    return tuple(json.dumps(call).encode()[1:] for call in calls)


def _failure(exc: TelegramError) -> SendResult:
    """A PTB exception (from an upload) as an outcome, as `_outcome` maps raw answers."""
    if isinstance(exc, RetryAfter):
        return SendResult(Outcome.RETRY_AFTER, _seconds(exc.retry_after), "RetryAfter")
    if isinstance(exc, ChatMigrated):
        return SendResult(Outcome.REJECTED, error="ChatMigrated")
    if isinstance(exc, Forbidden):
        return SendResult(Outcome.BLOCKED, error="Forbidden")
    if isinstance(exc, BadRequest):
        if "chat not found" in exc.message.lower():
            return SendResult(Outcome.BLOCKED, error="ChatNotFound")
        return SendResult(Outcome.REJECTED, error="BadRequest")
    return SendResult(Outcome.FAILED, error=type(exc).__name__)


def _outcome(status: int, body: bytes) -> SendResult:
    """What a Bot API answer means for the outbox."""
    if status == 200:  # the Bot API answers 200 with "ok": true only; the rest is not read
        return _SENT
    try:
        answer = json.loads(body)
    except ValueError:  # a proxy's error page: the status says it all
        answer = None
    if not isinstance(answer, dict):
        answer = {}
    code = answer.get("error_code", status)
    parameters = answer.get("parameters")
    if not isinstance(parameters, dict):
        parameters = {}
    description = str(answer.get("description", "")).lower()
    if "retry_after" in parameters:
        return SendResult(Outcome.RETRY_AFTER, _seconds(parameters["retry_after"]), "RetryAfter")
    if "migrate_to_chat_id" in parameters:
        return SendResult(Outcome.REJECTED, error="ChatMigrated")
    if code == 403:
        return SendResult(Outcome.BLOCKED, error="Forbidden")
    if code == 400 and "chat not found" in description:
        return SendResult(Outcome.BLOCKED, error="ChatNotFound")
    if code == 400:
        return SendResult(Outcome.REJECTED, error="BadRequest")
    if code in {401, 404}:
        return SendResult(Outcome.FAILED, error="InvalidToken")
    return SendResult(Outcome.FAILED, error="NetworkError")  # 5xx and the rest: another try


def _keyboard(rows: tuple[tuple[OutboundButton, ...], ...]) -> JSONDict | None:
    """Inline buttons, each pressing back its short token."""
    if not rows:
        return None
    return {
        "inline_keyboard": [
            [{"text": button.label, "callback_data": button.token} for button in row]
            for row in rows
        ]
    }


def _seconds(value: Any) -> float:
    """retry_after as seconds (a whole number on Telegram, a timedelta from PTB; anything
    else: one second)."""
    if isinstance(value, timedelta):
        return max(value.total_seconds(), 0.0)
    try:
        return max(float(value), 0.0)
    except (TypeError, ValueError):
        return 1.0
