"""Proactive messages the workspace sends through the outbox: new-tip notices to officers,
officers' replies and status updates to tipsters, and tipsters' answers to the officer.

Each goes in the event's own transaction, so it is sent if and only if the event commits; the
outbox is woken after the commit. A tipster's address comes only from the tip's encrypted link
and is never shown to anyone; officers learn nothing but the tip code.
"""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from handlers.context import Context
from handlers.staff import jurisdiction
from storage.models import Chat, StaffMember, Tip
from storage.repositories import cases, outbox, prompts
from storage.repositories import staff as staff_repo

VIETNAM = ZoneInfo("Asia/Ho_Chi_Minh")
# Buttons under a relayed reply, or a notice, keep working this long.
BUTTON_LIFETIME = timedelta(days=30)


def when(tip: Tip) -> str:
    """A tip's time as officers read it (Vietnam time)."""
    return f"{tip.created_at.astimezone(VIETNAM):%H:%M %d/%m/%Y}"


def category_name(ctx: Context, language: str, category: str) -> str:
    """A category's name in a language (a custom one as configured)."""
    key = f"category.{category}"
    return ctx.services.translate(language, key) if ctx.services.translate.has(key) else category


def area_name(ctx: Context, code: str | None) -> str:
    """An area's label, or a dash."""
    area = ctx.areas.get(code or "")
    return ctx.areas.label(area) if area else "—"


def notice_text(ctx: Context, language: str, tip: Tip) -> str:
    """A new tip as a notice reads: code, category, area, time, urgency; nothing of the tipster."""
    text = ctx.services.translate(
        language,
        "case.notice",
        code=tip.code,
        category=category_name(ctx, language, tip.category),
        area=area_name(ctx, tip.area_code),
        at=when(tip),
    )
    if tip.occurred == "now":
        return f"{ctx.services.translate(language, 'case.urgent')}\n{text}"
    return text


async def new_tip(ctx: Context, tip: Tip) -> None:
    """Tell the officers' group for the tip's area (or the general one) and the officers who
    asked for notices and whose jurisdiction holds the tip."""
    group = _officer_chat(ctx, tip.area_code)
    if group is not None:
        await _queue(ctx, group, notice_text(ctx, "vi", tip), _notice_buttons(ctx, "vi", tip))
    for member in await _notified(ctx, tip.area_code):
        address = ctx.services.vault.decrypt(member.address_enc)
        if address is not None:
            language = await _language(ctx, member.address_hash)
            text = notice_text(ctx, language, tip)
            await _queue(ctx, address, text, _notice_buttons(ctx, language, tip), private=True)


def _notice_buttons(ctx: Context, language: str, tip: Tip) -> list[tuple[str, str]]:
    """A notice's Claim and View, as (action, label)."""
    t = ctx.services.translate
    return [
        (f"case:claim:{tip.code}", t(language, "case.claim")),
        (f"case:view:{tip.code}", t(language, "case.view")),
    ]


async def _queue(
    ctx: Context,
    address: str,
    text: str,
    buttons: list[tuple[str, str]],
    *,
    private: bool = False,
    address_hash: str | None = None,
    address_enc: str | None = None,
) -> None:
    """One proactive message into the outbox, a button a row, its buttons their own token
    (only that chat's when private; a group's for whoever presses, each press authorised)."""
    vault = ctx.services.vault
    address_hash = address_hash or vault.keyed_hash(address)
    rows: list[list[list[str]]] = []
    if buttons:
        token = await prompts.create(
            ctx.session,
            buttons,
            now=ctx.now,
            lifetime=BUTTON_LIFETIME,
            address_hash=address_hash if private else None,
        )
        rows = [[[label, f"{token}{prompts.SEPARATOR}{n}"]] for n, (_, label) in enumerate(buttons)]
    delivery = {
        "channel": address.split(":", 1)[0],
        "address_hash": address_hash,
        "address_enc": address_enc or vault.encrypt(address),
        "payload": {"text": text, "buttons": rows},
        "is_group": not private,
        "created_at": ctx.now,
    }
    await outbox.enqueue(ctx.session, [delivery])
    ctx.committed.append(ctx.services.wake_broadcasts)


