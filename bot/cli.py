"""Command line: `tipline run`, `tipline db upgrade`."""

from __future__ import annotations

import argparse
import asyncio
import sys

from bot.config import ConfigError, Settings, load_settings
from bot.logs import setup_logging


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tipline",
        description="Anonymous police tip line: Telegram bot and local web chat. "
        "Configured with TIPLINE_* environment variables (see README).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("run", help="run the bot: web chat, plus Telegram when a token is set")
    db = commands.add_parser("db", help="database maintenance")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    db_commands.add_parser("upgrade", help="apply database migrations")
    return parser


async def _db_upgrade(settings: Settings) -> None:
    from storage.engine import create_engine
    from storage.migrate import upgrade

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_engine(settings.resolved_database_url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `tipline` command."""
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
        setup_logging(settings.log_level)
        if args.command == "run":
            from bot.app import run

            asyncio.run(run(settings))
        elif args.command == "db":
            asyncio.run(_db_upgrade(settings))
            print("database is up to date")
    except ConfigError as exc:
        print(f"tipline: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
