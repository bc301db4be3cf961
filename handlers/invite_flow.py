"""/invite: an admin makes a one-time code for a new admin, or for an officer with the areas
they will work (none: every area). Authorised again at every step."""

from __future__ import annotations

from enum import StrEnum

from handlers import area_picker, menu
from handlers.context import Context
from handlers.flow import FlowSpec
from handlers.menu import show_menu
from handlers.routing import Command, FlowControl, Router, unknown_command
from handlers.staff import LABEL_MAX, is_admin, make_invite, role_of
from storage.repositories import staff as staff_repo

NAME = "invite"
MAX_AREAS = 20


class Step(StrEnum):
    """Steps of /invite."""

    ROLE = "role"
    AREAS = "areas"


async def begin(ctx: Context, core: FlowControl) -> None:
    """/invite [name], for admins; anyone else hears of no such command."""
    if not await is_admin(ctx):
        await unknown_command(ctx, core)
        return
    await menu.opens(NAME)(ctx, core)


async def start(ctx: Context) -> None:
    """Ask which role the invitee gets."""
    label = ctx.event.argument[:LABEL_MAX] or ctx.t("staff.unnamed")
    ctx.chat.data = {"label": label, "areas": []}
    ctx.go(NAME, Step.ROLE)
    await prompt(ctx)


def _cancel(ctx: Context) -> list[tuple[str, str]]:
    return [(ctx.t("button.cancel"), "invite:cancel")]


async def prompt(ctx: Context) -> None:
    """Ask for the role, or the officer's areas so far."""
    label = str(ctx.draft.get("label", ""))
    if ctx.chat.step == Step.ROLE:
        ctx.ask(
            ctx.t("staff.invite_role", label=label),
            [
                [(ctx.t("role.officer"), "invite:officer"), (ctx.t("role.admin"), "invite:admin")],
                _cancel(ctx),
            ],
        )
        return
    chosen = [str(code) for code in ctx.draft.get("areas", [])]
    names = ", ".join(_label(ctx, code) for code in chosen) or ctx.t("staff.no_areas_yet")
    done = ctx.t("staff.invite_done") if chosen else ctx.t("staff.all_areas_button")
    await area_picker.ask(
        ctx,
        ctx.t("staff.invite_areas", label=label, areas=names),
        [[(done, "invite:done")], _cancel(ctx)],
    )


def _label(ctx: Context, code: str) -> str:
    area = ctx.areas.get(code)
    return ctx.areas.label(area) if area else code


async def handle(ctx: Context, action: str | None) -> None:
    """Take the role, then areas one at a time until Done."""
    role, actor = await role_of(ctx)
    if role != staff_repo.ADMIN:
        ctx.end_flow()
        ctx.say(ctx.t("command.unknown"))
        show_menu(ctx)
        return
    if action == "invite:cancel":
        ctx.end_flow()
        ctx.say(ctx.t("staff.invite_cancelled"))
        show_menu(ctx)
        return
    label = str(ctx.draft.get("label", ""))
    if ctx.chat.step == Step.ROLE:
        if action == "invite:admin":
            await _finish(ctx, actor, staff_repo.ADMIN, [], label)
            return
        if action == "invite:officer":
            area_picker.reset(ctx)
            ctx.go(NAME, Step.AREAS)
        else:
            ctx.say(ctx.t("input.use_buttons"))
    elif action == "invite:done":
        areas = [str(code) for code in ctx.draft.get("areas", [])]
        await _finish(ctx, actor, staff_repo.OFFICER, areas, label)
        return
    else:
        code = await area_picker.handle(ctx, action)
        chosen = [str(c) for c in ctx.draft.get("areas", [])]
        if code is not None:
            area_picker.reset(ctx)
            if code in chosen:
                ctx.say(ctx.t("staff.area_already", area=_label(ctx, code)))
            elif len(chosen) >= MAX_AREAS:
                ctx.say(ctx.t("staff.areas_full", max=MAX_AREAS))
            else:
                ctx.update_draft(areas=[*chosen, code])
                ctx.say(ctx.t("staff.area_added", area=_label(ctx, code)))
    await prompt(ctx)


async def _finish(ctx: Context, actor: str, role: str, areas: list[str], label: str) -> None:
    await make_invite(ctx, actor, role, areas, label)
    ctx.end_flow()
    show_menu(ctx)


FLOW = FlowSpec(name=NAME, start=start, prompt=prompt, handle=handle)
ROUTER = Router(NAME, flows=(FLOW,), commands=(Command("invite", begin, listed=False),))
