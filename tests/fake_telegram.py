"""Fake Telegram Bot API server (aiohttp) for tests and benchmarks."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import html
import inspect
import itertools
import json
import math
import re
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from types import EllipsisType, TracebackType
from typing import Any, Literal, NamedTuple, Self, TypedDict

from aiohttp import web

__all__ = [
    "FLOOD_LIMITED_METHODS",
    "ApiError",
    "BotState",
    "CallRecord",
    "ChatKey",
    "ChatState",
    "FakeTelegramServer",
    "FloodLimits",
    "FloodReason",
    "FloodRefusals",
    "JSONDict",
    "inline_buttons",
    "parse_entities",
    "scope_key",
    "utf16_len",
]

JSONDict = dict[str, Any]
ChatKey = int | str
Handler = Callable[["BotState", JSONDict], Any]
FloodReason = Literal["overall", "chat", "group"]

MAX_DOWNLOAD_SIZE = 20 * 1024 * 1024
MAX_UPLOAD_SIZE = 64 * 1024 * 1024
MESSAGE_LIMIT = 4096
CAPTION_LIMIT = 1024

# Free-text string fields: never JSON/bool/number-decoded even if they look like it.
_TEXT_KEYS = frozenset(
    {
        "text",
        "caption",
        "data",
        "description",
        "short_description",
        "name",
        "title",
        "query",
        "url",
        "secret_token",
        "parse_mode",
        "language_code",
        "emoji",
        "explanation",
        "question",
        "address",
        "performer",
        "first_name",
        "last_name",
        "phone_number",
        "vcard",
        "payload",
        "provider_data",
        "currency",
        "start_parameter",
        "custom_title",
        "file_id",
        "callback_query_id",
        "inline_message_id",
        "inline_query_id",
        "business_connection_id",
        "message_effect_id",
        "sticker_set_name",
        "action",
        "ip_address",
        "next_offset",
        "photo",
        "document",
        "video",
        "voice",
        "audio",
        "animation",
        "sticker",
        "video_note",
        "thumbnail",
        "certificate",
    }
)
_INT_KEYS = frozenset(
    {
        "message_id",
        "message_thread_id",
        "reply_to_message_id",
        "user_id",
        "offset",
        "limit",
        "timeout",
        "cache_time",
        "duration",
        "width",
        "height",
        "length",
        "max_connections",
        "until_date",
        "live_period",
        "heading",
        "proximity_alert_radius",
        "direct_messages_topic_id",
    }
)
_FLOAT_KEYS = frozenset({"latitude", "longitude", "horizontal_accuracy"})
_INT_RE = re.compile(r"-?\d+")

_BUTTON_ACTIONS = (
    "callback_data",
    "url",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "callback_game",
    "pay",
    "copy_text",
)
_COMMAND_RE = re.compile(r"[a-z0-9_]{1,32}")
_OK_METHODS = (
    "setChatMenuButton",
    "setMyDefaultAdministratorRights",
    "pinChatMessage",
    "unpinChatMessage",
    "unpinAllChatMessages",
    "leaveChat",
    "setMessageReaction",
    "banChatMember",
    "unbanChatMember",
    "restrictChatMember",
)
# Calls that send a message and so count against the flood limits (one per call, albums too).
FLOOD_LIMITED_METHODS = frozenset(
    {
        "sendMessage",
        "sendPhoto",
        "sendDocument",
        "sendVideo",
        "sendAudio",
        "sendVoice",
        "sendAnimation",
        "sendSticker",
        "sendLocation",
        "sendMediaGroup",
        "sendVideoNote",
        "sendVenue",
        "sendContact",
        "sendPoll",
        "sendDice",
        "sendInvoice",
        "sendGame",
        "sendPaidMedia",
        "forwardMessage",
        "forwardMessages",
        "copyMessage",
        "copyMessages",
    }
)
_FLOOD_LIMITED = frozenset(name.lower() for name in FLOOD_LIMITED_METHODS)
_GROUP_WINDOW = 60.0
_CHAT_WINDOW = 1.0
# Keys of a message that are envelope, not content, when forwarding or copying.
_ENVELOPE_KEYS = frozenset(
    {
        "message_id",
        "date",
        "chat",
        "from",
        "reply_markup",
        "edit_date",
        "reply_to_message",
        "forward_origin",
        "media_group_id",
        "message_thread_id",
    }
)
_NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup "
    "are exactly the same as a current content and reply markup of the message"
)
_DEFAULT_DESCRIPTIONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden: bot was blocked by the user",
    404: "Not Found",
    409: (
        "Conflict: terminated by other getUpdates request; "
        "make sure that only one bot instance is running"
    ),
    500: "Internal Server Error",
    502: "Bad Gateway",
}


class CallRecord(TypedDict):
    """One Bot API call received by the fake server."""

    token: str
    method: str
    params: JSONDict
    time: float
    ok: bool
    result: Any
    error: JSONDict | None
    chat_id: ChatKey | None


class ApiError(Exception):
    """Telegram-style API error; raise it from custom method handlers."""

    def __init__(
        self, error_code: int, description: str, parameters: JSONDict | None = None
    ) -> None:
        super().__init__(f"{error_code}: {description}")
        self.error_code = error_code
        self.description = description
        self.parameters = parameters

    def body(self) -> JSONDict:
        """Return the JSON body Telegram would send for this error."""
        body: JSONDict = {
            "ok": False,
            "error_code": self.error_code,
            "description": self.description,
        }
        if self.parameters:
            body["parameters"] = self.parameters
        return body


def _bad_request(detail: str) -> ApiError:
    return ApiError(400, f"Bad Request: {detail}")


def utf16_len(text: str) -> int:
    """Return the length of text in UTF-16 code units, as Telegram counts it."""
    return len(text.encode("utf-16-le")) // 2


def scope_key(scope: Any) -> str:
    """Return a compact key for a BotCommandScope dict: "default", "chat:42", ..."""
    if not isinstance(scope, dict) or not scope.get("type"):
        return "default"
    parts = [str(scope["type"])]
    if "chat_id" in scope:
        parts.append(str(scope["chat_id"]))
    if "user_id" in scope:
        parts.append(str(scope["user_id"]))
    return ":".join(parts)


def _chat_key(value: Any) -> ChatKey | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    text = str(value)
    return int(text) if _INT_RE.fullmatch(text) else text


def _normalize_param(key: str, value: Any) -> Any:
    if not isinstance(value, str) or key in _TEXT_KEYS:
        return value
    if key in _INT_KEYS or key.endswith("chat_id"):
        return int(value) if _INT_RE.fullmatch(value) else value
    if key in _FLOAT_KEYS:
        try:
            return float(value)
        except ValueError:
            return value
    if value in ("true", "false"):
        return value == "true"
    if value.startswith(("{", "[")):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _unique_id(file_id: str) -> str:
    return "AgAD" + hashlib.sha1(file_id.encode()).hexdigest()[:12]


# --- entity parsing (parse_mode) -------------------------------------------------------


class _EntityParseError(Exception):
    pass


_HTML_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
_HTML_ENTITY_RE = re.compile(r"&(#[0-9]+|#[xX][0-9a-fA-F]+|lt|gt|amp|quot);")
_HTML_ATTR_RE = re.compile(r"""([\w-]+)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"']+))""")


def _byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode())


def _sorted_entities(entities: list[JSONDict]) -> list[JSONDict]:
    return sorted(entities, key=lambda entity: (entity["offset"], -entity["length"]))


