"""/bulletin: an admin schedules a bulletin in the chat: text, area, topic, when, preview, confirm.

Schedules are typed the way people write them ("19:30", "24/12 08:00", "T2,T5 19:30",
"1 08:00") and stored in the scheduler's form; the scheduler (broadcasts) checks them through
`Services.check_schedule` and makes the runs.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from handlers import area_picker, menu
from handlers.alerts import (
    EVERYWHERE,
    area_name,
    ask_area,
    ask_text,
    drafted_reach,
    drop_photo,
    drop_photo_after_commit,
    ended_unless_admin,
    photo_of,
    pick_area,
    reach,
    remove_photo,
    take_text,
)
from handlers.context import Context
from handlers.flow import FlowSpec
from handlers.menu import show_menu
from handlers.routing import Command, FlowControl, Router, unknown_command
from handlers.staff import is_admin, role_of
from storage.repositories import audit, bulletins, runs

NAME = "bulletin"
TEXT_MIN, TEXT_MAX = 10, 1500
TIMEZONE = "Asia/Ho_Chi_Minh"
TOPICS = ("all", "scams", "drugs", "traffic", "fire", "missing")
KINDS = ("now", "once", "daily", "weekly", "monthly", "cron")
# Vietnamese weekday abbreviations (T2 = Monday ... CN = Sunday) and English ones.
_DAYS = {
    "t2": "mon", "t3": "tue", "t4": "wed", "t5": "thu", "t6": "fri", "t7": "sat", "cn": "sun",
    **{day: day for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
}  # fmt: skip
_TIME = re.compile(r"^([01]?\d|2[0-3])[:hH.]([0-5]\d)$")


class Step(StrEnum):
    """Steps of /bulletin."""

    TEXT = "text"
    AREA = "area"
    TOPIC = "topic"
    WHEN = "when"
    DETAIL = "detail"
    PREVIEW = "preview"


def _clock(text: str) -> str | None:
    """'19:30', '19h30', '7.05' as HH:MM."""
    found = _TIME.match(text.strip())
    return f"{int(found.group(1)):02d}:{found.group(2)}" if found else None


def parse_when(kind: str, text: str, now: datetime) -> dict[str, Any] | None:
    """A typed schedule of one kind in the scheduler's form, or None when it does not read."""
    if kind == "cron":
        return {"cron": " ".join(text.split())} if len(text.split()) == 5 else None
    words = text.replace(",", " ").split()
    if not words or (clock := _clock(words[-1])) is None:
        return None
    if kind == "daily" and len(words) == 1:
        return {"every": "daily", "time": clock}
    if kind == "weekly":
        days = [_DAYS.get(word.lower()) for word in words[:-1]]
        if days and all(days):
            return {"every": "weekly", "days": days, "time": clock}
    if kind == "monthly" and len(words) == 2 and words[0].isdigit():
        return {"every": "monthly", "day": int(words[0]), "time": clock}
    if kind == "once" and len(words) == 2:
        return _once(words[0], clock, now)
    return None


def _once(date: str, clock: str, now: datetime) -> dict[str, Any] | None:
    """'24/12' or '24/12/2026' at a time, local; this year unless written, never in the past."""
    parts = date.split("/")
    zone = ZoneInfo(TIMEZONE)
    try:
        year = int(parts[2]) if len(parts) == 3 else now.astimezone(zone).year
        day, month = int(parts[0]), int(parts[1])
        hour, minute = map(int, clock.split(":"))
        moment = datetime(year, month, day, hour, minute, tzinfo=zone)
    except (ValueError, IndexError):
        return None
    return {"at": moment.isoformat()} if moment > now else None


async def start(ctx: Context) -> None:
    """Begin: ask for the text."""
    ctx.chat.data = {}
    ctx.go(NAME, Step.TEXT)
    await prompt(ctx)


def _cancel(ctx: Context) -> list[tuple[str, str]]:
    return [(ctx.t("button.cancel"), "bul:cancel")]


async def prompt(ctx: Context) -> None:
    """Ask for the current step's input."""
    step = ctx.chat.step
    if step == Step.TEXT:
        ask_text(ctx, ctx.t("bulletin.ask_text", min=TEXT_MIN, max=TEXT_MAX), "bul", _cancel(ctx))
    elif step == Step.AREA:
        await ask_area(ctx, ctx.t("bulletin.ask_area"), "bul:everywhere", _cancel(ctx))
    elif step == Step.TOPIC:
        rows = [[(ctx.t(f"topic.{topic}"), f"bul:topic:{topic}")] for topic in TOPICS]
        ctx.ask(ctx.t("bulletin.ask_topic"), [*rows, _cancel(ctx)])
    elif step == Step.WHEN:
        rows = [[(ctx.t(f"bulletin.when_{kind}"), f"bul:when:{kind}")] for kind in KINDS]
        ctx.ask(ctx.t("bulletin.ask_when"), [*rows, _cancel(ctx)])
    elif step == Step.DETAIL:
        ctx.ask(ctx.t(f"bulletin.ask_{ctx.draft.get('kind')}"), [_cancel(ctx)])
    else:
        await _preview(ctx)


