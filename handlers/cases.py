"""The officer workspace: the tip queue, a tip's page, and what officers do with a tip.

Every command and button asks `access_of` when it runs and checks the tip against the
officer's jurisdiction, so a role revoked or an area taken away a moment ago already counts.
Buttons carry the tip's code, so a notice's buttons, the queue's and a tip page's all lead
here. Officers see a tip code, never who sent it; every action is in the audit log.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Any

from handlers import menu, notices
from handlers.codes import code_in, normalize_code
from handlers.context import Context
from handlers.flow import FlowSpec
from handlers.menu import show_menu
from handlers.routing import Command, FlowControl, Router, unknown_command
from handlers.staff import Access, access_of
from storage.area_catalog import fold
from storage.files import STORED_PREFIX
from storage.models import StaffMember, Tip, TipEvent
from storage.repositories import audit, cases
from storage.repositories import staff as staff_repo

NAME = "case"
PAGE = 8
NOTE_MAX = 2000
REPLY_MIN, REPLY_MAX = 2, 2000
TIMELINE_SHOWN = 12
AGES = {"today": timedelta(days=1), "week": timedelta(days=7), "month": timedelta(days=31)}
# Filter words officers type after /queue, folded (no accents, lower case), in both languages.
# Vietnamese ones are whole phrases: single syllables ("dong", "thang") are parts of place names.
_FILTER_WORDS: dict[str, tuple[str, str]] = {
    "new": ("status", cases.NEW), "moi": ("status", cases.NEW), "tin moi": ("status", cases.NEW),
    "review": ("status", cases.IN_REVIEW), "in review": ("status", cases.IN_REVIEW),
    "dang xem xet": ("status", cases.IN_REVIEW), "xem xet": ("status", cases.IN_REVIEW),
    "actioned": ("status", cases.ACTIONED), "da xu ly": ("status", cases.ACTIONED),
    "closed": ("status", cases.CLOSED), "da dong": ("status", cases.CLOSED),
    "rejected": ("status", cases.REJECTED), "tu choi": ("status", cases.REJECTED),
    "da tu choi": ("status", cases.REJECTED),
    "open": ("status", "open"), "dang mo": ("status", "open"),
    "all": ("status", "all"), "tat ca": ("status", "all"),
    "mine": ("flag", "mine"), "cua toi": ("flag", "mine"),
    "unclaimed": ("flag", "unclaimed"), "chua nhan": ("flag", "unclaimed"),
    "chua ai nhan": ("flag", "unclaimed"),
    "oldest": ("flag", "oldest"), "cu nhat": ("flag", "oldest"),
    "today": ("age", "today"), "hom nay": ("age", "today"),
    "week": ("age", "week"), "tuan nay": ("age", "week"), "7 ngay": ("age", "week"),
    "month": ("age", "month"), "thang nay": ("age", "month"), "30 ngay": ("age", "month"),
}  # fmt: skip
PHRASE_WORDS = 4  # the longest filter phrase, in words
STATUS_FILTERS = ("open", *cases.STATUSES, "all")


class Step(StrEnum):
    """Steps of the workspace: the queue, a tip's page, and the texts an action asks for."""

    QUEUE = "queue"
    TIP = "tip"
    NOTE = "note"
    REPLY = "reply"
    DUPLICATE = "duplicate"
    REWARD = "reward"


# --- entry points -------------------------------------------------------------------------


async def _enter(ctx: Context, core: FlowControl, *, fresh: bool) -> Access | None:
    """Staff entering the workspace by a command: their access, or None when answered already
    (a citizen: unknown command; a draft of another flow open: keep it or drop it first)."""
    access = await access_of(ctx)
    if access is None:
        await unknown_command(ctx, core)
        return None
    if ctx.chat.flow not in (None, NAME):
        menu.ask_continue_or_discard(ctx)
        return None
    if fresh or ctx.chat.flow is None:
        ctx.chat.data = {"filter": {"status": "open"}, "page": 0}
    return access


async def open_queue(ctx: Context, core: FlowControl) -> None:
    """/queue [filters]: the tips of the officer's areas, newest first, a page at a time."""
    access = await _enter(ctx, core, fresh=True)
    if access is None:
        return
    ctx.go(NAME, Step.QUEUE)
    if ctx.event.argument and not _apply_words(ctx, access, ctx.event.argument):
        return
    await prompt(ctx)


async def open_code(ctx: Context, core: FlowControl, code: str) -> None:
    """/tip CODE from staff: that tip's page (citizens' /tip starts a tip instead)."""
    access = await _enter(ctx, core, fresh=False)
    if access is not None:
        await _open(ctx, access, code)


