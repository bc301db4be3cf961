"""The anonymous tip flow: category, place, description, files, time, contact, review, code."""

from __future__ import annotations

import secrets
from datetime import timedelta
from enum import StrEnum
from typing import Any

from handlers import area_picker, menu, notices
from handlers import cases as cases_flow
from handlers.codes import code_in, new_code
from handlers.context import MAX_ATTACHMENTS, Context
from handlers.flow import FlowSpec
from handlers.menu import show_menu
from handlers.routing import Command, FlowControl, Router
from handlers.staff import access_of
from handlers.subscriptions import STOP_WORDS
from storage.files import FileStore
from storage.models import Tip
from storage.repositories import cases, tips

NAME = "tip"
PLACE_MIN, PLACE_MAX = 2, 500
DESCRIPTION_MIN, DESCRIPTION_MAX = 10, 4000
CONTACT_MIN, CONTACT_MAX = 3, 200
OCCURRED = ("now", "today", "earlier", "unknown")


class Step(StrEnum):
    """Steps of the tip flow, in order."""

    CATEGORY = "category"
    AREA = "area"
    PLACE = "place"
    DESCRIPTION = "description"
    ATTACHMENTS = "attachments"
    WHEN = "when"
    CONTACT = "contact"
    CONTACT_DETAILS = "contact_details"
    REVIEW = "review"


_NEXT = {
    Step.CATEGORY: Step.AREA,
    Step.AREA: Step.PLACE,
    Step.PLACE: Step.DESCRIPTION,
    Step.DESCRIPTION: Step.ATTACHMENTS,
    Step.ATTACHMENTS: Step.WHEN,
    Step.WHEN: Step.CONTACT,
    Step.CONTACT: Step.REVIEW,
    Step.CONTACT_DETAILS: Step.REVIEW,
}
_EDITABLE = (
    Step.CATEGORY,
    Step.AREA,
    Step.PLACE,
    Step.DESCRIPTION,
    Step.ATTACHMENTS,
    Step.WHEN,
    Step.CONTACT,
)


def category_label(ctx: Context, category: str) -> str:
    """A category's name in the chat's language (a custom one shows as configured)."""
    key = f"category.{category}"
    return ctx.t(key) if ctx.services.translate.has(key) else category


def _step(ctx: Context) -> Step:
    return Step(ctx.chat.step or Step.CATEGORY)