def _parse_html(text: str) -> tuple[str, list[JSONDict]]:
    out: list[str] = []
    pos = 0
    stack: list[tuple[str, int, JSONDict]] = []
    entities: list[JSONDict] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == "&":
            match = _HTML_ENTITY_RE.match(text, i)
            if match:
                decoded = html.unescape(match.group(0))
                out.append(decoded)
                pos += utf16_len(decoded)
                i = match.end()
                continue
        elif char == "<":
            offset = _byte_offset(text, i)
            end = text.find(">", i)
            if end == -1:
                raise _EntityParseError(f"Unclosed start tag at byte offset {offset}")
            inner = text[i + 1 : end]
            if inner.startswith("/"):
                name = inner[1:].strip().lower()
                if not stack:
                    raise _EntityParseError(f"Unexpected end tag at byte offset {offset}")
                open_name, start, open_extra = stack.pop()
                if open_name != name:
                    raise _EntityParseError(
                        f'Unmatched end tag at byte offset {offset}, expected "</{open_name}>", '
                        f'found "</{name}>"'
                    )
                entity = {
                    "type": _HTML_TAGS[name],
                    "offset": start,
                    "length": pos - start,
                    **open_extra,
                }
                inner_code = entities[-1] if entities else None
                if (
                    name == "pre"
                    and inner_code is not None
                    and inner_code["type"] == "code"
                    and (inner_code["offset"], inner_code["length"]) == (start, pos - start)
                ):
                    # Telegram folds <pre><code class="language-x"> into one pre entity.
                    entities.pop()
                    if "language" in inner_code:
                        entity["language"] = inner_code["language"]
                if pos > start:
                    entities.append(entity)
            else:
                name, _, attr_text = inner.rstrip("/").partition(" ")
                name = name.strip().lower()
                if name not in _HTML_TAGS:
                    raise _EntityParseError(
                        f'Unsupported start tag "{name}" at byte offset {offset}'
                    )
                attrs = {
                    m.group(1).lower(): html.unescape(m.group(2) or m.group(3) or m.group(4) or "")
                    for m in _HTML_ATTR_RE.finditer(attr_text)
                }
                extra: JSONDict = {}
                if name == "span" and attrs.get("class") != "tg-spoiler":
                    raise _EntityParseError(
                        f'Tag "span" must have class "tg-spoiler" at byte offset {offset}'
                    )
                if name == "a":
                    extra["url"] = attrs.get("href", "")
                elif name == "tg-emoji":
                    extra["custom_emoji_id"] = attrs.get("emoji-id", "")
                elif name == "code" and attrs.get("class", "").startswith("language-"):
                    extra["language"] = attrs["class"].removeprefix("language-")
                elif name == "blockquote" and "expandable" in attr_text:
                    extra["type"] = "expandable_blockquote"
                stack.append((name, pos, extra))
            i = end + 1
            continue
        out.append(char)
        pos += utf16_len(char)
        i += 1
    if stack:
        raise _EntityParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1][0]}"')
    return "".join(out), _sorted_entities(entities)


_MDV2_RESERVED = frozenset("_*[]()~`>#+-=|{}.!")
_MDV2_ENTITY = {
    "*": "bold",
    "_": "italic",
    "__": "underline",
    "~": "strikethrough",
    "||": "spoiler",
    "`": "code",
    "```": "pre",
    "[": "text_link",
}
_MDV2_NAMES = {
    "bold": "Bold",
    "italic": "Italic",
    "underline": "Underline",
    "strikethrough": "Strikethrough",
    "spoiler": "Spoiler",
    "code": "Code",
    "pre": "Pre",
    "text_link": "TextUrl",
}


def _parse_markdown_v2(text: str) -> tuple[str, list[JSONDict]]:
    out: list[str] = []
    pos = 0
    stack: list[tuple[str, int, int, JSONDict]] = []
    entities: list[JSONDict] = []

    def emit(chars: str) -> None:
        nonlocal pos
        out.append(chars)
        pos += utf16_len(chars)

    def close(extra: JSONDict | None = None) -> None:
        marker, start, _, info = stack.pop()
        if pos > start:
            entities.append(
                {
                    "type": _MDV2_ENTITY[marker],
                    "offset": start,
                    "length": pos - start,
                    **info,
                    **(extra or {}),
                }
            )

    i = 0
    n = len(text)
    while i < n:
        char = text[i]
        if char == "\\" and i + 1 < n and 0 < ord(text[i + 1]) <= 126:
            emit(text[i + 1])
            i += 2
            continue
        top = stack[-1][0] if stack else None
        if top in ("`", "```"):
            if text.startswith(top, i):
                close()
                i += len(top)
            else:
                emit(char)
                i += 1
            continue
        if char == "`":
            if text.startswith("```", i):
                newline = text.find("\n", i + 3)
                language = text[i + 3 : newline] if newline != -1 else ""
                info: JSONDict = {"language": language} if language.strip() else {}
                stack.append(("```", pos, _byte_offset(text, i), info))
                i = newline + 1 if newline != -1 and language.strip() else i + 3
            else:
                stack.append(("`", pos, _byte_offset(text, i), {}))
                i += 1
            continue
        if char in "*_~|":
            marker = char
            if char == "_" and top != "_" and text.startswith("__", i):
                marker = "__"
            elif char == "|":
                if not text.startswith("||", i):
                    raise _EntityParseError(
                        "Character '|' is reserved and must be escaped with the preceding '\\'"
                    )
                marker = "||"
            open_markers = [entry[0] for entry in stack]
            if marker in open_markers:
                if top != marker:
                    name = _MDV2_NAMES[_MDV2_ENTITY[stack[-1][0]]]
                    raise _EntityParseError(
                        f"Can't find end of {name} entity at byte offset {stack[-1][2]}"
                    )
                close()
            else:
                stack.append((marker, pos, _byte_offset(text, i), {}))
            i += len(marker)
            continue
        if char == "[":
            stack.append(("[", pos, _byte_offset(text, i), {}))
            i += 1
            continue
        if char == "]" and top == "[":
            if text.startswith("(", i + 1):
                j = i + 2
                url: list[str] = []
                while j < n and text[j] != ")":
                    if text[j] == "\\" and j + 1 < n:
                        url.append(text[j + 1])
                        j += 2
                        continue
                    url.append(text[j])
                    j += 1
                if j >= n:
                    raise _EntityParseError(
                        f"Can't find end of a URL at byte offset {_byte_offset(text, i + 1)}"
                    )
                close({"url": "".join(url)})
                i = j + 1
            else:
                stack.pop()
                i += 1
            continue
        if char == ">" and (i == 0 or text[i - 1] == "\n"):
            i += 1
            continue
        if char in _MDV2_RESERVED:
            raise _EntityParseError(
                f"Character '{char}' is reserved and must be escaped with the preceding '\\'"
            )
        emit(char)
        i += 1
    if stack:
        marker, _, offset, _ = stack[-1]
        name = _MDV2_NAMES[_MDV2_ENTITY[marker]]
        raise _EntityParseError(f"Can't find end of {name} entity at byte offset {offset}")
    return "".join(out), _sorted_entities(entities)


def _parse_markdown(text: str) -> tuple[str, list[JSONDict]]:
    out: list[str] = []
    pos = 0
    entities: list[JSONDict] = []
    kinds = {"*": "bold", "_": "italic", "`": "code", "```": "pre"}

    def add(kind: str, content: str, **extra: Any) -> None:
        nonlocal pos
        length = utf16_len(content)
        if length:
            entities.append({"type": kind, "offset": pos, "length": length, **extra})
        out.append(content)
        pos += length

    def missing(index: int) -> _EntityParseError:
        return _EntityParseError(
            f"Can't find end of the entity starting at byte offset {_byte_offset(text, index)}"
        )

    i = 0
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text) and text[i + 1] in "_*`[":
            add("", text[i + 1])
            i += 2
        elif char in "*_`":
            marker = "```" if text.startswith("```", i) else char
            end = text.find(marker, i + len(marker))
            if end == -1:
                raise missing(i)
            add(kinds[marker], text[i + len(marker) : end])
            i = end + len(marker)
        elif char == "[":
            end = text.find("]", i + 1)
            if end == -1:
                raise missing(i)
            if text.startswith("(", end + 1):
                close = text.find(")", end + 2)
                if close == -1:
                    raise missing(i)
                add("text_link", text[i + 1 : end], url=text[end + 2 : close])
                i = close + 1
            else:
                add("", text[i : end + 1])
                i = end + 1
        else:
            add("", char)
            i += 1
    return "".join(out), [entity for entity in entities if entity["type"]]


def parse_entities(text: str, parse_mode: str) -> tuple[str, list[JSONDict]]:
    """Render text with parse_mode into (plain text, entities); ValueError on bad markup."""
    mode = parse_mode.lower()
    try:
        if mode == "html":
            return _parse_html(text)
        if mode == "markdownv2":
            return _parse_markdown_v2(text)
        if mode == "markdown":
            return _parse_markdown(text)
    except _EntityParseError as exc:
        raise ValueError(str(exc)) from exc
    raise ValueError(f"Unsupported parse_mode {parse_mode!r}")


# --- state -----------------------------------------------------------------------------


class _Signal:
    """Broadcast wake-up: waiters grab the current event, notify() sets and replaces it."""

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        event, self._event = self._event, asyncio.Event()
        event.set()

    async def wait(self, seconds: float) -> bool:
        """Wait up to `seconds` for the next notify(); return False on timeout."""
        if seconds <= 0:
            return False
        try:
            await asyncio.wait_for(self._event.wait(), seconds)
        except TimeoutError:
            return False
        return True


