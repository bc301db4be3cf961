"""The web chat's inbox: proactive messages kept until the visitor's page fetches them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import WebInboxMessage


async def put(
    session: AsyncSession, address_hash: str, payload: dict[str, Any], now: datetime
) -> None:
    """Keep a message for a visitor."""
    session.add(WebInboxMessage(address_hash=address_hash, payload=payload, created_at=now))
    await session.flush()


async def take(session: AsyncSession, address_hash: str, limit: int = 20) -> list[dict[str, Any]]:
    """A visitor's waiting messages, oldest first, removed as they are handed over."""
    rows = list(
        await session.scalars(
            select(WebInboxMessage)
            .where(WebInboxMessage.address_hash == address_hash)
            .order_by(WebInboxMessage.id)
            .limit(limit)
        )
    )
    if rows:
        await session.execute(
            delete(WebInboxMessage).where(WebInboxMessage.id.in_([row.id for row in rows]))
        )
    return [dict(row.payload) for row in rows]
