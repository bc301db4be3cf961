"""Alerts and bulletins, their runs, and the recipients a run reaches."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Bulletin, BulletinRun, Chat, Delivery, Subscription
from storage.repositories import prompts

ALERT = "alert"
PENDING, QUEUED, DONE = "pending", "queued", "done"
STOP_PREFIX = "alertstop:"
# How long "stop these alerts" keeps working after the message was sent.
STOP_BUTTON_LIFETIME = timedelta(days=90)


async def create_alert(
    session: AsyncSession,
    *,
    text: str,
    target: str,
    areas: Sequence[str],
    created_by: str,
    creator_address_enc: str,
    now: datetime,
    photo_ref: str | None = None,
) -> BulletinRun:
    """An urgent alert about `target`, reaching `areas` (empty: everywhere), now: its one run."""
    bulletin = Bulletin(
        kind=ALERT,
        text=text,
        photo_ref=photo_ref,
        target=target,
        areas=list(areas),
        topic="all",
        schedule={"at": "now"},
        status="active",
        created_by=created_by,
        creator_address_enc=creator_address_enc,
        created_at=now,
    )
    session.add(bulletin)
    await session.flush()
    run = BulletinRun(bulletin_id=bulletin.id, scheduled_for=now, status=PENDING, created_at=now)
    session.add(run)
    await session.flush()
    run.prompt_token = await prompts.create(
        session, [(f"{STOP_PREFIX}{run.id}", "stop")], now=now, lifetime=STOP_BUTTON_LIFETIME
    )
    return run


async def runs_with_status(
    session: AsyncSession, status: str, limit: int, after_id: int = 0
) -> list[BulletinRun]:
    """Runs in one state (pending: recipients still being queued; queued: sending), oldest
    first, from after a run id (a page at a time)."""
    rows = await session.scalars(
        select(BulletinRun)
        .where(BulletinRun.status == status, BulletinRun.id > after_id)
        .order_by(BulletinRun.id)
        .limit(limit)
    )
    return list(rows)


async def recipients(
    session: AsyncSession, bulletin: Bulletin, after_id: int, limit: int
) -> list[Any]:
    """The next page of active subscriptions a bulletin reaches, by id, with their language."""
    query = (
        select(
            Subscription.id,
            Subscription.address_hash,
            Subscription.address_enc,
            Subscription.channel,
            Subscription.topics,
            Subscription.is_group,
            func.coalesce(Chat.language, "vi").label("language"),
        )
        .outerjoin(Chat, Chat.address_hash == Subscription.address_hash)
        .where(Subscription.active, Subscription.id > after_id)
        .order_by(Subscription.id)
        .limit(limit)
    )
    if bulletin.areas:
        query = query.where(Subscription.area_code.in_(list(bulletin.areas)))
    return list(await session.execute(query))


async def finish(session: AsyncSession, run: BulletinRun, now: datetime) -> bool:
    """Mark a run done; False when another process already did (it reports, not this one)."""
    result = await session.execute(
        update(BulletinRun)
        .where(BulletinRun.id == run.id, BulletinRun.status != DONE)
        .values(status=DONE, finished_at=now)
        .returning(BulletinRun.id)
    )
    return result.scalar() is not None


async def count_reach(session: AsyncSession, areas: Sequence[str]) -> int:
    """How many distinct chats an alert to these areas would reach now."""
    query = select(func.count(func.distinct(Subscription.address_hash))).where(Subscription.active)
    if areas:
        query = query.where(Subscription.area_code.in_(list(areas)))
    return int(await session.scalar(query) or 0)


BULLETIN = "bulletin"
ACTIVE, PAUSED, CANCELLED, FINISHED = "active", "paused", "cancelled", "done"


async def create_bulletin(
    session: AsyncSession,
    *,
    text: str,
    target: str,
    areas: Sequence[str],
    topic: str,
    schedule: dict[str, Any],
    timezone: str,
    created_by: str,
    creator_address_enc: str | None,
    now: datetime,
    photo_ref: str | None = None,
) -> Bulletin:
    """A scheduled bulletin; the scheduler makes its runs."""
    bulletin = Bulletin(
        kind=BULLETIN,
        text=text,
        photo_ref=photo_ref,
        target=target,
        areas=list(areas),
        topic=topic,
        schedule=dict(schedule),
        timezone=timezone,
        status=ACTIVE,
        created_by=created_by,
        creator_address_enc=creator_address_enc,
        created_at=now,
    )
    session.add(bulletin)
    await session.flush()
    return bulletin


async def list_bulletins(session: AsyncSession, *, include_ended: bool = False) -> list[Bulletin]:
    """Bulletins (not alerts), newest first; ended ones only when asked."""
    query = select(Bulletin).where(Bulletin.kind == BULLETIN).order_by(Bulletin.id.desc())
    if not include_ended:
        query = query.where(Bulletin.status.in_((ACTIVE, PAUSED)))
    return list(await session.scalars(query))


async def set_status(
    session: AsyncSession, bulletin_id: int, status: str, now: datetime
) -> Bulletin | None:
    """Pause, resume or cancel a bulletin; None when there is no such bulletin to change."""
    bulletin = await session.get(Bulletin, bulletin_id)
    if bulletin is None or bulletin.kind != BULLETIN or bulletin.status in (CANCELLED, FINISHED):
        return None
    if status == PAUSED and bulletin.status != PAUSED:
        bulletin.paused_at, bulletin.resumed_at = now, None
    elif status == ACTIVE and bulletin.status == PAUSED:
        bulletin.resumed_at = now
    bulletin.status = status
    await session.flush()
    return bulletin


async def last_runs(session: AsyncSession, bulletin_ids: Sequence[int]) -> dict[int, BulletinRun]:
    """Each bulletin's latest run."""
    if not bulletin_ids:
        return {}
    rows = await session.scalars(
        select(BulletinRun)
        .where(BulletinRun.bulletin_id.in_(list(bulletin_ids)))
        .order_by(BulletinRun.scheduled_for)
    )
    return {run.bulletin_id: run for run in rows}


