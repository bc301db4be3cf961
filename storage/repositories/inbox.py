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


async def waiting(
    session: AsyncSession, address_hash: str, limit: int = 20
) -> list[tuple[int, dict[str, Any]]]:
    """A visitor's waiting messages with their ids, oldest first (kept until acknowledged)."""
    rows = await session.scalars(
        select(WebInboxMessage)
        .where(WebInboxMessage.address_hash == address_hash)
        .order_by(WebInboxMessage.id)
        .limit(limit)
    )
    return [(row.id, dict(row.payload)) for row in rows]


async def acknowledge(session: AsyncSession, address_hash: str, ids: list[int]) -> None:
    """The page has shown these: forget them (only the visitor's own)."""
    if ids:
        await session.execute(
            delete(WebInboxMessage).where(
                WebInboxMessage.address_hash == address_hash, WebInboxMessage.id.in_(ids)
            )
        )