def _officer_chat(ctx: Context, area_code: str | None) -> str | None:
    """The most specific officers' group for an area, else the general one."""
    chats = ctx.services.workspace.officer_chats
    for code in ctx.areas.ancestors(area_code) if area_code else ():
        if code in chats:
            return chats[code]
    return chats.get("*")


async def _notified(ctx: Context, area_code: str | None) -> list[StaffMember]:
    """Staff who asked for notices in their private chat, whose areas hold this one."""
    rows = await ctx.session.scalars(
        select(StaffMember).where(StaffMember.notify, StaffMember.revoked_at.is_(None))
    )
    found = []
    for member in rows:
        areas = None if member.role == staff_repo.ADMIN or not member.areas else member.areas
        if areas is None or (area_code is not None and area_code in jurisdiction(ctx, areas)):
            found.append(member)
    return found


async def _language(ctx: Context, address_hash: str) -> str:
    """The language a chat chose (Vietnamese when unknown)."""
    language = await ctx.session.scalar(
        select(Chat.language).where(Chat.address_hash == address_hash)
    )
    return language or "vi"


async def to_tipster(
    ctx: Context, tip: Tip, key: str, *, answer_button: bool = False, **params: object
) -> bool:
    """A message to the tip's sender in their language, through the outbox; False when the
    tip no longer has a way back (erased after retention, or never had one)."""
    link = await cases.link_of(ctx.session, tip.id)
    address = ctx.services.vault.decrypt(link.reply_address_enc or "") if link else None
    if link is None or address is None:
        return False
    language = await _language(ctx, link.owner_hash)
    text = ctx.services.translate(language, key, code=tip.code, **params)
    label = ctx.services.translate(language, "case.answer_button")
    await _queue(
        ctx,
        address,
        text,
        [(f"answer:{tip.code}", label)] if answer_button else [],
        private=True,
        address_hash=link.owner_hash,
        address_enc=link.reply_address_enc,
    )
    return True


async def status_update(ctx: Context, tip: Tip) -> None:
    """Tell a tipster who asked for updates that their tip was received, actioned or closed."""
    key = {
        cases.IN_REVIEW: "case.update_in_review",
        cases.ACTIONED: "case.update_actioned",
        cases.CLOSED: "case.update_closed",
        cases.REJECTED: "case.update_closed",
    }.get(tip.status)
    link = await cases.link_of(ctx.session, tip.id)
    if key is not None and link is not None and link.updates:
        await to_tipster(ctx, tip, key)


async def to_owner(ctx: Context, tip: Tip, key: str, text: str) -> None:
    """Tell the officer who owns a tip (else the officers' group) that the tipster wrote."""
    address = None
    if tip.owner and tip.owner.startswith("staff:") and tip.owner[6:].isdigit():
        member = await ctx.session.get(StaffMember, int(tip.owner[6:]))
        if member is not None and member.revoked_at is None:
            address = ctx.services.vault.decrypt(member.address_enc)
    private = address is not None
    address = address or _officer_chat(ctx, tip.area_code)
    if address is None:
        return  # nobody to tell now: it is on the tip's timeline for whoever opens it
    language = await _language(ctx, ctx.services.vault.keyed_hash(address)) if private else "vi"
    t = ctx.services.translate
    view = [(f"case:view:{tip.code}", t(language, "case.view"))]
    await _queue(ctx, address, t(language, key, code=tip.code, text=text), view, private=private)


async def offer_to_open(ctx: Context, tip: Tip, address: str | None) -> bool:
    """A notice's View pressed in a group: the tip, one tap away, in the presser's private
    chat (its button only theirs). False when the bot cannot write to them there."""
    if address is None:
        return False
    language = await _language(ctx, ctx.services.vault.keyed_hash(address))
    view = [(f"case:open:{tip.code}", ctx.services.translate(language, "case.view"))]
    await _queue(ctx, address, notice_text(ctx, language, tip), view, private=True)
    return True
