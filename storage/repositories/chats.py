"""Chats and their persisted conversation state."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Chat


async def get_or_create(
    session: AsyncSession, address_hash: str, channel: str, language: str
) -> tuple[Chat, bool]:
    """The chat for an address hash, created on first contact; True when new."""
    # FOR UPDATE (where the backend has it): a second worker waits instead of losing an update.
    chat = await session.scalar(
        select(Chat).where(Chat.address_hash == address_hash).with_for_update()
    )
    if chat is not None:
        return chat, False
    chat = Chat(
        address_hash=address_hash,
        channel=channel,
        language=language,
        data={},
        prompt_actions=[],
        expired_notice=False,
    )
    session.add(chat)
    await session.flush()
    return chat, True


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
