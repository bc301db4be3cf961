"""Alert subscriptions: /subscribe, /mysubscriptions (/unsubscribe), and leaving everything."""

from __future__ import annotations

from enum import StrEnum

from handlers import area_picker, menu
from handlers.context import Context
from handlers.flow import FlowSpec
from handlers.menu import show_menu
from handlers.routing import Command, FlowControl, Router
from storage.repositories import subscriptions

SUBSCRIBE = "subscribe"
MANAGE = "mysubs"
TOPICS = ("scams", "drugs", "traffic", "fire", "missing", "all")
# Exact messages that mean "leave everything" (not "huy": Huy is a common given name).
STOP_WORDS = frozenset({"stop", "hủy", "huỷ"})


class Step(StrEnum):
    """Steps of /subscribe; /mysubscriptions has the single step LIST."""

    AREA = "area"
    TOPICS = "topics"
    LIST = "list"


def topic_names(ctx: Context, topics: list[str]) -> str:
    """Topics in words, 'all' when every topic."""
    chosen = topics or ["all"]
    return ", ".join(ctx.t(f"topic.{t}") for t in chosen if t in TOPICS)


# /subscribe


async def start(ctx: Context) -> None:
    """Begin subscribing: pick an area."""
    ctx.chat.data = {}
    area_picker.reset(ctx)
    ctx.go(SUBSCRIBE, Step.AREA)
    await prompt(ctx)


def _cancel_row(ctx: Context) -> list[list[tuple[str, str]]]:
    return [[(ctx.t("button.cancel"), "subs:cancel")]]


async def prompt(ctx: Context) -> None:
    """Ask for the area, or the topics."""
    if ctx.chat.step == Step.TOPICS:
        chosen = set(ctx.draft.get("topics", ["all"]))
        buttons = [
            (("✅ " if topic in chosen else "⬜ ") + ctx.t(f"topic.{topic}"), f"topic:{topic}")
            for topic in TOPICS
        ]
        rows = [buttons[i : i + 2] for i in range(0, len(buttons), 2)]
        rows.append([(ctx.t("subs.save"), "subs:save")])
        area = ctx.areas.get(str(ctx.draft.get("area_code", "")))
        label = ctx.areas.label(area) if area else "—"
        ctx.ask(ctx.t("subs.ask_topics", area=label), [*rows, *_cancel_row(ctx)])
    else:
        await area_picker.ask(ctx, ctx.t("subs.ask_area"), _cancel_row(ctx))


async def handle(ctx: Context, action: str | None) -> None:
    """Pick an area, toggle topics, save."""
    if action == "subs:cancel":
        ctx.end_flow()
        ctx.say(ctx.t("subs.cancelled"))
        show_menu(ctx)
        return
    if ctx.chat.step == Step.TOPICS:
        if action == "subs:save":
            await save(ctx, str(ctx.draft["area_code"]), list(ctx.draft.get("topics", ["all"])))
            return
        if action and action.startswith("topic:") and action[6:] in TOPICS:
            ctx.update_draft(topics=toggle(list(ctx.draft.get("topics", ["all"])), action[6:]))
        else:
            ctx.say(ctx.t("input.use_buttons"))
        await prompt(ctx)
        return
    code = await area_picker.handle(ctx, action)
    if code is not None:
        ctx.update_draft(area_code=code, topics=["all"])
        ctx.go(SUBSCRIBE, Step.TOPICS)
    await prompt(ctx)


def toggle(topics: list[str], topic: str) -> list[str]:
    """Turn a topic on or off; 'all' excludes the others and is the fallback for none."""
    if topic == "all":
        return ["all"]
    chosen = [t for t in topics if t != "all"]
    chosen = [t for t in chosen if t != topic] if topic in chosen else [*chosen, topic]
    ordered = [t for t in TOPICS if t in chosen]
    # Every topic ticked is "all" (and so will be topics added later); none ticked falls back.
    return ["all"] if not ordered or len(ordered) == len(TOPICS) - 1 else ordered


