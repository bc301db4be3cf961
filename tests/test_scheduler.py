"""The bulletin scheduler: schedules read right, runs made once, downtime caught up on."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from bot.app import Core
from broadcasts.scheduler import (
    MISSED_LIMIT,
    BulletinScheduler,
    fire_times,
    next_fire_time,
    parse_schedule,
    validate,
)
from storage.models import Bulletin, BulletinRun, Delivery, MessagePrompt, utcnow
from storage.repositories import bulletins, runs

HCM = "Asia/Ho_Chi_Minh"
CREATOR = "telegram:4242"


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """A UTC time."""
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


class Clock:
    """A clock the test moves."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


Factory = Callable[..., BulletinScheduler]


@pytest.fixture
async def schedulers(core: Core) -> AsyncIterator[Factory]:
    """Schedulers on the test's database (each one like a process), shut down afterwards."""
    made: list[BulletinScheduler] = []
    services = core.dispatcher.services

    def make(clock: Callable[[], datetime] = utcnow, **options: Any) -> BulletinScheduler:
        scheduler = BulletinScheduler(
            services.sessions,
            services.vault,
            missed_text=lambda language, bulletin, at: f"{language}:{bulletin.id}:{at:%m-%d %H:%M}",
            clock=clock,
            resync=None,
            **options,
        )
        made.append(scheduler)
        return scheduler

    yield make
    for scheduler in made:
        await scheduler.shutdown()


async def add_bulletin(
    core: Core,
    schedule: dict[str, Any],
    *,
    created_at: datetime,
    timezone: str = HCM,
    status: str = "active",
    kind: str = "bulletin",
) -> int:
    """A bulletin row as the CLI or the chat flow stores it."""
    services = core.dispatcher.services
    async with services.sessions() as session, session.begin():
        bulletin = Bulletin(
            kind=kind,
            text="Cảnh giác lừa đảo qua điện thoại",
            target="*",
            areas=[],
            topic="scams",
            schedule=schedule,
            timezone=timezone,
            status=status,
            created_by="admin",
            creator_address_enc=services.vault.encrypt(CREATOR),
            created_at=created_at,
        )
        session.add(bulletin)
        await session.flush()
        return bulletin.id


async def set_status(core: Core, bulletin_id: int, status: str, now: datetime) -> None:
    """Pause, resume or cancel, as the admin's command does, at a time."""
    async with core.dispatcher.services.sessions() as session, session.begin():
        assert await bulletins.set_status(session, bulletin_id, status, now) is not None


async def status_of(core: Core, bulletin_id: int) -> str:
    async with core.dispatcher.services.sessions() as session:
        bulletin = await session.get(Bulletin, bulletin_id)
        assert bulletin is not None
        return bulletin.status


async def runs_of(core: Core, bulletin_id: int) -> list[tuple[datetime, str, bool]]:
    """(scheduled for, status, has a stop button) of a bulletin's runs, in time order."""
    async with core.dispatcher.services.sessions() as session:
        found = await session.scalars(
            select(BulletinRun)
            .where(BulletinRun.bulletin_id == bulletin_id)
            .order_by(BulletinRun.scheduled_for)
        )
        return [(run.scheduled_for, run.status, run.prompt_token is not None) for run in found]


async def creator_messages(core: Core) -> list[str]:
    """The texts queued in the outbox for the bulletins' creator."""
    services = core.dispatcher.services
    async with services.sessions() as session:
        rows = await session.scalars(
            select(Delivery).where(Delivery.address_hash == services.vault.keyed_hash(CREATOR))
        )
        return [str(row.payload["text"]) for row in rows]


def test_daily_in_local_time_and_in_utc() -> None:
    daily = {"every": "daily", "time": "08:00"}
    local = parse_schedule(daily, HCM)
    first = local.get_next_fire_time(None, utc(2030, 3, 1, 12))  # 19:00 in Hanoi
    assert first == utc(2030, 3, 2, 1)
    assert local.get_next_fire_time(first, first) == utc(2030, 3, 3, 1)
    in_utc = parse_schedule(daily, "UTC")
    assert fire_times(in_utc, utc(2030, 3, 1, 12), utc(2030, 3, 3, 12)) == [
        utc(2030, 3, 2, 8),
        utc(2030, 3, 3, 8),
    ]
    # 06:00 in Hanoi is 23:00 UTC the day before.
    early = parse_schedule({"every": "daily", "time": "06:00"}, HCM)
    assert next_fire_time(early, utc(2030, 3, 1, 12)) == utc(2030, 3, 1, 23)


