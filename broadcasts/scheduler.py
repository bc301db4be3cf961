"""Bulletins' schedules as APScheduler jobs; a job only makes a run, once per scheduled time.

The jobs live in memory and are rebuilt from the bulletin rows at start, with fixed ids
(`bulletin:<id>`). Before that, fire times missed while the bot was down are caught up on: the
latest within the grace window becomes a run now, older ones are recorded as missed runs and the
bulletin's creator is told once. A run is unique per bulletin and scheduled time, so a job that
fires twice, or in two processes, makes one run; the fan-out then queues its recipients.

Stored schedules (`Bulletin.schedule`), in the bulletin's time zone:
    {"at": "2026-05-01T08:00"}                  once (an ISO time; without an offset: local)
    {"every": "daily", "time": "08:00"}
    {"every": "weekly", "days": ["mon", "thu"], "time": "19:30"}
    {"every": "monthly", "day": 31, "time": "08:00"}   a month without that day: its last day
    {"cron": "30 7 * * 1-5"}                    crontab: minute hour day month weekday (0 = Sun)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.jobstores.base import JobLookupError  # type: ignore[import-untyped]
from apscheduler.schedulers.asyncio import AsyncIOScheduler  # type: ignore[import-untyped]
from apscheduler.triggers.base import BaseTrigger  # type: ignore[import-untyped]
from apscheduler.triggers.combining import OrTrigger  # type: ignore[import-untyped]
from apscheduler.triggers.cron import CronTrigger  # type: ignore[import-untyped]
from apscheduler.triggers.date import DateTrigger  # type: ignore[import-untyped]
from apscheduler.triggers.interval import IntervalTrigger  # type: ignore[import-untyped]
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from broadcasts.senders import OutboundMessage
from storage.crypto import Vault
from storage.models import Bulletin, Chat, utcnow
from storage.repositories import outbox, runs

log = logging.getLogger(__name__)

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_CRONTAB_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")  # crontab: 0 and 7 are Sunday
_KEYS = {
    "at": {"at"},
    "cron": {"cron"},
    "daily": {"every", "time"},
    "weekly": {"every", "days", "time"},
    "monthly": {"every", "day", "time"},
}
_TIME = re.compile(r"(\d{1,2}):(\d{2})")
# The months that lack day 29, 30 or 31 (February lacks 29 in common years only).
_SHORT_MONTHS = {29: "2", 30: "2", 31: "2,4,6,9,11"}

TICK = timedelta(microseconds=1)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Of one downtime's missed fire times, the latest this many are recorded (a minutely cron).
MISSED_LIMIT = 100
# Fire times looked through at most in one catch-up (a week of a minutely cron).
SCAN_LIMIT = 10_080
SYNC_JOB = "bulletins:sync"

MissedText = Callable[[str, Bulletin, datetime], str]


def job_id(bulletin_id: int) -> str:
    """The fixed id of a bulletin's job."""
    return f"bulletin:{bulletin_id}"


def parse_schedule(schedule: Mapping[str, Any], timezone: str) -> BaseTrigger:
    """The trigger of a stored schedule in a time zone; a ValueError says what is wrong."""
    zone = _zone(timezone)
    kind = _kind(schedule)
    if kind == "at":
        return DateTrigger(run_date=_moment(schedule["at"], zone), timezone=zone)
    if kind == "cron":
        return _crontab(schedule["cron"], zone)
    hour, minute = _clock_time(schedule["time"])
    if kind == "daily":
        return CronTrigger(hour=hour, minute=minute, timezone=zone)
    if kind == "weekly":
        days = _weekdays(schedule["days"])
        return CronTrigger(day_of_week=days, hour=hour, minute=minute, timezone=zone)
    return _monthly(_month_day(schedule["day"]), hour, minute, zone)


def validate(schedule: Mapping[str, Any], timezone: str) -> None:
    """Refuse (ValueError) a schedule that cannot be stored: for the chat flow and the CLI."""
    parse_schedule(schedule, timezone)


def trigger_for(bulletin: Bulletin) -> BaseTrigger:
    """A bulletin's trigger, from its schedule in its time zone; ValueError when invalid."""
    return parse_schedule(bulletin.schedule, bulletin.timezone)


def is_one_off(schedule: Mapping[str, Any]) -> bool:
    """Whether a schedule fires once."""
    return "at" in schedule


