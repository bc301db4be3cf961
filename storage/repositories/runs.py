"""The runs the scheduler makes: one per bulletin and scheduled time, however often it is asked."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Table, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Bulletin, BulletinRun
from storage.repositories import prompts
from storage.repositories.bulletins import STOP_BUTTON_LIFETIME, STOP_PREFIX

BULLETIN, ACTIVE, DONE = "bulletin", "active", "done"
PENDING, MISSED = "pending", "missed"


async def create_run(
    session: AsyncSession,
    bulletin: Bulletin,
    scheduled_for: datetime,
    *,
    status: str = PENDING,
    now: datetime,
) -> BulletinRun | None:
    """A run for one scheduled time, with its stop button unless missed; None if it exists."""
    run_id = await _insert_once(
        session,
        {
            "bulletin_id": bulletin.id,
            "scheduled_for": scheduled_for,
            "status": status,
            "cursor": 0,
            "created_at": now,
            "finished_at": now if status == MISSED else None,
        },
    )
    if run_id is None:
        return None
    run = await session.get(BulletinRun, run_id)
    if run is not None and status != MISSED:
        run.prompt_token = await prompts.create(
            session, [(f"{STOP_PREFIX}{run.id}", "stop")], now=now, lifetime=STOP_BUTTON_LIFETIME
        )
    return run


async def _insert_once(session: AsyncSession, values: dict[str, Any]) -> int | None:
    """Insert a run row; its id, or None when (bulletin, scheduled time) is already taken."""
    table: Table = BulletinRun.__table__  # type: ignore[assignment]
    key = [table.c.bulletin_id, table.c.scheduled_for]
    dialect = session.bind.dialect.name if session.bind is not None else ""
    if dialect in ("postgresql", "sqlite"):
        module: Any = postgresql if dialect == "postgresql" else sqlite
        statement = module.insert(table).on_conflict_do_nothing(index_elements=key)
        run_id: int | None = await session.scalar(statement.returning(table.c.id), values)
        return run_id
    try:
        async with session.begin_nested():
            inserted: int | None = await session.scalar(insert(table).returning(table.c.id), values)
            return inserted
    except IntegrityError:
        return None


async def last_run(session: AsyncSession, bulletin_id: int) -> BulletinRun | None:
    """A bulletin's run with the latest scheduled time, whatever became of it."""
    run: BulletinRun | None = await session.scalar(
        select(BulletinRun)
        .where(BulletinRun.bulletin_id == bulletin_id)
        .order_by(BulletinRun.scheduled_for.desc())
        .limit(1)
    )
    return run


async def active_schedules(session: AsyncSession) -> list[Bulletin]:
    """Every scheduled bulletin (not alert) that is active, oldest first."""
    rows = await session.scalars(
        select(Bulletin)
        .where(Bulletin.kind == BULLETIN, Bulletin.status == ACTIVE)
        .order_by(Bulletin.id)
    )
    return list(rows)


async def active_bulletin(session: AsyncSession, bulletin_id: int) -> Bulletin | None:
    """An active scheduled bulletin, locked until the transaction ends (PostgreSQL); else None."""
    bulletin = await session.get(
        Bulletin, bulletin_id, with_for_update=True, populate_existing=True
    )
    if bulletin is None or bulletin.kind != BULLETIN or bulletin.status != ACTIVE:
        return None
    return bulletin
