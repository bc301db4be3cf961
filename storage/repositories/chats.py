"""Chats and their persisted conversation state.

Every event reads and writes its chat, so this path uses Core statements on a plain state object
instead of the ORM's unit of work: one SELECT, and one UPDATE of only the columns that changed.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from sqlalchemy import Select, Table, Update, bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Chat, utcnow
from storage.repositories import subscriptions

_TABLE: Table = Chat.__table__  # type: ignore[assignment]
_STATE_COLUMNS = (
    "flow",
    "step",
    "data",
    "prompt_token",
    "prompt_actions",
    "expired_notice",
    "blocked",
    "language",
    "updated_at",
)


@dataclass(slots=True)
class ChatState:
    """One chat's row as the handlers change it; `save` writes back what changed."""

    id: int
    address_hash: str
    channel: str
    language: str
    flow: str | None = None
    step: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    prompt_token: str | None = None
    prompt_actions: list[Any] = field(default_factory=list)
    expired_notice: bool = False
    blocked: bool = False
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)
    loaded: dict[str, Any] = field(default_factory=dict, repr=False)

    def changes(self) -> dict[str, Any]:
        """The state columns whose values differ from what was loaded."""
        return {
            name: getattr(self, name)
            for name in _STATE_COLUMNS
            if getattr(self, name) != self.loaded.get(name)
        }

    def mark_saved(self) -> None:
        """What is now in the row."""
        # Dicts and lists are replaced, never changed in place, so a shallow copy is enough.
        self.loaded = {name: getattr(self, name) for name in _STATE_COLUMNS}


_COLUMNS = tuple(f.name for f in fields(ChatState) if f.name != "loaded")
# Built once, so each event skips statement construction and cache-key generation.
_SELECT: Select[Any] = select(*(_TABLE.c[name] for name in _COLUMNS)).where(
    _TABLE.c.address_hash == bindparam("address_hash")
)
_SELECT_LOCKED = _SELECT.with_for_update()
_INSERT = insert(_TABLE).returning(_TABLE.c.id)


@functools.cache
def _update_of(columns: tuple[str, ...]) -> Update:
    """UPDATE of these columns of one chat (a few combinations recur, so each is built once)."""
    return (
        update(_TABLE)
        .where(_TABLE.c.id == bindparam("chat_id"))
        .values({name: bindparam(f"new_{name}") for name in columns})
    )


async def get_or_create(
    session: AsyncSession, address_hash: str, channel: str, language: str
) -> tuple[ChatState, bool]:
    """The chat for an address hash, created on first contact; True when new.

    The row is read FOR UPDATE where the backend has row locks, so a second worker on the same
    database waits for this event instead of overwriting it; SQLite has one writer and none.
    """
    locks = session.bind is not None and session.bind.dialect.name != "sqlite"
    query = _SELECT_LOCKED if locks else _SELECT
    row = (await session.execute(query, {"address_hash": address_hash})).first()
    if row is not None:
        chat = ChatState(**row._asdict())
        chat.mark_saved()
        return chat, False
    now = utcnow()
    chat = ChatState(
        id=0, address_hash=address_hash, channel=channel, language=language, created_at=now
    )
    values = {name: getattr(chat, name) for name in _COLUMNS if name != "id"}
    result = await session.execute(_INSERT, values)
    chat.id = int(result.scalar_one())
    chat.mark_saved()
    return chat, True


async def save(session: AsyncSession, chat: ChatState) -> None:
    """Write the columns that changed since the chat was loaded or last saved."""
    changed = chat.changes()
    if changed:
        params = {f"new_{name}": value for name, value in changed.items()}
        await session.execute(_update_of(tuple(changed)), {"chat_id": chat.id, **params})
        chat.mark_saved()


async def expired_drafts(
    session: AsyncSession, idle_since: datetime, limit: int = 500
) -> list[Chat]:
    """Chats with a flow untouched since the given time."""
    rows = await session.scalars(
        select(Chat)
        .where(Chat.flow.is_not(None), Chat.updated_at < idle_since)
        .order_by(Chat.updated_at)
        .limit(limit)
    )
    return list(rows)


async def mark_expired(
    session: AsyncSession, chat_ids: list[int], idle_since: datetime
) -> list[int]:
    """Drop drafts still idle (a chat touched meanwhile is spared); the ids dropped."""
    if not chat_ids:
        return []
    result = await session.execute(
        update(Chat)
        .where(Chat.id.in_(chat_ids), Chat.flow.is_not(None), Chat.updated_at < idle_since)
        .values(
            flow=None,
            step=None,
            data={},
            prompt_token=None,
            prompt_actions=[],
            expired_notice=True,
        )
        .returning(Chat.id)
    )
    return list(result.scalars())


async def clear_expired_notice(session: AsyncSession, address_hashes: list[str]) -> None:
    """These chats were told of their expired draft already; no notice with the next message."""
    if address_hashes:
        await session.execute(
            update(Chat).where(Chat.address_hash.in_(address_hashes)).values(expired_notice=False)
        )


async def mark_unreachable(session: AsyncSession, address_hash: str) -> None:
    """A chat that blocked the bot: marked, and its subscriptions paused until it writes again."""
    await session.execute(
        update(Chat).where(Chat.address_hash == address_hash).values(blocked=True)
    )
    await subscriptions.set_active(session, address_hash, False)


async def draft_of(session: AsyncSession, address_hash: str) -> dict[str, Any]:
    """A chat's current draft (empty when it has none)."""
    data = await session.scalar(select(Chat.data).where(Chat.address_hash == address_hash))
    return dict(data) if isinstance(data, dict) else {}