async def _preview(ctx: Context) -> None:
    """The bulletin exactly as residents will see it, when it goes, and to how many."""
    code, count = await drafted_reach(ctx)
    shown = ctx.t("bulletins.header", area=area_name(ctx, code))
    ctx.say(ctx.t("bulletin.preview_intro", count=count, when=_describe(ctx)))
    ctx.ask(
        f"{shown}\n\n{ctx.draft['text']}\n\n[{ctx.t('alert.stop_button')}]",
        [[(ctx.t("bulletin.confirm"), "bul:confirm")], _cancel(ctx)],
        photo=photo_of(ctx),
    )


def _describe(ctx: Context) -> str:
    """The chosen schedule in words."""
    kind = str(ctx.draft.get("kind", "now"))
    return ctx.t(f"bulletin.when_{kind}") + (
        f" — {ctx.draft.get('typed')}" if ctx.draft.get("typed") else ""
    )


async def handle(ctx: Context, action: str | None) -> None:
    """Take input at the current step; each step authorised again as it runs."""
    if await ended_unless_admin(ctx):
        return
    if action == "bul:cancel":
        drop_photo_after_commit(ctx)
        ctx.end_flow()
        ctx.say(ctx.t("bulletin.cancelled"))
        show_menu(ctx)
        return
    step = ctx.chat.step
    if step == Step.TEXT and action == "bul:nophoto":
        remove_photo(ctx)
    elif step == Step.TEXT:
        _receive_text(ctx)
    elif step == Step.AREA:
        if await pick_area(ctx, action, "bul:everywhere"):
            ctx.go(NAME, Step.TOPIC)
    elif step == Step.TOPIC and action and action.removeprefix("bul:topic:") in TOPICS:
        ctx.update_draft(topic=action.removeprefix("bul:topic:"))
        ctx.go(NAME, Step.WHEN)
    elif step == Step.WHEN and action and action.removeprefix("bul:when:") in KINDS:
        kind = action.removeprefix("bul:when:")
        ctx.update_draft(kind=kind, schedule=None, typed=None)
        ctx.go(NAME, Step.PREVIEW if kind == "now" else Step.DETAIL)
    elif step == Step.DETAIL:
        _receive_detail(ctx)
    elif step == Step.PREVIEW and action == "bul:confirm":
        await _create(ctx)
        return
    else:
        ctx.say(ctx.t("input.use_buttons"))
    await prompt(ctx)


def _receive_text(ctx: Context) -> None:
    if take_text(ctx, TEXT_MIN, TEXT_MAX):
        area_picker.reset(ctx)
        ctx.go(NAME, Step.AREA)


def _receive_detail(ctx: Context) -> None:
    typed = (ctx.event.text or "").strip()
    schedule = parse_when(str(ctx.draft.get("kind")), typed, ctx.now)
    problem = ctx.services.check_schedule(schedule, TIMEZONE) if schedule else "unreadable"
    if schedule is None or problem:
        ctx.say(ctx.t("bulletin.when_unreadable"))
        return
    ctx.update_draft(schedule=schedule, typed=typed)
    ctx.go(NAME, Step.PREVIEW)


async def _create(ctx: Context) -> None:
    """Store the bulletin; "now" also gets its run at once."""
    _, actor = await role_of(ctx)
    code = str(ctx.draft.get("area", EVERYWHERE))
    now_kind = ctx.draft.get("kind") == "now"
    schedule = {"at": ctx.now.isoformat()} if now_kind else dict(ctx.draft["schedule"])
    bulletin = await bulletins.create_bulletin(
        ctx.session,
        text=str(ctx.draft["text"]),
        target=code,
        areas=reach(ctx.areas, code),
        topic=str(ctx.draft.get("topic", "all")),
        schedule=schedule,
        timezone=TIMEZONE,
        created_by=actor,
        creator_address_enc=ctx.services.vault.encrypt(ctx.reply_address),
        now=ctx.now,
        photo_ref=photo_of(ctx),
    )
    if now_kind:
        await runs.create_run(ctx.session, bulletin, ctx.now, now=ctx.now)
        bulletin.status = bulletins.FINISHED
        ctx.committed.append(ctx.services.wake_broadcasts)
    else:
        bulletin_id = bulletin.id
        ctx.committed.append(lambda: ctx.services.bulletin_changed(bulletin_id))
    await audit.record(
        ctx.session,
        actor=actor,
        action="bulletin.created",
        target=f"bulletin:{bulletin.id}",
        detail={
            "schedule": schedule,
            "area": code,
            "topic": bulletin.topic,
            "photo": bulletin.photo_ref is not None,
        },
        at=ctx.now,
    )
    when = _describe(ctx)
    ctx.end_flow()
    ctx.say(ctx.t("bulletin.created", id=bulletin.id, when=when))
    show_menu(ctx)


async def begin(ctx: Context, core: FlowControl) -> None:
    """/bulletin, for admins; anyone else hears of no such command."""
    if not await is_admin(ctx):
        await unknown_command(ctx, core)  # and a citizen's draft stays as it was
        return
    await menu.opens(NAME)(ctx, core)


FLOW = FlowSpec(name=NAME, start=start, prompt=prompt, handle=handle, discard=drop_photo)
ROUTER = Router(NAME, flows=(FLOW,), commands=(Command("bulletin", begin, listed=False),))
