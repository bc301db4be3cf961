"""What a flow handler gets for one event: the chat, its session, and ways to answer."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.limits import FloodGuard
from handlers.types import TOKEN_SEPARATOR, Button, InboundEvent, OutgoingFile, Reply, Response
from storage.area_catalog import AreaCatalog
from storage.crypto import Vault
from storage.files import FileStore
from storage.models import utcnow
from storage.repositories.chats import ChatState

MAX_ATTACHMENTS = 10


class Translator(Protocol):
    """Looks up a message in the user's language."""

    @property
    def languages(self) -> tuple[str, ...]:
        """Supported language codes."""
        ...

    def __call__(self, language: str, key: str, /, **params: object) -> str:
        """The message for a key, formatted with params."""
        ...

    def has(self, key: str) -> bool:
        """Whether a key exists."""
        ...


@dataclass(frozen=True)
class Limits:
    """Tunable limits, taken from settings by the wiring."""

    conversation_timeout: timedelta = timedelta(minutes=30)
    tips_per_hour: int = 5
    flood_messages: int = 20
    flood_window_seconds: int = 10
    categories: tuple[str, ...] = ("other",)
    max_attachment_bytes: int = 20 * 1024 * 1024
    area_radius_km: float = 3.0


@dataclass(frozen=True)
class Workspace:
    """The officers' side, from settings: where new-tip notices go, how replies are signed."""

    # Chat addresses ("telegram:-100…") of officers' groups: by area code, "*" for every tip.
    officer_chats: dict[str, str] = field(default_factory=dict)
    unit_name: str = ""
    reward_instructions: str = ""


@dataclass
class Services:
    """Long-lived things every handler may use; `areas` is swapped when the catalogue reloads."""

    sessions: async_sessionmaker[AsyncSession]
    # Long reads (counts, exports, catalogue loads): off the event loop where that matters.
    reads: async_sessionmaker[AsyncSession]
    vault: Vault
    translate: Translator
    files: FileStore
    limits: Limits
    areas: AreaCatalog = field(default_factory=lambda: AreaCatalog([]))
    workspace: Workspace = field(default_factory=Workspace)
    # Wrong PINs per tip code, from any chat: a 6-digit PIN must not be guessable by retrying.
    pin_failures: FloodGuard = field(default_factory=lambda: FloodGuard(5, 3600))
    # Wrong invite codes per chat.
    join_failures: FloodGuard = field(default_factory=lambda: FloodGuard(5, 3600))
    # Invite links per channel, with "{code}" for the code; a channel sets its own when it knows it.
    invite_links: dict[str, str] = field(default_factory=dict)

    # Tells broadcasts a run or a delivery is waiting; the wiring sets it.
    wake_broadcasts: Callable[[], None] = lambda: None
    # The scheduler hears of a bulletin paused, resumed or cancelled; and says when it runs next.
    bulletin_changed: Callable[[int], None] = lambda _bulletin_id: None
    next_bulletin_run: Callable[[int], datetime | None] = lambda _bulletin_id: None
    # Why a schedule cannot be used (None: it can); the wiring asks the scheduler.
    check_schedule: Callable[[dict[str, Any], str], str | None] = lambda _schedule, _tz: None
    # Channels whose outbox is drained (others cannot take proactive messages yet).
    proactive_channels: set[str] = field(default_factory=set)

    def invite_link(self, channel: str, code: str) -> str | None:
        """The link that redeems an invite code on a channel, when the channel has links."""
        template = self.invite_links.get(channel)
        return template.replace("{code}", code.replace("-", "")) if template else None


