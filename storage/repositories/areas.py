"""Imported neighbourhoods, and the catalogue built from them and the built-in tree."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.area_catalog import Area, AreaCatalog, AreaKind, load_builtin
from storage.models import Neighbourhood, utcnow


async def load_catalog(session: AsyncSession, provinces: Sequence[str]) -> AreaCatalog:
    """The built-in tree for the configured provinces plus imported neighbourhoods under it."""
    builtin = load_builtin(provinces)
    wards = {area.code: area for area in builtin if area.kind is AreaKind.WARD}
    local = [
        to_area(row, wards[row.ward_code].province)
        for row in await session.scalars(select(Neighbourhood))
        # Rows for a province this deployment no longer serves stay stored but unused.
        if row.ward_code in wards
    ]
    return AreaCatalog([*builtin, *local])


def to_area(row: Neighbourhood, province: str) -> Area:
    """A stored neighbourhood as a catalogue entry."""
    rings = tuple(tuple((float(x), float(y)) for x, y in ring) for ring in row.polygons)
    return Area(
        row.code,
        AreaKind.NEIGHBOURHOOD,
        row.name,
        row.ward_code,
        province,
        row.latitude,
        row.longitude,
        rings,
    )


async def catalog_version(session: AsyncSession) -> tuple[int, datetime | None]:
    """Changes when neighbourhoods are imported, so a running bot knows to reload."""
    row = (
        await session.execute(
            select(func.count(), func.max(Neighbourhood.updated_at)).select_from(Neighbourhood)
        )
    ).one()
    return int(row[0]), row[1]


async def upsert_neighbourhoods(session: AsyncSession, rows: Sequence[Neighbourhood]) -> int:
    """Insert or replace neighbourhoods by code; returns how many were written."""
    now = utcnow()
    for row in rows:
        row.updated_at = now
        await session.merge(row)
    await session.flush()
    return len(rows)
