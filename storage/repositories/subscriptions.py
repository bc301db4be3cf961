"""Alert subscriptions: one row per chat and area, found by the chat's keyed hash."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Subscription


async def for_chat(session: AsyncSession, address_hash: str) -> list[Subscription]:
    """A chat's subscriptions, oldest first."""
    rows = await session.scalars(
        select(Subscription)
        .where(Subscription.address_hash == address_hash)
        .order_by(Subscription.created_at, Subscription.id)
    )
    return list(rows)


async def subscribe(
    session: AsyncSession,
    *,
    address_hash: str,
    address_enc: str,
    channel: str,
    area_code: str,
    topics: list[str],
    is_group: bool = False,
) -> tuple[Subscription, bool]:
    """Subscribe to an area, or update the topics of an existing subscription; True if new."""
    existing = await session.scalar(
        select(Subscription).where(
            Subscription.address_hash == address_hash, Subscription.area_code == area_code
        )
    )
    if existing is not None:
        existing.topics = list(topics)
        existing.active = True
        existing.address_enc = address_enc
        existing.is_group = is_group
        return existing, False
    row = Subscription(
        address_hash=address_hash,
        address_enc=address_enc,
        channel=channel,
        area_code=area_code,
        topics=list(topics),
        active=True,
        is_group=is_group,
    )
    session.add(row)
    await session.flush()
    return row, True


async def unsubscribe(session: AsyncSession, address_hash: str, subscription_id: int) -> bool:
    """Remove one of a chat's subscriptions; False if it was not theirs or is gone."""
    result = await session.execute(
        delete(Subscription).where(
            Subscription.id == subscription_id, Subscription.address_hash == address_hash
        )
    )
    return bool(getattr(result, "rowcount", 0))


async def unsubscribe_all(session: AsyncSession, address_hash: str) -> int:
    """Remove every subscription of a chat; returns how many."""
    result = await session.execute(
        delete(Subscription).where(Subscription.address_hash == address_hash)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def set_active(session: AsyncSession, address_hash: str, active: bool) -> None:
    """Pause (the chat blocked the bot) or resume all of a chat's subscriptions."""
    await session.execute(
        update(Subscription)
        .where(Subscription.address_hash == address_hash, Subscription.active != active)
        .values(active=active)
    )


async def subscribers_for(
    session: AsyncSession, area_codes: list[str], topic: str
) -> list[Subscription]:
    """Active subscriptions that an alert about an area should reach.

    `area_codes` is the area and every area above it (a ward's subscribers hear about its
    neighbourhoods); a subscriber to "all" or to the topic matches.
    """
    rows = await session.scalars(
        select(Subscription).where(Subscription.active, Subscription.area_code.in_(area_codes))
    )
    return [row for row in rows if {"all", topic} & set(row.topics or ["all"])]


async def counts(session: AsyncSession) -> dict[str, Counter[str]]:
    """Active subscribers per area code, per topic ('all' included), plus '_total'."""
    result: dict[str, Counter[str]] = {}
    rows = await session.execute(
        select(Subscription.area_code, Subscription.topics).where(Subscription.active)
    )
    for area_code, topics in rows:
        counter = result.setdefault(area_code, Counter())
        counter["_total"] += 1
        for topic in topics or ["all"]:
            counter[str(topic)] += 1
    return result


async def unsubscribe_areas(session: AsyncSession, address_hash: str, areas: list[str]) -> int:
    """Leave the chat's subscriptions to these areas (every one when `areas` is empty)."""
    query = delete(Subscription).where(Subscription.address_hash == address_hash)
    if areas:
        query = query.where(Subscription.area_code.in_(areas))
    result = await session.execute(query)
    return int(getattr(result, "rowcount", 0) or 0)
