"""Command line: `tipline run`, `tipline db upgrade`, `tipline areas ...`, `tipline admin ...`,
`tipline bulletin ...`, `tipline export`, `tipline audit`."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from bot.config import ConfigError, Settings, load_settings
from bot.logs import setup_logging

ROLES = ("admin", "officer")


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
    bulletin = commands.add_parser("bulletin", help="scheduled bulletins")
    bulletin_commands = bulletin.add_subparsers(
        dest="bulletin_command", required=True, metavar="ACTION"
    )
    _bulletin_cli().add_arguments(bulletin_commands)
    _report_cli().add_export_arguments(
        commands.add_parser("export", help="a period's tips as CSV or XLSX (no tipster data)")
    )
    _report_cli().add_audit_arguments(commands.add_parser("audit", help="the audit log"))
    admin = commands.add_parser("admin", help="staff: invite, list, revoke")
    admin_commands = admin.add_subparsers(dest="admin_command", required=True, metavar="ACTION")
    inviter = admin_commands.add_parser("invite", help="print a one-time invite code")
    inviter.add_argument("--role", choices=ROLES, default="admin")
    inviter.add_argument(
        "--area", action="append", default=[], metavar="CODE", help="jurisdiction (repeatable)"
    )
    inviter.add_argument("--hours", type=_hours, default=24, help="how long the code works")
    inviter.add_argument("--label", default="", help="who it is for, as /staff will show them")
    admin_commands.add_parser("staff", help="list the active staff")
    revoker = admin_commands.add_parser("revoke", help="end a staff role")
    revoker.add_argument("id", type=int, help="the number `tipline admin staff` shows")
    return parser


def _hours(text: str) -> int:
    hours = int(text)
    if not 1 <= hours <= 24 * 30:
        raise argparse.ArgumentTypeError("between 1 and 720 hours")
    return hours


def _bulletin_cli() -> Any:
    from bot import bulletin_cli

    return bulletin_cli


def _report_cli() -> Any:
    from bot import report_cli

    return report_cli


def _bulletin(settings: Settings, args: argparse.Namespace) -> int:
    cli = _bulletin_cli()
    action = args.bulletin_command
    if action == "create":
        return int(asyncio.run(cli.create(settings, args)))
    if action == "list":
        return int(asyncio.run(cli.list_all(settings)))
    if action == "report":
        return int(asyncio.run(cli.report(settings, args)))
    return int(asyncio.run(cli.change(settings, args.id, action)))


def _admin(settings: Settings, args: argparse.Namespace) -> int:
    from bot import admin_cli

    action = args.admin_command
    if action == "invite":
        return asyncio.run(admin_cli.invite(settings, args.role, args.area, args.hours, args.label))
    if action == "staff":
        return asyncio.run(admin_cli.list_staff(settings))
    return asyncio.run(admin_cli.revoke(settings, args.id))


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
        elif args.command == "admin":
            return _admin(settings, args)
        elif args.command == "bulletin":
            return _bulletin(settings, args)
        elif args.command == "export":
            return int(asyncio.run(_report_cli().export(settings, args)))
        elif args.command == "audit":
            return int(asyncio.run(_report_cli().audit_log(settings, args)))
    except ConfigError as exc:
        print(f"tipline: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
