"""Officers' work on tips: the queue, owners, statuses, the timeline, and blocked tipsters.

A tip's owner is an actor name as the audit log writes it ("staff:12"). Claiming is one
conditional UPDATE, so of two officers claiming at once exactly one wins, on every backend.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from storage.models import BlockedTipster, Tip, TipAttachment, TipEvent, TipOwner

NEW, IN_REVIEW, ACTIONED, CLOSED, REJECTED = "new", "in_review", "actioned", "closed", "rejected"
STATUSES = (NEW, IN_REVIEW, ACTIONED, CLOSED, REJECTED)
OPEN = (NEW, IN_REVIEW, ACTIONED)
PRIORITIES = ("low", "normal", "high")
# The queue counts at most this many matching tips (and says "1000+"): over a large table an
# exact count of every open tip costs more than the page itself.
COUNT_CAP = 1000
TIPSTER, SYSTEM = "tipster", "system"


@dataclass(frozen=True)
class QueueFilter:
    """Which tips a queue page shows; `areas` None is every area (an admin, an officer of all)."""

    areas: Sequence[str] | None = None
    statuses: Sequence[str] = OPEN
    category: str | None = None
    area: Sequence[str] | None = None  # one area the officer chose, with what lies in it
    since: datetime | None = None
    owner: str | None = None
    unclaimed: bool = False
    oldest_first: bool = False


def _filtered(query: Select[Any], wanted: QueueFilter) -> Select[Any]:
    """A tips query narrowed to a filter."""
    if wanted.areas is not None:
        query = query.where(Tip.area_code.in_(list(wanted.areas)))
    if wanted.area is not None:
        query = query.where(Tip.area_code.in_(list(wanted.area)))
    if wanted.statuses:
        query = query.where(Tip.status.in_(list(wanted.statuses)))
    if wanted.category is not None:
        query = query.where(Tip.category == wanted.category)
    if wanted.since is not None:
        query = query.where(Tip.created_at >= wanted.since)
    if wanted.owner is not None:
        query = query.where(Tip.owner == wanted.owner)
    if wanted.unclaimed:
        query = query.where(Tip.owner.is_(None))
    return query


async def queue_page(
    session: AsyncSession, wanted: QueueFilter, offset: int, limit: int
) -> tuple[list[Tip], int]:
    """One page of the queue, newest (or oldest) first, and how many tips match, counted up to
    one past max(COUNT_CAP, offset + limit) (more than COUNT_CAP: "COUNT_CAP+")."""
    order = (
        (Tip.created_at, Tip.id) if wanted.oldest_first else (Tip.created_at.desc(), Tip.id.desc())
    )
    rows = await session.scalars(
        _filtered(select(Tip), wanted).order_by(*order).offset(offset).limit(limit)
    )
    cap = max(COUNT_CAP, offset + limit) + 1
    matching = _filtered(select(Tip.id), wanted).limit(cap).subquery()
    total = await session.scalar(select(func.count()).select_from(matching))
    return list(rows), int(total or 0)


async def tip_by_code(session: AsyncSession, code: str) -> Tip | None:
    """A tip by its code, with its files."""
    return await session.scalar(
        select(Tip).where(Tip.code == code).options(selectinload(Tip.attachments))
    )


async def claim(session: AsyncSession, tip_id: int, actor: str, now: datetime) -> bool:
    """Take an unowned open tip; False when someone owns it already or it is closed (one
    UPDATE decides)."""
    result = await session.execute(
        update(Tip)
        .where(Tip.id == tip_id, Tip.owner.is_(None), Tip.status.in_(OPEN))
        .values(owner=actor, updated_at=now)
        .returning(Tip.id)
    )
    if result.scalar() is None:
        return False
    await _first_response(session, tip_id, now)
    await add_event(session, tip_id, "claimed", actor, now=now)
    return True


async def release(
    session: AsyncSession, tip_id: int, actor: str, now: datetime, *, anyones: bool = False
) -> bool:
    """Give a tip back to the queue; False when it was not this actor's (an admin may release
    anyone's: `anyones`)."""
    owned = Tip.owner.is_not(None) if anyones else Tip.owner == actor
    result = await session.execute(
        update(Tip)
        .where(Tip.id == tip_id, owned)
        .values(owner=None, updated_at=now)
        .returning(Tip.id)
    )
    if result.scalar() is None:
        return False
    await add_event(session, tip_id, "released", actor, now=now)
    return True


