"""`tipline bulletin ...`: scheduled bulletins from the command line."""

from __future__ import annotations

import argparse
import csv
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.app import file_store, load_areas
from bot.areas_cli import database
from bot.config import Settings
from broadcasts.scheduler import validate
from handlers.alerts import reach
from storage.models import utcnow
from storage.repositories import audit, bulletins

ACTOR = "cli"
DEFAULT_TZ = "Asia/Ho_Chi_Minh"
TOPICS = ("all", "scams", "drugs", "traffic", "fire", "missing")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def add_arguments(commands: Any) -> None:
    """The `bulletin` subcommands."""
    create = commands.add_parser("create", help="schedule a bulletin")
    create.add_argument("text", help="what residents will read")
    create.add_argument("--area", action="append", default=[], metavar="CODE", required=True)
    create.add_argument("--topic", choices=TOPICS, default="all")
    when = create.add_mutually_exclusive_group(required=True)
    when.add_argument("--at", metavar="'YYYY-MM-DD HH:MM'", help="once, at this local time")
    when.add_argument("--every", choices=("daily", "weekly", "monthly"))
    when.add_argument("--cron", metavar="'m h dom mon dow'")
    create.add_argument("--time", default="08:00", metavar="HH:MM", help="with --every")
    create.add_argument("--days", default="mon", metavar="mon,thu", help="with --every weekly")
    create.add_argument("--day", type=int, default=1, help="with --every monthly (1-31)")
    create.add_argument("--tz", default=DEFAULT_TZ, help="time zone of the times")
    create.add_argument(
        "--photo", metavar="FILE", help="an image sent with the text (stored re-encoded)"
    )
    commands.add_parser("list", help="scheduled bulletins")
    report = commands.add_parser("report", help="outreach figures for a period")
    report.add_argument("--from", dest="start", required=True, metavar="YYYY-MM-DD")
    report.add_argument("--to", dest="end", required=True, metavar="YYYY-MM-DD", help="inclusive")
    report.add_argument("--csv", action="store_true", help="one row per run, for a spreadsheet")
    report.add_argument("--tz", default=DEFAULT_TZ, help="time zone of the dates")
    for action in ("pause", "resume", "cancel"):
        command = commands.add_parser(action, help=f"{action} a bulletin")
        command.add_argument("id", type=int)