async def _over_rate_limit(ctx: Context) -> bool:
    """Refuse (and say when to retry) once this chat has sent its hourly quota of tips."""
    since = ctx.now - timedelta(hours=1)
    sent = await tips.count_since(ctx.session, ctx.owner_hash, since)
    if sent < ctx.limits.tips_per_hour:
        return False
    oldest = await tips.oldest_since(ctx.session, ctx.owner_hash, since) or ctx.now
    minutes = max(1, int((oldest + timedelta(hours=1) - ctx.now).total_seconds() // 60) + 1)
    ctx.say(ctx.t("tip.rate_limited", count=sent, minutes=minutes))
    return True


async def _refused(ctx: Context) -> bool:
    """A tipster the officers blocked is told so, politely, before writing anything."""
    if not await cases.is_blocked(ctx.session, ctx.owner_hash):
        return False
    ctx.end_flow()
    show_menu(ctx, intro=ctx.t("tip.blocked"))
    return True


async def start(ctx: Context) -> None:
    """Begin a new tip."""
    if await _refused(ctx):
        return
    if await _over_rate_limit(ctx):
        show_menu(ctx)
        return
    ctx.chat.data = {"attachments": []}
    area_picker.reset(ctx)
    ctx.go(NAME, Step.CATEGORY)
    ctx.say(ctx.t("tip.intro"))
    await prompt(ctx)


def _with_cancel(ctx: Context, rows: list[list[tuple[str, str]]]) -> list[list[tuple[str, str]]]:
    """The step's buttons, then Cancel; while editing from the review, Back to review instead."""
    if ctx.draft.get("editing") and _step(ctx) is not Step.REVIEW:
        return [*rows, [(ctx.t("review.back"), "tip:review")]]
    return [*rows, [(ctx.t("button.cancel"), "tip:cancel")]]


async def prompt(ctx: Context) -> None:
    """Ask for the current step's input."""
    step = _step(ctx)
    draft = ctx.draft
    if step is Step.CATEGORY:
        cats = ctx.limits.categories
        rows = [
            [(category_label(ctx, c), f"cat:{c}") for c in cats[i : i + 2]]
            for i in range(0, len(cats), 2)
        ]
        ctx.ask(ctx.t("tip.ask_category"), _with_cancel(ctx, rows))
    elif step is Step.AREA:
        await area_picker.ask(ctx, ctx.t("tip.ask_area"), _with_cancel(ctx, []))
    elif step is Step.PLACE:
        rows = [[(ctx.t("button.skip"), "place:skip")]]
        ctx.ask(ctx.t("tip.ask_place", max=PLACE_MAX), _with_cancel(ctx, rows))
    elif step is Step.DESCRIPTION:
        ctx.ask(
            ctx.t("tip.ask_description", min=DESCRIPTION_MIN, max=DESCRIPTION_MAX),
            _with_cancel(ctx, []),
        )
    elif step is Step.ATTACHMENTS:
        count = len(draft.get("attachments", []))
        if count:
            text = ctx.t("tip.attachments_count", count=count, max=MAX_ATTACHMENTS)
            rows = [
                [(ctx.t("button.done"), "att:done")],
                [(ctx.t("tip.attachments_clear"), "att:clear")],
            ]
        else:
            text = ctx.t("tip.ask_attachments", max=MAX_ATTACHMENTS)
            rows = [[(ctx.t("button.skip"), "att:done")]]
        ctx.ask(text, _with_cancel(ctx, rows))
    elif step is Step.WHEN:
        rows = [
            [(ctx.t("when.now"), "when:now"), (ctx.t("when.today"), "when:today")],
            [(ctx.t("when.earlier"), "when:earlier"), (ctx.t("when.unknown"), "when:unknown")],
        ]
        ctx.ask(ctx.t("tip.ask_when"), _with_cancel(ctx, rows))
    elif step is Step.CONTACT:
        rows = [
            [(ctx.t("contact.anonymous"), "contact:anon")],
            [(ctx.t("contact.leave"), "contact:leave")],
        ]
        ctx.ask(ctx.t("tip.ask_contact"), _with_cancel(ctx, rows))
    elif step is Step.CONTACT_DETAILS:
        rows = [[(ctx.t("contact.anonymous"), "contact:anon")]]
        ctx.ask(ctx.t("tip.ask_contact_details", max=CONTACT_MAX), _with_cancel(ctx, rows))
    else:
        _show_review(ctx)


def _show_review(ctx: Context) -> None:
    draft = ctx.draft
    location = ""
    if draft.get("latitude") is not None:
        location = ctx.t("review.location", lat=draft["latitude"], lon=draft["longitude"])
    contact = _draft_contact(ctx) or ctx.t("review.anonymous")
    area = ctx.areas.get(str(draft.get("area_code", "")))
    text = ctx.t(
        "review.summary",
        category=category_label(ctx, draft.get("category", "other")),
        area=ctx.areas.label(area) if area else "—",
        place=draft.get("place_text") or "—",
        location=location,
        description=draft.get("description", ""),
        files=len(draft.get("attachments", [])),
        when=ctx.t(f"when.{draft.get('occurred', 'unknown')}"),
        contact=contact,
    )
    updates = "review.updates_on" if draft.get("updates") else "review.updates_off"
    rows = [
        [(ctx.t("review.confirm"), "review:confirm")],
        [(ctx.t(updates), "review:updates")],
        [
            (ctx.t("review.edit_category"), "edit:category"),
            (ctx.t("review.edit_area"), "edit:area"),
            (ctx.t("review.edit_place"), "edit:place"),
        ],
        [
            (ctx.t("review.edit_description"), "edit:description"),
            (ctx.t("review.edit_attachments"), "edit:attachments"),
        ],
        [(ctx.t("review.edit_when"), "edit:when"), (ctx.t("review.edit_contact"), "edit:contact")],
    ]
    ctx.ask(text, _with_cancel(ctx, rows))


def _advance(ctx: Context, done: Step) -> None:
    """Go to the next step, or back to review when editing from there."""
    nxt = Step.REVIEW if ctx.draft.get("editing") else _NEXT[done]
    ctx.go(NAME, nxt)


async def handle(ctx: Context, action: str | None) -> None:
    """Take input at the current step; anything unexpected is explained and the step re-asked."""
    if action == "tip:review":
        ctx.go(NAME, Step.REVIEW)
        await prompt(ctx)
        return
    if action == "att:clear":
        discard(ctx.services.files, ctx.draft)
        ctx.update_draft(attachments=[])
        ctx.say(ctx.t("tip.attachments_cleared"))
        await prompt(ctx)
        return
    if action == "tip:cancel":
        discard(ctx.services.files, ctx.draft)
        ctx.end_flow()
        ctx.say(ctx.t("cancel.done"))
        show_menu(ctx)
        return
    step = _step(ctx)
    handler = _HANDLERS[step]
    if await handler(ctx, action):
        await prompt(ctx)


def _wrong_kind(ctx: Context, wants: str) -> bool:
    """Explain what this step takes, given what the event was instead; True to re-ask."""
    event = ctx.event
    if event.unsupported:
        ctx.say(ctx.t("input.unsupported", wants=ctx.t(wants)))
    elif event.attachments:
        ctx.say(ctx.t("input.file_not_expected", wants=ctx.t(wants)))
    elif event.location is not None:
        ctx.say(ctx.t("input.location_not_expected", wants=ctx.t(wants)))
    elif event.text is not None and wants == "wants.button":
        ctx.say(ctx.t("input.use_buttons"))
    else:
        ctx.say(ctx.t("input.unexpected", wants=ctx.t(wants)))
    return True


async def receive_category(ctx: Context, action: str | None) -> bool:
    """Take the category from a button, or from text matching a category's name."""
    chosen = action[4:] if action and action.startswith("cat:") else None
    text = (ctx.event.text or "").strip().casefold()
    if chosen is None and text:
        for category in ctx.limits.categories:
            if text in (category.casefold(), category_label(ctx, category).casefold()):
                chosen = category
    if chosen is None or chosen not in ctx.limits.categories:
        return _wrong_kind(ctx, "wants.button")
    ctx.update_draft(category=chosen)
    _advance(ctx, Step.CATEGORY)
    return True


async def receive_area(ctx: Context, action: str | None) -> bool:
    """Take the area from the picker; a location shared here only finds the area, unstored."""
    code = await area_picker.handle(ctx, action)
    if code is None:
        return True
    ctx.update_draft(area_code=code)
    _advance(ctx, Step.AREA)
    return True


async def receive_place(ctx: Context, action: str | None) -> bool:
    """Take optional details of the exact place, a shared location, or Skip."""
    event = ctx.event
    if action == "place:skip":
        ctx.update_draft(place_text=None, latitude=None, longitude=None)
        _advance(ctx, Step.PLACE)
        return True
    if event.location is not None:
        ctx.update_draft(
            latitude=round(event.location.latitude, 6),
            longitude=round(event.location.longitude, 6),
        )
        ctx.say(ctx.t("tip.location_received"))
        _advance(ctx, Step.PLACE)
        return True
    text = (event.text or "").strip()
    if not text or event.attachments or event.unsupported:
        return _wrong_kind(ctx, "wants.place")
    if len(text) < PLACE_MIN or len(text) > PLACE_MAX:
        ctx.say(ctx.t("tip.place_length", min=PLACE_MIN, max=PLACE_MAX, length=len(text)))
        return True
    ctx.update_draft(place_text=text)
    _advance(ctx, Step.PLACE)
    return True


async def receive_description(ctx: Context, action: str | None) -> bool:
    """Take the description, 10 to 4,000 characters; a photo's caption counts, photo and all."""
    event = ctx.event
    text = (event.text or "").strip()
    if not text or event.unsupported or event.location:
        return _wrong_kind(ctx, "wants.description")
    if event.attachments and not DESCRIPTION_MIN <= len(text) <= DESCRIPTION_MAX:
        return _wrong_kind(ctx, "wants.description")
    if len(text) < DESCRIPTION_MIN:
        ctx.say(ctx.t("tip.description_short", min=DESCRIPTION_MIN))
        return True
    if len(text) > DESCRIPTION_MAX:
        ctx.say(ctx.t("tip.description_long", max=DESCRIPTION_MAX, length=len(text)))
        return True
    ctx.update_draft(description=text)
    _advance(ctx, Step.DESCRIPTION)
    if event.attachments:
        await receive_attachments(ctx, None)
    return True


async def receive_attachments(ctx: Context, action: str | None) -> bool:
    """Collect up to ten files; Done or Skip moves on."""
    if action == "att:done":
        _advance(ctx, Step.ATTACHMENTS)
        return True
    event = ctx.event
    if not event.attachments:
        return _wrong_kind(ctx, "wants.files")
    saved: list[dict[str, Any]] = list(ctx.draft.get("attachments", []))
    for index, attachment in enumerate(event.attachments):
        if len(saved) >= MAX_ATTACHMENTS:
            ctx.say(ctx.t("tip.attachments_full", max=MAX_ATTACHMENTS))
            break
        if attachment.size and attachment.size > ctx.limits.max_attachment_bytes:
            mb = ctx.limits.max_attachment_bytes // (1024 * 1024)
            ctx.say(ctx.t("tip.attachment_too_big", max_mb=mb))
            continue
        ref = ctx.keep_stored_file(index)
        if ref is None and not attachment.is_image:
            ref = attachment.platform_ref  # not an image: nothing to strip, keep the reference
        if not ref:
            ctx.say(ctx.t("tip.attachment_failed"))
            continue
        saved.append(
            {
                "kind": str(attachment.kind),
                "ref": ref,
                "mime": attachment.mime_type,
                "size": attachment.size,
            }
        )
    ctx.update_draft(attachments=saved)
    return True


async def receive_when(ctx: Context, action: str | None) -> bool:
    """Take when it happened from the buttons."""
    chosen = action[5:] if action and action.startswith("when:") else None
    if chosen not in OCCURRED:
        return _wrong_kind(ctx, "wants.button")
    ctx.update_draft(occurred=chosen)
    _advance(ctx, Step.WHEN)
    return True


async def receive_contact_choice(ctx: Context, action: str | None) -> bool:
    """Stay anonymous (the default) or choose to leave contact details."""
    if action == "contact:anon":
        ctx.update_draft(contact=None)
        _advance(ctx, Step.CONTACT)
        return True
    if action == "contact:leave":
        ctx.go(NAME, Step.CONTACT_DETAILS)
        return True
    return _wrong_kind(ctx, "wants.button")


async def receive_contact_details(ctx: Context, action: str | None) -> bool:
    """Take the contact details the tipster chose to leave."""
    if action == "contact:anon":
        ctx.update_draft(contact=None)
        _advance(ctx, Step.CONTACT_DETAILS)
        return True
    text = (ctx.event.text or "").strip()
    if not text or ctx.event.attachments or ctx.event.unsupported or ctx.event.location:
        return _wrong_kind(ctx, "wants.contact")
    if len(text) < CONTACT_MIN or len(text) > CONTACT_MAX:
        ctx.say(ctx.t("tip.contact_length", min=CONTACT_MIN, max=CONTACT_MAX, length=len(text)))
        return True
    # Even in the draft, contact details are kept only encrypted.
    ctx.update_draft(contact=ctx.services.vault.encrypt(text))
    _advance(ctx, Step.CONTACT_DETAILS)
    return True


async def receive_review(ctx: Context, action: str | None) -> bool:
    """Confirm and send, or go back to edit one part."""
    if action == "review:confirm":
        await submit(ctx)
        return False
    if action == "review:updates":
        ctx.update_draft(updates=not ctx.draft.get("updates"))
        return True
    if action and action.startswith("edit:") and action[5:] in {s.value for s in _EDITABLE}:
        ctx.update_draft(editing=True)
        ctx.go(NAME, Step(action[5:]))
        if ctx.chat.step == Step.AREA:
            area_picker.reset(ctx)
        return True
    return _wrong_kind(ctx, "wants.button")


def _draft_contact(ctx: Context) -> str | None:
    """The contact details in the draft, decrypted, or None."""
    token = ctx.draft.get("contact")
    return ctx.services.vault.decrypt(str(token)) if token else None


async def submit(ctx: Context) -> None:
    """Save the tip and give the tipster its code and PIN."""
    if await _refused(ctx):
        return
    if await _over_rate_limit(ctx):
        _show_review(ctx)
        return
    draft = ctx.draft
    vault = ctx.services.vault
    code = new_code()
    while await tips.code_exists(ctx.session, code):
        code = new_code()
    pin = f"{secrets.randbelow(1_000_000):06d}"
    contact = _draft_contact(ctx)
    tip = Tip(
        code=code,
        pin_hash=vault.keyed_hash(f"pin:{code}:{pin}"),
        channel=ctx.event.channel,
        category=draft.get("category", "other"),
        area_code=draft.get("area_code"),
        place_text=draft.get("place_text"),
        latitude=draft.get("latitude"),
        longitude=draft.get("longitude"),
        description=draft["description"],
        occurred=draft.get("occurred", "unknown"),
        contact_enc=vault.encrypt(contact) if contact else None,
        status="new",
        created_at=ctx.now,
        updated_at=ctx.now,
    )
    attachments = [
        tips.NewAttachment(kind=a["kind"], file_ref=a["ref"], mime_type=a["mime"], size=a["size"])
        for a in draft.get("attachments", [])
    ]
    await tips.create_tip(
        ctx.session,
        tip=tip,
        attachments=attachments,
        owner_hash=ctx.owner_hash,
        reply_address_enc=vault.encrypt(ctx.reply_address),
        updates=bool(draft.get("updates")),
    )
    await notices.new_tip(ctx, tip)
    ctx.end_flow()
    ctx.say(ctx.t("tip.sent", code=code, pin=pin))
    area = ctx.areas.get(tip.area_code or "")
    if area is not None:
        ctx.ask(
            ctx.t("tip.offer_alerts", area=ctx.areas.label(area)),
            [
                [(ctx.t("tip.offer_alerts_yes"), f"suboffer:{area.code}")],
                [(ctx.t("tip.offer_alerts_no"), "menu:show")],
            ],
        )
    else:
        show_menu(ctx)


async def begin(ctx: Context, core: FlowControl) -> None:
    """/tip: a new tip; from staff, /tip CODE opens that tip in the workspace."""
    code = code_in(ctx.event.argument) if ctx.event.argument else None
    if code is not None and await access_of(ctx) is not None:
        await cases_flow.open_code(ctx, core, code)
        return
    await menu.opens(NAME)(ctx, core)


def discard(files: FileStore, draft: dict[str, Any]) -> None:
    """Delete files a dropped draft had stored."""
    for attachment in draft.get("attachments", []):
        files.delete(str(attachment.get("ref", "")))


_HANDLERS = {
    Step.CATEGORY: receive_category,
    Step.AREA: receive_area,
    Step.PLACE: receive_place,
    Step.DESCRIPTION: receive_description,
    Step.ATTACHMENTS: receive_attachments,
    Step.WHEN: receive_when,
    Step.CONTACT: receive_contact_choice,
    Step.CONTACT_DETAILS: receive_contact_details,
    Step.REVIEW: receive_review,
}

FLOW = FlowSpec(name=NAME, start=start, prompt=prompt, handle=handle, discard=discard)

# Mid-tip (and in an admin's alert or bulletin draft) the STOP words mean this draft, not
# every subscription: this router precedes theirs.
ROUTER = Router(
    NAME,
    flows=(FLOW,),
    commands=(Command("tip", begin),),
    words=STOP_WORDS,
    words_in_flows=(NAME, "alert", "bulletin"),
    on_word=menu.cancel,
)
