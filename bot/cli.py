"""Command line: `tipline run`, `tipline db upgrade`."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

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
    areas = commands.add_parser("areas", help="the area catalogue and subscribers")
    area_commands = areas.add_subparsers(dest="areas_command", required=True, metavar="ACTION")
    importer = area_commands.add_parser(
        "import", help="add neighbourhoods from a CSV or GeoJSON file (all rows or none)"
    )
    importer.add_argument("file", type=Path)
    finder = area_commands.add_parser("search", help="find areas by name")
    finder.add_argument("text", nargs="+")
    lister = area_commands.add_parser("list", help="list provinces, or the areas under a code")
    lister.add_argument("code", nargs="?", help="a province or ward code, e.g. P01 or W00070")
    area_commands.add_parser("subscribers", help="subscriber counts per area and topic")
    return parser


def _areas(settings: Settings, args: argparse.Namespace) -> int:
    from bot import areas_cli

    action = args.areas_command
    if action == "import":
        return asyncio.run(areas_cli.import_file(settings, args.file))
    if action == "search":
        return asyncio.run(areas_cli.search(settings, " ".join(args.text)))
    if action == "list":
        return asyncio.run(areas_cli.list_areas(settings, args.code))
    return asyncio.run(areas_cli.subscriber_counts(settings))


async def _db_upgrade(settings: Settings) -> None:
    from bot.app import open_database

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = await open_database(settings.resolved_database_url)
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
        elif args.command == "areas":
            return _areas(settings, args)
    except ConfigError as exc:
        print(f"tipline: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