async def outreach(session: AsyncSession, start: datetime, end: datetime) -> list[Any]:
    """Per run in [start, end): kind, target, topic, messages sent, residents and groups reached."""
    query = (
        select(
            BulletinRun.id,
            BulletinRun.scheduled_for,
            Bulletin.kind,
            Bulletin.target,
            Bulletin.topic,
            func.count(Delivery.id).filter(Delivery.status == "sent").label("sent"),
            func.count(func.distinct(Delivery.address_hash))
            .filter(Delivery.status == "sent", Delivery.is_group.is_(False))
            .label("reached"),
            func.count(func.distinct(Delivery.address_hash))
            .filter(Delivery.status == "sent", Delivery.is_group.is_(True))
            .label("groups"),
            func.count(Delivery.id)
            .filter(Delivery.status.in_(("failed", "blocked")))
            .label("lost"),
        )
        .join(Bulletin, Bulletin.id == BulletinRun.bulletin_id)
        .outerjoin(Delivery, Delivery.run_id == BulletinRun.id)
        .where(BulletinRun.scheduled_for >= start, BulletinRun.scheduled_for < end)
        .where(BulletinRun.status != "missed")
        .group_by(
            BulletinRun.id,
            BulletinRun.scheduled_for,
            Bulletin.kind,
            Bulletin.target,
            Bulletin.topic,
        )
        .order_by(BulletinRun.scheduled_for)
    )
    return list(await session.execute(query))


async def has_photo(session: AsyncSession, photo_ref: str) -> bool:
    """Whether an alert or bulletin goes out with this stored photo (so anyone may see it)."""
    found = await session.scalar(
        select(Bulletin.id).where(Bulletin.photo_ref == photo_ref).limit(1)
    )
    return found is not None