async def set_status(
    session: AsyncSession,
    tip: Tip,
    status: str,
    actor: str,
    now: datetime,
    *,
    duplicate_of: str | None = None,
    reason: str | None = None,
) -> None:
    """Move a tip to a status, with the time it closed and what it duplicates, if so."""
    before = tip.status
    tip.status = status
    tip.updated_at = now
    tip.closed_at = now if status in (CLOSED, REJECTED) else None
    tip.duplicate_of = duplicate_of if status == REJECTED else None
    if tip.first_response_at is None:
        tip.first_response_at = now
    detail: dict[str, Any] = {"from": before, "to": status}
    if reason:
        detail["reason"] = reason
    if duplicate_of:
        detail["duplicate_of"] = duplicate_of
    await add_event(session, tip.id, "status", actor, now=now, detail=detail)


async def set_priority(
    session: AsyncSession, tip: Tip, priority: str, actor: str, now: datetime
) -> None:
    """Change a tip's priority."""
    tip.priority = priority
    tip.updated_at = now
    await add_event(session, tip.id, "priority", actor, now=now, detail={"to": priority})


async def approve_reward(
    session: AsyncSession, tip: Tip, note: str, actor: str, now: datetime
) -> None:
    """Mark a tip's reward approved, with the officers' note."""
    tip.reward_note = note
    tip.reward_at = now
    await add_event(session, tip.id, "reward", actor, text=note, now=now)


async def add_event(
    session: AsyncSession,
    tip_id: int,
    kind: str,
    actor: str,
    *,
    now: datetime,
    text: str | None = None,
    detail: dict[str, Any] | None = None,
) -> TipEvent:
    """Add a line to a tip's timeline."""
    event = TipEvent(tip_id=tip_id, at=now, kind=kind, actor=actor, text=text, detail=detail or {})
    session.add(event)
    await session.flush()
    return event


async def note_response(session: AsyncSession, tip: Tip, now: datetime) -> None:
    """An officer answered the tip in some way: its first response, if it is the first."""
    await _first_response(session, tip.id, now)


async def _first_response(session: AsyncSession, tip_id: int, now: datetime) -> None:
    await session.execute(
        update(Tip)
        .where(Tip.id == tip_id, Tip.first_response_at.is_(None))
        .values(first_response_at=now)
    )


async def timeline(session: AsyncSession, tip_id: int, limit: int = 50) -> list[TipEvent]:
    """A tip's latest timeline lines, oldest first."""
    rows = await session.scalars(
        select(TipEvent).where(TipEvent.tip_id == tip_id).order_by(TipEvent.id.desc()).limit(limit)
    )
    return list(reversed(list(rows)))


async def link_of(session: AsyncSession, tip_id: int) -> TipOwner | None:
    """The tip's link back to its tipster (a keyed hash and an encrypted address), if kept."""
    return await session.get(TipOwner, tip_id)


async def release_all(session: AsyncSession, actor: str, now: datetime) -> int:
    """A member's role ended or changed: their open tips go back to the queue."""
    result = await session.execute(
        update(Tip)
        .where(Tip.owner == actor, Tip.status.in_(OPEN))
        .values(owner=None, updated_at=now)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def blocked_from(session: AsyncSession, tip_code: str) -> bool:
    """Whether a block was made from this tip (only that tip shows it: telling it on the
    sender's other tips would tell officers which tips one person sent)."""
    found = await session.scalar(
        select(BlockedTipster.id).where(BlockedTipster.tip_code == tip_code)
    )
    return found is not None


async def is_blocked(session: AsyncSession, owner_hash: str) -> bool:
    """Whether a tipster is blocked."""
    found = await session.scalar(
        select(BlockedTipster.id).where(BlockedTipster.owner_hash == owner_hash)
    )
    return found is not None


async def block(
    session: AsyncSession, owner_hash: str, tip_code: str, actor: str, now: datetime
) -> bool:
    """Block the tipster behind a tip; False when already blocked."""
    if await is_blocked(session, owner_hash):
        return False
    session.add(BlockedTipster(owner_hash=owner_hash, tip_code=tip_code, blocked_by=actor, at=now))
    await session.flush()
    return True


async def unblock(session: AsyncSession, tip_code: str) -> bool:
    """Lift the block made from a tip; False when there was none."""
    result = await session.execute(
        delete(BlockedTipster).where(BlockedTipster.tip_code == tip_code)
    )
    return bool(getattr(result, "rowcount", 0))


async def area_of_file(session: AsyncSession, file_ref: str) -> tuple[bool, str | None]:
    """Whether a stored file belongs to a tip, and that tip's area."""
    row = (
        await session.execute(
            select(Tip.area_code)
            .join(TipAttachment, TipAttachment.tip_id == Tip.id)
            .where(TipAttachment.file_ref == file_ref)
            .limit(1)
        )
    ).first()
    return (row is not None, row[0] if row is not None else None)
