"""`tipline export ...` and `tipline audit ...`: the tips of a period as a file, the audit log."""

from __future__ import annotations

import argparse
import csv
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.app import load_areas
from bot.areas_cli import database
from bot.config import Settings
from bot.i18n import LANGUAGES, Catalog
from handlers import reports as report_files
from storage.models import StaffMember, utcnow
from storage.repositories import audit, reports

ACTOR = "cli"
AUDIT_LIMIT = 50


def add_export_arguments(parser: argparse.ArgumentParser) -> None:
    """`tipline export`'s options."""
    parser.add_argument("--from", dest="start", required=True, metavar="YYYY-MM-DD")
    parser.add_argument("--to", dest="end", required=True, metavar="YYYY-MM-DD", help="inclusive")
    parser.add_argument("--format", choices=("csv", "xlsx"), default="csv")
    parser.add_argument("--out", type=Path, help="the file to write (csv: stdout without it)")
    parser.add_argument("--area", metavar="CODE", help="only this area and what lies in it")
    parser.add_argument("--lang", choices=LANGUAGES, default="vi", help="column names and values")


def add_audit_arguments(parser: argparse.ArgumentParser) -> None:
    """`tipline audit`'s options."""
    parser.add_argument("--from", dest="start", metavar="YYYY-MM-DD")
    parser.add_argument("--to", dest="end", metavar="YYYY-MM-DD", help="inclusive")
    parser.add_argument("--actor", metavar="NAME", help="a staff label, staff:N, cli or system")
    parser.add_argument("--limit", type=int, default=AUDIT_LIMIT, help="newest N entries")
    parser.add_argument("--csv", action="store_true", help="CSV to stdout, for a spreadsheet")


def _day(text: str | None, option: str) -> date | None:
    if text is None:
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError:
        raise ValueError(f"{option} takes YYYY-MM-DD, not {text!r}") from None


async def export(settings: Settings, args: argparse.Namespace) -> int:
    """Write the period's tips as CSV or XLSX; audited with actor "cli". Exit code."""
    try:
        first, last = _day(args.start, "--from"), _day(args.end, "--to")
    except ValueError as exc:
        print(f"tipline: {exc}", file=sys.stderr)
        return 2
    assert first is not None and last is not None
    if last < first:
        print("tipline: --to is before --from", file=sys.stderr)
        return 2
    if args.format == "xlsx" and args.out is None:
        print("tipline: --format xlsx needs --out FILE", file=sys.stderr)
        return 2
    period = report_files.Period(first, last)
    words = report_files.Words(Catalog(), args.lang)
    async with database(settings) as sessions:
        catalog = await load_areas(sessions, settings.provinces)
        areas: list[str] | None = None
        if args.area:
            if catalog.get(args.area) is None:
                print(f"tipline: unknown area code {args.area!r}", file=sys.stderr)
                return 1
            areas = _inside(catalog, args.area)
        async with sessions() as session:
            rows = await reports.export_rows(session, period.scope(areas))
            labels = await reports.staff_labels(session, [row.owner for row in rows])
        table = report_files.export_table(words, catalog, rows, labels)
        data = (
            report_files.to_csv(table)
            if args.format == "csv"
            else report_files.to_xlsx(table, words("reports.sheet"))
        )
        if args.out is None:
            sys.stdout.buffer.write(data)
            sys.stdout.flush()
        else:
            args.out.write_bytes(data)
        async with sessions() as session, session.begin():
            detail: dict[str, Any] = {
                "from": first.isoformat(),
                "to": last.isoformat(),
                "format": args.format,
                "count": len(rows),
            }
            if args.area:
                detail["area"] = args.area
            await audit.record(session, actor=ACTOR, action="export", detail=detail, at=utcnow())
    if args.out is not None:
        print(f"{len(rows)} tips written to {args.out}", file=sys.stderr)
    return 0


def _inside(catalog: Any, code: str) -> list[str]:
    found: list[str] = []
    stack = [code]
    while stack:
        current = stack.pop()
        if current not in found:
            found.append(current)
            stack.extend(child.code for child in catalog.children(current))
    return found


async def audit_log(settings: Settings, args: argparse.Namespace) -> int:
    """Print the newest audit entries, filtered by period and actor. Exit code."""
    try:
        first, last = _day(args.start, "--from"), _day(args.end, "--to")
    except ValueError as exc:
        print(f"tipline: {exc}", file=sys.stderr)
        return 2
    if first and last and last < first:
        print("tipline: --to is before --from", file=sys.stderr)
        return 2
    if args.limit < 1:
        print("tipline: --limit is at least 1", file=sys.stderr)
        return 2
    start = report_files.Period(first, first).bounds()[0] if first else None
    end = report_files.Period(last, last).bounds()[1] if last else None
    words = report_files.Words(Catalog(), "en")
    async with database(settings) as sessions, sessions() as session:
        actor = await _actor(session, args.actor)
        entries = await reports.audit_page(
            session, limit=args.limit, start=start, end=end, actor=actor
        )
        entries = entries[: args.limit]
        labels = await reports.staff_labels(session, [entry.actor for entry in entries])
    if args.csv:
        out = csv.writer(sys.stdout)
        out.writerow(["id", "at", "actor", "action", "target", "detail"])
        for entry in entries:
            when = entry.at.astimezone(report_files.VIETNAM)
            out.writerow(
                [entry.id, f"{when:%Y-%m-%d %H:%M:%S}",
                 report_files.safe_cell(report_files.actor_name(words, entry.actor, labels)),
                 entry.action, entry.target or "", report_files.safe_cell(str(entry.detail))]
            )  # fmt: skip
        return 0
    for entry in entries:
        when = entry.at.astimezone(report_files.VIETNAM)
        who = report_files.actor_name(words, entry.actor, labels)
        print(f"{when:%Y-%m-%d %H:%M}\t{who}\t{entry.action}\t{entry.target or '-'}")
    if not entries:
        print("no audit entries")
    return 0


async def _actor(session: AsyncSession, name: str | None) -> str | None:
    """An actor as stored: a staff label becomes "staff:N"; other names stay as typed."""
    if name is None or name.startswith(("staff:", "bootstrap:")) or name in ("cli", "system"):
        return name
    found = await session.scalar(
        select(StaffMember.id).where(StaffMember.label == name).order_by(StaffMember.id.desc())
    )
    return f"staff:{found}" if found is not None else name