def _zone(name: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValueError(f"unknown time zone {name!r}") from None


def _kind(schedule: Mapping[str, Any]) -> str:
    """Which of the schedule forms this is, with exactly its keys."""
    if not isinstance(schedule, Mapping):
        raise ValueError("a schedule is a mapping")
    every = schedule.get("every")
    kind = "at" if "at" in schedule else "cron" if "cron" in schedule else every
    if not isinstance(kind, str) or kind not in _KEYS:
        raise ValueError("a schedule needs 'at', 'cron' or 'every' (daily, weekly or monthly)")
    if missing := _KEYS[kind] - set(schedule):
        raise ValueError(f"a {kind} schedule needs {', '.join(sorted(missing))}")
    if extra := set(schedule) - _KEYS[kind]:
        raise ValueError(f"not part of a {kind} schedule: {', '.join(sorted(map(str, extra)))}")
    return kind


def _moment(value: Any, zone: tzinfo) -> datetime:
    """An ISO date and time; one without an offset is in the bulletin's zone."""
    if not isinstance(value, str):
        raise ValueError("'at' takes an ISO date and time")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"'at' takes an ISO date and time, not {value!r}") from None
    return moment.replace(tzinfo=zone) if moment.tzinfo is None else moment


def _clock_time(value: Any) -> tuple[int, int]:
    """HH:MM as (hour, minute)."""
    match = _TIME.fullmatch(value) if isinstance(value, str) else None
    if match is None or int(match[1]) > 23 or int(match[2]) > 59:
        raise ValueError(f"'time' takes HH:MM, not {value!r}")
    return int(match[1]), int(match[2])


def _weekdays(value: Any) -> str:
    """Chosen days (mon..sun) as a cron day-of-week list, Monday first."""
    if not isinstance(value, list | tuple) or not value:
        raise ValueError(f"'days' takes a list of {', '.join(DAYS)}")
    chosen = {str(day).lower() for day in value}
    if chosen - set(DAYS):
        raise ValueError(f"'days' takes a list of {', '.join(DAYS)}")
    return ",".join(day for day in DAYS if day in chosen)


