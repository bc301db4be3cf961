"""Admin commands in the chat: subscriber counts per area and topic."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.context import Context
from handlers.routing import Command, FlowControl, Router, unknown_command
from handlers.staff import is_admin
from storage.repositories import subscriptions

MAX_AREAS_SHOWN = 40


async def show_subscriber_counts(ctx: Context, core: FlowControl) -> None:
    """/areas: active subscribers per area and topic, largest first (admins only)."""
    if not await is_admin(ctx):
        # Nothing tells a citizen that staff commands exist.
        await unknown_command(ctx, core)
        return
    ctx.read_after_commit(lambda session: _counts(ctx, session))
    await core.reprompt(ctx)


async def _counts(ctx: Context, session: AsyncSession) -> None:
    """The counts, as one message (read after the event's commit, off the write lock)."""
    counts = await subscriptions.counts(session)
    if not counts:
        ctx.say(ctx.t("admin.no_subscribers"))
        return
    ranked = sorted(counts.items(), key=lambda item: (-item[1]["_total"], item[0]))
    lines = []
    for code, counter in ranked[:MAX_AREAS_SHOWN]:
        area = ctx.areas.get(code)
        label = ctx.areas.label(area) if area else code
        topics = ", ".join(
            f"{ctx.t(f'topic.{topic}')} {n}"
            for topic, n in sorted(counter.items())
            if topic != "_total"
        )
        lines.append(f"• {label}: {counter['_total']} ({topics})")
    total = sum(counter["_total"] for counter in counts.values())
    ctx.say(ctx.t("admin.counts", total=total, areas=len(counts), lines="\n".join(lines)))


ROUTER = Router("admin", commands=(Command("areas", show_subscriber_counts, listed=False),))
