"""Start, main menu, help, privacy, language and /cancel: what works at every step."""

from __future__ import annotations

from handlers.context import Context
from handlers.routing import Command, CommandHandler, FlowControl, Router

LANGUAGES = {"vi": "Tiếng Việt", "en": "English"}

# Main-menu buttons that start a flow, by action.
_MENU_FLOWS = {
    "menu:tip": "tip",
    "menu:mytips": "mytips",
    "menu:subscribe": "subscribe",
    "menu:mysubs": "mysubs",
}


def show_menu(ctx: Context, *, intro: str | None = None) -> None:
    """Show the main menu."""
    other = "en" if ctx.chat.language == "vi" else "vi"
    ctx.ask(
        intro or ctx.t("menu.prompt"),
        [
            [(ctx.t("menu.tip"), "menu:tip")],
            [(ctx.t("menu.mytips"), "menu:mytips"), (ctx.t("menu.subscriptions"), "menu:mysubs")],
            [(ctx.t("menu.privacy"), "menu:privacy"), (ctx.t("menu.help"), "menu:help")],
            [("🌐 " + LANGUAGES[other], f"lang:{other}")],
        ],
    )


def ask_language(ctx: Context) -> None:
    """Offer the languages."""
    ctx.ask(
        ctx.t("language.prompt"),
        [[(label, f"lang:{code}") for code, label in LANGUAGES.items()]],
    )


def starting(begin: CommandHandler) -> CommandHandler:
    """A command that starts something new: mid-flow it first asks whether to drop the draft."""

    async def guarded(ctx: Context, core: FlowControl) -> None:
        if ctx.chat.flow is not None:
            ask_continue_or_discard(ctx)
            return
        await begin(ctx, core)

    return guarded


def opens(flow: str) -> CommandHandler:
    """A command that starts a flow (asking first when a draft is open)."""

    async def begin(ctx: Context, core: FlowControl) -> None:
        await core.start_flow(ctx, flow)

    return starting(begin)


async def welcome(ctx: Context, core: FlowControl) -> None:
    """/start: the welcome and the main menu."""
    show_menu(ctx, intro=ctx.t("start.welcome"))


async def cancel(ctx: Context, core: FlowControl) -> None:
    """/cancel: drop the draft, if any, and show the menu."""
    if ctx.chat.flow is not None:
        await core.discard(ctx)
        ctx.say(ctx.t("cancel.done"))
    else:
        ctx.say(ctx.t("cancel.nothing"))
    show_menu(ctx)


async def language(ctx: Context, core: FlowControl) -> None:
    """/language: offer the languages."""
    ask_language(ctx)


async def show_help(ctx: Context, core: FlowControl) -> None:
    """/help, keeping the current step."""
    ctx.say(ctx.t("help.text"))
    await core.reprompt(ctx)


async def privacy(ctx: Context, core: FlowControl) -> None:
    """/privacy, keeping the current step."""
    ctx.say(ctx.t("privacy.text"))
    await core.reprompt(ctx)


def ask_continue_or_discard(ctx: Context) -> None:
    """Mid-flow, a new start would lose the draft: ask first."""
    ctx.ask(
        ctx.t("flow.unfinished"),
        [[(ctx.t("flow.continue"), "core:continue"), (ctx.t("flow.discard"), "core:discard")]],
    )


async def handle_core_action(ctx: Context, action: str, core: FlowControl) -> None:
    """Buttons that work whatever the flow: language, continue, discard."""
    if action.startswith("lang:") and action[5:] in LANGUAGES:
        ctx.chat.language = action[5:]
        ctx.say(ctx.t("language.set"))
        await core.reprompt(ctx)
    elif action == "core:discard":
        await core.discard(ctx)
        ctx.say(ctx.t("cancel.done"))
        show_menu(ctx)
    else:
        await core.reprompt(ctx)


async def handle(ctx: Context, action: str | None, core: FlowControl) -> None:
    """Main-menu buttons; anything else outside a flow gets the menu with a hint."""
    if action in _MENU_FLOWS:
        await core.start_flow(ctx, _MENU_FLOWS[action])
    elif action == "menu:show":
        show_menu(ctx)
    elif action == "menu:privacy":
        ctx.say(ctx.t("privacy.text"))
        show_menu(ctx)
    elif action == "menu:help":
        ctx.say(ctx.t("help.text"))
        show_menu(ctx)
    else:
        show_menu(ctx, intro=ctx.t("menu.not_understood"))


# /start comes first in the command menu; the commands that work at every step come after the
# flows' own (see handlers.dispatcher.ROUTERS).
START_ROUTER = Router("start", commands=(Command("start", starting(welcome)),))
EVERYWHERE_ROUTER = Router(
    "everywhere",
    commands=(
        Command("cancel", cancel),
        Command("help", show_help),
        Command("privacy", privacy),
        Command("language", language),
    ),
    prefixes=("core:", "lang:"),
    on_button=handle_core_action,
)