def _month_day(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 31:
        raise ValueError(f"'day' takes a day of the month, 1 to 31, not {value!r}")
    return value


def _monthly(day: int, hour: int, minute: int, zone: tzinfo) -> BaseTrigger:
    """That day each month; a month too short for it, its last day."""
    trigger = CronTrigger(day=day, hour=hour, minute=minute, timezone=zone)
    if day not in _SHORT_MONTHS:
        return trigger
    short = CronTrigger(
        month=_SHORT_MONTHS[day], day="last", hour=hour, minute=minute, timezone=zone
    )
    return OrTrigger([trigger, short])


def _crontab(value: Any, zone: tzinfo) -> BaseTrigger:
    """A crontab line as standard cron reads it (0 is Sunday; day and weekday: either)."""
    fields = value.split() if isinstance(value, str) else []
    if len(fields) != 5:
        raise ValueError("'cron' takes five fields: minute hour day month weekday")
    minute, hour, day, month, weekday = fields
    days = _crontab_weekdays(weekday)
    at = {"minute": minute, "hour": hour, "month": month, "timezone": zone}
    if day.startswith("*") or weekday.startswith("*"):
        trigger = CronTrigger(day=day, day_of_week=days, **at)
    else:  # both restricted: cron fires on either, APScheduler only on both
        trigger = OrTrigger([CronTrigger(day=day, **at), CronTrigger(day_of_week=days, **at)])
    if trigger.get_next_fire_time(None, utcnow()) is None:
        raise ValueError(f"'cron' {value!r} never fires")
    return trigger


def _crontab_weekdays(field: str) -> str:
    """Crontab's weekday field as APScheduler 3's day names (its numbers start at Monday)."""
    if field == "*":
        return "*"
    days: set[int] = set()
    for part in field.split(","):
        span, _, step = part.partition("/")
        first, _, last = span.partition("-")
        if span == "*":
            low, high = 0, 6
        else:
            low = _crontab_day(first)
            high = _crontab_day(last) if last else (6 if step else low)
        if low > high or (step and not step.isdigit()) or step == "0":
            raise ValueError(f"bad weekday {part!r} in 'cron'")
        days.update(day % 7 for day in range(low, high + 1, int(step or 1)))
    return ",".join(day for day in DAYS if _CRONTAB_DAYS.index(day) in days)


def _crontab_day(token: str) -> int:
    """One crontab weekday: 0-7 or sun..sat."""
    if token.isdigit() and int(token) <= 7:
        return int(token)
    if token.lower() in _CRONTAB_DAYS:
        return _CRONTAB_DAYS.index(token.lower())
    raise ValueError(f"bad weekday {token!r} in 'cron'")


def fire_times(
    trigger: BaseTrigger, start: datetime, end: datetime, limit: int = SCAN_LIMIT
) -> list[datetime]:
    """A trigger's fire times from `start` to `end`, both included, the first `limit`, in UTC."""
    found: list[datetime] = []
    moment = trigger.get_next_fire_time(None, start)
    while moment is not None and moment <= end and len(found) < limit:
        if moment >= start:
            found.append(moment.astimezone(UTC))
        moment = trigger.get_next_fire_time(moment, end)
    return found


def latest_fire_time(trigger: BaseTrigger, start: datetime, end: datetime) -> datetime | None:
    """The last fire time from `start` to `end`, if any."""
    found = fire_times(trigger, start, end)
    return found[-1] if found else None


def next_fire_time(trigger: BaseTrigger, now: datetime) -> datetime | None:
    """The first fire time after `now`, in UTC."""
    moment = trigger.get_next_fire_time(None, now)
    if moment is not None and moment <= now:
        moment = trigger.get_next_fire_time(moment, now)
    return None if moment is None else moment.astimezone(UTC)


def _in_pause(bulletin: Bulletin, moment: datetime) -> bool:
    """Whether a fire time fell inside the bulletin's last pause."""
    paused, resumed = bulletin.paused_at, bulletin.resumed_at
    return paused is not None and resumed is not None and paused <= moment <= resumed


def _signature(bulletin: Bulletin) -> str:
    """What a bulletin's job depends on."""
    return json.dumps([bulletin.schedule, bulletin.timezone], sort_keys=True, default=str)


class BulletinScheduler:
    """One APScheduler job per active bulletin; a job only makes the bulletin's run."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        vault: Vault,
        *,
        grace: timedelta = timedelta(minutes=60),
        on_run: Callable[[], None] = lambda: None,
        missed_text: MissedText,
        clock: Callable[[], datetime] = utcnow,
        resync: timedelta | None = timedelta(minutes=1),
    ) -> None:
        self.sessions = sessions
        self.vault = vault
        self.grace = grace
        self.on_run = on_run
        self.missed_text = missed_text
        self.clock = clock
        self.resync = resync
        self._signatures: dict[int, str] = {}  # of the active bulletins seen, jobs or not
        self._tasks: set[asyncio.Task[None]] = set()
        # The APScheduler instance, its jobs in memory (rebuilt from the rows at every start).
        self.apscheduler = AsyncIOScheduler(timezone=UTC, job_defaults=self._job_options())

    def _job_options(self) -> dict[str, Any]:
        """Late jobs run within the grace window, once however many times they missed."""
        seconds = max(1, int(self.grace.total_seconds()))
        return {"coalesce": True, "misfire_grace_time": seconds, "max_instances": 1}

    async def start(self) -> None:
        """Catch up on fire times missed while down, then a job for every active bulletin."""
        now = self.clock()
        async with self.sessions() as session:
            found = [bulletin.id for bulletin in await runs.active_schedules(session)]
        self.apscheduler.start()
        for bulletin_id in found:
            await self._guarded(self._refresh(bulletin_id, now, tell=True))
        if self.resync is not None:
            every = IntervalTrigger(seconds=max(1, int(self.resync.total_seconds())))
            self.apscheduler.add_job(self._sync_job, every, id=SYNC_JOB, replace_existing=True)

    async def refresh(self, bulletin_id: int) -> None:
        """Re-read a bulletin and add, replace or remove its job (after create, pause, cancel)."""
        await self._refresh(bulletin_id, self.clock(), tell=False)

    def changed(self, bulletin_id: int) -> None:
        """Refresh soon, for callers that cannot wait (a handler, after its commit)."""
        task = asyncio.get_running_loop().create_task(self._guarded(self.refresh(bulletin_id)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def sync(self) -> None:
        """Follow rows changed elsewhere (the CLI, another process): new, changed, ended ones."""
        async with self.sessions() as session:
            wanted = {b.id: _signature(b) for b in await runs.active_schedules(session)}
        ended = [bulletin_id for bulletin_id in self._signatures if bulletin_id not in wanted]
        changed = [i for i, signature in wanted.items() if self._signatures.get(i) != signature]
        for bulletin_id in ended + changed:
            await self._guarded(self.refresh(bulletin_id))

    def next_run(self, bulletin_id: int) -> datetime | None:
        """When a bulletin's job fires next (UTC); None when it has no job."""
        job = self.apscheduler.get_job(job_id(bulletin_id))
        moment: datetime | None = getattr(job, "next_run_time", None)
        return None if moment is None else moment.astimezone(UTC)

    def job_ids(self) -> list[str]:
        """The ids of the bulletins' jobs."""
        return sorted(str(job.id) for job in self.apscheduler.get_jobs() if job.id != SYNC_JOB)

    async def fire(self, bulletin_id: int, scheduled_for: datetime | None = None) -> int | None:
        """The run for a fire time (default: the latest passed, within grace), made once; its id."""
        now = self.clock()
        async with self.sessions() as session, session.begin():
            bulletin = await runs.active_bulletin(session, bulletin_id)
            trigger = None if bulletin is None else self._trigger(bulletin)
            if bulletin is None or trigger is None:
                return None
            when = scheduled_for or latest_fire_time(trigger, now - self.grace, now)
            if when is None:
                return None
            run = await runs.create_run(session, bulletin, when, now=now)
            run_id = None if run is None else run.id
            once = is_one_off(bulletin.schedule)
            if once:
                bulletin.status = runs.DONE
        if once:
            self._place(bulletin_id, None, None, now)
        if run_id is not None:
            self.on_run()
        return run_id

    async def shutdown(self) -> None:
        """Stop firing, after the refreshes under way."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.apscheduler.running:
            self.apscheduler.shutdown(wait=False)

    async def _job(self, bulletin_id: int) -> None:
        """A bulletin's time came: its run."""
        await self._guarded(self.fire(bulletin_id))

    async def _sync_job(self) -> None:
        await self._guarded(self.sync())

    async def _guarded(self, work: Awaitable[object]) -> None:
        """Run and log a failure by its type only (messages may quote data)."""
        try:
            await work
        except Exception as exc:
            log.error("bulletin scheduling failed: %s", type(exc).__name__)

    async def _refresh(self, bulletin_id: int, now: datetime, *, tell: bool) -> None:
        """Catch up on the bulletin's passed fire times, then place its job."""
        trigger, signature, made = None, None, False
        async with self.sessions() as session, session.begin():
            bulletin = await runs.active_bulletin(session, bulletin_id)
            if bulletin is not None:
                signature = _signature(bulletin)
                trigger = self._trigger(bulletin)
            if bulletin is not None and trigger is not None:
                made = await self._catch_up(session, bulletin, trigger, now, tell=tell)
                trigger = trigger if bulletin.status == runs.ACTIVE else None
        if made:
            self.on_run()
        self._place(bulletin_id, trigger, signature, now)

    async def _catch_up(
        self,
        session: AsyncSession,
        bulletin: Bulletin,
        trigger: BaseTrigger,
        now: datetime,
        *,
        tell: bool,
    ) -> bool:
        """Runs for the fire times since the last run: the latest in grace due, older missed."""
        once = is_one_off(bulletin.schedule)
        last = await runs.last_run(session, bulletin.id)
        start = last.scheduled_for + TICK if last else EPOCH if once else bulletin.created_at
        due = latest_fire_time(trigger, max(start, now - self.grace), now)
        passed = fire_times(trigger, start, due - TICK if due else now)
        recorded = 0
        for moment in passed[-MISSED_LIMIT:]:
            if await runs.create_run(session, bulletin, moment, status=runs.MISSED, now=now):
                recorded += 1
        if due is not None and _in_pause(bulletin, due):
            # Paused on purpose at that time: not sent on resume, and no downtime to tell of.
            await runs.create_run(session, bulletin, due, status=runs.MISSED, now=now)
            due = None
        run = None if due is None else await runs.create_run(session, bulletin, due, now=now)
        if once and next_fire_time(trigger, now) is None:
            bulletin.status = runs.DONE
        told = recorded > 0 and tell and await self._tell_creator(session, bulletin, passed[0], now)
        return run is not None or told

    async def _tell_creator(
        self, session: AsyncSession, bulletin: Bulletin, missed_at: datetime, now: datetime
    ) -> bool:
        """Through the outbox, the creator hears that the bulletin went unsent while down."""
        address = self.vault.decrypt(bulletin.creator_address_enc or "")
        if address is None:
            return False
        address_hash = self.vault.keyed_hash(address)
        language = await session.scalar(
            select(Chat.language).where(Chat.address_hash == address_hash)
        )
        text = self.missed_text(language or "vi", bulletin, missed_at)
        row = {
            "channel": address.split(":", 1)[0],
            "address_hash": address_hash,
            "address_enc": bulletin.creator_address_enc,
            "payload": OutboundMessage(text).to_payload(),
            "created_at": now,
        }
        await outbox.enqueue(session, [row])
        return True

    def _trigger(self, bulletin: Bulletin) -> BaseTrigger | None:
        try:
            return trigger_for(bulletin)
        except ValueError:
            log.error("bulletin %d has an invalid schedule", bulletin.id)
            return None

    def _place(
        self, bulletin_id: int, trigger: BaseTrigger | None, signature: str | None, now: datetime
    ) -> None:
        """Add or replace the bulletin's job, or remove it when it has no time to come."""
        if signature is None:
            self._signatures.pop(bulletin_id, None)
        else:
            self._signatures[bulletin_id] = signature
        if trigger is None or next_fire_time(trigger, now) is None:
            with contextlib.suppress(JobLookupError):
                self.apscheduler.remove_job(job_id(bulletin_id))
            return
        self.apscheduler.add_job(
            self._job,
            trigger,
            args=(bulletin_id,),
            next_run_time=next_fire_time(trigger, now),  # by this scheduler's clock
            id=job_id(bulletin_id),
            name=job_id(bulletin_id),
            replace_existing=True,
            **self._job_options(),
        )