@dataclass(eq=False)
class BotState:
    """Per-token state of one fake bot."""

    token: str
    user: JSONDict
    updates: deque[JSONDict] = field(default_factory=deque)
    next_update_id: int = 1
    webhook_url: str = ""
    allowed_updates: list[str] | None = None
    commands: dict[tuple[str, str], list[JSONDict]] = field(default_factory=dict)
    profile: dict[str, str] = field(default_factory=dict)
    poll_generation: int = 0
    wakeup: _Signal = field(default_factory=_Signal)


@dataclass(eq=False)
class ChatState:
    """Per-chat state: recorded outbound calls and current messages."""

    chat_id: ChatKey
    records: list[CallRecord] = field(default_factory=list)
    messages: dict[int, JSONDict] = field(default_factory=dict)
    last_message_id: int = 0
    user: JSONDict | None = None
    changed: _Signal = field(default_factory=_Signal)
    chat_type: str | None = None

    def next_message_id(self) -> int:
        """Allocate the next message_id in this chat."""
        self.last_message_id += 1
        return self.last_message_id


@dataclass
class _StoredFile:
    file_id: str
    file_unique_id: str
    file_path: str
    data: bytes | None
    file_name: str | None = None
    mime_type: str | None = None

    @property
    def content(self) -> bytes:
        return self.data if self.data is not None else f"fake-file:{self.file_id}".encode()