async def toggle_notify(ctx: Context, core: FlowControl) -> None:
    """/notify: new-tip notices in this private chat too (within the officer's areas), or not."""
    access = await access_of(ctx)
    member = await staff_repo.member_for(ctx.session, ctx.owner_hash) if access else None
    if access is None:
        await unknown_command(ctx, core)
        return
    if member is None or ctx.event.group:
        ctx.say(ctx.t("case.notify_needs_member"))
    else:
        member.notify = not member.notify
        await audit.record(
            ctx.session,
            actor=access.actor,
            action="staff.notify",
            detail={"on": member.notify},
            at=ctx.now,
        )
        ctx.say(ctx.t("case.notify_on" if member.notify else "case.notify_off"))
    await core.reprompt(ctx)


async def press(ctx: Context, action: str, core: FlowControl) -> None:
    """A workspace button, from a tip page, the queue or a notice (in a group too)."""
    access = await access_of(ctx)
    if access is None and ctx.event.group:
        ctx.refuse_press(ctx.t("button.stale"))  # the notice stays for the officers
        return
    if access is None:
        ctx.notice(ctx.t("button.stale"))
        ctx.say(ctx.t("button.stale_long"))
        await core.reprompt(ctx)
        return
    _, verb, code = [*action.split(":", 2), "", ""][:3]
    if ctx.event.group:
        await _press_in_group(ctx, access, verb, code)
        return
    if ctx.chat.flow not in (None, NAME):
        menu.ask_continue_or_discard(ctx)  # an alert or bulletin draft is not lost to a notice
        return
    if ctx.chat.flow is None:
        ctx.chat.data = {"filter": {"status": "open"}, "page": 0}
    await _act(ctx, access, verb, code)


# --- the flow -------------------------------------------------------------------------------


async def start(ctx: Context) -> None:
    """Begin at the queue."""
    ctx.chat.data = {"filter": {"status": "open"}, "page": 0}
    ctx.go(NAME, Step.QUEUE)
    await prompt(ctx)


async def prompt(ctx: Context) -> None:
    """Show the current step again."""
    access = await access_of(ctx)
    if access is None:
        _leave(ctx, "command.unknown")
        return
    step = ctx.chat.step
    tip = await _draft_tip(ctx, access) if step != Step.QUEUE else None
    if step == Step.QUEUE or tip is None:
        ctx.go(NAME, Step.QUEUE)
        await _show_queue(ctx, access)
    elif step == Step.TIP:
        await _show_tip(ctx, access, tip)
    else:
        cancel = [[(ctx.t("case.back_to_tip"), f"case:open:{tip.code}")]]
        ctx.ask(ctx.t(f"case.ask_{step}", code=tip.code, max=NOTE_MAX), cancel)


async def handle(ctx: Context, action: str | None) -> None:
    """Typed input: filter words at the queue, the text an action asked for."""
    access = await access_of(ctx)
    if access is None:
        _leave(ctx, "command.unknown")
        return
    text = (ctx.event.text or "").strip()
    step = ctx.chat.step
    if action is not None:
        if action.startswith("case:"):
            _, verb, code = [*action.split(":", 2), "", ""][:3]
            await _act(ctx, access, verb, code)
            return
        ctx.say(ctx.t("input.use_buttons"))
    elif not text or ctx.event.attachments or ctx.event.location or ctx.event.unsupported:
        ctx.say(ctx.t("case.wants_text"))
    elif step == Step.QUEUE and ctx.draft.get("area_asked"):
        ctx.update_draft(area_asked=None)
        if not _area_words(ctx, access, text):
            return
    elif step == Step.QUEUE:
        if not _apply_words(ctx, access, text):
            return
    elif step == Step.TIP:
        opened = code_in(text)
        if opened:
            await _open(ctx, access, opened)
            return
        ctx.say(ctx.t("case.tip_help"))
    else:
        tip = await _draft_tip(ctx, access)
        if tip is not None and await _take_text(ctx, access, tip, text):
            return
    await prompt(ctx)


def _leave(ctx: Context, key: str) -> None:
    """End the workspace (a role just revoked), with a message and the menu."""
    ctx.end_flow()
    ctx.say(ctx.t(key))
    show_menu(ctx)


# --- the queue -------------------------------------------------------------------------------


def _filter(ctx: Context, access: Access) -> cases.QueueFilter:
    """The draft's filter as the repository reads it, inside the officer's jurisdiction."""
    chosen: dict[str, Any] = dict(ctx.draft.get("filter") or {})
    status = str(chosen.get("status", "open"))
    statuses = (
        cases.OPEN
        if status == "open"
        else cases.STATUSES
        if status == "all"
        else (status,)
        if status in cases.STATUSES
        else cases.OPEN
    )
    area = chosen.get("area")
    within = None
    if isinstance(area, str):
        within = [a for a in _inside(ctx, area) if access.covers(a)]
    age = AGES.get(str(chosen.get("age")))
    return cases.QueueFilter(
        areas=None if access.areas is None else sorted(access.areas),
        statuses=statuses,
        category=chosen.get("category") if isinstance(chosen.get("category"), str) else None,
        area=within,
        since=ctx.now - age if age else None,
        owner=access.actor if chosen.get("mine") else None,
        unclaimed=bool(chosen.get("unclaimed")),
        oldest_first=bool(chosen.get("oldest")),
    )


