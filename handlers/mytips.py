"""/mytips: the tipster's own tips and their status, or any tip by its code and PIN."""

from __future__ import annotations

import hmac
from datetime import timedelta
from enum import StrEnum

from handlers import menu
from handlers.codes import normalize_code
from handlers.context import Context
from handlers.flow import FlowSpec
from handlers.menu import show_menu
from handlers.routing import Command, Router
from handlers.tip import category_label
from storage.models import Tip
from storage.repositories import cases, tips

NAME = "mytips"
OPEN = cases.OPEN
_THREAD = ("reply", "answer", "info")
MAX_PIN_ATTEMPTS = 5
VIETNAM_OFFSET = timedelta(hours=7)


class Step(StrEnum):
    """Steps of the tip lookup."""

    LIST = "list"
    CODE = "code"
    PIN = "pin"
    FOUND = "found"


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
    elif step is Step.FOUND:
        tip = await tips.find_by_code(ctx.session, str(ctx.draft.get("unlocked", "")))
        if tip is None:
            ctx.go(NAME, Step.LIST)
            await prompt(ctx)
            return
        rows = [[(ctx.t("mytips.add_info"), f"relay:add:{tip.code}")]] if tip.status in OPEN else []
        rows.append([(ctx.t("mytips.lookup_another"), "mytips:lookup")])
        ctx.ask(ctx.t("mytips.found_next"), [*rows, back])
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
        ctx.update_draft(unlocked=None)
        ctx.go(NAME, Step.CODE)
    elif step in (Step.LIST, Step.CODE, Step.FOUND):
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
    ctx.update_draft(unlocked=tip.code, attempts=0)
    ctx.go(NAME, Step.FOUND)
    await _show_found(ctx, tip)
    return False


async def _show_found(ctx: Context, tip: Tip) -> None:
    """The tip's status, the officers' replies and the tipster's own words, and a reward."""
    lines = [ctx.t("mytips.found", line=_line(ctx, tip))]
    thread = [e for e in await cases.timeline(ctx.session, tip.id, 30) if e.kind in _THREAD]
    if thread:
        unit = ctx.services.workspace.unit_name or ctx.t("case.unit_default")
        said = [
            ctx.t(
                "mytips.thread_officer" if e.kind == "reply" else "mytips.thread_you",
                who=unit,
                at=f"{e.at + VIETNAM_OFFSET:%d/%m %H:%M}",
                text=e.text or "",
            )
            for e in thread
        ]
        lines.append(ctx.t("mytips.thread", lines="\n".join(said)))
    if tip.reward_at is not None:
        how = ctx.services.workspace.reward_instructions or ctx.t("mytips.reward_how_default")
        lines.append(ctx.t("mytips.reward", code=tip.code, how=how))
    ctx.say("\n\n".join(lines))


FLOW = FlowSpec(
    name=NAME, start=start, prompt=prompt, handle=handle, worth_telling=lambda step: False
)

ROUTER = Router(NAME, flows=(FLOW,), commands=(Command("mytips", menu.opens(NAME)),))
