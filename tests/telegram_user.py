"""Test driver: a simulated Telegram citizen chatting with a bot on FakeTelegramServer."""

from __future__ import annotations

import itertools
import time
from typing import Any

from tests.fake_telegram import (
    CallRecord,
    ChatKey,
    FakeTelegramServer,
    JSONDict,
    inline_buttons,
)

__all__ = ["TelegramUser"]

TEXT_METHODS = frozenset({"sendMessage", "editMessageText"})
CAPTION_METHODS = frozenset(
    {
        "sendPhoto",
        "sendDocument",
        "sendVideo",
        "sendVoice",
        "sendAudio",
        "sendAnimation",
        "editMessageCaption",
    }
)

_file_ids = itertools.count(1)


class TelegramUser:
    """One Telegram user in a private chat with the bot behind `token`.

    Every action injects an update and returns the bot's new, successful outbound calls to
    this chat (sendMessage, edits, answerCallbackQuery, ...), once the bot has gone quiet.
    """

    def __init__(  # noqa: PLR0917 - positional order is the documented constructor API
        self,
        server: FakeTelegramServer,
        token: str,
        user_id: int,
        first_name: str = "Test Citizen",
        username: str | None = None,
        language_code: str | None = None,
        chat_id: ChatKey | None = None,
        *,
        settle: float = 0.15,
        max_wait: float = 10.0,
    ) -> None:
        self.server = server
        self.token = token
        self.user: JSONDict = {"id": user_id, "is_bot": False, "first_name": first_name}
        if username is not None:
            self.user["username"] = username
        if language_code is not None:
            self.user["language_code"] = language_code
        self.chat_id: ChatKey = chat_id if chat_id is not None else user_id
        self.settle = settle
        self.max_wait = max_wait
        self.last_sent: JSONDict | None = None

    @property
    def user_id(self) -> int:
        """The user's Telegram id."""
        return int(self.user["id"])

    # actions

    async def send_update(self, update: JSONDict, *, expect_reply: bool = True) -> list[CallRecord]:
        """Inject any update and wait for the bot's reaction in this chat."""
        chat = self.server.chat(self.chat_id)
        since = len(chat.records)
        message = update.get("message")
        if isinstance(message, dict):
            self.last_sent = message
        self.server.inject_update(self.token, update)
        try:
            records = await self.server.wait_for_chat_activity(
                self.chat_id,
                since,
                settle=self.settle if expect_reply else max(self.settle, 0.3),
                max_wait=self.max_wait,
                require=expect_reply,
            )
        except TimeoutError as exc:
            raise TimeoutError(f"{self._describe(update)}: {exc}") from None
        return [r for r in records if r["ok"] and r["token"] == self.token]

    async def send(self, text: str, *, expect_reply: bool = True) -> list[CallRecord]:
        """Type a text message (a leading "/" makes it a bot command)."""
        update = self.server.message_update(self.user, self.chat_id, text)
        return await self.send_update(update, expect_reply=expect_reply)

    async def edit_last(self, text: str, *, expect_reply: bool = True) -> list[CallRecord]:
        """Edit this user's last sent message to `text` (an edited_message update)."""
        if self.last_sent is None:
            raise AssertionError("no message sent yet to edit")
        edited = {**self.last_sent, "text": text, "edit_date": int(self.last_sent["date"]) + 1}
        self.last_sent = edited
        result = await self.send_update({"edited_message": edited}, expect_reply=expect_reply)
        self.last_sent = edited
        return result

    async def send_sticker(self, file_id: str | None = None) -> list[CallRecord]:
        """Send a sticker."""
        update = self.server.message_update(
            self.user, self.chat_id, sticker=file_id or _new_file_id("sticker")
        )
        return await self.send_update(update)

    async def send_photo(
        self,
        file_id: str | None = None,
        data: bytes | None = None,
        caption: str | None = None,
        *,
        media_group_id: str | None = None,
    ) -> list[CallRecord]:
        """Send a photo; `data` becomes downloadable via getFile."""
        file_id = file_id or _new_file_id("photo")
        if data is not None:
            self.server.register_file(file_id, data, mime_type="image/jpeg")
        update = self.server.message_update(
            self.user, self.chat_id, photo=file_id, caption=caption, media_group_id=media_group_id
        )
        return await self.send_update(update)

    async def send_album(
        self, count: int = 2, *, data: bytes | None = None, caption: str | None = None
    ) -> list[CallRecord]:
        """Send `count` photos as one media group (several updates at once)."""
        group_id = _new_file_id("album")
        chat = self.server.chat(self.chat_id)
        since = len(chat.records)
        for index in range(count):
            file_id = _new_file_id("photo")
            if data is not None:
                self.server.register_file(file_id, data, mime_type="image/jpeg")
            update = self.server.message_update(
                self.user,
                self.chat_id,
                photo=file_id,
                caption=caption if index == 0 else None,
                media_group_id=group_id,
            )
            self.server.inject_update(self.token, update)
        records = await self.server.wait_for_chat_activity(
            self.chat_id, since, settle=self.settle, max_wait=self.max_wait
        )
        return [r for r in records if r["ok"] and r["token"] == self.token]

    async def send_document(
        self,
        file_id: str | None = None,
        data: bytes | None = None,
        *,
        file_name: str = "document.pdf",
        mime_type: str = "application/pdf",
        caption: str | None = None,
    ) -> list[CallRecord]:
        """Send a document; `data` becomes downloadable via getFile."""
        file_id = file_id or _new_file_id("document")
        self.server.register_file(file_id, data, file_name=file_name, mime_type=mime_type)
        document = self.server.message_update(
            self.user, self.chat_id, document=file_id, caption=caption
        )
        return await self.send_update(document)

    async def send_voice(
        self, file_id: str | None = None, data: bytes | None = None
    ) -> list[CallRecord]:
        """Send a voice note."""
        file_id = file_id or _new_file_id("voice")
        if data is not None:
            self.server.register_file(file_id, data, mime_type="audio/ogg")
        update = self.server.message_update(self.user, self.chat_id, voice=file_id)
        return await self.send_update(update)

    async def send_video(
        self, file_id: str | None = None, data: bytes | None = None, caption: str | None = None
    ) -> list[CallRecord]:
        """Send a video."""
        file_id = file_id or _new_file_id("video")
        if data is not None:
            self.server.register_file(file_id, data, mime_type="video/mp4")
        update = self.server.message_update(self.user, self.chat_id, video=file_id, caption=caption)
        return await self.send_update(update)

    async def send_location(self, lat: float, lon: float) -> list[CallRecord]:
        """Share a location."""
        update = self.server.message_update(self.user, self.chat_id, location=(lat, lon))
        return await self.send_update(update)

    async def press(self, label: str, *, expect_reply: bool = True) -> list[CallRecord]:
        """Press the inline button labelled `label` (exact, else substring) on the newest
        bot message offering it."""
        message, button = self._find_button(label)
        data = button.get("callback_data")
        if not isinstance(data, str):
            raise AssertionError(f"button {button.get('text')!r} has no callback_data: {button}")
        return await self.press_data(data, message, expect_reply=expect_reply)

    async def press_data(
        self, data: str, message: JSONDict | None = None, *, expect_reply: bool = True
    ) -> list[CallRecord]:
        """Send a callback query with arbitrary (forged or stale) data."""
        if message is None:
            messages = self.server.bot_messages(self.chat_id, token=self.token)
            message = messages[-1] if messages else self._stub_message()
        update = self.server.callback_update(self.user, self.chat_id, message, data)
        return await self.send_update(update, expect_reply=expect_reply)

    # inspection

    def history(self) -> list[CallRecord]:
        """All successful outbound calls of this bot to this chat, oldest first."""
        return self.server.sent_to(self.chat_id, token=self.token)

    def last_text(self) -> str | None:
        """Text (or caption) of the last message sent or edited into this chat."""
        for record in reversed(self.history()):
            text = text_of(record)
            if text is not None:
                return text
        return None

    def keyboard_rows(self) -> list[list[str]]:
        """Button labels, by row, of the newest bot message with an inline keyboard."""
        for message in reversed(self.server.bot_messages(self.chat_id, token=self.token)):
            rows = message.get("reply_markup", {}).get("inline_keyboard")
            if rows:
                return [[str(button.get("text")) for button in row] for row in rows]
        return []

    def keyboard_labels(self) -> list[str]:
        """Button labels of the newest bot message with an inline keyboard."""
        return [label for row in self.keyboard_rows() for label in row]

    @staticmethod
    def texts(records: list[CallRecord]) -> list[str]:
        """Texts (or captions) of the message-bearing records, in order."""
        return [text for text in map(text_of, records) if text is not None]

    # internals

    def _find_button(self, label: str) -> tuple[JSONDict, JSONDict]:
        offered: list[str] = []
        for message in reversed(self.server.bot_messages(self.chat_id, token=self.token)):
            buttons = inline_buttons(message)
            if not buttons:
                continue
            offered.extend(str(b.get("text")) for b in buttons)
            exact = [b for b in buttons if b.get("text") == label]
            if exact:
                return message, exact[0]
            partial = [b for b in buttons if label in str(b.get("text"))]
            if len(partial) > 1:
                labels = [b.get("text") for b in partial]
                raise AssertionError(f"button label {label!r} is ambiguous: {labels}")
            if partial:
                return message, partial[0]
        raise AssertionError(
            f"no inline button {label!r} in chat {self.chat_id}; available: {offered or 'none'}"
        )

    def _stub_message(self) -> JSONDict:
        bot = self.server.bot(self.token)
        chat = self.server.chat(self.chat_id)
        return {
            "message_id": max(chat.last_message_id, 1),
            "date": int(time.time()),
            "chat": {"id": self.chat_id, "type": "private", "first_name": self.user["first_name"]},
            "from": bot.user,
        }

    def _describe(self, update: JSONDict) -> str:
        message = update.get("message") or update.get("edited_message")
        if isinstance(message, dict):
            kinds = [
                k
                for k in ("text", "photo", "sticker", "document", "voice", "video", "location")
                if k in message
            ]
            detail = repr(message.get("text")) if "text" in message else ",".join(kinds)
            return f"user {self.user_id} sent {detail}"
        query = update.get("callback_query")
        if isinstance(query, dict):
            return f"user {self.user_id} pressed {query.get('data')!r}"
        return f"user {self.user_id} sent {sorted(update)}"


def text_of(record: CallRecord) -> str | None:
    """Text of a sendMessage/editMessageText record, or caption of a media record."""
    params: dict[str, Any] = record["params"]
    if record["method"] in TEXT_METHODS:
        text = params.get("text")
    elif record["method"] in CAPTION_METHODS:
        text = params.get("caption")
    else:
        return None
    return str(text) if text is not None else None


def _new_file_id(kind: str) -> str:
    return f"{kind}-{next(_file_ids)}"