def _inside(ctx: Context, code: str) -> list[str]:
    """An area and everything in it."""
    found, stack = [], [code]
    while stack:
        current = stack.pop()
        found.append(current)
        stack.extend(child.code for child in ctx.areas.children(current))
    return found


def _apply_words(ctx: Context, access: Access, text: str) -> bool:
    """Filters typed as words ('new drugs mine', 'ma tuy cua toi', an area's name), the
    longest phrase first; the words left over are an area. False when a choice was offered."""
    chosen: dict[str, Any] = dict(ctx.draft.get("filter") or {})
    known = dict(_FILTER_WORDS)
    for key in ctx.limits.categories:
        known[fold(key)] = ("category", key)
        for language in ctx.services.translate.languages:
            known[fold(notices.category_name(ctx, language, key))] = ("category", key)
    typed = text.replace(",", " ").split()
    words = [fold(word) for word in typed]
    leftover: list[str] = []
    at = 0
    while at < len(words):
        for size in range(min(PHRASE_WORDS, len(words) - at), 0, -1):
            kind, value = known.get(" ".join(words[at : at + size]), ("", ""))
            if kind:
                if kind == "flag":
                    chosen[value] = True
                else:
                    chosen[kind] = value
                at += size
                break
        else:
            leftover.append(typed[at])
            at += 1
    ctx.update_draft(filter=chosen, page=0)
    if leftover:
        return _area_words(ctx, access, " ".join(leftover))
    return True


def _area_words(ctx: Context, access: Access, query: str) -> bool:
    """An area typed as a filter: taken when it is the one meant, else offered as choices."""
    found = [a for a in ctx.areas.search(query, limit=16) if _reachable(access, a.code, ctx)]
    exact = [area for area in found if ctx.areas.is_exact(area, query)]
    if len(exact) == 1 or len(found) == 1:
        ctx.update_draft(
            filter={**(ctx.draft.get("filter") or {}), "area": (exact or found)[0].code}
        )
        return True
    if not found:
        ctx.say(ctx.t("case.filter_unknown", words=query[:80]))
        return True
    rows = [[(ctx.areas.label(area), f"case:fr:{area.code}")] for area in (exact or found)[:8]]
    ctx.ask(ctx.t("case.choose_area"), [*rows, [(ctx.t("case.back_to_queue"), "case:queue:")]])
    return False


def _reachable(access: Access, code: str, ctx: Context) -> bool:
    """Whether an area holds any of the officer's (all of them, for all-area staff)."""
    return access.areas is None or any(a in access.areas for a in _inside(ctx, code))