class Context:
    """One event being handled: read the chat, change its state, collect replies."""

    def __init__(
        self,
        services: Services,
        session: AsyncSession,
        chat: ChatState,
        event: InboundEvent,
        *,
        is_new: bool = False,
        stored_files: dict[int, str] | None = None,
    ) -> None:
        self.services = services
        self.session = session
        self.chat = chat
        self.event = event
        self.is_new = is_new
        self.stored_files = stored_files or {}
        self.kept_files: set[str] = set()
        self.response = Response()
        self.now: datetime = utcnow()
        # Run once the event's transaction has committed (e.g. wake the outbox for a new run).
        self.committed: list[Callable[[], None]] = []
        # Long reads answered once the transaction has committed (never while it holds the
        # write lock), their replies placed where they were asked for.
        self.reads_after_commit: list[tuple[int, Callable[[AsyncSession], Awaitable[None]]]] = []

    @property
    def limits(self) -> Limits:
        """Configured limits."""
        return self.services.limits

    @property
    def areas(self) -> AreaCatalog:
        """The area catalogue."""
        return self.services.areas

    @property
    def reply_address(self) -> str:
        """The chat's address for replies, to be stored only encrypted."""
        return f"{self.event.channel}:{self.event.address}"

    @property
    def owner_hash(self) -> str:
        """The keyed hash that links this chat to its tips."""
        return self.chat.address_hash

    def t(self, key: str, /, **params: object) -> str:
        """A message in the chat's language."""
        return self.services.translate(self.chat.language, key, **params)

    def say(self, text: str) -> None:
        """Add a plain message."""
        self.response.replies.append(Reply(text=text))

    def send_file(self, caption: str, file: OutgoingFile) -> None:
        """Add a file (a chart, an export) with a short caption."""
        self.response.replies.append(Reply(text=caption, file=file))

    def show_photo(self, caption: str, photo: str) -> None:
        """Add a stored photo (a tip's cleaned copy) with a short caption."""
        self.response.replies.append(Reply(text=caption, photo=photo))

    def ask(
        self,
        text: str,
        rows: list[list[tuple[str, str]]] | None = None,
        *,
        request_location: bool = False,
        photo: str | None = None,
    ) -> None:
        """Add a message with buttons given as (label, action); they replace any earlier ones."""
        if not self.chat.prompt_token:
            self.chat.prompt_token = secrets.token_urlsafe(4)[:6]
            self.chat.prompt_actions = []
        actions: list[Any] = list(self.chat.prompt_actions)
        button_rows: list[tuple[Button, ...]] = []
        for row in rows or []:
            buttons = []
            for label, action in row:
                token = f"{self.chat.prompt_token}{TOKEN_SEPARATOR}{len(actions)}"
                actions.append([action, label])
                buttons.append(Button(label=label, token=token))
            button_rows.append(tuple(buttons))
        self.chat.prompt_actions = actions
        location_label = self.t("button.share_location") if request_location else None
        hint = self.t("button.location_hint") if request_location and button_rows else None
        self.response.replies.append(
            Reply(
                text=text,
                buttons=tuple(button_rows),
                request_location=location_label,
                location_hint=hint,
                photo=photo,
            )
        )

    def read_after_commit(self, read: Callable[[AsyncSession], Awaitable[None]]) -> None:
        """Run a long read on the read engine after commit; what it says goes here in order."""
        self.reads_after_commit.append((len(self.response.replies), read))

    def retire_prompt(self) -> None:
        """The chat's flow prompt is answered or passed over: its buttons stop working."""
        self.chat.prompt_token = None
        self.chat.prompt_actions = []

    def keep_stored_file(self, index: int) -> str | None:
        """The stored copy of the event's index-th file, kept; None if it was not stored."""
        ref = self.stored_files.get(index)
        if ref is not None:
            self.kept_files.add(ref)
        return ref

    def notice(self, text: str) -> None:
        """A short pop-up answer to a pressed button."""
        self.response.button_notice = text

    def refuse_press(self, text: str) -> None:
        """A pop-up for someone who may not press this; the buttons stay live for who may."""
        self.response.button_notice = text
        self.response.keep_pressed = True

    @property
    def draft(self) -> dict[str, Any]:
        """The current flow's draft (read-only view; change it with update_draft)."""
        return self.chat.data

    def update_draft(self, **values: Any) -> None:
        """Change draft fields; a new dict so the JSON column is saved."""
        self.chat.data = {**self.chat.data, **values}

    def go(self, flow: str, step: str) -> None:
        """Move the conversation to a flow step."""
        self.chat.flow = flow
        self.chat.step = step

    def end_flow(self) -> None:
        """Leave the current flow and drop its draft."""
        self.chat.flow = None
        self.chat.step = None
        self.chat.data = {}
