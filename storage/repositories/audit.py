"""The audit log: every officer, admin and system action, who, what, when."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import AuditEntry


async def record(
    session: AsyncSession,
    *,
    actor: str,
    action: str,
    at: datetime,
    target: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Write one entry (in the caller's transaction, so it stands or falls with the action)."""
    session.add(AuditEntry(actor=actor, action=action, target=target, detail=detail or {}, at=at))
    await session.flush()


async def entries(session: AsyncSession, limit: int = 100) -> list[AuditEntry]:
    """The newest entries, newest first."""
    rows = await session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit))
    return list(rows)