@dataclass(frozen=True)
class FloodLimits:
    """Telegram's flood limits for one bot token; None switches one limit off."""

    overall_per_second: int | None = 30
    per_chat_per_second: int | None = 1
    per_group_per_minute: int | None = 20

    def __post_init__(self) -> None:
        for name in ("overall_per_second", "per_chat_per_second", "per_group_per_minute"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be at least 1 or None, not {value!r}")


@dataclass
class FloodRefusals:
    """How many sends the flood limits refused with 429, by reason."""

    overall: int = 0
    chat: int = 0
    group: int = 0

    @property
    def total(self) -> int:
        """All refusals together."""
        return self.overall + self.chat + self.group

    def count(self, reason: FloodReason) -> None:
        """Count one refusal."""
        setattr(self, reason, getattr(self, reason) + 1)


@dataclass(eq=False)
class _FloodWindows:
    """Clock times of one token's recent sends: overall and per chat."""

    overall: deque[float] = field(default_factory=deque)
    chats: dict[ChatKey, deque[float]] = field(default_factory=dict)
    swept: float = -math.inf

    def sweep(self, now: float) -> None:
        """At most once a minute, forget chats with no send within the longest window."""
        if now - self.swept < _GROUP_WINDOW:
            return
        self.swept = now
        cutoff = now - _GROUP_WINDOW
        self.chats = {key: sent for key, sent in self.chats.items() if sent and sent[-1] > cutoff}


@dataclass(eq=False)
class _FloodSlot:
    """A send admitted into its windows; released again if the call then fails."""

    time: float
    windows: list[deque[float]]

    def release(self) -> None:
        """Give the slot back: a failed send does not count."""
        for window in self.windows:
            with contextlib.suppress(ValueError):
                window.remove(self.time)


class _FloodCheck(NamedTuple):
    """One limit a send must pass: at most `limit` sends in any rolling `span` seconds."""

    reason: FloodReason
    window: deque[float]
    limit: int
    span: float

    def wait(self, now: float) -> float:
        """Prune sends older than the span; seconds until one more fits (0: now)."""
        cutoff = now - self.span
        while self.window and self.window[0] <= cutoff:
            self.window.popleft()
        if len(self.window) < self.limit:
            return 0.0
        return self.window[len(self.window) - self.limit] + self.span - now


def _retry_after(wait: float) -> int:
    """Whole seconds (at least 1) to wait, tolerant of float noise."""
    return max(1, math.ceil(wait - 1e-9))


@dataclass
class _Fault:
    method: str
    status: int | None
    retry_after: int | None
    description: str | None
    remaining: int
    delay: float | None
    token: str | None
    chat_id: ChatKey | None

    def matches(self, method: str, token: str, chat_id: ChatKey | None) -> bool:
        wanted = self.method.lower()
        if wanted == "*":
            if method == "getUpdates":
                return False
        elif wanted != method.lower():
            return False
        if self.token is not None and self.token != token:
            return False
        return self.chat_id is None or self.chat_id == chat_id

    def error(self) -> ApiError:
        status = self.status or 500
        parameters: JSONDict | None = None
        description = self.description
        if status == 429:
            retry_after = self.retry_after or 1
            parameters = {"retry_after": retry_after}
            description = description or f"Too Many Requests: retry after {retry_after}"
        elif self.retry_after:
            parameters = {"retry_after": self.retry_after}
        if description is None:
            description = _DEFAULT_DESCRIPTIONS.get(status) or HTTPStatus(status).phrase
        return ApiError(status, description, parameters)


# --- server ----------------------------------------------------------------------------


class FakeTelegramServer:
    """In-process fake of the Telegram Bot API over real HTTP."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        bot_username: str = "tipline_test_bot",
        bot_first_name: str = "Tipline Test Bot",
        max_poll_timeout: float = 2.0,
        strict: bool = True,
        flood_limits: FloodLimits | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.host = host
        self.port = port
        self.bot_username = bot_username
        self.bot_first_name = bot_first_name
        self.max_poll_timeout = max_poll_timeout
        self.strict = strict
        self.calls: list[CallRecord] = []
        self.answered_callbacks: dict[str, JSONDict] = {}
        self.downloads: list[str] = []
        self.blocked_chats: set[ChatKey] = set()
        self.member_status: dict[tuple[ChatKey, int], str] = {}
        self.flood_limits = flood_limits
        self.flood_refusals = FloodRefusals()
        self.clock = clock
        self._flood: dict[str, _FloodWindows] = {}
        self._bots: dict[str, BotState] = {}
        self._chats: dict[ChatKey, ChatState] = {}
        self._users: dict[int, JSONDict] = {}
        self._files: dict[str, _StoredFile] = {}
        self._files_by_path: dict[str, _StoredFile] = {}
        self._callback_chats: dict[str, ChatKey] = {}
        self._faults: list[_Fault] = []
        self._ids = itertools.count(1)
        self._calls_signal = _Signal()
        self._runner: web.AppRunner | None = None
        self._stopping = False
        self._handlers: dict[str, tuple[str, Handler]] = {}
        self._install_default_handlers()

    # lifecycle

    async def start(self) -> None:
        """Start listening (port 0 picks a free port)."""
        self._stopping = False
        app = web.Application(client_max_size=MAX_UPLOAD_SIZE)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_get("/file/bot{token}/{file_path:.+}", self._handle_download)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, backlog=2048)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        """Stop the server, releasing any pending long polls first."""
        self._stopping = True
        for bot in self._bots.values():
            bot.wakeup.notify()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        """Value for ApplicationBuilder().base_url()."""
        return f"http://{self.host}:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        """Value for ApplicationBuilder().base_file_url()."""
        return f"http://{self.host}:{self.port}/file/bot"

    # state access

    def bot(self, token: str) -> BotState:
        """Return (creating on first use) the state of the bot with this token."""
        bot = self._bots.get(token)
        if bot is None:
            prefix = token.split(":", 1)[0]
            bot_id = int(prefix) if prefix.isdigit() else int(_unique_id(token)[4:], 16) % 10**9
            user = {
                "id": bot_id,
                "is_bot": True,
                "first_name": self.bot_first_name,
                "username": self.bot_username,
                "can_join_groups": True,
                "can_read_all_group_messages": False,
                "supports_inline_queries": False,
                "can_connect_to_business": False,
                "has_main_web_app": False,
            }
            bot = self._bots[token] = BotState(token=token, user=user)
        return bot

    def chat(self, chat_id: ChatKey) -> ChatState:
        """Return (creating on first use) the state of a chat."""
        key = _chat_key(chat_id)
        if key is None:
            raise ValueError(f"invalid chat id {chat_id!r}")
        chat = self._chats.get(key)
        if chat is None:
            chat = self._chats[key] = ChatState(chat_id=key)
        return chat

    @property
    def commands(self) -> dict[tuple[str, str], list[JSONDict]]:
        """Commands set via setMyCommands, keyed by (scope_key(scope), language_code)."""
        merged: dict[tuple[str, str], list[JSONDict]] = {}
        for bot in self._bots.values():
            merged.update(bot.commands)
        return merged

    def sent_to(
        self, chat_id: ChatKey, *, token: str | None = None, include_failed: bool = False
    ) -> list[CallRecord]:
        """Outbound calls addressed to a chat, oldest first (successful ones by default)."""
        chat = self._chats.get(_chat_key(chat_id) or 0)
        if chat is None:
            return []
        return [
            record
            for record in chat.records
            if (include_failed or record["ok"]) and (token is None or record["token"] == token)
        ]

    def calls_of(self, method: str, *, token: str | None = None) -> list[CallRecord]:
        """All recorded calls of one method (case-insensitive)."""
        wanted = method.lower()
        return [
            record
            for record in self.calls
            if record["method"].lower() == wanted and (token is None or record["token"] == token)
        ]

    def bot_messages(self, chat_id: ChatKey, *, token: str | None = None) -> list[JSONDict]:
        """Current (post-edit, non-deleted) messages the bot sent to a chat, oldest first."""
        chat = self._chats.get(_chat_key(chat_id) or 0)
        if chat is None:
            return []
        bot_id = self.bot(token).user["id"] if token is not None else None
        return [
            message
            for message in chat.messages.values()
            if message.get("from", {}).get("is_bot")
            and (bot_id is None or message["from"]["id"] == bot_id)
        ]

    def message(self, chat_id: ChatKey, message_id: int) -> JSONDict | None:
        """Current state of a message in a chat, or None."""
        return self.chat(chat_id).messages.get(message_id)

    def file_bytes(self, file_id: str) -> bytes | None:
        """Bytes stored for a file_id (uploads and register_file), or None."""
        stored = self._files.get(file_id)
        return stored.data if stored is not None else None

    # waiting

    async def wait_for_chat_activity(
        self,
        chat_id: ChatKey,
        since: int,
        *,
        settle: float = 0.15,
        max_wait: float = 10.0,
        require: bool = True,
    ) -> list[CallRecord]:
        """Wait for records beyond index `since` in a chat, then for `settle` s of quiet.

        With require=False, an absence of activity within `settle` returns [] instead of
        raising TimeoutError.
        """
        chat = self.chat(chat_id)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max_wait
        first_wait = settle if not require else max_wait
        while len(chat.records) <= since:
            remaining = min(deadline, loop.time() + first_wait) - loop.time()
            if not await chat.changed.wait(remaining) and len(chat.records) <= since:
                if not require:
                    return []
                raise TimeoutError(
                    f"no bot activity in chat {chat_id} within {max_wait:g}s; "
                    f"recent calls: {self.describe_recent_calls()}"
                )
        while True:
            remaining = min(settle, deadline - loop.time())
            if remaining <= 0:
                break
            count = len(chat.records)
            if not await chat.changed.wait(remaining) and len(chat.records) == count:
                break
        return chat.records[since:]

    async def wait_for_call(
        self,
        method: str,
        *,
        token: str | None = None,
        since: int = 0,
        max_wait: float = 5.0,
    ) -> CallRecord:
        """Wait until a call of `method` is recorded at index >= since; return it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max_wait
        wanted = method.lower()
        index = since
        while True:
            while index < len(self.calls):
                record = self.calls[index]
                index += 1
                if record["method"].lower() == wanted and token in (None, record["token"]):
                    return record
            signalled = await self._calls_signal.wait(deadline - loop.time())
            if not signalled and index >= len(self.calls):
                raise TimeoutError(f"no {method} call within {max_wait:g}s")

    def describe_recent_calls(self, limit: int = 8) -> str:
        """Human-readable summary of the last non-getUpdates calls, for error messages."""
        recent: list[str] = []
        for record in reversed(self.calls):
            if record["method"] == "getUpdates":
                continue
            status = "ok" if record["ok"] else f"error {record['error']}"
            recent.append(f"{record['method']}(chat={record['chat_id']}) {status}")
            if len(recent) >= limit:
                break
        return "; ".join(reversed(recent)) or "none"

    # configuration

    def register_file(
        self,
        file_id: str,
        data: bytes | None,
        *,
        file_name: str | None = None,
        mime_type: str | None = None,
    ) -> None:
        """Make file_id resolvable via getFile and downloadable with these bytes.

        data=None registers metadata only; downloads then serve placeholder bytes.
        """
        self._store_file(file_id, data, file_name=file_name, mime_type=mime_type)

    def register_method(self, name: str, handler: Handler) -> None:
        """Install or override a method: handler(bot_state, params) -> result (may be async)."""
        self._handlers[name.lower()] = (name, handler)

    def fail_next(
        self,
        method: str,
        *,
        status: int | None = None,
        retry_after: int | None = None,
        description: str | None = None,
        count: int = 1,
        delay: float | None = None,
        token: str | None = None,
        chat_id: ChatKey | None = None,
    ) -> None:
        """Make the next `count` matching calls fail ("*" = any method but getUpdates).

        A delay without status only slows the call down (simulating a timeout on the client
        while the side effect still happens); with neither, status defaults to 500.
        """
        if status is None and delay is None:
            status = 500
        self._faults.append(
            _Fault(
                method=method,
                status=status,
                retry_after=retry_after,
                description=description,
                remaining=count,
                delay=delay,
                token=token,
                chat_id=_chat_key(chat_id),
            )
        )

    def clear_faults(self) -> None:
        """Drop all pending injected faults."""
        self._faults.clear()

    def enforce_limits(
        self,
        limits: FloodLimits | EllipsisType | None = ...,
        /,
        *,
        overall_per_second: int | None = 30,
        per_chat_per_second: int | None = 1,
        per_group_per_minute: int | None = 20,
    ) -> FloodLimits | None:
        """Refuse sends over Telegram's flood limits with 429 (the keywords, or `limits`).

        enforce_limits(None) turns enforcement off and forgets the recorded sends.
        """
        if isinstance(limits, EllipsisType):
            limits = FloodLimits(overall_per_second, per_chat_per_second, per_group_per_minute)
        self.flood_limits = limits
        if limits is None:
            self._flood.clear()
        return limits

    def set_member_status(self, chat_id: ChatKey, user_id: int, status: str) -> None:
        """Set what getChatMember reports (member, administrator, creator, left, kicked)."""
        key = _chat_key(chat_id)
        if key is None:
            raise ValueError(f"invalid chat id {chat_id!r}")
        self.member_status[(key, user_id)] = status

    # update injection

    def inject_update(self, token: str, update: JSONDict) -> int:
        """Queue an update for getUpdates, assigning and returning its update_id."""
        bot = self.bot(token)
        queued = dict(update)
        update_id = bot.next_update_id
        bot.next_update_id += 1
        queued["update_id"] = update_id
        self._remember_incoming(queued)
        kind = next((key for key in queued if key != "update_id"), None)
        if not bot.allowed_updates or kind in bot.allowed_updates:
            bot.updates.append(queued)
            bot.wakeup.notify()
        return update_id

    def message_update(
        self,
        user: JSONDict,
        chat_id: ChatKey,
        text: str | None = None,
        *,
        photo: str | list[JSONDict] | None = None,
        sticker: str | JSONDict | bool | None = None,
        location: tuple[float, float] | JSONDict | None = None,
        document: str | JSONDict | None = None,
        voice: str | JSONDict | None = None,
        video: str | JSONDict | None = None,
        caption: str | None = None,
        media_group_id: str | None = None,
        reply_to_message: JSONDict | None = None,
    ) -> JSONDict:
        """Build a {"message": ...} update from a user (not yet injected)."""
        sender: JSONDict = {"is_bot": False, **user}
        key = _chat_key(chat_id)
        if key is None:
            raise ValueError(f"invalid chat id {chat_id!r}")
        chat = self.chat(key)
        if isinstance(key, int) and key > 0:
            chat.user = sender
        self._users[int(sender["id"])] = sender
        message: JSONDict = {
            "message_id": chat.next_message_id(),
            "date": int(time.time()),
            "chat": self._chat_object(key),
            "from": sender,
        }
        if text is not None:
            message["text"] = text
            if text.startswith("/"):
                command = text.split(maxsplit=1)[0]
                message["entities"] = [
                    {"type": "bot_command", "offset": 0, "length": utf16_len(command)}
                ]
        if photo is not None:
            message["photo"] = (
                photo if isinstance(photo, list) else self._photo_sizes(self._known(photo))
            )
        if sticker is not None and sticker is not False:
            if isinstance(sticker, dict):
                message["sticker"] = sticker
            else:
                file_id = sticker if isinstance(sticker, str) else f"sticker-{next(self._ids)}"
                message["sticker"] = self._sticker(self._known(file_id, kind="stickers"))
        if location is not None:
            message["location"] = (
                location
                if isinstance(location, dict)
                else {"latitude": location[0], "longitude": location[1]}
            )
        if document is not None:
            message["document"] = (
                document
                if isinstance(document, dict)
                else self._file_json(self._known(document, kind="documents"))
            )
        if voice is not None:
            message["voice"] = (
                voice
                if isinstance(voice, dict)
                else {
                    **self._file_json(self._known(voice, kind="voice")),
                    "duration": 3,
                    "mime_type": "audio/ogg",
                }
            )
        if video is not None:
            message["video"] = (
                video
                if isinstance(video, dict)
                else {
                    **self._file_json(self._known(video, kind="videos")),
                    "width": 640,
                    "height": 480,
                    "duration": 5,
                }
            )
        if caption is not None:
            message["caption"] = caption
        if media_group_id is not None:
            message["media_group_id"] = media_group_id
        if reply_to_message is not None:
            message["reply_to_message"] = reply_to_message
        return {"message": message}

    def callback_update(
        self, user: JSONDict, chat_id: ChatKey, message: JSONDict, data: str | None
    ) -> JSONDict:
        """Build a {"callback_query": ...} update for a press on a bot message's button."""
        key = _chat_key(chat_id)
        if key is None:
            raise ValueError(f"invalid chat id {chat_id!r}")
        query_id = str(4_000_000_000_000_000 + next(self._ids))
        self._callback_chats[query_id] = key
        query: JSONDict = {
            "id": query_id,
            "from": {"is_bot": False, **user},
            "chat_instance": f"-{abs(hash(key)) % 10**18}",
            "message": message,
        }
        if data is not None:
            query["data"] = data
        return {"callback_query": query}

    # HTTP plumbing

    async def _handle_api(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        bot = self.bot(token)
        method, handler = self._handlers.get(
            request.match_info["method"].lower(), (request.match_info["method"], None)
        )
        params: JSONDict = {}
        chat_key: ChatKey | None = None
        slot: _FloodSlot | None = None
        try:
            params = await self._read_params(request)
            chat_key = self._record_chat(method, params)
            fault = self._take_fault(method, token, chat_key)
            if fault is not None:
                if fault.delay:
                    await asyncio.sleep(fault.delay)
                if fault.status is not None:
                    raise fault.error()
            if handler is None:
                raise ApiError(404, "Not Found: method not found")
            target = _chat_key(params.get("chat_id"))
            slot = self._admit_send(token, method, target)
            if target in self.blocked_chats and not method.startswith("get"):
                raise ApiError(403, _DEFAULT_DESCRIPTIONS[403])
            result = await self._call_handler(handler, bot, params)
        except ApiError as exc:
            if slot is not None:
                slot.release()
            body = exc.body()
            self._record(token, method, params, chat_key, ok=False, result=None, error=body)
            return web.json_response(body, status=exc.error_code)
        self._record(token, method, params, chat_key, ok=True, result=result, error=None)
        return web.json_response({"ok": True, "result": result})

    def _admit_send(self, token: str, method: str, target: ChatKey | None) -> _FloodSlot | None:
        """Take a slot for a message send, or raise 429 if a flood limit is reached."""
        limits = self.flood_limits
        if limits is None or method.lower() not in _FLOOD_LIMITED:
            return None
        now = self.clock()
        windows = self._flood.setdefault(token, _FloodWindows())
        windows.sweep(now)
        checks = self._flood_checks(limits, windows, target)
        self._refuse_if_flooded(checks, now)
        for check in checks:
            check.window.append(now)
        return _FloodSlot(now, [check.window for check in checks])

    def _flood_checks(
        self, limits: FloodLimits, windows: _FloodWindows, target: ChatKey | None
    ) -> list[_FloodCheck]:
        """The limits one send to `target` must pass: its chat's (if any), then overall."""
        checks: list[_FloodCheck] = []
        if target is not None:
            group = self._is_group(target)
            limit = limits.per_group_per_minute if group else limits.per_chat_per_second
            if limit is not None:
                reason: FloodReason = "group" if group else "chat"
                span = _GROUP_WINDOW if group else _CHAT_WINDOW
                window = windows.chats.setdefault(target, deque())
                checks.append(_FloodCheck(reason, window, limit, span))
        if limits.overall_per_second is not None:
            checks.append(
                _FloodCheck("overall", windows.overall, limits.overall_per_second, _CHAT_WINDOW)
            )
        return checks

    def _refuse_if_flooded(self, checks: list[_FloodCheck], now: float) -> None:
        """Raise Telegram's 429 for the limit that keeps this send waiting longest."""
        waits = [(check.wait(now), check.reason) for check in checks]
        wait, reason = max(waits, key=lambda item: item[0], default=(0.0, "overall"))
        if wait <= 0:
            return
        self.flood_refusals.count(reason)
        retry_after = _retry_after(wait)
        raise ApiError(
            429, f"Too Many Requests: retry after {retry_after}", {"retry_after": retry_after}
        )

    def _is_group(self, key: ChatKey) -> bool:
        """Whether a chat is a group, supergroup or channel (by recorded type, else by id)."""
        chat = self._chats.get(key)
        if chat is not None and chat.chat_type:
            return chat.chat_type != "private"
        return isinstance(key, str) or key < 0

    @staticmethod
    async def _call_handler(handler: Handler, bot: BotState, params: JSONDict) -> Any:
        try:
            result = handler(bot, params)
            if inspect.isawaitable(result):
                result = await result
        except ApiError:
            raise
        except Exception as exc:
            # Surface fake-server bugs and malformed params as recorded API errors.
            raise ApiError(500, f"Internal Server Error: fake handler failed: {exc!r}") from exc
        return result

    async def _handle_download(self, request: web.Request) -> web.StreamResponse:
        stored = self._files_by_path.get(request.match_info["file_path"])
        if stored is None:
            return web.json_response(
                {"ok": False, "error_code": 404, "description": "Not Found"}, status=404
            )
        self.downloads.append(stored.file_path)
        return web.Response(
            body=stored.content, content_type=stored.mime_type or "application/octet-stream"
        )

    async def _read_params(self, request: web.Request) -> JSONDict:
        raw: JSONDict = dict(request.query)
        uploads: dict[str, JSONDict] = {}
        if request.can_read_body:
            if request.content_type == "application/json":
                try:
                    body = json.loads(await request.read() or b"{}")
                except ValueError as exc:
                    raise _bad_request("can't parse JSON request body") from exc
                if not isinstance(body, dict):
                    raise _bad_request("request body must be a JSON object")
                raw.update(body)
            else:
                form = await request.post()
                for key, value in form.items():
                    if isinstance(value, web.FileField):
                        uploads[key] = self._store_upload(
                            value.file.read(), value.filename, value.content_type
                        )
                    else:
                        raw[key] = value
        params = {key: _normalize_param(key, value) for key, value in raw.items()}
        if uploads:
            referenced: set[str] = set()
            params = {
                key: _resolve_attach(value, uploads, referenced) for key, value in params.items()
            }
            for key, upload in uploads.items():
                if key not in referenced:
                    params.setdefault(key, upload)
        return params

    def _record_chat(self, method: str, params: JSONDict) -> ChatKey | None:
        if method == "answerCallbackQuery":
            return self._callback_chats.get(str(params.get("callback_query_id")))
        if method.startswith("get"):
            return None
        return _chat_key(params.get("chat_id"))

    def _take_fault(self, method: str, token: str, chat_key: ChatKey | None) -> _Fault | None:
        for index, fault in enumerate(self._faults):
            if fault.matches(method, token, chat_key):
                fault.remaining -= 1
                if fault.remaining <= 0:
                    del self._faults[index]
                return fault
        return None

    def _record(
        self,
        token: str,
        method: str,
        params: JSONDict,
        chat_key: ChatKey | None,
        *,
        ok: bool,
        result: Any,
        error: JSONDict | None,
    ) -> None:
        record: CallRecord = {
            "token": token,
            "method": method,
            "params": params,
            "time": time.time(),
            "ok": ok,
            "result": result,
            "error": error,
            "chat_id": chat_key,
        }
        self.calls.append(record)
        if chat_key is not None:
            chat = self.chat(chat_key)
            chat.records.append(record)
            chat.changed.notify()
        self._calls_signal.notify()

    # helpers: files

    def _store_file(
        self,
        file_id: str,
        data: bytes | None,
        *,
        file_name: str | None = None,
        mime_type: str | None = None,
        kind: str = "documents",
    ) -> _StoredFile:
        stored = self._files.get(file_id)
        if stored is None:
            suffix = ""
            if file_name and "." in file_name:
                suffix = "." + file_name.rsplit(".", 1)[1]
            else:
                suffix = {
                    "photos": ".jpg",
                    "voice": ".oga",
                    "videos": ".mp4",
                    "stickers": ".webp",
                }.get(kind, "")
            path = f"{kind}/file_{next(self._ids)}{suffix}"
            stored = _StoredFile(file_id, _unique_id(file_id), path, data, file_name, mime_type)
            self._files[file_id] = stored
            self._files_by_path[path] = stored
        else:
            if data is not None:
                stored.data = data
            stored.file_name = file_name or stored.file_name
            stored.mime_type = mime_type or stored.mime_type
        return stored

    def _known(self, file_id: str, *, kind: str = "photos") -> _StoredFile:
        return self._files.get(file_id) or self._store_file(file_id, None, kind=kind)

    def _store_upload(
        self, data: bytes, filename: str | None, content_type: str | None
    ) -> JSONDict:
        file_id = f"BQACAgupload{next(self._ids)}"
        stored = self._store_file(file_id, data, file_name=filename, mime_type=content_type)
        descriptor = self._file_json(stored)
        descriptor["upload"] = True
        return descriptor

    @staticmethod
    def _file_json(stored: _StoredFile) -> JSONDict:
        result: JSONDict = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(stored.content),
        }
        if stored.file_name:
            result["file_name"] = stored.file_name
        if stored.mime_type:
            result["mime_type"] = stored.mime_type
        return result

    def _photo_sizes(self, stored: _StoredFile) -> list[JSONDict]:
        return [
            {
                "file_id": stored.file_id,
                "file_unique_id": stored.file_unique_id,
                "width": 1280,
                "height": 960,
                "file_size": len(stored.content),
            }
        ]

    def _sticker(self, stored: _StoredFile) -> JSONDict:
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
            "emoji": "\N{THUMBS UP SIGN}",
            "file_size": len(stored.content),
        }

    def _input_file(self, params: JSONDict, key: str, kind: str) -> _StoredFile:
        ref = params.get(key)
        if isinstance(ref, dict) and isinstance(ref.get("file_id"), str):
            return self._known(ref["file_id"], kind=kind)
        if isinstance(ref, str) and ref:
            if ref.startswith(("http://", "https://")):
                return self._store_file(f"BQACAgurl{next(self._ids)}", None, kind=kind)
            if self.strict and ref not in self._files:
                raise _bad_request("wrong file identifier/HTTP URL specified")
            return self._known(ref, kind=kind)
        raise _bad_request(f"there is no {key} in the request")

    # helpers: messages

    def _chat_object(self, key: ChatKey) -> JSONDict:
        if isinstance(key, str):
            return {
                "id": -1_000_000_000_000 - int(_unique_id(key)[4:], 16) % 10**9,
                "type": "channel",
                "title": key.lstrip("@"),
                "username": key.lstrip("@"),
            }
        if key < 0:
            kind = "supergroup" if str(key).startswith("-100") else "group"
            return {"id": key, "type": kind, "title": f"Chat {key}"}
        user = self._chats[key].user if key in self._chats else None
        user = user or self._users.get(key) or {}
        chat: JSONDict = {
            "id": key,
            "type": "private",
            "first_name": user.get("first_name", "User"),
        }
        for optional in ("last_name", "username"):
            if user.get(optional):
                chat[optional] = user[optional]
        return chat

    def _target(self, params: JSONDict, name: str = "chat_id") -> ChatState:
        key = _chat_key(params.get(name))
        if key is None:
            raise _bad_request(f"{name} is empty")
        return self.chat(key)

    def _inline_markup(self, markup: Any) -> JSONDict | None:
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise _bad_request("can't parse reply keyboard markup JSON object")
        if "inline_keyboard" not in markup:
            return None
        rows = markup["inline_keyboard"]
        if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
            raise _bad_request("can't parse inline keyboard button: InlineKeyboardMarkup expected")
        if self.strict:
            for row in rows:
                for button in row:
                    _check_button(button)
        return markup

    def _render(
        self, params: JSONDict, key: str, *, required: bool, limit: int
    ) -> tuple[str | None, list[JSONDict]]:
        raw = params.get(key)
        entities_key = "entities" if key == "text" else f"{key}_entities"
        if raw is None or raw == "":
            if required:
                raise _bad_request(f"message {key} is empty")
            return None, []
        text = str(raw)
        entities: list[JSONDict] = []
        parse_mode = params.get("parse_mode")
        if parse_mode:
            try:
                text, entities = parse_entities(text, str(parse_mode))
            except ValueError as exc:
                if self.strict:
                    raise _bad_request(f"can't parse entities: {exc}") from exc
                text = str(raw)
        elif isinstance(params.get(entities_key), list):
            entities = params[entities_key]
        if self.strict:
            if required and not text.strip():
                raise _bad_request(f"message {key} is empty")
            if utf16_len(text) > limit:
                raise _bad_request(
                    "message is too long" if key == "text" else "message caption is too long"
                )
        return text, entities

    def _new_message(
        self, bot: BotState, params: JSONDict, content: JSONDict, *, caption: bool = False
    ) -> JSONDict:
        chat = self._target(params)
        message: JSONDict = {
            "message_id": 0,
            "date": int(time.time()),
            "chat": self._chat_object(chat.chat_id),
            "from": bot.user,
        }
        message.update(content)
        if caption:
            text, entities = self._render(params, "caption", required=False, limit=CAPTION_LIMIT)
            if text is not None:
                message["caption"] = text
                if entities:
                    message["caption_entities"] = entities
        markup = self._inline_markup(params.get("reply_markup"))
        if markup is not None:
            message["reply_markup"] = markup
        reply = params.get("reply_parameters")
        reply_id = reply.get("message_id") if isinstance(reply, dict) else None
        reply_id = reply_id or params.get("reply_to_message_id")
        if reply_id:
            original = chat.messages.get(int(reply_id))
            if original is not None:
                message["reply_to_message"] = {
                    k: v for k, v in original.items() if k != "reply_to_message"
                }
            elif self.strict and not (
                params.get("allow_sending_without_reply")
                or (isinstance(reply, dict) and reply.get("allow_sending_without_reply"))
            ):
                raise _bad_request("message to be replied not found")
        if params.get("message_thread_id"):
            message["message_thread_id"] = params["message_thread_id"]
        message["message_id"] = chat.next_message_id()
        chat.messages[message["message_id"]] = message
        return message

    def _editable(self, bot: BotState, params: JSONDict) -> tuple[ChatState, JSONDict] | None:
        if params.get("inline_message_id"):
            return None
        chat = self._target(params)
        message_id = params.get("message_id")
        message = chat.messages.get(message_id) if isinstance(message_id, int) else None
        if message is None:
            raise _bad_request("message to edit not found")
        if message.get("from", {}).get("id") != bot.user["id"]:
            raise _bad_request("message can't be edited")
        return chat, message

    def _commit_edit(self, chat: ChatState, old: JSONDict, new: JSONDict) -> JSONDict:
        if self.strict and all(
            old.get(key) == new.get(key)
            for key in ("text", "entities", "caption", "caption_entities", "reply_markup")
        ):
            raise _bad_request(_NOT_MODIFIED.removeprefix("Bad Request: "))
        new["edit_date"] = int(time.time())
        chat.messages[new["message_id"]] = new
        return new

    def _remember_incoming(self, update: JSONDict) -> None:
        for kind in ("message", "edited_message", "channel_post", "business_message"):
            message = update.get(kind)
            if isinstance(message, dict) and isinstance(message.get("chat"), dict):
                chat = self.chat(message["chat"]["id"])
                chat.chat_type = message["chat"].get("type") or chat.chat_type
                message_id = int(message.get("message_id", 0))
                chat.messages[message_id] = message
                chat.last_message_id = max(chat.last_message_id, message_id)
                sender = message.get("from")
                if isinstance(sender, dict) and "id" in sender:
                    self._users[int(sender["id"])] = sender
        query = update.get("callback_query")
        if isinstance(query, dict) and "id" in query:
            message = query.get("message")
            if isinstance(message, dict) and isinstance(message.get("chat"), dict):
                self._callback_chats.setdefault(str(query["id"]), message["chat"]["id"])

    def _pending_updates(self, bot: BotState, offset: int, limit: int) -> list[JSONDict]:
        queue = bot.updates
        if offset < 0:
            while len(queue) > -offset:
                queue.popleft()
        else:
            while queue and queue[0]["update_id"] < offset:
                queue.popleft()
        return list(itertools.islice(queue, limit))

    # method handlers

    def _install_default_handlers(self) -> None:
        handlers: dict[str, Handler] = {
            "getMe": lambda bot, params: bot.user,
            "logOut": lambda bot, params: True,
            "close": lambda bot, params: True,
            "getUpdates": self._get_updates,
            "setWebhook": self._set_webhook,
            "deleteWebhook": self._delete_webhook,
            "getWebhookInfo": self._get_webhook_info,
            "sendMessage": self._send_message,
            "sendPhoto": self._send_photo,
            "sendDocument": self._send_document,
            "sendVoice": self._send_voice,
            "sendVideo": self._send_video,
            "sendAudio": self._send_audio,
            "sendAnimation": self._send_animation,
            "sendSticker": self._send_sticker,
            "sendLocation": self._send_location,
            "sendMediaGroup": self._send_media_group,
            "sendChatAction": self._send_chat_action,
            "forwardMessage": self._forward_message,
            "copyMessage": self._copy_message,
            "editMessageText": self._edit_message_text,
            "editMessageCaption": self._edit_message_caption,
            "editMessageReplyMarkup": self._edit_message_reply_markup,
            "deleteMessage": self._delete_message,
            "deleteMessages": self._delete_messages,
            "answerCallbackQuery": self._answer_callback_query,
            "setMyCommands": self._set_my_commands,
            "getMyCommands": self._get_my_commands,
            "deleteMyCommands": self._delete_my_commands,
            "setMyName": lambda bot, params: self._set_profile(bot, params, "name"),
            "getMyName": lambda bot, params: {
                "name": bot.profile.get("name", bot.user["first_name"])
            },
            "setMyDescription": lambda bot, params: self._set_profile(bot, params, "description"),
            "getMyDescription": lambda bot, params: {
                "description": bot.profile.get("description", "")
            },
            "setMyShortDescription": lambda bot, params: self._set_profile(
                bot, params, "short_description"
            ),
            "getMyShortDescription": lambda bot, params: {
                "short_description": bot.profile.get("short_description", "")
            },
            "getChatMenuButton": lambda bot, params: {"type": "default"},
            "getFile": self._get_file,
            "getChat": self._get_chat,
            "getChatMember": self._get_chat_member,
        }
        for name in _OK_METHODS:
            handlers[name] = lambda bot, params: True
        for name, handler in handlers.items():
            self.register_method(name, handler)

    async def _get_updates(self, bot: BotState, params: JSONDict) -> list[JSONDict]:
        if bot.webhook_url:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset = int(params.get("offset") or 0)
        limit = max(1, min(int(params.get("limit") or 100), 100))
        timeout = max(0.0, min(float(params.get("timeout") or 0), self.max_poll_timeout))
        allowed = params.get("allowed_updates")
        if isinstance(allowed, list):
            bot.allowed_updates = [str(kind) for kind in allowed] or None
        bot.poll_generation += 1
        generation = bot.poll_generation
        bot.wakeup.notify()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            updates = self._pending_updates(bot, offset, limit)
            if updates or self._stopping:
                return updates
            if not await bot.wakeup.wait(deadline - loop.time()):
                return self._pending_updates(bot, offset, limit)
            if bot.poll_generation != generation:
                raise ApiError(409, _DEFAULT_DESCRIPTIONS[409])

    def _set_webhook(self, bot: BotState, params: JSONDict) -> bool:
        bot.webhook_url = str(params.get("url") or "")
        if params.get("drop_pending_updates"):
            bot.updates.clear()
        allowed = params.get("allowed_updates")
        if isinstance(allowed, list):
            bot.allowed_updates = [str(kind) for kind in allowed] or None
        return True

    def _delete_webhook(self, bot: BotState, params: JSONDict) -> bool:
        bot.webhook_url = ""
        if params.get("drop_pending_updates"):
            bot.updates.clear()
        return True

    def _get_webhook_info(self, bot: BotState, params: JSONDict) -> JSONDict:
        info: JSONDict = {
            "url": bot.webhook_url,
            "has_custom_certificate": False,
            "pending_update_count": len(bot.updates),
        }
        if bot.allowed_updates:
            info["allowed_updates"] = bot.allowed_updates
        return info

    def _send_message(self, bot: BotState, params: JSONDict) -> JSONDict:
        text, entities = self._render(params, "text", required=True, limit=MESSAGE_LIMIT)
        content: JSONDict = {"text": text}
        if entities:
            content["entities"] = entities
        if isinstance(params.get("link_preview_options"), dict):
            content["link_preview_options"] = params["link_preview_options"]
        return self._new_message(bot, params, content)

    def _send_photo(self, bot: BotState, params: JSONDict) -> JSONDict:
        photo = self._photo_sizes(self._input_file(params, "photo", "photos"))
        return self._new_message(bot, params, {"photo": photo}, caption=True)

    def _send_document(self, bot: BotState, params: JSONDict) -> JSONDict:
        document = self._file_json(self._input_file(params, "document", "documents"))
        return self._new_message(bot, params, {"document": document}, caption=True)

    def _send_voice(self, bot: BotState, params: JSONDict) -> JSONDict:
        voice = self._file_json(self._input_file(params, "voice", "voice"))
        voice["duration"] = int(params.get("duration") or 1)
        return self._new_message(bot, params, {"voice": voice}, caption=True)

    def _send_video(self, bot: BotState, params: JSONDict) -> JSONDict:
        video = self._file_json(self._input_file(params, "video", "videos"))
        video.update(
            width=int(params.get("width") or 640),
            height=int(params.get("height") or 480),
            duration=int(params.get("duration") or 1),
        )
        return self._new_message(bot, params, {"video": video}, caption=True)

    def _send_audio(self, bot: BotState, params: JSONDict) -> JSONDict:
        audio = self._file_json(self._input_file(params, "audio", "music"))
        audio["duration"] = int(params.get("duration") or 1)
        return self._new_message(bot, params, {"audio": audio}, caption=True)

    def _send_animation(self, bot: BotState, params: JSONDict) -> JSONDict:
        animation = self._file_json(self._input_file(params, "animation", "animations"))
        animation.update(width=320, height=240, duration=int(params.get("duration") or 1))
        return self._new_message(bot, params, {"animation": animation}, caption=True)

    def _send_sticker(self, bot: BotState, params: JSONDict) -> JSONDict:
        sticker = self._sticker(self._input_file(params, "sticker", "stickers"))
        return self._new_message(bot, params, {"sticker": sticker})

    def _send_location(self, bot: BotState, params: JSONDict) -> JSONDict:
        try:
            location = {
                "latitude": float(params["latitude"]),
                "longitude": float(params["longitude"]),
            }
        except (KeyError, TypeError, ValueError) as exc:
            raise _bad_request("wrong latitude or longitude") from exc
        return self._new_message(bot, params, {"location": location})

    def _send_media_group(self, bot: BotState, params: JSONDict) -> list[JSONDict]:
        media = params.get("media")
        if not isinstance(media, list) or not media:
            raise _bad_request("media is empty")
        group_id = str(10**17 + next(self._ids))
        messages: list[JSONDict] = []
        folders = {"photo": "photos", "video": "videos", "document": "documents", "audio": "music"}
        for item in media:
            if not isinstance(item, dict) or item.get("type") not in folders:
                raise _bad_request("wrong media type in media group")
            kind = str(item["type"])
            stored = self._input_file(item, "media", folders[kind])
            content: JSONDict
            if kind == "photo":
                content = {"photo": self._photo_sizes(stored)}
            elif kind == "video":
                content = {
                    "video": {**self._file_json(stored), "width": 640, "height": 480, "duration": 1}
                }
            elif kind == "audio":
                content = {"audio": {**self._file_json(stored), "duration": 1}}
            else:
                content = {"document": self._file_json(stored)}
            content["media_group_id"] = group_id
            item_params = {**params, **item}
            item_params.pop("reply_markup", None)
            messages.append(self._new_message(bot, item_params, content, caption=True))
        return messages

    def _source_message(self, params: JSONDict, action: str) -> JSONDict:
        source = self._target(params, "from_chat_id")
        message_id = params.get("message_id")
        message = source.messages.get(message_id) if isinstance(message_id, int) else None
        if message is None:
            raise _bad_request(f"message to {action} not found")
        return message

    def _send_chat_action(self, bot: BotState, params: JSONDict) -> bool:
        self._target(params)
        return True

    def _forward_message(self, bot: BotState, params: JSONDict) -> JSONDict:
        original = self._source_message(params, "forward")
        content = {k: v for k, v in original.items() if k not in _ENVELOPE_KEYS}
        sender = original.get("from") or {"id": 0, "is_bot": False, "first_name": "Unknown"}
        content["forward_origin"] = {
            "type": "user",
            "date": original["date"],
            "sender_user": sender,
        }
        forward_params = {k: v for k, v in params.items() if k != "reply_markup"}
        return self._new_message(bot, forward_params, content)

    def _copy_message(self, bot: BotState, params: JSONDict) -> JSONDict:
        original = self._source_message(params, "copy")
        content = {k: v for k, v in original.items() if k not in _ENVELOPE_KEYS}
        if "caption" in params:
            content.pop("caption", None)
            content.pop("caption_entities", None)
        message = self._new_message(bot, params, content, caption="caption" in params)
        return {"message_id": message["message_id"]}

    def _edit_message_text(self, bot: BotState, params: JSONDict) -> JSONDict | bool:
        text, entities = self._render(params, "text", required=True, limit=MESSAGE_LIMIT)
        markup = self._inline_markup(params.get("reply_markup"))
        found = self._editable(bot, params)
        if found is None:
            return True
        chat, old = found
        if "text" not in old:
            raise _bad_request("there is no text in the message to edit")
        new = {
            k: v
            for k, v in old.items()
            if k not in ("text", "entities", "reply_markup", "link_preview_options")
        }
        new["text"] = text
        if entities:
            new["entities"] = entities
        if markup is not None:
            new["reply_markup"] = markup
        if isinstance(params.get("link_preview_options"), dict):
            new["link_preview_options"] = params["link_preview_options"]
        return self._commit_edit(chat, old, new)

    def _edit_message_caption(self, bot: BotState, params: JSONDict) -> JSONDict | bool:
        caption, entities = self._render(params, "caption", required=False, limit=CAPTION_LIMIT)
        markup = self._inline_markup(params.get("reply_markup"))
        found = self._editable(bot, params)
        if found is None:
            return True
        chat, old = found
        if "text" in old:
            raise _bad_request("there is no caption in the message to edit")
        new = {
            k: v for k, v in old.items() if k not in ("caption", "caption_entities", "reply_markup")
        }
        if caption is not None:
            new["caption"] = caption
            if entities:
                new["caption_entities"] = entities
        if markup is not None:
            new["reply_markup"] = markup
        return self._commit_edit(chat, old, new)

    def _edit_message_reply_markup(self, bot: BotState, params: JSONDict) -> JSONDict | bool:
        markup = self._inline_markup(params.get("reply_markup"))
        found = self._editable(bot, params)
        if found is None:
            return True
        chat, old = found
        new = {k: v for k, v in old.items() if k != "reply_markup"}
        if markup is not None:
            new["reply_markup"] = markup
        return self._commit_edit(chat, old, new)

    def _delete_message(self, bot: BotState, params: JSONDict) -> bool:
        chat = self._target(params)
        message_id = params.get("message_id")
        if not isinstance(message_id, int) or chat.messages.pop(message_id, None) is None:
            raise _bad_request("message to delete not found")
        return True

    def _delete_messages(self, bot: BotState, params: JSONDict) -> bool:
        chat = self._target(params)
        ids = params.get("message_ids")
        if not isinstance(ids, list):
            raise _bad_request("message_ids is empty")
        for message_id in ids:
            chat.messages.pop(int(message_id), None)
        return True

    def _answer_callback_query(self, bot: BotState, params: JSONDict) -> bool:
        query_id = str(params.get("callback_query_id") or "")
        if self.strict and (
            query_id not in self._callback_chats or query_id in self.answered_callbacks
        ):
            raise _bad_request(
                "query is too old and response timeout expired or query ID is invalid"
            )
        self.answered_callbacks[query_id] = params
        return True

    def _set_my_commands(self, bot: BotState, params: JSONDict) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list):
            raise _bad_request("can't parse commands JSON object")
        if self.strict:
            if len(commands) > 100:
                raise _bad_request("too much commands")
            for command in commands:
                if not isinstance(command, dict) or not _COMMAND_RE.fullmatch(
                    str(command.get("command", ""))
                ):
                    raise _bad_request("BOT_COMMAND_INVALID")
                if not 1 <= len(str(command.get("description", ""))) <= 256:
                    raise _bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
        key = (scope_key(params.get("scope")), str(params.get("language_code") or ""))
        if commands:
            bot.commands[key] = commands
        else:
            bot.commands.pop(key, None)
        return True

    def _get_my_commands(self, bot: BotState, params: JSONDict) -> list[JSONDict]:
        key = (scope_key(params.get("scope")), str(params.get("language_code") or ""))
        return bot.commands.get(key, [])

    def _delete_my_commands(self, bot: BotState, params: JSONDict) -> bool:
        key = (scope_key(params.get("scope")), str(params.get("language_code") or ""))
        bot.commands.pop(key, None)
        return True

    def _set_profile(self, bot: BotState, params: JSONDict, key: str) -> bool:
        bot.profile[key] = str(params.get(key) or "")
        return True

    def _get_file(self, bot: BotState, params: JSONDict) -> JSONDict:
        file_id = str(params.get("file_id") or "")
        stored = self._files.get(file_id)
        if stored is None:
            if self.strict or not file_id:
                raise _bad_request("invalid file_id")
            stored = self._known(file_id, kind="documents")
        if len(stored.content) > MAX_DOWNLOAD_SIZE:
            raise _bad_request("file is too big")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(stored.content),
            "file_path": stored.file_path,
        }

    def _get_chat(self, bot: BotState, params: JSONDict) -> JSONDict:
        chat = self._target(params)
        return {
            **self._chat_object(chat.chat_id),
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": {
                "unlimited_gifts": True,
                "limited_gifts": True,
                "unique_gifts": True,
                "premium_subscription": True,
                "gifts_from_channels": True,
            },
        }

    def _get_chat_member(self, bot: BotState, params: JSONDict) -> JSONDict:
        chat = self._target(params)
        user_id = params.get("user_id")
        if not isinstance(user_id, int):
            raise _bad_request("invalid user_id specified")
        if user_id == bot.user["id"]:
            user = bot.user
        else:
            user = self._users.get(user_id) or {
                "id": user_id,
                "is_bot": False,
                "first_name": "User",
            }
        status = self.member_status.get((chat.chat_id, user_id), "member")
        member: JSONDict = {"status": status, "user": user}
        if status == "creator":
            member["is_anonymous"] = False
        elif status == "administrator":
            member.update(
                dict.fromkeys(
                    (
                        "can_be_edited",
                        "is_anonymous",
                        "can_post_stories",
                        "can_edit_stories",
                        "can_delete_stories",
                    ),
                    False,
                )
            )
            member.update(
                dict.fromkeys(
                    (
                        "can_manage_chat",
                        "can_delete_messages",
                        "can_manage_video_chats",
                        "can_restrict_members",
                        "can_promote_members",
                        "can_change_info",
                        "can_invite_users",
                    ),
                    True,
                )
            )
        elif status == "kicked":
            member["until_date"] = 0
        return member


