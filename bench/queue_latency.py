"""Query latency of the officer workspace over a large tips table: the queue's first page and a
month's /stats, on SQLite (and PostgreSQL when available).

    .venv/bin/python bench/queue_latency.py [--tips 1000000] [--runs 200] [--postgres auto|URL|off]

A fresh database is migrated by the project's own migrations (storage.migrate) and seeded with
Core executemany in batches: tips spread over two years ending now, over the ~3,300 wards and
communes of the built-in catalogue, the 10 default categories; older tips mostly closed or
rejected, recent ones new, in review or actioned; three in four claimed by one of 60 officers,
with first responses (10 minutes to 3 days) and closings (1 hour to 20 days later). SQLite is
not ANALYZEd (a deployment's database never is); PostgreSQL is, as autovacuum would.

Timed, each over --runs runs in a new session: `queue_page` (8 tips and the count) for an admin
(open statuses, every area), an officer with one ward (a different ward each run), a category,
unclaimed tips, oldest first; and `reports.figures` for last month, for an admin and for an
officer with one ward. Printed: p50/p95 per query and the goals with met/MISSED (queue page
p95 < 50 ms, month stats p95 < 500 ms). `TIPLINE_TEST_POSTGRES_URL` (an async URL on a server
where it may CREATE DATABASE) or `--postgres URL` adds PostgreSQL, in a database it drops after.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import insert  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine  # noqa: E402

from storage.area_catalog import AreaKind, load_builtin  # noqa: E402
from storage.engine import create_engine, create_read_engine, create_sessionmaker  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from storage.models import Tip  # noqa: E402
from storage.repositories import cases, reports  # noqa: E402

CATEGORIES = (
    "drugs", "theft", "fraud", "weapons", "traffic",
    "fire", "gambling", "gangs", "environment", "other",
)  # fmt: skip
BATCH = 20_000
OFFICERS = 60
QUEUE_GOAL_MS = 50.0
STATS_GOAL_MS = 500.0
CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"


def _code(n: int) -> str:
    """A unique tip code like the bot's (XXX-XXXX), from a number."""
    chars = []
    for _ in range(7):
        n, digit = divmod(n, len(CODE_ALPHABET))
        chars.append(CODE_ALPHABET[digit])
    return f"{''.join(chars[:3])}-{''.join(chars[3:])}"


def _rows(
    rng: random.Random, start: int, count: int, wards: list[str], now: datetime
) -> list[dict[str, Any]]:
    """One batch of tips."""
    span = timedelta(days=730).total_seconds()
    rows = []
    for n in range(start, start + count):
        created = now - timedelta(seconds=rng.random() * span)
        age_days = (now - created).days
        roll = rng.random()
        if age_days > 60:
            status = "closed" if roll < 0.8 else "rejected" if roll < 0.95 else "actioned"
        elif age_days > 7:
            status = ("closed", "rejected", "actioned", "in_review", "new")[
                0
                if roll < 0.45
                else 1
                if roll < 0.55
                else 2
                if roll < 0.75
                else 3
                if roll < 0.9
                else 4
            ]
        else:
            status = ("new", "in_review", "actioned", "closed")[
                0 if roll < 0.4 else 1 if roll < 0.7 else 2 if roll < 0.85 else 3
            ]
        claimed = status != "new" and rng.random() < 0.9
        first = (
            created + timedelta(minutes=rng.uniform(10, 3 * 24 * 60)) if status != "new" else None
        )
        closed = None
        if status in ("closed", "rejected") and first is not None:
            closed = first + timedelta(hours=rng.uniform(1, 20 * 24))
        rows.append(
            {
                "code": _code(n),
                "pin_hash": "x" * 64,
                "channel": "telegram" if n % 5 else "web",
                "category": CATEGORIES[min(int(rng.expovariate(0.35)), 9)],
                "area_code": wards[int(rng.paretovariate(1.2) * 37) % len(wards)],
                "place_text": None,
                "latitude": None,
                "longitude": None,
                "description": "Benchmark tip: a description of about the usual length.",
                "occurred": "today",
                "contact_enc": None,
                "status": status,
                "owner": f"staff:{rng.randint(1, OFFICERS)}" if claimed else None,
                "priority": "normal",
                "duplicate_of": None,
                "first_response_at": first,
                "reward_note": None,
                "reward_at": None,
                "created_at": created,
                "updated_at": closed or first or created,
                "closed_at": closed,
            }
        )
    return rows


async def seed(engine: AsyncEngine, tips: int, wards: list[str], now: datetime) -> float:
    """Insert the tips in batches; seconds taken."""
    rng = random.Random(20261101)
    began = time.perf_counter()
    done = 0
    while done < tips:
        count = min(BATCH, tips - done)
        rows = _rows(rng, done, count, wards, now)
        async with engine.begin() as connection:
            await connection.execute(insert(Tip), rows)
        done += count
        if done % 200_000 == 0 or done == tips:
            print(f"  seeded {done:,} tips ({time.perf_counter() - began:.0f} s)", flush=True)
    return time.perf_counter() - began


def _last_month(now: datetime) -> tuple[datetime, datetime]:
    """Last whole calendar month, in Vietnam (UTC+7), as UTC bounds."""
    local = now + timedelta(hours=7)
    first_this = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    first_last = (first_this - timedelta(days=1)).replace(day=1)
    return first_last - timedelta(hours=7), first_this - timedelta(hours=7)