def test_weekly_on_the_chosen_days() -> None:
    weekly = parse_schedule({"every": "weekly", "days": ["thu", "mon"], "time": "19:30"}, HCM)
    # 2030-03-01 is a Friday; Monday 4th, Thursday 7th, Monday 11th, 19:30 in Hanoi.
    assert fire_times(weekly, utc(2030, 3, 1), utc(2030, 3, 12)) == [
        utc(2030, 3, 4, 12, 30),
        utc(2030, 3, 7, 12, 30),
        utc(2030, 3, 11, 12, 30),
    ]


def test_monthly_day_a_month_lacks_falls_on_its_last_day() -> None:
    on_31 = parse_schedule({"every": "monthly", "day": 31, "time": "08:00"}, HCM)
    assert fire_times(on_31, utc(2030, 1, 1), utc(2030, 5, 1)) == [
        utc(2030, 1, 31, 1),
        utc(2030, 2, 28, 1),
        utc(2030, 3, 31, 1),
        utc(2030, 4, 30, 1),
    ]
    on_30 = parse_schedule({"every": "monthly", "day": 30, "time": "08:00"}, "UTC")
    assert fire_times(on_30, utc(2030, 2, 1), utc(2030, 4, 1)) == [
        utc(2030, 2, 28, 8),
        utc(2030, 3, 30, 8),
    ]
    on_29 = parse_schedule({"every": "monthly", "day": 29, "time": "08:00"}, "UTC")
    leap = fire_times(on_29, utc(2028, 2, 1), utc(2028, 3, 1))
    assert leap == [utc(2028, 2, 29, 8)]  # once, though day 29 is also February's last
    first = parse_schedule({"every": "monthly", "day": 1, "time": "00:30"}, HCM)
    assert next_fire_time(first, utc(2030, 3, 1)) == utc(2030, 3, 31, 17, 30)  # 1 April, Hanoi


def test_cron_reads_like_crontab_in_its_zone() -> None:
    weekdays = parse_schedule({"cron": "30 7 * * 1-5"}, HCM)  # crontab: 1-5 is Monday-Friday
    found = fire_times(weekdays, utc(2030, 3, 1), utc(2030, 3, 9))
    assert [moment.strftime("%a %d %H:%M") for moment in found] == [
        "Fri 01 00:30",
        "Mon 04 00:30",
        "Tue 05 00:30",
        "Wed 06 00:30",
        "Thu 07 00:30",
        "Fri 08 00:30",
    ]
    midnight = {"cron": "0 0 * * *"}
    assert next_fire_time(parse_schedule(midnight, HCM), utc(2030, 3, 1, 12)) == utc(2030, 3, 1, 17)
    assert next_fire_time(parse_schedule(midnight, "UTC"), utc(2030, 3, 1, 12)) == utc(2030, 3, 2)
    sundays = parse_schedule({"cron": "0 9 * * 0"}, "UTC")
    assert next_fire_time(sundays, utc(2030, 3, 1)) == utc(2030, 3, 3, 9)
    # Day and weekday both given: either one, as cron has it.
    either = parse_schedule({"cron": "0 8 1 * sun"}, "UTC")
    found = fire_times(either, utc(2030, 8, 28), utc(2030, 9, 9))
    assert found == [utc(2030, 9, 1, 8), utc(2030, 9, 8, 8)]  # 1 Sept is a Sunday
    found = fire_times(either, utc(2030, 10, 1), utc(2030, 10, 7))
    assert found == [utc(2030, 10, 1, 8), utc(2030, 10, 6, 8)]


def test_once_at_a_local_or_offset_time() -> None:
    local = parse_schedule({"at": "2030-03-01T08:00"}, HCM)
    assert next_fire_time(local, utc(2030, 2, 1)) == utc(2030, 3, 1, 1)
    assert next_fire_time(local, utc(2030, 3, 1, 1)) is None
    offset = parse_schedule({"at": "2030-03-01T08:00:00+00:00"}, HCM)
    assert next_fire_time(offset, utc(2030, 2, 1)) == utc(2030, 3, 1, 8)