def _check_button(button: Any) -> None:
    if not isinstance(button, dict) or not isinstance(button.get("text"), str):
        raise _bad_request("can't parse inline keyboard button: Text buttons are unallowed")
    if not button["text"]:
        raise _bad_request("BUTTON_TEXT_INVALID")
    if not any(action in button for action in _BUTTON_ACTIONS):
        raise _bad_request("can't parse inline keyboard button: Text buttons are unallowed")
    if "callback_data" in button:
        data = button["callback_data"]
        if not isinstance(data, str) or not 1 <= len(data.encode()) <= 64:
            raise _bad_request("BUTTON_DATA_INVALID")
    if "url" in button:
        url = str(button["url"])
        if not url.startswith(("http://", "https://", "tg://")):
            raise _bad_request(f"inline keyboard button URL '{url}' is invalid: Wrong HTTP URL")


def _resolve_attach(value: Any, uploads: dict[str, JSONDict], referenced: set[str]) -> Any:
    if isinstance(value, str) and value.startswith("attach://"):
        name = value.removeprefix("attach://")
        if name in uploads:
            referenced.add(name)
            return uploads[name]
        return value
    if isinstance(value, list):
        return [_resolve_attach(item, uploads, referenced) for item in value]
    if isinstance(value, dict):
        return {key: _resolve_attach(item, uploads, referenced) for key, item in value.items()}
    return value


def _flatten(rows: Iterable[Iterable[JSONDict]]) -> list[JSONDict]:
    return [button for row in rows for button in row]


def inline_buttons(message: JSONDict) -> list[JSONDict]:
    """Flat list of inline keyboard buttons of a message dict (empty if none)."""
    markup = message.get("reply_markup")
    if not isinstance(markup, dict):
        return []
    rows = markup.get("inline_keyboard")
    return _flatten(rows) if isinstance(rows, list) else []