def schedule_from(args: argparse.Namespace) -> dict[str, Any]:
    """The stored schedule for the command line's --at/--every/--cron; ValueError if invalid."""
    try:
        zone = ZoneInfo(args.tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {args.tz!r}") from None
    if args.at:
        try:
            local = datetime.strptime(args.at, "%Y-%m-%d %H:%M").replace(tzinfo=zone)
        except ValueError:
            raise ValueError("--at takes 'YYYY-MM-DD HH:MM'") from None
        if local <= datetime.now(zone):
            raise ValueError("--at is in the past")
        return {"at": local.isoformat()}
    if args.cron:
        return {"cron": args.cron}
    schedule: dict[str, Any] = {"every": args.every, "time": args.time}
    if args.every == "weekly":
        days = [day.strip().lower()[:3] for day in args.days.split(",") if day.strip()]
        if not days or any(day not in DAYS for day in days):
            raise ValueError(f"--days takes some of {','.join(DAYS)}")
        schedule["days"] = days
    elif args.every == "monthly":
        schedule["day"] = args.day
    return schedule


async def create(settings: Settings, args: argparse.Namespace) -> int:
    """Store a scheduled bulletin; the running bot picks it up within a minute."""
    try:
        schedule = schedule_from(args)
    except ValueError as exc:
        print(f"tipline: {exc}")
        return 2
    async with database(settings) as sessions:
        catalog = await load_areas(sessions, settings.provinces)
        unknown = [code for code in args.area if catalog.get(code) is None]
        if unknown:
            print(f"unknown area code(s): {', '.join(unknown)} (see `tipline areas search`)")
            return 1
        areas = sorted({code for target in args.area for code in reach(catalog, target)})
        now = utcnow()
        try:
            validate(schedule, args.tz)
        except ValueError as exc:
            print(f"tipline: invalid schedule: {exc}")
            return 2
        try:
            photo = _stored_photo(settings, args.photo)
        except ValueError as exc:
            print(f"tipline: {exc}")
            return 2
        async with sessions() as session, session.begin():
            bulletin = await bulletins.create_bulletin(
                session,
                text=args.text,
                target=args.area[0] if len(args.area) == 1 else ",".join(args.area),
                areas=areas,
                topic=args.topic,
                schedule=schedule,
                timezone=args.tz,
                created_by=ACTOR,
                creator_address_enc=None,
                now=now,
                photo_ref=photo,
            )
            await audit.record(
                session,
                actor=ACTOR,
                action="bulletin.created",
                target=f"bulletin:{bulletin.id}",
                detail={
                    "schedule": schedule,
                    "areas": args.area,
                    "topic": args.topic,
                    "photo": photo is not None,
                },
                at=now,
            )
    print(f"bulletin {bulletin.id} scheduled: {describe(schedule, args.tz)}")
    return 0


def _stored_photo(settings: Settings, path: str | None) -> str | None:
    """--photo's image stored re-encoded from its pixels; ValueError when it cannot be."""
    if path is None:
        return None
    limit = settings.max_attachment_mb * 1024 * 1024
    try:
        with Path(path).open("rb") as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise ValueError(f"--photo cannot be read: {exc.strerror}") from None
    if len(data) > limit:
        raise ValueError(f"--photo is larger than {settings.max_attachment_mb} MB")
    ref = file_store(settings).save_image(data)
    if ref is None:
        raise ValueError("--photo is not an image that can be re-encoded (JPEG, PNG, WebP, GIF)")
    return ref


def describe(schedule: dict[str, Any], tz: str) -> str:
    """A schedule in words."""
    if "at" in schedule:
        return f"once at {schedule['at']}"
    if "cron" in schedule:
        return f"cron '{schedule['cron']}' ({tz})"
    every = schedule.get("every")
    extra = {
        "weekly": f" on {','.join(schedule.get('days', []))}",
        "monthly": f" on day {schedule.get('day')}",
    }
    return f"{every}{extra.get(str(every), '')} at {schedule.get('time')} ({tz})"


async def list_all(settings: Settings) -> int:
    """Print the active and paused bulletins with their last run."""
    async with database(settings) as sessions, sessions() as session:
        found = await bulletins.list_bulletins(session)
        last = await bulletins.last_runs(session, [b.id for b in found])
    for bulletin in found:
        run = last.get(bulletin.id)
        ran = (
            f"last run {run.scheduled_for:%Y-%m-%d %H:%M} UTC ({run.status})"
            if run
            else "not run yet"
        )
        text = bulletin.text if len(bulletin.text) <= 40 else bulletin.text[:39] + "…"
        print(
            f"{bulletin.id}\t{bulletin.status}\t{describe(bulletin.schedule, bulletin.timezone)}"
            f"\t{bulletin.topic}\t{ran}\t{text}"
        )
    if not found:
        print("no scheduled bulletins")
    return 0


async def change(settings: Settings, bulletin_id: int, action: str) -> int:
    """Pause, resume or cancel a bulletin."""
    status = {"pause": bulletins.PAUSED, "resume": bulletins.ACTIVE, "cancel": bulletins.CANCELLED}
    async with database(settings) as sessions, sessions() as session, session.begin():
        bulletin = await bulletins.set_status(session, bulletin_id, status[action], utcnow())
        if bulletin is None:
            print(f"no bulletin {bulletin_id} that can be changed")
            return 1
        await audit.record(
            session,
            actor=ACTOR,
            action=f"bulletin.{status[action]}",
            target=f"bulletin:{bulletin_id}",
            at=utcnow(),
        )
    print(f"bulletin {bulletin_id}: {status[action]}")
    return 0


def _period(args: argparse.Namespace) -> tuple[datetime, datetime]:
    """The report's [start, end) in UTC from inclusive local dates; ValueError if invalid."""
    zone = ZoneInfo(args.tz)
    try:
        start = datetime.strptime(args.start, "%Y-%m-%d").replace(tzinfo=zone)
        end = datetime.strptime(args.end, "%Y-%m-%d").replace(tzinfo=zone) + timedelta(days=1)
    except ValueError:
        raise ValueError("--from and --to take YYYY-MM-DD") from None
    if end <= start:
        raise ValueError("--to is before --from")
    return start.astimezone(UTC), end.astimezone(UTC)


async def report(settings: Settings, args: argparse.Namespace) -> int:
    """Bulletins and alerts sent, messages delivered, residents reached, by area and topic."""
    try:
        start, end = _period(args)
    except (ValueError, ZoneInfoNotFoundError) as exc:
        print(f"tipline: {exc}")
        return 2
    async with database(settings) as sessions:
        catalog = await load_areas(sessions, settings.provinces)
        async with sessions() as session:
            rows = await bulletins.outreach(session, start, end)
    zone = ZoneInfo(args.tz)

    def where(target: str) -> str:
        names = [catalog.label(a) for code in target.split(",") if (a := catalog.get(code))]
        return "; ".join(names) or ("every area" if target == "*" else target)

    if args.csv:
        out = csv.writer(sys.stdout)
        out.writerow(
            ["run", "time", "kind", "area", "topic", "sent", "residents", "groups", "failed"]
        )
        for row in rows:
            local = row.scheduled_for.astimezone(zone)
            out.writerow(
                [row.id, f"{local:%Y-%m-%d %H:%M}", row.kind, where(row.target), row.topic,
                 row.sent, row.reached, row.groups, row.lost]
            )  # fmt: skip
        return 0
    kinds = Counter(row.kind for row in rows)
    print(f"{args.start} to {args.end} ({args.tz})")
    print(f"alerts sent: {kinds['alert']}, bulletins sent: {kinds['bulletin']}")
    delivered, lost = sum(r.sent for r in rows), sum(r.lost for r in rows)
    print(f"messages delivered: {delivered}, not delivered: {lost}")
    residents, groups = sum(r.reached for r in rows), sum(r.groups for r in rows)
    print(f"reached (summed over runs): {residents} residents' chats, {groups} groups")
    by_area: Counter[tuple[str, str]] = Counter()
    reach: dict[tuple[str, str], Counter[str]] = {}
    for row in rows:
        key = (where(row.target), row.topic)
        by_area[key] += row.sent
        reach.setdefault(key, Counter()).update(residents=row.reached, groups=row.groups)
    for (area, topic), sent in sorted(by_area.items(), key=lambda item: -item[1]):
        counted = reach[(area, topic)]
        print(
            f"  {area} / {topic}: {sent} messages,"
            f" {counted['residents']} residents, {counted['groups']} groups"
        )
    return 0