@pytest.mark.parametrize(
    "schedule",
    [
        {},
        {"every": "hourly", "time": "08:00"},
        {"every": "daily"},
        {"every": "daily", "time": "25:00"},
        {"every": "daily", "time": "8am"},
        {"every": "daily", "time": "08:00", "days": ["mon"]},
        {"every": "weekly", "days": [], "time": "08:00"},
        {"every": "weekly", "days": ["funday"], "time": "08:00"},
        {"every": "weekly", "days": "mon", "time": "08:00"},
        {"every": "monthly", "day": 0, "time": "08:00"},
        {"every": "monthly", "day": 32, "time": "08:00"},
        {"every": "monthly", "day": "1", "time": "08:00"},
        {"cron": "* * *"},
        {"cron": "61 * * * *"},
        {"cron": "0 8 * * 8"},
        {"cron": "0 8 * * 5-1"},
        {"cron": "0 0 30 2 *"},
        {"cron": 5},
        {"at": "now"},
        {"at": "tomorrow at eight"},
        {"at": 1_900_000_000},
    ],
)
def test_invalid_schedules_are_refused(schedule: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        validate(schedule, HCM)


def test_unknown_time_zone_is_refused() -> None:
    with pytest.raises(ValueError):
        validate({"every": "daily", "time": "08:00"}, "Mars/Olympus")


async def test_misfire_inside_grace_makes_one_pending_run(core: Core, schedulers: Factory) -> None:
    bulletin_id = await add_bulletin(
        core, {"every": "daily", "time": "08:00"}, created_at=utc(2030, 3, 2, 0, 30)
    )
    woken: list[int] = []
    scheduler = schedulers(Clock(utc(2030, 3, 2, 1, 20)), on_run=lambda: woken.append(1))
    await scheduler.start()  # down from 07:30 to 08:20 in Hanoi: the 08:00 run goes now
    assert await runs_of(core, bulletin_id) == [(utc(2030, 3, 2, 1), "pending", True)]
    assert woken == [1]
    assert await creator_messages(core) == []
    assert scheduler.job_ids() == [f"bulletin:{bulletin_id}"]
    assert scheduler.next_run(bulletin_id) == utc(2030, 3, 3, 1)
    async with core.dispatcher.services.sessions() as session:
        run = await runs.last_run(session, bulletin_id)
        assert run is not None
        prompt = await session.get(MessagePrompt, run.prompt_token)
        assert prompt is not None
        assert prompt.actions == [[f"alertstop:{run.id}", "stop"]]


async def test_misfire_beyond_grace_is_recorded_and_the_creator_told_once(
    core: Core, schedulers: Factory
) -> None:
    bulletin_id = await add_bulletin(
        core, {"every": "daily", "time": "08:00"}, created_at=utc(2030, 3, 1, 0, 30)
    )
    clock = Clock(utc(2030, 3, 4, 3))  # 10:00 in Hanoi, two hours past the grace of 08:00
    await schedulers(clock).start()
    missed = [(utc(2030, 3, day, 1), "missed", False) for day in (1, 2, 3, 4)]
    assert await runs_of(core, bulletin_id) == missed
    assert await creator_messages(core) == [f"vi:{bulletin_id}:03-01 01:00"]
    clock.now += timedelta(minutes=5)
    again = schedulers(clock)
    await again.start()  # a second restart: nothing new missed, nobody told twice
    assert await runs_of(core, bulletin_id) == missed
    assert len(await creator_messages(core)) == 1
    assert again.next_run(bulletin_id) == utc(2030, 3, 5, 1)


async def test_downtime_sends_the_latest_in_grace_and_records_the_older(
    core: Core, schedulers: Factory
) -> None:
    bulletin_id = await add_bulletin(
        core, {"every": "daily", "time": "08:00"}, created_at=utc(2030, 3, 1, 0, 30)
    )
    await schedulers(Clock(utc(2030, 3, 3, 1, 30))).start()
    assert await runs_of(core, bulletin_id) == [
        (utc(2030, 3, 1, 1), "missed", False),
        (utc(2030, 3, 2, 1), "missed", False),
        (utc(2030, 3, 3, 1), "pending", True),
    ]
    assert await creator_messages(core) == [f"vi:{bulletin_id}:03-01 01:00"]


async def test_long_downtime_records_the_latest_missed_runs(
    core: Core, schedulers: Factory
) -> None:
    bulletin_id = await add_bulletin(
        core, {"cron": "* * * * *"}, created_at=utc(2030, 3, 1), timezone="UTC"
    )
    clock = Clock(utc(2030, 3, 1, 3) + timedelta(seconds=30))
    await schedulers(clock).start()  # 180 minutes missed, then 03:00 in grace
    found = await runs_of(core, bulletin_id)
    assert len(found) == MISSED_LIMIT + 1
    assert found[0] == (utc(2030, 3, 1, 3) - timedelta(minutes=MISSED_LIMIT), "missed", False)
    assert found[-1] == (utc(2030, 3, 1, 3), "pending", True)
    assert await creator_messages(core) == [f"vi:{bulletin_id}:03-01 00:00"]
    clock.now += timedelta(seconds=10)
    await schedulers(clock).start()
    assert len(await runs_of(core, bulletin_id)) == MISSED_LIMIT + 1
    assert len(await creator_messages(core)) == 1


async def test_one_off_past_its_time(core: Core, schedulers: Factory) -> None:
    created = utc(2030, 2, 20)
    in_grace = await add_bulletin(core, {"at": "2030-03-01T08:00"}, created_at=created)
    too_late = await add_bulletin(core, {"at": "2030-03-01T05:00"}, created_at=created)
    scheduler = schedulers(Clock(utc(2030, 3, 1, 1, 30)))
    await scheduler.start()
    assert await runs_of(core, in_grace) == [(utc(2030, 3, 1, 1), "pending", True)]
    assert await runs_of(core, too_late) == [(utc(2030, 2, 28, 22), "missed", False)]
    assert await status_of(core, in_grace) == "done"
    assert await status_of(core, too_late) == "done"
    assert await creator_messages(core) == [f"vi:{too_late}:02-28 22:00"]
    assert scheduler.job_ids() == []


async def test_double_fire_makes_one_run(core: Core, schedulers: Factory) -> None:
    bulletin_id = await add_bulletin(
        core, {"every": "daily", "time": "08:00"}, created_at=utc(2030, 3, 1)
    )
    woken: list[int] = []
    clock = Clock(utc(2030, 3, 2, 1) + timedelta(seconds=2))
    first = schedulers(clock, on_run=lambda: woken.append(1))
    second = schedulers(clock, on_run=lambda: woken.append(2))  # another process
    eight = utc(2030, 3, 2, 1)
    assert await first.fire(bulletin_id, eight) is not None
    assert await first.fire(bulletin_id, eight) is None
    assert await second.fire(bulletin_id, eight) is None
    assert await second.fire(bulletin_id) is None  # the fire time it works out is the same
    clock.now = utc(2030, 3, 3, 1) + timedelta(seconds=1)
    both = await asyncio.gather(first.fire(bulletin_id), second.fire(bulletin_id))
    assert sum(run_id is not None for run_id in both) == 1
    assert await runs_of(core, bulletin_id) == [
        (eight, "pending", True),
        (utc(2030, 3, 3, 1), "pending", True),
    ]
    assert len(woken) == 2


async def test_pause_resume_cancel_through_refresh(core: Core, schedulers: Factory) -> None:
    bulletin_id = await add_bulletin(
        core, {"every": "daily", "time": "08:00"}, created_at=utc(2030, 3, 1, 2)
    )
    clock = Clock(utc(2030, 3, 2))
    scheduler = schedulers(clock)
    await scheduler.start()
    assert scheduler.next_run(bulletin_id) == utc(2030, 3, 2, 1)

    await set_status(core, bulletin_id, "paused", clock.now)
    await scheduler.refresh(bulletin_id)
    assert scheduler.job_ids() == []
    assert scheduler.next_run(bulletin_id) is None
    clock.now = utc(2030, 3, 2, 1) + timedelta(seconds=5)
    assert await scheduler.fire(bulletin_id) is None

    clock.now = utc(2030, 3, 5)  # paused over three fire times
    await set_status(core, bulletin_id, "active", clock.now)
    await scheduler.refresh(bulletin_id)
    assert scheduler.job_ids() == [f"bulletin:{bulletin_id}"]
    assert scheduler.next_run(bulletin_id) == utc(2030, 3, 5, 1)
    assert [status for _, status, _ in await runs_of(core, bulletin_id)] == ["missed"] * 3
    await schedulers(clock).start()  # a pause is no downtime: its creator is not told
    assert await creator_messages(core) == []

    await set_status(core, bulletin_id, "cancelled", clock.now)
    await scheduler.refresh(bulletin_id)
    assert scheduler.job_ids() == []
    clock.now = utc(2030, 3, 5, 1) + timedelta(seconds=5)
    assert await scheduler.fire(bulletin_id) is None
    assert len(await runs_of(core, bulletin_id)) == 3


async def test_a_time_inside_a_pause_is_not_sent_on_resume(core: Core, schedulers: Factory) -> None:
    bulletin_id = await add_bulletin(
        core, {"every": "daily", "time": "08:00"}, created_at=utc(2030, 3, 1, 2)
    )
    clock = Clock(utc(2030, 3, 2, 0, 50))  # 07:50 in Hanoi
    scheduler = schedulers(clock)
    await scheduler.start()
    await set_status(core, bulletin_id, "paused", clock.now)
    await scheduler.refresh(bulletin_id)
    clock.now = utc(2030, 3, 2, 1, 10)  # resumed at 08:10, inside the 60-minute grace
    await set_status(core, bulletin_id, "active", clock.now)
    await scheduler.refresh(bulletin_id)
    assert await runs_of(core, bulletin_id) == [(utc(2030, 3, 2, 1), "missed", False)]
    assert scheduler.next_run(bulletin_id) == utc(2030, 3, 3, 1)
    await schedulers(clock).start()
    assert await creator_messages(core) == [], "a pause is no downtime: nobody is told"

    clock.now = utc(2030, 3, 3, 1, 20)  # later the bot was down over the next 08:00
    assert await schedulers(clock).fire(bulletin_id) is not None, "after the pause: sent"
    assert (await runs_of(core, bulletin_id))[-1] == (utc(2030, 3, 3, 1), "pending", True)


async def test_restart_rebuilds_the_same_jobs_and_no_runs(core: Core, schedulers: Factory) -> None:
    created = utc(2030, 3, 1, 2)  # 09:00 in Hanoi, after that day's 08:00
    daily = await add_bulletin(core, {"every": "daily", "time": "08:00"}, created_at=created)
    weekly = await add_bulletin(
        core, {"every": "weekly", "days": ["mon"], "time": "09:00"}, created_at=created
    )
    monthly = await add_bulletin(
        core, {"every": "monthly", "day": 31, "time": "08:00"}, created_at=created
    )
    await add_bulletin(
        core, {"every": "daily", "time": "08:00"}, created_at=created, status="paused"
    )
    await add_bulletin(core, {"at": "now"}, created_at=created, kind="alert")
    clock = Clock(utc(2030, 3, 2, 1) + timedelta(seconds=1))
    first = schedulers(clock)
    await first.start()
    assert await runs_of(core, daily) == [(utc(2030, 3, 2, 1), "pending", True)]
    expected = sorted(f"bulletin:{i}" for i in (daily, weekly, monthly))
    assert first.job_ids() == expected
    job = first.apscheduler.get_job(f"bulletin:{daily}")
    assert (job.coalesce, job.misfire_grace_time) == (True, 3600)
    upcoming = {i: first.next_run(i) for i in (daily, weekly, monthly)}
    assert upcoming == {
        daily: utc(2030, 3, 3, 1),
        weekly: utc(2030, 3, 4, 2),
        monthly: utc(2030, 3, 31, 1),
    }
    await first.shutdown()

    clock.now += timedelta(minutes=1)
    second = schedulers(clock)
    await second.start()
    assert second.job_ids() == expected
    assert {i: second.next_run(i) for i in upcoming} == upcoming
    assert await runs_of(core, daily) == [(utc(2030, 3, 2, 1), "pending", True)]
    assert await runs_of(core, weekly) == []


async def test_sync_follows_rows_changed_elsewhere(core: Core, schedulers: Factory) -> None:
    clock = Clock(utc(2030, 3, 2))
    scheduler = schedulers(clock)
    await scheduler.start()
    bulletin_id = await add_bulletin(
        core, {"every": "daily", "time": "08:00"}, created_at=clock.now
    )  # by `tipline bulletin create`, another process
    await scheduler.sync()
    assert scheduler.job_ids() == [f"bulletin:{bulletin_id}"]
    await set_status(core, bulletin_id, "paused", clock.now)
    await scheduler.sync()
    assert scheduler.job_ids() == []


async def test_live_one_off_fires_once(core: Core, schedulers: Factory) -> None:
    at = utcnow() + timedelta(seconds=0.3)
    bulletin_id = await add_bulletin(core, {"at": at.isoformat()}, created_at=utcnow())
    fired = asyncio.Event()
    calls: list[int] = []

    def on_run() -> None:
        calls.append(1)
        fired.set()

    scheduler = schedulers(on_run=on_run)
    await scheduler.start()
    assert scheduler.job_ids() == [f"bulletin:{bulletin_id}"]
    await asyncio.wait_for(fired.wait(), 5)
    await asyncio.sleep(0.2)
    assert await runs_of(core, bulletin_id) == [(at, "pending", True)]
    assert calls == [1]
    assert await status_of(core, bulletin_id) == "done"
    assert scheduler.job_ids() == []
