"""Staff roles and their one-time invite codes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Invite, StaffMember
from storage.repositories import cases

ADMIN = "admin"
OFFICER = "officer"
ROLES = (ADMIN, OFFICER)


async def create_invite(
    session: AsyncSession,
    *,
    code_hash: str,
    role: str,
    areas: Sequence[str],
    label: str,
    created_by: str,
    now: datetime,
    expires_at: datetime,
) -> Invite:
    """Store a new invite (only the code's keyed hash)."""
    invite = Invite(
        code_hash=code_hash,
        role=role,
        areas=list(areas),
        label=label,
        created_by=created_by,
        created_at=now,
        expires_at=expires_at,
    )
    session.add(invite)
    await session.flush()
    return invite


async def redeem_invite(session: AsyncSession, code_hash: str, now: datetime) -> Invite | None:
    """Use an invite once: the unused, unexpired invite with this code, now marked used, or None.

    One UPDATE decides, so two chats (or two processes) redeeming the same code at once cannot
    both succeed.
    """
    result = await session.execute(
        update(Invite)
        .where(Invite.code_hash == code_hash, Invite.used_at.is_(None), Invite.expires_at > now)
        .values(used_at=now)
        .returning(Invite.id)
    )
    invite_id = result.scalar()
    return None if invite_id is None else await session.get(Invite, invite_id)


async def add_member(
    session: AsyncSession,
    *,
    invite: Invite,
    address_hash: str,
    address_enc: str,
    channel: str,
    now: datetime,
) -> StaffMember:
    """Make a chat staff as its invite says; an existing role of that chat is replaced."""
    for current in await _active(session, address_hash):
        current.revoked_at = now
        await cases.release_all(session, f"staff:{current.id}", now)
    member = StaffMember(
        address_hash=address_hash,
        address_enc=address_enc,
        channel=channel,
        role=invite.role,
        areas=list(invite.areas),
        label=invite.label,
        invited_by=invite.created_by,
        created_at=now,
    )
    session.add(member)
    await session.flush()
    invite.used_by = member.id
    return member


async def _active(session: AsyncSession, address_hash: str) -> list[StaffMember]:
    rows = await session.scalars(
        select(StaffMember).where(
            StaffMember.address_hash == address_hash, StaffMember.revoked_at.is_(None)
        )
    )
    return list(rows)


async def member_for(session: AsyncSession, address_hash: str) -> StaffMember | None:
    """The active staff role of a chat, or None for a citizen."""
    active = await _active(session, address_hash)
    return active[0] if active else None


async def list_members(session: AsyncSession) -> list[StaffMember]:
    """Active staff, admins first, oldest first."""
    rows = await session.scalars(
        select(StaffMember)
        .where(StaffMember.revoked_at.is_(None))
        .order_by(StaffMember.role, StaffMember.created_at, StaffMember.id)
    )
    return list(rows)


async def revoke(session: AsyncSession, member_id: int, now: datetime) -> StaffMember | None:
    """End an active role; None if there is no such active member."""
    member = await session.get(StaffMember, member_id)
    if member is None or member.revoked_at is not None:
        return None
    member.revoked_at = now
    await cases.release_all(session, f"staff:{member.id}", now)
    await session.flush()
    return member
