"""`tipline areas ...`: import neighbourhoods, search, list, subscriber counts."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app import load_areas, open_database
from bot.config import Settings
from storage.area_catalog import AreaCatalog
from storage.area_import import ImportFailedError, read_file
from storage.engine import create_sessionmaker
from storage.repositories import areas, subscriptions


@asynccontextmanager
async def database(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """A migrated database for one command, closed afterwards."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = await open_database(settings.resolved_database_url)
    try:
        yield create_sessionmaker(engine)
    finally:
        await engine.dispose()


async def import_file(settings: Settings, path: Path) -> int:
    """Import neighbourhoods; every bad row is printed and nothing is written. Exit code."""
    async with database(settings) as sessions:
        catalog = await load_areas(sessions, settings.provinces)
        try:
            rows = read_file(path, catalog)
        except ImportFailedError as failure:
            print(f"{path}: {len(failure.errors)} bad rows; nothing was imported:")
            for error in failure.errors:
                print(f"  {error}")
            return 1
        async with sessions() as session, session.begin():
            written = await areas.upsert_neighbourhoods(session, rows)
    print(f"imported {written} neighbourhoods from {path} (a running bot picks them up)")
    return 0


async def search(settings: Settings, text: str) -> int:
    """Print the areas matching a text, best first."""
    async with database(settings) as sessions:
        catalog = await load_areas(sessions, settings.provinces)
    started = time.perf_counter()
    found = catalog.search(text, limit=20)
    elapsed_ms = (time.perf_counter() - started) * 1000
    for area in found:
        print(f"{area.code:<24} {catalog.label(area)}")
    print(f"{len(found)} found in {elapsed_ms:.1f} ms" if found else f"no area matches {text!r}")
    return 0 if found else 1


async def list_areas(settings: Settings, under: str | None) -> int:
    """Print provinces, or the areas under one code."""
    async with database(settings) as sessions:
        catalog = await load_areas(sessions, settings.provinces)
    if under is None:
        items = catalog.provinces()
    elif catalog.get(under) is None:
        print(f"unknown area code {under!r}; `tipline areas search NAME` finds codes")
        return 1
    else:
        items = catalog.children(under)
    for area in items:
        print(f"{area.code:<24} {catalog.label(area)}  ({len(catalog.children(area.code))})")
    print(f"{len(items)} areas")
    return 0


async def subscriber_counts(settings: Settings) -> int:
    """Print active subscribers per area and topic."""
    async with database(settings) as sessions:
        catalog: AreaCatalog = await load_areas(sessions, settings.provinces)
        async with sessions() as session:
            counts = await subscriptions.counts(session)
    if not counts:
        print("no subscribers")
        return 0
    for code, counter in sorted(counts.items(), key=lambda item: (-item[1]["_total"], item[0])):
        area = catalog.get(code)
        topics = ", ".join(f"{t} {n}" for t, n in sorted(counter.items()) if t != "_total")
        label = catalog.label(area) if area else code
        print(f"{counter['_total']:>6}  {label}  [{topics}]")
    return 0
