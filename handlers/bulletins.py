"""/bulletins: an admin's scheduled bulletins with their next and last runs; pause, resume, cancel.

Bulletins are created with `tipline bulletin create` for now; the scheduler (broadcasts) makes
their runs, and hears of every change here through `Services.bulletin_changed`.
"""

from __future__ import annotations

from datetime import timedelta

from handlers.context import Context
from handlers.routing import Command, FlowControl, Router, unknown_command
from handlers.staff import is_admin, refuse_button, role_of
from storage.repositories import audit, bulletins, outbox

VIETNAM = timedelta(hours=7)
SHOWN = 10
PREVIEW = 60
_STATUS_FOR = {"pause": bulletins.PAUSED, "resume": bulletins.ACTIVE, "cancel": bulletins.CANCELLED}


async def list_bulletins(ctx: Context, core: FlowControl) -> None:
    """/bulletins (admins): each bulletin, its schedule, next run, last run's figures."""
    if not await is_admin(ctx):
        await unknown_command(ctx, core)
        return
    await _show(ctx)


async def _show(ctx: Context) -> None:
    found = (await bulletins.list_bulletins(ctx.session))[:SHOWN]
    if not found:
        ctx.ask(ctx.t("bulletins.none"), [[(ctx.t("button.back_to_menu"), "menu:show")]])
        return
    last = await bulletins.last_runs(ctx.session, [b.id for b in found])
    lines: list[str] = []
    rows: list[list[tuple[str, str]]] = []
    for bulletin in found:
        upcoming = ctx.services.next_bulletin_run(bulletin.id)
        run = last.get(bulletin.id)
        figures = await outbox.counts(ctx.session, run.id) if run else {}
        text = (
            bulletin.text if len(bulletin.text) <= PREVIEW else bulletin.text[: PREVIEW - 1] + "…"
        )
        lines.append(
            ctx.t(
                "bulletins.line",
                id=bulletin.id,
                text=text,
                status=ctx.t(f"bulletins.status_{bulletin.status}"),
                next=f"{upcoming + VIETNAM:%d/%m %H:%M}" if upcoming else "—",
                last=f"{run.scheduled_for + VIETNAM:%d/%m %H:%M}" if run else "—",
                sent=figures.get(outbox.SENT, 0),
                failed=figures.get(outbox.FAILED, 0) + figures.get(outbox.BLOCKED, 0),
            )
        )
        toggle = "resume" if bulletin.status == bulletins.PAUSED else "pause"
        rows.append(
            [
                (ctx.t(f"bulletins.{toggle}", id=bulletin.id), f"bulletin:{toggle}:{bulletin.id}"),
                (ctx.t("bulletins.cancel", id=bulletin.id), f"bulletin:cancel:{bulletin.id}"),
            ]
        )
    rows.append([(ctx.t("button.back_to_menu"), "menu:show")])
    ctx.ask(ctx.t("bulletins.list", lines="\n".join(lines)), rows)


async def press(ctx: Context, action: str, core: FlowControl) -> None:
    """Pause, resume or cancel, authorised again when pressed."""
    _, verb, value = [*action.split(":", 2), "", ""][:3]
    role, actor = await role_of(ctx)
    if role != "admin":
        await refuse_button(ctx, core)
        return
    status = _STATUS_FOR.get(verb)
    changed = None
    if status is not None and value.isdigit():
        changed = await bulletins.set_status(ctx.session, int(value), status, ctx.now)
    if changed is None:
        ctx.say(ctx.t("bulletins.unchanged"))
    else:
        await audit.record(
            ctx.session,
            actor=actor,
            action=f"bulletin.{status}",
            target=f"bulletin:{changed.id}",
            at=ctx.now,
        )
        bulletin_id = changed.id
        ctx.committed.append(lambda: ctx.services.bulletin_changed(bulletin_id))
        ctx.say(ctx.t(f"bulletins.now_{status}", id=changed.id))
    await _show(ctx)


ROUTER = Router(
    "bulletins",
    commands=(Command("bulletins", list_bulletins, listed=False),),
    prefixes=("bulletin:",),
    on_button=press,
)
