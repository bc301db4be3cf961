"""Start, main menu, help, privacy, language and /cancel: what works at every step."""

from __future__ import annotations

from typing import TYPE_CHECKING

from handlers.context import Context

if TYPE_CHECKING:
    from handlers.dispatcher import Dispatcher

LANGUAGES = {"vi": "Tiếng Việt", "en": "English"}
CORE_PREFIXES = ("core:", "lang:")

# Commands that would start something new; mid-flow they ask before dropping the draft.
_STARTING_COMMANDS = {
    "start": None,
    "tip": "tip",
    "mytips": "mytips",
    "subscribe": "subscribe",
    "mysubscriptions": "mysubs",
    "unsubscribe": "mysubs",
}
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


async def handle_command(ctx: Context, command: str, dispatcher: Dispatcher) -> None:
    """Commands work at every step; those that start something ask before dropping a draft."""
    in_flow = ctx.chat.flow is not None
    if command in _STARTING_COMMANDS:
        if in_flow:
            ask_continue_or_discard(ctx)
            return
        target = _STARTING_COMMANDS[command]
        if target is None:
            show_menu(ctx, intro=ctx.t("start.welcome"))
        else:
            await dispatcher.start_flow(ctx, target)
        return
    if command == "cancel":
        if in_flow:
            await dispatcher.discard(ctx)
            ctx.say(ctx.t("cancel.done"))
        else:
            ctx.say(ctx.t("cancel.nothing"))
        show_menu(ctx)
        return
    if command == "language":
        ask_language(ctx)
        return
    if command == "help":
        ctx.say(ctx.t("help.text"))
    elif command == "privacy":
        ctx.say(ctx.t("privacy.text"))
    else:
        ctx.say(ctx.t("command.unknown"))
    await dispatcher.reprompt(ctx)


def ask_continue_or_discard(ctx: Context) -> None:
    """Mid-flow, a new start would lose the draft: ask first."""
    ctx.ask(
        ctx.t("flow.unfinished"),
        [[(ctx.t("flow.continue"), "core:continue"), (ctx.t("flow.discard"), "core:discard")]],
    )


async def handle_core_action(ctx: Context, action: str, dispatcher: Dispatcher) -> None:
    """Buttons that work whatever the flow: language, continue, discard."""
    if action.startswith("lang:") and action[5:] in LANGUAGES:
        ctx.chat.language = action[5:]
        ctx.say(ctx.t("language.set"))
        await dispatcher.reprompt(ctx)
    elif action == "core:discard":
        await dispatcher.discard(ctx)
        ctx.say(ctx.t("cancel.done"))
        show_menu(ctx)
    else:
        await dispatcher.reprompt(ctx)


async def handle(ctx: Context, action: str | None, dispatcher: Dispatcher) -> None:
    """Main-menu buttons; anything else outside a flow gets the menu with a hint."""
    if action in _MENU_FLOWS:
        await dispatcher.start_flow(ctx, _MENU_FLOWS[action])
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
