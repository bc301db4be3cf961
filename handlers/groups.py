"""Neighbourhood group chats: staff link a group to an area; otherwise the bot keeps quiet.

A linked group is subscribed to its area like a resident (every topic), so alerts and bulletins
reach it through the outbox, paced per group. Tips are never taken in a group: `/tip` there
points to the private chat.
"""

from __future__ import annotations

from handlers.context import Context
from handlers.staff import role_of
from storage.repositories import audit
from storage.repositories import subscriptions as subscriptions_repo

CHOICES = 8
_POINTERS = frozenset({"tip", "start", "help", "mytips", "subscribe"})


async def handle(ctx: Context, action: str | None) -> None:
    """An event in a group chat: staff's /linkgroup and /unlinkgroup, a pointer for /tip."""
    command = ctx.event.command
    if action is not None and action.startswith("group:link:"):
        await _link_pressed(ctx, action.removeprefix("group:link:"))
    elif command == "linkgroup":
        await _link(ctx)
    elif command == "unlinkgroup":
        await _unlink(ctx)
    elif command in _POINTERS:
        ctx.say(ctx.t("groups.private_only"))


async def _link(ctx: Context) -> None:
    """/linkgroup AREA: link to the one area meant, or offer the likely ones."""
    role, _ = await role_of(ctx)
    if role is None:
        return  # not staff: as if the command did not exist, and in a group, silence
    query = ctx.event.argument
    if not query:
        ctx.say(ctx.t("groups.usage"))
        return
    ctx.retire_prompt()  # a new /linkgroup's choices replace any earlier ones
    found = ctx.areas.search(query, limit=CHOICES)
    exact = [area for area in found if ctx.areas.is_exact(area, query)]
    if len(exact) == 1 or len(found) == 1:
        await _save_link(ctx, (exact or found)[0].code)
        return
    if not found:
        ctx.say(ctx.t("picker.no_match", query=query[:80]))
        return
    rows = [[(ctx.areas.label(area), f"group:link:{area.code}")] for area in found]
    ctx.ask(ctx.t("groups.choose"), rows)


async def _link_pressed(ctx: Context, code: str) -> None:
    """A choice of area, by whoever pressed it: only staff link."""
    role, _ = await role_of(ctx)
    if role is None:
        ctx.refuse_press(ctx.t("groups.staff_only"))
        return
    ctx.retire_prompt()
    await _save_link(ctx, code)


async def _save_link(ctx: Context, code: str) -> None:
    area = ctx.areas.get(code)
    if area is None:
        ctx.say(ctx.t("picker.gone"))
        return
    _, actor = await role_of(ctx)
    await subscriptions_repo.subscribe(
        ctx.session,
        address_hash=ctx.owner_hash,
        address_enc=ctx.services.vault.encrypt(ctx.reply_address),
        channel=ctx.event.channel,
        area_code=code,
        topics=["all"],
        is_group=True,
    )
    await audit.record(
        ctx.session,
        actor=actor,
        action="group.linked",
        target=f"group:{ctx.owner_hash[:12]}",
        detail={"area": code},
        at=ctx.now,
    )
    ctx.say(ctx.t("groups.linked", area=ctx.areas.label(area)))


async def _unlink(ctx: Context) -> None:
    """/unlinkgroup: the group receives nothing more."""
    role, actor = await role_of(ctx)
    if role is None:
        return
    removed = await subscriptions_repo.unsubscribe_all(ctx.session, ctx.owner_hash)
    await audit.record(
        ctx.session,
        actor=actor,
        action="group.unlinked",
        target=f"group:{ctx.owner_hash[:12]}",
        at=ctx.now,
    )
    ctx.say(ctx.t("groups.unlinked", count=removed))