async def _show_queue(ctx: Context, access: Access) -> None:
    """One page of the queue with its tips as buttons and the filters one tap away."""
    wanted = _filter(ctx, access)
    page = max(0, int(ctx.draft.get("page", 0)))
    found, total = await cases.queue_page(ctx.session, wanted, page * PAGE, PAGE)
    if not found and page:
        ctx.update_draft(page=0)
        page = 0
        found, total = await cases.queue_page(ctx.session, wanted, 0, PAGE)
    owners = await _owner_labels(ctx, [tip.owner for tip in found])
    lines = [_queue_line(ctx, tip, owners) for tip in found]
    pages = max(1, -(-total // PAGE))
    capped = total > cases.COUNT_CAP
    heading = ctx.t(
        "case.queue",
        count=f"{cases.COUNT_CAP}+" if capped else total,
        page=page + 1,
        pages=f"{max(page + 1, cases.COUNT_CAP // PAGE)}+" if capped else pages,
        filters=_describe_filter(ctx),
    )
    body = "\n".join(lines) if lines else ctx.t("case.queue_empty")
    rows: list[list[tuple[str, str]]] = []
    for index in range(0, len(found), 2):
        rows.append(
            [
                (
                    f"{tip.code} · {notices.category_name(ctx, ctx.chat.language, tip.category)}",
                    f"case:open:{tip.code}",
                )
                for tip in found[index : index + 2]
            ]
        )
    nav = []
    if page:
        nav.append((ctx.t("picker.previous"), "case:page:prev"))
    if (page + 1) * PAGE < total:
        nav.append((ctx.t("picker.next"), "case:page:next"))
    if nav:
        rows.append(nav)
    chosen = ctx.draft.get("filter") or {}
    rows.append(
        [
            (ctx.t("case.f_mine_on" if chosen.get("mine") else "case.f_mine"), "case:f:mine"),
            (
                ctx.t("case.f_unclaimed_on" if chosen.get("unclaimed") else "case.f_unclaimed"),
                "case:f:unclaimed",
            ),
        ]
    )
    rows.append(
        [
            (ctx.t("case.f_status"), "case:f:status"),
            (ctx.t("case.f_category"), "case:f:category"),
        ]
    )
    rows.append([(ctx.t("case.f_area"), "case:f:area")])
    rows.append(
        [
            (ctx.t("case.f_age"), "case:f:age"),
            (
                ctx.t("case.f_to_newest" if chosen.get("oldest") else "case.f_to_oldest"),
                "case:f:order",
            ),
        ]
    )
    rows.append([(ctx.t("case.f_clear"), "case:f:clear"), (ctx.t("case.leave"), "case:leave")])
    ctx.ask(f"{heading}\n\n{body}\n\n{ctx.t('case.queue_hint')}", rows)


def _queue_line(ctx: Context, tip: Tip, owners: dict[str, str]) -> str:
    urgent = "🚨 " if tip.occurred == "now" and tip.status in cases.OPEN else ""
    return ctx.t(
        "case.queue_line",
        urgent=urgent,
        code=tip.code,
        category=notices.category_name(ctx, ctx.chat.language, tip.category),
        area=notices.area_name(ctx, tip.area_code),
        at=notices.when(tip),
        status=_status_name(ctx, tip.status),
        owner=owners.get(tip.owner or "", ctx.t("case.nobody")),
    )


def _describe_filter(ctx: Context) -> str:
    """The queue's filters in words."""
    chosen = ctx.draft.get("filter") or {}
    parts = [ctx.t(f"case.fs_{chosen.get('status', 'open')}")]
    if isinstance(chosen.get("category"), str):
        parts.append(notices.category_name(ctx, ctx.chat.language, chosen["category"]))
    if isinstance(chosen.get("area"), str):
        parts.append(notices.area_name(ctx, chosen["area"]))
    if chosen.get("age") in AGES:
        parts.append(ctx.t(f"case.fa_{chosen['age']}"))
    if chosen.get("mine"):
        parts.append(ctx.t("case.f_mine"))
    if chosen.get("unclaimed"):
        parts.append(ctx.t("case.f_unclaimed"))
    parts.append(ctx.t("case.f_oldest" if chosen.get("oldest") else "case.f_newest"))
    return " · ".join(parts)


async def _change_filter(ctx: Context, what: str) -> None:
    """A filter button: toggled at once, or a choice offered."""
    chosen: dict[str, Any] = dict(ctx.draft.get("filter") or {})
    if what in ("mine", "unclaimed", "oldest", "order"):
        key = "oldest" if what == "order" else what
        chosen[key] = not chosen.get(key)
        if key == "mine" and chosen[key]:
            chosen["unclaimed"] = False
        if key == "unclaimed" and chosen[key]:
            chosen["mine"] = False
    elif what == "clear":
        chosen = {"status": "open"}
    elif what == "status":
        rows = [[(ctx.t(f"case.fs_{s}"), f"case:fs:{s}")] for s in STATUS_FILTERS]
        ctx.ask(ctx.t("case.choose_status"), rows)
        return
    elif what == "category":
        rows = [
            [(notices.category_name(ctx, ctx.chat.language, key), f"case:fc:{key}")]
            for key in ctx.limits.categories
        ]
        ctx.ask(ctx.t("case.choose_category"), [*rows, [(ctx.t("case.fc_all"), "case:fc:*")]])
        return
    elif what == "area":
        ctx.update_draft(area_asked=True)  # the next text is an area's name, not filter words
        back = [
            [(ctx.t("case.fr_all"), "case:fr:*")],
            [(ctx.t("case.back_to_queue"), "case:queue:")],
        ]
        ctx.ask(ctx.t("case.ask_area"), back)
        return
    elif what == "age":
        rows = [[(ctx.t(f"case.fa_{age}"), f"case:fa:{age}")] for age in (*AGES, "any")]
        ctx.ask(ctx.t("case.choose_age"), rows)
        return
    ctx.update_draft(filter=chosen, page=0)
    ctx.go(NAME, Step.QUEUE)
    await prompt(ctx)


async def _choose(ctx: Context, kind: str, value: str) -> None:
    """A choice from a filter's list."""
    chosen: dict[str, Any] = dict(ctx.draft.get("filter") or {})
    if kind == "fs" and value in STATUS_FILTERS:
        chosen["status"] = value
    elif kind == "fc":
        chosen["category"] = value if value in ctx.limits.categories else None
    elif kind == "fa":
        chosen["age"] = value if value in AGES else None
    elif kind == "fr":
        chosen["area"] = value if ctx.areas.get(value) is not None else None
    ctx.update_draft(filter=chosen, page=0)
    ctx.go(NAME, Step.QUEUE)
    await prompt(ctx)


# --- a tip's page ----------------------------------------------------------------------------


async def _opened(ctx: Context, access: Access, code: str) -> Tip | None:
    """The tip, now the open one, if it is in the officer's areas; else the queue again, as if
    there were no such tip."""
    tip = await _visible(ctx, access, code)
    if tip is None:
        if ctx.event.button is not None:
            ctx.notice(ctx.t("case.not_found", code=code[:16]))
        ctx.say(ctx.t("case.not_found", code=code[:16]))
        ctx.go(NAME, Step.QUEUE)
        await prompt(ctx)
        return None
    ctx.update_draft(tip=tip.code)
    ctx.go(NAME, Step.TIP)
    return tip


async def _open(ctx: Context, access: Access, code: str) -> None:
    """A tip's page, if it is in the officer's areas."""
    tip = await _opened(ctx, access, code)
    if tip is None:
        return
    await _record(ctx, access, "tip.viewed", tip, {"contact": bool(tip.contact_enc) or None})
    await _show_tip(ctx, access, tip)


async def _visible(ctx: Context, access: Access, code: str) -> Tip | None:
    """A tip by code that this officer may see."""
    tip = await cases.tip_by_code(ctx.session, normalize_code(code))
    return tip if tip is not None and access.covers(tip.area_code) else None


async def _draft_tip(ctx: Context, access: Access) -> Tip | None:
    """The tip the officer has open, if it is still theirs to see."""
    code = ctx.draft.get("tip")
    return await _visible(ctx, access, code) if isinstance(code, str) else None


async def _show_tip(ctx: Context, access: Access, tip: Tip) -> None:
    """The tip: what, where, when, status, owner, timeline; its cleaned files; the actions."""
    owners = await _owner_labels(ctx, [tip.owner])
    blocked = await cases.blocked_from(ctx.session, tip.code)
    place = tip.place_text or "—"
    if tip.latitude is not None and tip.longitude is not None:
        place = f"{place} (📍 {tip.latitude:.5f}, {tip.longitude:.5f})"
    events = await cases.timeline(ctx.session, tip.id, TIMELINE_SHOWN)
    labels = await _owner_labels(ctx, [event.actor for event in events])
    text = ctx.t(
        "case.page",
        urgent=ctx.t("case.urgent") + "\n" if tip.occurred == "now" else "",
        code=tip.code,
        category=notices.category_name(ctx, ctx.chat.language, tip.category),
        area=notices.area_name(ctx, tip.area_code),
        place=place,
        occurred=ctx.t(f"when.{tip.occurred}")
        if ctx.services.translate.has(f"when.{tip.occurred}")
        else tip.occurred,
        at=notices.when(tip),
        status=_status_name(ctx, tip.status)
        + (f" ({tip.duplicate_of})" if tip.duplicate_of else ""),
        priority=ctx.t(f"case.priority_{tip.priority}"),
        owner=owners.get(tip.owner or "", ctx.t("case.nobody")),
        description=tip.description,
        files=len(tip.attachments),
    )
    contact = ctx.services.vault.decrypt(tip.contact_enc) if tip.contact_enc else None
    if contact:
        text += "\n" + ctx.t("case.contact_line", contact=contact)
    if tip.reward_at is not None:
        text += "\n" + ctx.t("case.reward_line", note=tip.reward_note or "")
    if blocked:
        text += "\n" + ctx.t("case.blocked_line")
    if events:
        text += (
            "\n\n"
            + ctx.t("case.timeline")
            + "\n"
            + "\n".join(_event_line(ctx, event, labels) for event in events)
        )
    ctx.ask(text, _tip_buttons(ctx, access, tip, blocked))


def _tip_buttons(
    ctx: Context, access: Access, tip: Tip, blocked: bool
) -> list[list[tuple[str, str]]]:
    """The actions on a tip, as its owner, another officer or an admin may take them."""
    code = tip.code
    rows: list[list[tuple[str, str]]] = []
    if tip.owner is None and tip.status in cases.OPEN:
        rows.append([(ctx.t("case.claim"), f"case:claim:{code}")])
    elif tip.owner is not None and (tip.owner == access.actor or access.is_admin):
        rows.append([(ctx.t("case.release"), f"case:release:{code}")])
    moves = [s for s in (cases.IN_REVIEW, cases.ACTIONED, cases.CLOSED) if s != tip.status]
    rows.append([(ctx.t(f"case.to_{s}"), f"case:status_{s}:{code}") for s in moves])
    rows.append(
        [
            (ctx.t("case.reject_spam"), f"case:spam:{code}"),
            (ctx.t("case.reject_duplicate"), f"case:duplicate:{code}"),
        ]
    )
    rows.append(
        [
            (ctx.t("case.add_note"), f"case:note:{code}"),
            (ctx.t("case.reply"), f"case:reply:{code}"),
        ]
    )
    nxt = cases.PRIORITIES[(cases.PRIORITIES.index(tip.priority) + 1) % len(cases.PRIORITIES)]
    rows.append(
        [
            (
                ctx.t("case.priority_to", priority=ctx.t(f"case.priority_{nxt}")),
                f"case:priority:{code}",
            ),
            (ctx.t("case.reward"), f"case:reward:{code}"),
        ]
    )
    block = (
        (ctx.t("case.unblock"), f"case:unblock:{code}")
        if blocked
        else (ctx.t("case.block"), f"case:block:{code}")
    )
    files = (
        [(ctx.t("case.files", count=len(tip.attachments)), f"case:files:{code}")]
        if tip.attachments
        else []
    )
    rows.append([block, *files])
    rows.append([(ctx.t("case.back_to_queue"), "case:queue:"), (ctx.t("case.leave"), "case:leave")])
    return rows


def _event_line(ctx: Context, event: TipEvent, labels: dict[str, str]) -> str:
    """One timeline line."""
    who = (
        ctx.t("case.tipster")
        if event.actor == cases.TIPSTER
        else labels.get(event.actor, event.actor)
    )
    at = f"{event.at.astimezone(notices.VIETNAM):%H:%M %d/%m}"
    detail = dict(event.detail or {})
    what = (
        ctx.t(f"case.event_{event.kind}")
        if ctx.services.translate.has(f"case.event_{event.kind}")
        else event.kind
    )
    if event.kind == "status":
        what = ctx.t("case.event_status", status=_status_name(ctx, str(detail.get("to"))))
    elif event.kind == "priority":
        what = ctx.t(
            "case.event_priority", priority=ctx.t(f"case.priority_{detail.get('to', 'normal')}")
        )
    if event.text:
        what = f"{what}: {event.text}"
    return f"• {at} {who} — {what}"


async def _owner_labels(ctx: Context, actors: list[str | None]) -> dict[str, str]:
    """How staff are named to each other: the label their inviter gave, 'admin' for bootstrap."""
    labels: dict[str, str] = {}
    for actor in {a for a in actors if a}:
        if actor.startswith("staff:") and actor[6:].isdigit():
            member = await ctx.session.get(StaffMember, int(actor[6:]))
            labels[actor] = member.label if member else actor
        elif actor.startswith("bootstrap:"):
            labels[actor] = ctx.t("role.admin")
        elif actor == cases.SYSTEM:
            labels[actor] = "tipline"
    return labels


def _status_name(ctx: Context, status: str) -> str:
    key = f"status.{status}"
    return ctx.t(key) if ctx.services.translate.has(key) else status


# --- actions -----------------------------------------------------------------------------------


async def _act(ctx: Context, access: Access, verb: str, code: str) -> None:
    """One button's action, authorised now."""
    if verb == "page":
        page = int(ctx.draft.get("page", 0)) + (1 if code == "next" else -1)
        ctx.update_draft(page=max(0, page))
        ctx.go(NAME, Step.QUEUE)
        await prompt(ctx)
    elif verb == "f":
        await _change_filter(ctx, code)
    elif verb in ("fs", "fc", "fa", "fr"):
        ctx.update_draft(area_asked=None)
        await _choose(ctx, verb, code)
    elif verb == "queue":
        ctx.go(NAME, Step.QUEUE)
        await prompt(ctx)
    elif verb == "leave":
        ctx.end_flow()
        show_menu(ctx)
    elif verb in ("open", "view"):
        await _open(ctx, access, code)
    else:
        tip = await _opened(ctx, access, code)
        if tip is not None and await _on_tip(ctx, access, verb, tip):
            await _show_tip(ctx, access, tip)


async def _on_tip(ctx: Context, access: Access, verb: str, tip: Tip) -> bool:
    """An action on one tip; True when its page should be shown again now."""
    if verb == "claim":
        await _claim(ctx, access, tip)
    elif verb == "release":
        if await cases.release(ctx.session, tip.id, access.actor, ctx.now, anyones=access.is_admin):
            tip.owner = None
            await _record(ctx, access, "tip.released", tip)
            ctx.say(ctx.t("case.released", code=tip.code))
    elif verb == "files":
        _show_files(ctx, tip)
    elif verb in ("note", "reply", "duplicate", "reward") and _may_write(ctx, access, tip, verb):
        ctx.go(NAME, Step(verb))
        await prompt(ctx)
        return False
    elif verb.startswith("status_") and _may_change(ctx, access, tip):
        status = verb.removeprefix("status_")
        if status in (cases.IN_REVIEW, cases.ACTIONED, cases.CLOSED):
            await _set_status(ctx, access, tip, status)
    elif verb == "spam" and _may_change(ctx, access, tip):
        await _set_status(ctx, access, tip, cases.REJECTED, reason="spam")
    elif verb == "priority" and _may_change(ctx, access, tip):
        if not await _take_if_free(ctx, access, tip):
            return True
        nxt = cases.PRIORITIES[(cases.PRIORITIES.index(tip.priority) + 1) % len(cases.PRIORITIES)]
        await cases.set_priority(ctx.session, tip, nxt, access.actor, ctx.now)
        await _record(ctx, access, "tip.priority", tip, {"to": nxt})
    elif verb in ("block", "unblock") and _may_change(ctx, access, tip):
        await _block(ctx, access, tip, verb == "block")
    return True


async def _claim(ctx: Context, access: Access, tip: Tip) -> None:
    """Take the tip; of two officers at once exactly one gets it, the other is told who did."""
    if await cases.claim(ctx.session, tip.id, access.actor, ctx.now):
        tip.owner = access.actor
        await _record(ctx, access, "tip.claimed", tip)
        ctx.notice(ctx.t("case.claimed", code=tip.code))
        if ctx.event.group:  # the other officers in the group see who took it
            owners = await _owner_labels(ctx, [tip.owner])
            ctx.say(ctx.t("case.claimed_by", code=tip.code, owner=owners.get(tip.owner, "—")))
        else:
            ctx.say(ctx.t("case.claimed", code=tip.code))
        return
    await ctx.session.refresh(tip, ["owner", "status"])
    owners = await _owner_labels(ctx, [tip.owner])
    message = (
        ctx.t("case.owned_by", code=tip.code, owner=owners.get(tip.owner, "—"))
        if tip.owner
        else ctx.t("case.not_open", code=tip.code, status=_status_name(ctx, tip.status))
    )
    ctx.notice(message)
    ctx.say(message)


def _may_change(ctx: Context, access: Access, tip: Tip) -> bool:
    """The tip's owner (or an admin) changes it, and anyone in its area while nobody owns it
    (acting on it then claims it); another officer's tip is theirs."""
    if access.is_admin or tip.owner in (None, access.actor):
        return True
    ctx.notice(ctx.t("case.claim_first"))
    ctx.say(ctx.t("case.claim_first"))
    return False


async def _acts_as_owner(ctx: Context, access: Access, tip: Tip) -> bool:
    """Whether this officer may change the tip now, claiming it if nobody has (said if not)."""
    return _may_change(ctx, access, tip) and await _take_if_free(ctx, access, tip)


async def _take_if_free(ctx: Context, access: Access, tip: Tip) -> bool:
    """Acting on an unowned tip claims it; False (and said) when another officer got it first
    (of two acting at once, exactly one goes on)."""
    if tip.owner is not None or access.is_admin:
        return tip.owner == access.actor or access.is_admin
    if await cases.claim(ctx.session, tip.id, access.actor, ctx.now):
        tip.owner = access.actor
        await _record(ctx, access, "tip.claimed", tip)
        return True
    await _claim(ctx, access, tip)  # says who has it now
    return False


def _may_write(ctx: Context, access: Access, tip: Tip, verb: str) -> bool:
    """Notes are anyone's in the jurisdiction; replies, duplicates and rewards the owner's."""
    return verb == "note" or _may_change(ctx, access, tip)


async def _set_status(
    ctx: Context,
    access: Access,
    tip: Tip,
    status: str,
    *,
    reason: str | None = None,
    duplicate_of: str | None = None,
) -> None:
    """Move the tip on, tell a tipster who asked for updates, and write it down."""
    if not await _take_if_free(ctx, access, tip):
        return
    await cases.set_status(
        ctx.session, tip, status, access.actor, ctx.now, reason=reason, duplicate_of=duplicate_of
    )
    await notices.status_update(ctx, tip)
    await _record(ctx, access, "tip.status", tip, {"to": status, "reason": reason})
    ctx.say(ctx.t("case.status_set", code=tip.code, status=_status_name(ctx, status)))


async def _block(ctx: Context, access: Access, tip: Tip, block: bool) -> None:
    """Refuse (or accept again) the tips of whoever sent this one; nobody learns who it is."""
    link = await cases.link_of(ctx.session, tip.id)
    if block and link is None:
        ctx.say(ctx.t("case.block_unknown"))
        return
    if block and link is not None:
        # Already blocked from another tip: the same answer, so nobody learns the two are linked.
        changed = await cases.block(ctx.session, link.owner_hash, tip.code, access.actor, ctx.now)
    else:
        changed = await cases.unblock(ctx.session, tip.code)
    if changed:
        await cases.add_event(
            ctx.session, tip.id, "block" if block else "unblock", access.actor, now=ctx.now
        )
        await _record(ctx, access, "tip.block" if block else "tip.unblock", tip)
    ctx.say(ctx.t("case.blocked" if block else "case.unblocked", code=tip.code))


def _show_files(ctx: Context, tip: Tip) -> None:
    """The tip's files: the cleaned copies of images; others are described, not handed out."""
    shown = 0
    for index, attachment in enumerate(tip.attachments, start=1):
        caption = ctx.t("case.file", code=tip.code, n=index, total=len(tip.attachments))
        is_image = attachment.kind == "photo" or (attachment.mime_type or "").startswith("image/")
        if is_image and attachment.file_ref.startswith(STORED_PREFIX):
            ctx.show_photo(caption, attachment.file_ref)
            shown += 1
        else:
            ctx.say(f"{caption}: {ctx.t('case.file_held', kind=attachment.kind)}")
    if not shown and not tip.attachments:
        ctx.say(ctx.t("case.no_files"))


async def _take_text(ctx: Context, access: Access, tip: Tip, text: str) -> bool:
    """The text a note, reply, duplicate or reward asked for; True when the step is done."""
    step = ctx.chat.step
    if step == Step.DUPLICATE:
        original = await _visible(ctx, access, normalize_code(text))
        if original is None or original.code == tip.code:
            ctx.say(ctx.t("case.duplicate_unknown", code=text[:16]))
            return False
        if not _may_change(ctx, access, tip):
            return False
        await _set_status(
            ctx, access, tip, cases.REJECTED, reason="duplicate", duplicate_of=original.code
        )
        await cases.add_event(
            ctx.session, original.id, "duplicate", access.actor, now=ctx.now, text=tip.code
        )
    elif len(text) > NOTE_MAX or (step == Step.REPLY and len(text) < REPLY_MIN):
        ctx.say(ctx.t("case.text_length", max=NOTE_MAX, length=len(text)))
        return False
    elif step == Step.NOTE:
        await cases.add_event(ctx.session, tip.id, "note", access.actor, now=ctx.now, text=text)
        await _record(ctx, access, "tip.note", tip)
        ctx.say(ctx.t("case.noted", code=tip.code))
    elif step == Step.REPLY:
        if not await _acts_as_owner(ctx, access, tip):
            return False
        unit = ctx.services.workspace.unit_name or ctx.t("case.unit_default")
        if not await notices.to_tipster(
            ctx, tip, "case.relayed", answer_button=True, unit=unit, text=text
        ):
            ctx.say(ctx.t("case.reply_unreachable", code=tip.code))
            return False
        await cases.add_event(ctx.session, tip.id, "reply", access.actor, now=ctx.now, text=text)
        await cases.note_response(ctx.session, tip, ctx.now)
        await _record(ctx, access, "tip.reply", tip)
        ctx.say(ctx.t("case.replied", code=tip.code))
    elif step == Step.REWARD:
        if not await _acts_as_owner(ctx, access, tip):
            return False
        await cases.approve_reward(ctx.session, tip, text, access.actor, ctx.now)
        await _record(ctx, access, "tip.reward", tip)
        ctx.say(ctx.t("case.rewarded", code=tip.code))
    ctx.go(NAME, Step.TIP)
    await _show_tip(ctx, access, tip)
    return True


async def _press_in_group(ctx: Context, access: Access, verb: str, code: str) -> None:
    """A notice's button in the officers' group: claim there; the tip's page goes to the
    presser's private chat (nothing is typed in a group)."""
    tip = await _visible(ctx, access, code)
    if tip is None:
        ctx.refuse_press(ctx.t("case.not_found", code=code[:16]))
        return
    if verb == "claim":
        await _claim(ctx, access, tip)
    else:
        sent = await notices.offer_to_open(ctx, tip, _private_address(ctx))
        ctx.notice(ctx.t("case.sent_privately" if sent else "case.open_privately", code=tip.code))
    ctx.response.keep_pressed = True  # the notice's buttons stay for the other officers


def _private_address(ctx: Context) -> str | None:
    """The presser's private chat (a Telegram user's private chat id is their user id)."""
    return f"{ctx.event.channel}:{ctx.event.actor}" if ctx.event.actor else None


async def _record(
    ctx: Context, access: Access, action: str, tip: Tip, detail: dict[str, Any] | None = None
) -> None:
    """Write an officer's action on a tip to the audit log."""
    await audit.record(
        ctx.session,
        actor=access.actor,
        action=action,
        target=f"tip:{tip.code}",
        detail={k: v for k, v in (detail or {}).items() if v is not None},
        at=ctx.now,
    )


FLOW = FlowSpec(
    name=NAME,
    start=start,
    prompt=prompt,
    handle=handle,
    worth_telling=lambda step: step not in (Step.QUEUE, Step.TIP),
)
ROUTER = Router(
    NAME,
    flows=(FLOW,),
    commands=(
        Command("queue", open_queue, listed=False),
        Command("notify", toggle_notify, listed=False),
    ),
    prefixes=("case:",),
    on_button=press,
    in_groups=True,
)
