"""The tipster's side of the conversation with officers: answering a relayed reply, and adding
information to an open tip found with its code and PIN. Officers see the words and the tip
code; the tipster's chat is reached only through the tip's encrypted link.
"""

from __future__ import annotations

from enum import StrEnum

from handlers import notices
from handlers.codes import normalize_code
from handlers.context import Context
from handlers.flow import FlowSpec
from handlers.menu import show_menu
from handlers.routing import FlowControl, Router
from storage.models import Tip
from storage.repositories import cases

NAME = "relay"
TEXT_MIN, TEXT_MAX = 2, 2000


class Step(StrEnum):
    """What the tipster is writing."""

    ANSWER = "answer"
    ADD = "add"


async def begin(ctx: Context, action: str, core: FlowControl) -> None:
    """Answer (under an officer's reply) or Add information (after code and PIN): ask for it."""
    if action.startswith("answer:"):
        verb, code = "answer", action.removeprefix("answer:")
    else:  # relay:add:CODE, offered by /mytips once the code and PIN matched
        verb, _, code = action.removeprefix("relay:").partition(":")
    if await cases.is_blocked(ctx.session, ctx.owner_hash):
        ctx.say(ctx.t("tip.blocked"))
        await core.reprompt(ctx)
        return
    tip = await _own_tip(ctx, normalize_code(code))
    if tip is None:
        ctx.notice(ctx.t("relay.gone"))
        ctx.say(ctx.t("relay.gone"))
        await core.reprompt(ctx)
        return
    if tip.status not in cases.OPEN:
        ctx.say(ctx.t("relay.closed", code=tip.code))
        await core.reprompt(ctx)
        return
    if ctx.chat.flow not in (None, NAME, "mytips"):
        ctx.say(ctx.t("relay.finish_first"))
        await core.reprompt(ctx)
        return
    ctx.chat.data = {"tip": tip.code}
    ctx.go(NAME, Step.ANSWER if verb == "answer" else Step.ADD)
    await prompt(ctx)


async def _own_tip(ctx: Context, code: str) -> Tip | None:
    """The tip, if this chat sent it (an answer button) or just unlocked it with its PIN."""
    tip = await cases.tip_by_code(ctx.session, code)
    if tip is None:
        return None
    link = await cases.link_of(ctx.session, tip.id)
    unlocked = ctx.draft.get("unlocked") == tip.code or ctx.draft.get("tip") == tip.code
    if link is not None and link.owner_hash == ctx.owner_hash:
        return tip
    return tip if unlocked else None


async def start(ctx: Context) -> None:
    """Not started from a menu: only by its buttons."""
    ctx.end_flow()
    show_menu(ctx)


async def prompt(ctx: Context) -> None:
    """Ask for the answer or the added information."""
    code = str(ctx.draft.get("tip", ""))
    key = "relay.ask_answer" if ctx.chat.step == Step.ANSWER else "relay.ask_add"
    ctx.ask(ctx.t(key, code=code, max=TEXT_MAX), [[(ctx.t("button.cancel"), "relay:cancel:")]])


async def handle(ctx: Context, action: str | None) -> None:
    """Take the text; it joins the tip's thread and its officer hears of it."""
    if action is not None:
        ctx.say(ctx.t("input.use_buttons"))
        await prompt(ctx)
        return
    text = (ctx.event.text or "").strip()
    if not text or ctx.event.attachments or ctx.event.location or ctx.event.unsupported:
        ctx.say(ctx.t("relay.wants_text"))
        await prompt(ctx)
        return
    if not TEXT_MIN <= len(text) <= TEXT_MAX:
        ctx.say(ctx.t("relay.text_length", min=TEXT_MIN, max=TEXT_MAX, length=len(text)))
        await prompt(ctx)
        return
    if await cases.is_blocked(ctx.session, ctx.owner_hash):
        ctx.end_flow()
        show_menu(ctx, intro=ctx.t("tip.blocked"))
        return
    tip = await cases.tip_by_code(ctx.session, str(ctx.draft.get("tip", "")))
    if tip is None or tip.status not in cases.OPEN:
        ctx.end_flow()
        show_menu(ctx, intro=ctx.t("relay.closed", code=str(ctx.draft.get("tip", ""))))
        return
    answering = ctx.chat.step == Step.ANSWER
    await cases.add_event(
        ctx.session,
        tip.id,
        "answer" if answering else "info",
        cases.TIPSTER,
        now=ctx.now,
        text=text,
    )
    tip.updated_at = ctx.now
    key = "case.tipster_answered" if answering else "case.tipster_added"
    await notices.to_owner(ctx, tip, key, text)
    ctx.end_flow()
    show_menu(ctx, intro=ctx.t("relay.sent", code=tip.code))


async def press(ctx: Context, action: str, core: FlowControl) -> None:
    """The relay's buttons: Answer, Add information, and Cancel while writing."""
    if action == "relay:cancel:":
        if ctx.chat.flow == NAME:
            ctx.end_flow()
            ctx.say(ctx.t("relay.cancelled"))
        show_menu(ctx)
        return
    await begin(ctx, action, core)


FLOW = FlowSpec(name=NAME, start=start, prompt=prompt, handle=handle)
ROUTER = Router(NAME, flows=(FLOW,), prefixes=("answer:", "relay:"), on_button=press)
