"""Tips, their attachments and the anonymous link back to the tipster."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from storage.models import Tip, TipAttachment, TipOwner


@dataclass(frozen=True)
class NewAttachment:
    """An attachment to save with a new tip."""

    kind: str
    file_ref: str
    mime_type: str | None
    size: int | None


async def code_exists(session: AsyncSession, code: str) -> bool:
    """Whether a tip code is taken."""
    return (await session.scalar(select(Tip.id).where(Tip.code == code))) is not None


async def create_tip(
    session: AsyncSession,
    *,
    tip: Tip,
    attachments: list[NewAttachment],
    owner_hash: str,
    reply_address_enc: str,
    updates: bool = False,
) -> Tip:
    """Insert a tip with its attachments and owner link (and whether to send it updates)."""
    tip.attachments = [
        TipAttachment(kind=a.kind, file_ref=a.file_ref, mime_type=a.mime_type, size=a.size)
        for a in attachments
    ]
    session.add(tip)
    await session.flush()
    session.add(
        TipOwner(
            tip_id=tip.id,
            owner_hash=owner_hash,
            reply_address_enc=reply_address_enc,
            updates=updates,
        )
    )
    await session.flush()
    return tip


async def count_since(session: AsyncSession, owner_hash: str, since: datetime) -> int:
    """How many tips this owner sent since a time."""
    count = await session.scalar(
        select(func.count())
        .select_from(TipOwner)
        .where(TipOwner.owner_hash == owner_hash, TipOwner.created_at >= since)
    )
    return int(count or 0)


async def oldest_since(session: AsyncSession, owner_hash: str, since: datetime) -> datetime | None:
    """When the oldest tip in the window was sent, to say when the limit lifts."""
    return await session.scalar(
        select(func.min(TipOwner.created_at)).where(
            TipOwner.owner_hash == owner_hash, TipOwner.created_at >= since
        )
    )


async def list_for_owner(session: AsyncSession, owner_hash: str, limit: int = 20) -> list[Tip]:
    """The owner's most recent tips."""
    rows = await session.scalars(
        select(Tip)
        .join(TipOwner, TipOwner.tip_id == Tip.id)
        .where(TipOwner.owner_hash == owner_hash)
        .order_by(Tip.created_at.desc(), Tip.id.desc())
        .limit(limit)
    )
    return list(rows)


async def find_by_code(session: AsyncSession, code: str) -> Tip | None:
    """A tip by its code, with attachments."""
    return await session.scalar(
        select(Tip).where(Tip.code == code).options(selectinload(Tip.attachments))
    )


async def erase_reply_addresses(session: AsyncSession, closed_before: datetime) -> int:
    """Erase the encrypted reply address of tips closed before a time; returns how many."""
    closed_ids = select(Tip.id).where(Tip.closed_at.is_not(None), Tip.closed_at < closed_before)
    result = await session.execute(
        update(TipOwner)
        .where(TipOwner.tip_id.in_(closed_ids), TipOwner.reply_address_enc.is_not(None))
        .values(reply_address_enc=None)
    )
    return int(getattr(result, "rowcount", 0) or 0)
