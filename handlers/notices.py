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
    rows = []
    group = _officer_chat(ctx, tip.area_code)
    if group is not None:
        rows.append(await _delivery(ctx, group, "vi", tip, private=False))
    for member in await _notified(ctx, tip.area_code):
        address = ctx.services.vault.decrypt(member.address_enc)
        if address is not None:
            language = await _language(ctx, member.address_hash)
            rows.append(await _delivery(ctx, address, language, tip, private=True))
    await outbox.enqueue(ctx.session, rows)
    if rows:
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


async def _delivery(
    ctx: Context, address: str, language: str, tip: Tip, *, private: bool
) -> dict[str, object]:
    """One notice for the outbox, its Claim and View buttons its own (only that chat's when
    private; a group's for whoever presses, each press authorised then)."""
    address_hash = ctx.services.vault.keyed_hash(address)
    t = ctx.services.translate
    token = await prompts.create(
        ctx.session,
        [
            (f"case:claim:{tip.code}", t(language, "case.claim")),
            (f"case:view:{tip.code}", t(language, "case.view")),
        ],
        now=ctx.now,
        lifetime=BUTTON_LIFETIME,
        address_hash=address_hash if private else None,
    )
    buttons = [
        [[t(language, "case.claim"), f"{token}{prompts.SEPARATOR}0"]],
        [[t(language, "case.view"), f"{token}{prompts.SEPARATOR}1"]],
    ]
    return {
        "channel": address.split(":", 1)[0],
        "address_hash": address_hash,
        "address_enc": ctx.services.vault.encrypt(address),
        "payload": {"text": notice_text(ctx, language, tip), "buttons": buttons},
        "is_group": not private,
        "created_at": ctx.now,
    }


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
    buttons: list[list[list[str]]] = []
    if answer_button:
        label = ctx.services.translate(language, "case.answer_button")
        token = await prompts.create(
            ctx.session,
            [(f"answer:{tip.code}", label)],
            now=ctx.now,
            lifetime=BUTTON_LIFETIME,
            address_hash=link.owner_hash,
        )
        buttons = [[[label, f"{token}{prompts.SEPARATOR}0"]]]
    await outbox.enqueue(
        ctx.session,
        [
            {
                "channel": address.split(":", 1)[0],
                "address_hash": link.owner_hash,
                "address_enc": link.reply_address_enc,
                "payload": {"text": text, "buttons": buttons},
                "created_at": ctx.now,
            }
        ],
    )
    ctx.committed.append(ctx.services.wake_broadcasts)
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
    address_hash = ctx.services.vault.keyed_hash(address)
    language = await _language(ctx, address_hash) if private else "vi"
    t = ctx.services.translate
    token = await prompts.create(
        ctx.session,
        [(f"case:view:{tip.code}", t(language, "case.view"))],
        now=ctx.now,
        lifetime=BUTTON_LIFETIME,
        address_hash=address_hash if private else None,
    )
    await outbox.enqueue(
        ctx.session,
        [
            {
                "channel": address.split(":", 1)[0],
                "address_hash": address_hash,
                "address_enc": ctx.services.vault.encrypt(address),
                "payload": {
                    "text": t(language, key, code=tip.code, text=text),
                    "buttons": [[[t(language, "case.view"), f"{token}{prompts.SEPARATOR}0"]]],
                },
                "is_group": not private,
                "created_at": ctx.now,
            }
        ],
    )
    ctx.committed.append(ctx.services.wake_broadcasts)


async def offer_to_open(ctx: Context, tip: Tip, address: str | None) -> bool:
    """A notice's View pressed in a group: the tip, one tap away, in the presser's private
    chat (its button only theirs). False when the bot cannot write to them there."""
    if address is None:
        return False
    address_hash = ctx.services.vault.keyed_hash(address)
    language = await _language(ctx, address_hash)
    label = ctx.services.translate(language, "case.view")
    token = await prompts.create(
        ctx.session,
        [(f"case:open:{tip.code}", label)],
        now=ctx.now,
        lifetime=BUTTON_LIFETIME,
        address_hash=address_hash,
    )
    await outbox.enqueue(
        ctx.session,
        [
            {
                "channel": address.split(":", 1)[0],
                "address_hash": address_hash,
                "address_enc": ctx.services.vault.encrypt(address),
                "payload": {
                    "text": notice_text(ctx, language, tip),
                    "buttons": [[[label, f"{token}{prompts.SEPARATOR}0"]]],
                },
                "created_at": ctx.now,
            }
        ],
    )
    ctx.committed.append(ctx.services.wake_broadcasts)
    return True
