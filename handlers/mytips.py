"""/mytips: the tipster's own tips and their status, or any tip by its code and PIN."""

from __future__ import annotations

import hmac
from datetime import timedelta
from enum import StrEnum

from handlers import menu
from handlers.context import Context
from handlers.flow import FlowSpec
from handlers.menu import show_menu
from handlers.routing import Command, Router
from handlers.tip import category_label, normalize_code
from storage.models import Tip
from storage.repositories import tips

NAME = "mytips"
MAX_PIN_ATTEMPTS = 5
VIETNAM_OFFSET = timedelta(hours=7)


class Step(StrEnum):
    """Steps of the tip lookup."""

    LIST = "list"
    CODE = "code"
    PIN = "pin"


def _line(ctx: Context, tip: Tip) -> str:
    """One tip as a line: code, category, status, date (Vietnam time)."""
    when = (tip.created_at + VIETNAM_OFFSET).strftime("%d/%m/%Y %H:%M")
    return ctx.t(
        "mytips.line",
        code=tip.code,
        category=category_label(ctx, tip.category),
        status=_status(ctx, tip.status),
        date=when,
    )


def _status(ctx: Context, status: str) -> str:
    key = f"status.{status}"
    return ctx.t(key) if ctx.services.translate.has(key) else status


async def start(ctx: Context) -> None:
    """List this chat's tips and offer a lookup by code and PIN."""
    own = await tips.list_for_owner(ctx.session, ctx.owner_hash)
    if own:
        lines = "\n".join(_line(ctx, tip) for tip in own)
        ctx.say(ctx.t("mytips.list", lines=lines))
    else:
        ctx.say(ctx.t("mytips.none"))
    ctx.chat.data = {}
    ctx.go(NAME, Step.LIST)
    await prompt(ctx)


async def prompt(ctx: Context) -> None:
    """Ask for the current step's input."""
    step = Step(ctx.chat.step or Step.LIST)
    back = [(ctx.t("button.back_to_menu"), "mytips:menu")]
    if step is Step.LIST:
        ctx.ask(ctx.t("mytips.offer_lookup"), [[(ctx.t("mytips.lookup"), "mytips:lookup")], back])
    elif step is Step.CODE:
        ctx.ask(ctx.t("mytips.ask_code"), [back])
    else:
        ctx.ask(ctx.t("mytips.ask_pin"), [back])


async def handle(ctx: Context, action: str | None) -> None:
    """Take a code, then a PIN; show the tip's status."""
    if action == "mytips:menu":
        ctx.end_flow()
        show_menu(ctx)
        return
    step = Step(ctx.chat.step or Step.LIST)
    if action == "mytips:lookup":
        ctx.go(NAME, Step.CODE)
    elif step in (Step.LIST, Step.CODE):
        receive_code(ctx)
    elif await receive_pin(ctx):
        return
    await prompt(ctx)


def receive_code(ctx: Context) -> None:
    """Take a typed tip code."""
    text = ctx.event.text
    if text is None or ctx.event.attachments:
        ctx.say(ctx.t("input.unexpected", wants=ctx.t("wants.code")))
        return
    code = normalize_code(text)
    if len(code) != 8:
        ctx.say(ctx.t("mytips.bad_code"))
        return
    ctx.update_draft(code=code)
    ctx.go(NAME, Step.PIN)


async def receive_pin(ctx: Context) -> bool:
    """Check the PIN; True when the lookup is over (found, or too many tries)."""
    pin = "".join((ctx.event.text or "").split())
    if not (pin.isdigit() and len(pin) == 6):
        ctx.say(ctx.t("mytips.bad_pin"))
        return False
    code = str(ctx.draft.get("code", ""))
    failures = ctx.services.pin_failures
    if failures.blocked(code):
        ctx.end_flow()
        show_menu(ctx, intro=ctx.t("mytips.locked"))
        return True
    tip = await tips.find_by_code(ctx.session, code)
    expected = ctx.services.vault.keyed_hash(f"pin:{code}:{pin}")
    if tip is None or not hmac.compare_digest(tip.pin_hash, expected):
        failures.record(code)
        attempts = int(ctx.draft.get("attempts", 0)) + 1
        if attempts >= MAX_PIN_ATTEMPTS or failures.blocked(code):
            ctx.end_flow()
            show_menu(ctx, intro=ctx.t("mytips.too_many"))
            return True
        ctx.update_draft(attempts=attempts)
        ctx.say(ctx.t("mytips.no_match"))
        ctx.go(NAME, Step.CODE)
        return False
    ctx.end_flow()
    ctx.say(ctx.t("mytips.found", line=_line(ctx, tip)))
    show_menu(ctx)
    return True


FLOW = FlowSpec(name=NAME, start=start, prompt=prompt, handle=handle)

ROUTER = Router(NAME, flows=(FLOW,), commands=(Command("mytips", menu.opens(NAME)),))
