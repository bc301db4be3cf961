"""/alert: an admin's urgent alert to an area's residents, now: text, area, preview, send.

The alert is stored with one run; `broadcasts` queues every subscriber of the area (its
neighbourhoods, and the province above it) into the outbox and the drainer sends them. Each
resident's copy carries a button that stops the alerts that brought it; it lives beside any
flow prompt the resident has open (see storage.repositories.prompts).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from handlers import area_picker, menu
from handlers.context import Context, Translator
from handlers.flow import FlowSpec
from handlers.menu import show_menu
from handlers.routing import Command, FlowControl, Router, unknown_command
from handlers.staff import is_admin, role_of
from storage.area_catalog import AreaCatalog
from storage.files import FileStore
from storage.models import Bulletin, BulletinRun
from storage.repositories import audit, bulletins
from storage.repositories import subscriptions as subscriptions_repo

NAME = "alert"
TEXT_MIN, TEXT_MAX = 10, 1500
EVERYWHERE = "*"


class Step(StrEnum):
    """Steps of /alert."""

    TEXT = "text"
    AREA = "area"
    PREVIEW = "preview"


def reach(areas: AreaCatalog, code: str) -> list[str]:
    """The areas whose subscribers an alert about one area reaches: it, what lies in it, and
    what it lies in (a province's subscribers hear about each of its wards)."""
    if code == EVERYWHERE:
        return []
    found: list[str] = []
    stack = [code]
    while stack:
        current = stack.pop()
        found.append(current)
        stack.extend(child.code for child in areas.children(current))
    return sorted({*found, *areas.ancestors(code)})


def area_name(ctx: Context, code: str) -> str:
    """An area's label, or "every area"."""
    area = ctx.areas.get(code)
    return ctx.areas.label(area) if area else ctx.t("alert.everywhere")


def resident_text(translate: Translator, language: str, area: str, text: str) -> str:
    """The alert as a resident reads it (the preview shows the admin the very same)."""
    return f"{translate(language, 'alert.header', area=area)}\n\n{text}"


def ask_text(ctx: Context, question: str, prefix: str, cancel: list[tuple[str, str]]) -> None:
    """Ask for a draft's text (a photo may come with it), offering to remove a photo taken."""
    if photo_of(ctx) is None:
        ctx.ask(f"{question}\n{ctx.t('alert.photo_hint')}", [cancel])
        return
    remove = [(ctx.t("alert.remove_photo"), f"{prefix}:nophoto")]
    ctx.ask(f"{question}\n{ctx.t('alert.photo_taken')}", [remove, cancel])


async def ask_area(
    ctx: Context, question: str, everywhere: str, cancel: list[tuple[str, str]]
) -> None:
    """The area step of an admin's draft: the area picker, with every area one tap away."""
    await area_picker.ask(ctx, question, [[(ctx.t("alert.everywhere_button"), everywhere)], cancel])


async def pick_area(ctx: Context, action: str | None, everywhere: str) -> bool:
    """Take the area step's input; True once an area (or every area) is in the draft."""
    code = EVERYWHERE if action == everywhere else await area_picker.handle(ctx, action)
    if code is None:
        return False
    ctx.update_draft(area=code, picker=None)
    return True


async def drafted_reach(ctx: Context) -> tuple[str, int]:
    """The draft's area and how many chats it reaches now."""
    code = str(ctx.draft.get("area", EVERYWHERE))
    # The event's own session: a second connection would wait while this one holds the lock.
    return code, await bulletins.count_reach(ctx.session, reach(ctx.areas, code))


def take_text(ctx: Context, minimum: int, maximum: int) -> bool:
    """The text step of an admin's draft: text, or one photo with the text as its caption (a
    photo alone is kept and the text asked for); True once the draft has its text."""
    event = ctx.event
    if event.attachments and not _take_photo(ctx):
        return False
    text = (event.text or "").strip()
    if event.attachments and not text:
        ctx.say(ctx.t("alert.photo_kept"))
        return False
    if not text or event.location or event.unsupported:
        ctx.say(ctx.t("alert.wants_text"))
        return False
    if not minimum <= len(text) <= maximum:
        ctx.say(ctx.t("alert.text_length", min=minimum, max=maximum, length=len(text)))
        return False
    ctx.update_draft(text=text)
    return True


def _take_photo(ctx: Context) -> bool:
    """Keep the event's one image, stored re-encoded, as the draft's photo (replacing any)."""
    attachments = ctx.event.attachments
    ref = ctx.keep_stored_file(0) if len(attachments) == 1 and attachments[0].is_image else None
    if ref is None:
        ctx.say(ctx.t("alert.photo_unusable"))
        return False
    drop_photo_after_commit(ctx)
    ctx.update_draft(photo=ref)
    return True


def drop_photo(files: FileStore, draft: dict[str, Any]) -> None:
    """A discarded draft's photo is deleted with it."""
    photo = draft.get("photo")
    if isinstance(photo, str):
        files.delete(photo)


def drop_photo_after_commit(ctx: Context) -> None:
    """The draft's photo goes once the event is saved (a rollback keeps the draft's file)."""
    draft = dict(ctx.draft)
    files = ctx.services.files
    ctx.committed.append(lambda: drop_photo(files, draft))


def remove_photo(ctx: Context) -> None:
    """The admin took the photo off the draft."""
    drop_photo_after_commit(ctx)
    ctx.update_draft(photo=None)
    ctx.say(ctx.t("alert.photo_removed"))


def photo_of(ctx: Context) -> str | None:
    """The draft's photo, if any."""
    photo = ctx.draft.get("photo")
    return photo if isinstance(photo, str) else None


async def ended_unless_admin(ctx: Context) -> bool:
    """An admin's draft whose writer is no longer admin ends here, as an unknown command."""
    if await is_admin(ctx):
        return False
    ctx.end_flow()
    ctx.say(ctx.t("command.unknown"))
    show_menu(ctx)
    return True


async def start(ctx: Context) -> None:
    """Begin an alert: ask for its text."""
    ctx.chat.data = {}
    ctx.go(NAME, Step.TEXT)
    await prompt(ctx)


def _cancel(ctx: Context) -> list[tuple[str, str]]:
    return [(ctx.t("button.cancel"), "alert:cancel")]


async def prompt(ctx: Context) -> None:
    """Ask for the current step's input."""
    step = ctx.chat.step
    if step == Step.TEXT:
        ask_text(ctx, ctx.t("alert.ask_text", min=TEXT_MIN, max=TEXT_MAX), "alert", _cancel(ctx))
    elif step == Step.AREA:
        await ask_area(ctx, ctx.t("alert.ask_area"), "alert:everywhere", _cancel(ctx))
    else:
        await _preview(ctx)


async def _preview(ctx: Context) -> None:
    """The alert exactly as residents will see it, with how many it reaches, to confirm."""
    code, count = await drafted_reach(ctx)
    shown = resident_text(
        ctx.services.translate, ctx.chat.language, area_name(ctx, code), str(ctx.draft["text"])
    )
    ctx.say(ctx.t("alert.preview_intro", count=count))
    ctx.ask(
        f"{shown}\n\n[{ctx.t('alert.stop_button')}]",
        [
            [(ctx.t("alert.send"), "alert:send")],
            [
                (ctx.t("alert.edit_text"), "alert:edit_text"),
                (ctx.t("alert.edit_area"), "alert:edit_area"),
            ],
            _cancel(ctx),
        ],
        photo=photo_of(ctx),
    )


async def handle(ctx: Context, action: str | None) -> None:
    """Take input at the current step; each step authorised again as it runs."""
    if await ended_unless_admin(ctx):
        return
    if action == "alert:cancel":
        drop_photo_after_commit(ctx)
        ctx.end_flow()
        ctx.say(ctx.t("alert.cancelled"))
        show_menu(ctx)
        return
    step = ctx.chat.step
    if step == Step.TEXT and action == "alert:nophoto":
        remove_photo(ctx)
    elif step == Step.TEXT:
        _receive_text(ctx)
    elif step == Step.AREA:
        if await pick_area(ctx, action, "alert:everywhere"):
            ctx.go(NAME, Step.PREVIEW)
    elif action == "alert:send":
        await _send(ctx)
        return
    elif action == "alert:edit_text":
        ctx.go(NAME, Step.TEXT)
    elif action == "alert:edit_area":
        area_picker.reset(ctx)
        ctx.go(NAME, Step.AREA)
    else:
        ctx.say(ctx.t("input.use_buttons"))
    await prompt(ctx)


def _receive_text(ctx: Context) -> None:
    if take_text(ctx, TEXT_MIN, TEXT_MAX):
        area_picker.reset(ctx)
        ctx.go(NAME, Step.AREA if "area" not in ctx.draft else Step.PREVIEW)


async def _send(ctx: Context) -> None:
    """Store the alert and its run; the outbox takes it from there."""
    _, actor = await role_of(ctx)
    code = str(ctx.draft.get("area", EVERYWHERE))
    run = await bulletins.create_alert(
        ctx.session,
        text=str(ctx.draft.get("text", "")),
        target=code,
        areas=reach(ctx.areas, code),
        created_by=actor,
        creator_address_enc=ctx.services.vault.encrypt(ctx.reply_address),
        now=ctx.now,
        photo_ref=photo_of(ctx),
    )
    await audit.record(
        ctx.session,
        actor=actor,
        action="alert.created",
        target=f"bulletin:{run.bulletin_id}",
        detail={"area": code, "photo": photo_of(ctx) is not None},
        at=ctx.now,
    )
    ctx.committed.append(ctx.services.wake_broadcasts)
    ctx.end_flow()
    ctx.say(ctx.t("alert.queued", area=area_name(ctx, code)))
    show_menu(ctx)


async def begin(ctx: Context, core: FlowControl) -> None:
    """/alert, for admins; anyone else hears of no such command."""
    if not await is_admin(ctx):
        await unknown_command(ctx, core)  # and a citizen's draft stays as it was
        return
    await menu.opens(NAME)(ctx, core)


async def stop_these_alerts(ctx: Context, action: str, core: FlowControl) -> None:
    """The button under an alert: leave the subscriptions that brought it, keep the rest."""
    run_id = action.removeprefix(bulletins.STOP_PREFIX)
    run = await ctx.session.get(BulletinRun, int(run_id)) if run_id.isdigit() else None
    bulletin = await ctx.session.get(Bulletin, run.bulletin_id) if run else None
    if bulletin is None:
        ctx.say(ctx.t("alert.stop_gone"))
    else:
        removed = await subscriptions_repo.unsubscribe_areas(
            ctx.session, ctx.owner_hash, list(bulletin.areas)
        )
        ctx.say(ctx.t("alert.stopped", count=removed))
    if ctx.chat.flow is None:
        show_menu(ctx)


FLOW = FlowSpec(name=NAME, start=start, prompt=prompt, handle=handle, discard=drop_photo)
ROUTER = Router(
    NAME,
    flows=(FLOW,),
    commands=(Command("alert", begin, listed=False),),
    prefixes=(bulletins.STOP_PREFIX,),
    on_button=stop_these_alerts,
)
