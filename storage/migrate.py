"""Schema migrations: Alembic, loaded only where a migration is due.

A running bot checks the schema's revision against the newest migration file, which costs one
query and no Alembic; pending migrations run in a short-lived child process (this module as
`python -m storage.migrate`, the URL on its standard input), so the long-running process never
holds Alembic, Mako and their friends in memory.
"""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_REVISION = re.compile(r"^revision\s*=\s*[\"']([^\"']+)[\"']", re.MULTILINE)
_DOWN_REVISION = re.compile(r"^down_revision\s*=\s*[\"']([^\"']+)[\"']", re.MULTILINE)
VERSION_TABLE = "alembic_version"


class MigrationError(RuntimeError):
    """Migrating in the child process failed; the message says how, without secrets."""


def head_revision() -> str:
    """The newest revision, read from the migration files (the one nothing builds on)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        source = path.read_text("utf-8")
        if found := _REVISION.search(source):
            revisions.add(found.group(1))
        parents.update(_DOWN_REVISION.findall(source))
    heads = revisions - parents
    if len(heads) != 1:
        raise RuntimeError(f"migrations must have one head, found {sorted(heads)}")
    return heads.pop()


def _revision_of(connection: Connection) -> str | None:
    if not inspect(connection).has_table(VERSION_TABLE):
        return None
    return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


async def is_current(engine: AsyncEngine) -> bool:
    """Whether the database's schema is at the newest revision."""
    async with engine.connect() as connection:
        revision = await connection.run_sync(_revision_of)
        await connection.rollback()
    return revision == head_revision()


def _upgrade(connection: Connection) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


async def upgrade(engine: AsyncEngine) -> None:
    """Bring the schema to the newest revision, in this process."""
    async with engine.begin() as connection:
        await connection.run_sync(_upgrade)


async def upgrade_in_child(url: str) -> None:
    """Bring the schema to the newest revision in a child process; MigrationError if it fails."""
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        __name__,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, errors = await child.communicate(url.encode())
    if child.returncode != 0:
        reason = errors.decode(errors="replace").strip().splitlines()
        raise MigrationError(reason[-1] if reason else f"exit status {child.returncode}")


async def _main(url: str) -> int:
    from storage.engine import create_engine

    engine = create_engine(url)
    try:
        await upgrade(engine)
    except Exception as exc:  # one line, the type only: messages may carry the URL
        reason = type(getattr(exc, "orig", None) or exc).__name__
        print(f"migration failed: {reason}", file=sys.stderr)
        return 1
    finally:
        await engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(_main(sys.stdin.read().strip())))