async def timed(runs: int, call: Callable[[int], Awaitable[None]]) -> tuple[float, float]:
    """p50 and p95 in milliseconds over `runs` calls (after two warm-up calls)."""
    for n in range(2):
        await call(n)
    samples = []
    for n in range(runs):
        began = time.perf_counter()
        await call(n)
        samples.append((time.perf_counter() - began) * 1000)
    samples.sort()
    return statistics.median(samples), samples[max(0, int(len(samples) * 0.95) - 1)]


async def measure(
    url: str, tips: int, runs: int, wards: list[str]
) -> dict[str, tuple[float, float]]:
    """Migrate, seed and time every query on one database."""
    engine = create_engine(url)
    await upgrade(engine)
    now = datetime.now(UTC)
    seconds = await seed(engine, tips, wards, now)
    print(f"  {tips:,} tips seeded in {seconds:.0f} s", flush=True)
    if engine.dialect.name == "postgresql":
        async with engine.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.exec_driver_sql("VACUUM ANALYZE tips")
    sessions = create_sessionmaker(engine)
    read_engine = create_read_engine(url)
    reads = create_sessionmaker(read_engine) if read_engine is not None else sessions
    rng = random.Random(7)
    ward_of_run = [rng.choice(wards[:1000]) for _ in range(runs + 2)]
    start, end = _last_month(now)
    results: dict[str, tuple[float, float]] = {}

    def queue(wanted: Callable[[int], cases.QueueFilter]) -> Callable[[int], Awaitable[None]]:
        async def call(n: int) -> None:
            async with sessions() as session:
                await cases.queue_page(session, wanted(n), 0, 8)

        return call

    def stats(areas: Callable[[int], list[str] | None]) -> Callable[[int], Awaitable[None]]:
        async def call(n: int) -> None:
            async with reads() as session:
                await reports.figures(session, reports.Scope(start, end, areas(n)))

        return call

    variants: list[tuple[str, Callable[[int], Awaitable[None]]]] = [
        ("queue: admin, open statuses", queue(lambda n: cases.QueueFilter())),
        (
            "queue: officer, one ward",
            queue(lambda n: cases.QueueFilter(areas=[ward_of_run[n]])),
        ),
        ("queue: category (fraud)", queue(lambda n: cases.QueueFilter(category="fraud"))),
        ("queue: unclaimed", queue(lambda n: cases.QueueFilter(unclaimed=True))),
        ("queue: oldest first", queue(lambda n: cases.QueueFilter(oldest_first=True))),
        ("month stats: admin", stats(lambda n: None)),
        ("month stats: officer, one ward", stats(lambda n: [ward_of_run[n]])),
    ]
    for name, call in variants:
        results[name] = await timed(runs, call)
        p50, p95 = results[name]
        print(f"  {name:<34} p50 {p50:8.2f} ms   p95 {p95:8.2f} ms", flush=True)
    await engine.dispose()
    if read_engine is not None:
        await read_engine.dispose()
    return results


async def fresh_postgres(url: str) -> tuple[str, Callable[[], Awaitable[None]]]:
    """A new database on the server; its URL and how to drop it."""
    name = f"tipline_bench_{secrets.token_hex(4)}"
    admin = create_async_engine(url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        await connection.exec_driver_sql(f'CREATE DATABASE "{name}"')

    async def drop() -> None:
        async with admin.connect() as connection:
            await connection.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.dispose()

    return make_url(url).set(database=name).render_as_string(hide_password=False), drop


def report(columns: dict[str, dict[str, tuple[float, float]]]) -> None:
    """Side by side, then the goals."""
    names = list(next(iter(columns.values())))
    header = "".join(f"{backend + ' p50/p95 ms':>26}" for backend in columns)
    print(f"\n{'query':<34}{header}")
    for name in names:
        cells = "".join(f"{f'{r[name][0]:.2f} / {r[name][1]:.2f}':>26}" for r in columns.values())
        print(f"{name:<34}{cells}")
    print("goals:")
    for backend, results in columns.items():
        for name, (_, p95) in results.items():
            goal = STATS_GOAL_MS if name.startswith("month stats") else QUEUE_GOAL_MS
            verdict = "met" if p95 < goal else "MISSED"
            print(f"  {backend:<11} {name:<34} p95 {p95:8.2f} ms < {goal:.0f} ms: {verdict}")


async def main() -> int:
    """Run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--tips", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument(
        "--postgres", default="auto", help="auto (TIPLINE_TEST_POSTGRES_URL), a URL, or off"
    )
    args = parser.parse_args()
    wards = [a.code for a in load_builtin(()) if a.kind is AreaKind.WARD]
    print(f"{len(wards)} wards, {len(CATEGORIES)} categories, {args.tips:,} tips, {args.runs} runs")
    columns: dict[str, dict[str, tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="tipline-bench-") as folder:
        print("SQLite:", flush=True)
        url = f"sqlite+aiosqlite:///{Path(folder) / 'bench.sqlite3'}"
        columns["SQLite"] = await measure(url, args.tips, args.runs, wards)
    server = os.environ.get("TIPLINE_TEST_POSTGRES_URL", "") if args.postgres == "auto" else ""
    if args.postgres not in ("auto", "off"):
        server = args.postgres
    if server:
        print("PostgreSQL:", flush=True)
        url, drop = await fresh_postgres(server)
        try:
            columns["PostgreSQL"] = await measure(url, args.tips, args.runs, wards)
        finally:
            await drop()
    report(columns)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
