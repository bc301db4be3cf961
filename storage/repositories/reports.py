"""Reports over tips: a period's figures, the rows of an export, and pages of the audit log.

Nothing here reads a tipster's data: exports select named columns of `tips` (never
`contact_enc`) and never touch `tip_owners`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import AuditEntry, StaffMember, Tip
from storage.repositories import bulletins

TOP_AREAS = 10
# Vietnam keeps UTC+7 all year (no daylight saving), so a local day is a fixed shift.
VIETNAM_ZONE = "Asia/Ho_Chi_Minh"
VIETNAM_SHIFT = "+7 hours"


@dataclass(frozen=True)
class Scope:
    """Which tips a report covers: created in [start, end), in `areas` (None: every area)."""

    start: datetime
    end: datetime
    areas: Sequence[str] | None = None


@dataclass(frozen=True)
class Outreach:
    """Alerts and bulletins sent in a period and whom they reached."""

    alerts: int = 0
    bulletins: int = 0
    delivered: int = 0
    residents: int = 0
    groups: int = 0

    @property
    def runs(self) -> int:
        """Alerts and bulletins together."""
        return self.alerts + self.bulletins


@dataclass(frozen=True)
class Figures:
    """A period's figures for /stats."""

    total: int
    by_category: dict[str, int]
    by_status: dict[str, int]
    by_area: list[tuple[str | None, int]]
    first_response: timedelta | None
    to_close: timedelta | None
    # Tips per local day ("YYYY-MM-DD") and category, for the chart.
    per_day: dict[str, dict[str, int]] = field(default_factory=dict)
    outreach: Outreach = field(default_factory=Outreach)


def _where(scope: Scope) -> list[ColumnElement[bool]]:
    conditions = [Tip.created_at >= scope.start, Tip.created_at < scope.end]
    if scope.areas is not None:
        conditions.append(Tip.area_code.in_(list(scope.areas)))
    return conditions


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


def _local_day(dialect: str) -> ColumnElement[Any]:
    """A tip's day of receipt in Vietnam, as 'YYYY-MM-DD' text."""
    if dialect == "postgresql":
        return func.to_char(func.timezone(VIETNAM_ZONE, Tip.created_at), "YYYY-MM-DD")
    return func.date(Tip.created_at, VIETNAM_SHIFT)


def _seconds(dialect: str, later: Any, earlier: Any) -> ColumnElement[Any]:
    """Seconds between two timestamps, in SQL."""
    if dialect == "postgresql":
        return func.extract("epoch", later - earlier)
    return (func.julianday(later) - func.julianday(earlier)) * literal_column("86400.0")


async def _median(
    session: AsyncSession, scope: Scope, column: Any, dialect: str
) -> timedelta | None:
    """The median time from receipt to `column`, over the tips that have it."""
    where = [*_where(scope), column.is_not(None)]
    count = int(await session.scalar(select(func.count()).select_from(Tip).where(*where)) or 0)
    if not count:
        return None
    seconds = _seconds(dialect, column, Tip.created_at)
    middle = list(
        await session.scalars(
            select(seconds)
            .where(*where)
            .order_by(seconds)
            .offset((count - 1) // 2)
            .limit(2 - count % 2)
        )
    )
    return timedelta(seconds=sum(float(value) for value in middle) / len(middle))


async def figures(session: AsyncSession, scope: Scope) -> Figures:
    """Tips by category, status, area (top 10) and day, median times, and outreach."""
    dialect = _dialect(session)
    where = _where(scope)
    by_category: dict[str, int] = {}
    by_status: dict[str, int] = {}
    grouped = await session.execute(
        select(Tip.category, Tip.status, func.count())
        .where(*where)
        .group_by(Tip.category, Tip.status)
    )
    for category, status, count in grouped:
        by_category[category] = by_category.get(category, 0) + count
        by_status[status] = by_status.get(status, 0) + count
    areas = await session.execute(
        select(Tip.area_code, func.count().label("n"))
        .where(*where)
        .group_by(Tip.area_code)
        .order_by(literal_column("n").desc(), Tip.area_code)
        .limit(TOP_AREAS)
    )
    day = _local_day(dialect)
    per_day: dict[str, dict[str, int]] = {}
    for when, category, count in await session.execute(
        select(day, Tip.category, func.count()).where(*where).group_by(day, Tip.category)
    ):
        per_day.setdefault(str(when), {})[category] = count
    return Figures(
        total=sum(by_status.values()),
        by_category=by_category,
        by_status=by_status,
        by_area=[(code, count) for code, count in areas],
        first_response=await _median(session, scope, Tip.first_response_at, dialect),
        to_close=await _median(session, scope, Tip.closed_at, dialect),
        per_day=per_day,
        outreach=await outreach(session, scope),
    )


async def outreach(session: AsyncSession, scope: Scope) -> Outreach:
    """Alerts and bulletins run in the period; an officer's: those aimed at their areas."""
    alerts = sent = delivered = residents = groups = 0
    for row in await bulletins.outreach(session, scope.start, scope.end):
        targets = str(row.target).split(",")
        aimed = "*" in targets or scope.areas is None or set(targets) & set(scope.areas)
        if not aimed:
            continue
        if row.kind == "alert":
            alerts += 1
        else:
            sent += 1
        delivered += int(row.sent)
        residents += int(row.reached)
        groups += int(row.groups)
    return Outreach(alerts, sent, delivered, residents, groups)


# Exactly what an export may hold: no contact details, no link to the tipster.
EXPORT_COLUMNS: tuple[Any, ...] = (
    Tip.code,
    Tip.created_at,
    Tip.category,
    Tip.area_code,
    Tip.place_text,
    Tip.latitude,
    Tip.longitude,
    Tip.occurred,
    Tip.description,
    Tip.status,
    Tip.priority,
    Tip.owner,
    Tip.first_response_at,
    Tip.closed_at,
    Tip.duplicate_of,
    Tip.reward_at,
)


def export_query(scope: Scope) -> Select[Any]:
    """The period's tips for an export, oldest first, in named columns only."""
    return select(*EXPORT_COLUMNS).where(*_where(scope)).order_by(Tip.created_at, Tip.id)


async def export_rows(session: AsyncSession, scope: Scope) -> list[Any]:
    """The period's tips, as export_query selects them."""
    return list(await session.execute(export_query(scope)))


async def staff_labels(session: AsyncSession, actors: Sequence[str | None]) -> dict[str, str]:
    """Labels of staff actors ("staff:12" -> "Lan"), for exports and the audit log."""
    ids = {
        int(a.split(":", 1)[1]) for a in actors if a and a.startswith("staff:") and a[6:].isdigit()
    }
    if not ids:
        return {}
    rows = await session.execute(
        select(StaffMember.id, StaffMember.label).where(StaffMember.id.in_(ids))
    )
    return {f"staff:{member_id}": label for member_id, label in rows}


async def audit_page(
    session: AsyncSession,
    *,
    offset: int = 0,
    limit: int = 20,
    start: datetime | None = None,
    end: datetime | None = None,
    actor: str | None = None,
) -> list[AuditEntry]:
    """Audit entries, newest first; one more than `limit` when there are older ones."""
    query = select(AuditEntry)
    if start is not None:
        query = query.where(AuditEntry.at >= start)
    if end is not None:
        query = query.where(AuditEntry.at < end)
    if actor is not None:
        query = query.where(AuditEntry.actor == actor)
    rows = await session.scalars(
        query.order_by(AuditEntry.id.desc()).offset(offset).limit(limit + 1)
    )
    return list(rows)