async def save(ctx: Context, area_code: str, topics: list[str]) -> None:
    """Store the subscription (the address only encrypted) and confirm."""
    area = ctx.areas.get(area_code)
    if area is None:
        ctx.end_flow()
        ctx.say(ctx.t("picker.gone"))
        show_menu(ctx)
        return
    _, new = await subscriptions.subscribe(
        ctx.session,
        address_hash=ctx.owner_hash,
        address_enc=ctx.services.vault.encrypt(ctx.reply_address),
        channel=ctx.event.channel,
        area_code=area_code,
        topics=topics,
    )
    ctx.end_flow()
    key = "subs.saved" if new else "subs.updated"
    ctx.say(ctx.t(key, area=ctx.areas.label(area), topics=topic_names(ctx, topics)))
    ctx.ask(
        ctx.t("subs.next"),
        [
            [(ctx.t("subs.add_another"), "menu:subscribe")],
            [
                (ctx.t("menu.subscriptions"), "menu:mysubs"),
                (ctx.t("button.back_to_menu"), "menu:show"),
            ],
        ],
    )


# /mysubscriptions and /unsubscribe


async def start_manage(ctx: Context) -> None:
    """List the chat's subscriptions with a button to leave each."""
    ctx.chat.data = {}
    ctx.go(MANAGE, Step.LIST)
    await prompt_manage(ctx)


async def prompt_manage(ctx: Context) -> None:
    """The list, or an offer to subscribe when there is none."""
    own = await subscriptions.for_chat(ctx.session, ctx.owner_hash)
    add = [(ctx.t("subs.add_area"), "menu:subscribe")]
    back = [(ctx.t("button.back_to_menu"), "menu:show")]
    if not own:
        ctx.ask(ctx.t("subs.none"), [add, back])
        return
    lines = []
    rows: list[list[tuple[str, str]]] = []
    for sub in own:
        area = ctx.areas.get(sub.area_code)
        label = ctx.areas.label(area) if area else sub.area_code
        paused = "" if sub.active else " " + ctx.t("subs.paused")
        lines.append(f"• {label} — {topic_names(ctx, list(sub.topics))}{paused}")
        short = area.name if area else sub.area_code
        rows.append([(ctx.t("subs.remove", area=short), f"unsub:{sub.id}")])
    rows.append([(ctx.t("subs.remove_all"), "unsub:all")])
    ctx.ask(ctx.t("subs.list", lines="\n".join(lines)), [*rows, add, back])


async def handle_manage(ctx: Context, action: str | None) -> None:
    """Leave one subscription or all; the menu buttons leave the list."""
    if action == "unsub:all":
        removed = await subscriptions.unsubscribe_all(ctx.session, ctx.owner_hash)
        ctx.end_flow()
        ctx.say(ctx.t("subs.removed_all", count=removed))
        show_menu(ctx)
        return
    if action and action.startswith("unsub:") and action[6:].isdigit():
        if await subscriptions.unsubscribe(ctx.session, ctx.owner_hash, int(action[6:])):
            ctx.say(ctx.t("subs.removed"))
        else:
            ctx.say(ctx.t("subs.already_removed"))
    elif action == "menu:subscribe":
        await start(ctx)
        return
    elif action == "menu:show":
        ctx.end_flow()
        show_menu(ctx)
        return
    else:
        ctx.say(ctx.t("input.use_buttons"))
    await prompt_manage(ctx)


async def quick_subscribe(ctx: Context, action: str, core: FlowControl) -> None:
    """Subscribe to every topic of an area in one tap (the offer after a tip)."""
    await save(ctx, action.removeprefix("suboffer:"), ["all"])


async def stop_everything(ctx: Context, core: FlowControl) -> None:
    """/stop or STOP: drop any draft and every subscription, then show the menu."""
    await core.discard(ctx)
    removed = await subscriptions.unsubscribe_all(ctx.session, ctx.owner_hash)
    ctx.say(ctx.t("subs.stopped", count=removed))
    show_menu(ctx)


FLOW = FlowSpec(name=SUBSCRIBE, start=start, prompt=prompt, handle=handle)
MANAGE_FLOW = FlowSpec(name=MANAGE, start=start_manage, prompt=prompt_manage, handle=handle_manage)

ROUTER = Router(
    "subscriptions",
    flows=(FLOW, MANAGE_FLOW),
    commands=(
        Command("subscribe", menu.opens(SUBSCRIBE)),
        Command("mysubscriptions", menu.opens(MANAGE)),
        Command("unsubscribe", menu.opens(MANAGE)),
        Command("stop", stop_everything),
    ),
    prefixes=("suboffer:",),
    on_button=quick_subscribe,
    words=STOP_WORDS,
    on_word=stop_everything,
)
