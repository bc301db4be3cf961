"""Staff roles in the chat: /join with an invite code, /staff and revoking (/invite is
handlers.invite_flow).

Every staff command and button asks `role_of` when it runs, so a role revoked a moment ago is
already gone; a citizen gets exactly the answer an unknown command gets.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from handlers.codes import CODE_ALPHABET
from handlers.context import Context
from handlers.routing import Command, FlowControl, Router, unknown_command
from storage.crypto import Vault
from storage.models import StaffMember
from storage.repositories import audit
from storage.repositories import staff as staff_repo

CODE_LENGTH = 10
INVITE_HOURS = 24
LABEL_MAX = 64
BOOTSTRAP = "bootstrap"  # an admin listed in TIPLINE_ADMIN_TELEGRAM_IDS


def new_invite_code() -> str:
    """A code like 7KQ2M-9XH4P: 50 bits, easy to read aloud and type."""
    chars = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    return f"{chars[:5]}-{chars[5:]}"


def normalize_invite_code(text: str) -> str:
    """Read a typed code leniently: case, spaces and dashes do not matter."""
    chars = "".join(ch for ch in text.upper() if ch.isalnum())
    return f"{chars[:5]}-{chars[5:]}" if len(chars) == CODE_LENGTH else chars


def invite_hash(vault: Vault, code: str) -> str:
    """The keyed hash an invite is stored and found by (the code itself is never stored)."""
    return vault.keyed_hash(f"invite:{normalize_invite_code(code)}")


def _identity(ctx: Context) -> str:
    """The keyed hash staff are known by: their private chat's, also when they write in a group."""
    if ctx.event.actor is None:
        return ctx.owner_hash
    return ctx.services.vault.keyed_hash(f"{ctx.event.channel}:{ctx.event.actor}")


async def role_of(ctx: Context) -> tuple[str | None, str]:
    """Who wrote's role now (admin, officer or None) and how the audit log names them."""
    identity = _identity(ctx)
    if ctx.event.is_admin:
        return staff_repo.ADMIN, f"{BOOTSTRAP}:{identity[:12]}"
    member = await staff_repo.member_for(ctx.session, identity)
    if member is None:
        return None, ""
    return member.role, f"staff:{member.id}"


@dataclass(frozen=True)
class Access:
    """What a staff member may see now: every area (`areas` None) or their jurisdiction."""

    role: str
    actor: str
    areas: frozenset[str] | None

    @property
    def is_admin(self) -> bool:
        """Admins see and do everything."""
        return self.role == staff_repo.ADMIN

    def covers(self, area_code: str | None) -> bool:
        """Whether a tip in this area is theirs to see (a tip with no area: all-area staff)."""
        return self.areas is None or (area_code is not None and area_code in self.areas)


async def access_of(ctx: Context) -> Access | None:
    """The writer's access at this moment, or None for a citizen (or a role just revoked)."""
    identity = _identity(ctx)
    if ctx.event.is_admin:
        return Access(staff_repo.ADMIN, f"{BOOTSTRAP}:{identity[:12]}", None)
    member = await staff_repo.member_for(ctx.session, identity)
    if member is None:
        return None
    if member.role == staff_repo.ADMIN or not member.areas:
        return Access(member.role, f"staff:{member.id}", None)
    return Access(member.role, f"staff:{member.id}", jurisdiction(ctx, member.areas))


def jurisdiction(ctx: Context, codes: Sequence[str]) -> frozenset[str]:
    """Areas and everything inside them (a ward includes its neighbourhoods)."""
    found: set[str] = set()
    stack = list(codes)
    while stack:
        code = stack.pop()
        if code not in found:
            found.add(code)
            stack.extend(child.code for child in ctx.areas.children(code))
    return frozenset(found)


async def is_admin(ctx: Context) -> bool:
    """Whether this chat is an admin at this moment."""
    role, _ = await role_of(ctx)
    return role == staff_repo.ADMIN


async def refuse_button(ctx: Context, core: FlowControl) -> None:
    """A staff button pressed by someone no longer staff: as dead as any old button."""
    ctx.notice(ctx.t("button.stale"))
    ctx.say(ctx.t("button.stale_long"))
    await core.reprompt(ctx)


# /join CODE (or the invite link, which the channel turns into /join CODE)


async def join(ctx: Context, core: FlowControl) -> None:
    """Redeem an invite code: this chat becomes staff with the invite's role."""
    code = ctx.event.argument
    if not code:
        ctx.say(ctx.t("staff.join_usage"))
        await core.reprompt(ctx)
        return
    failures = ctx.services.join_failures
    key = f"join:{ctx.owner_hash}"
    if failures.blocked(key):
        ctx.say(ctx.t("staff.join_limited"))
        await core.reprompt(ctx)
        return
    invite = await staff_repo.redeem_invite(
        ctx.session, invite_hash(ctx.services.vault, code), ctx.now
    )
    if invite is None:
        failures.record(key)
        ctx.say(ctx.t("staff.join_invalid", hours=INVITE_HOURS))
        await core.reprompt(ctx)
        return
    member = await staff_repo.add_member(
        ctx.session,
        invite=invite,
        address_hash=ctx.owner_hash,
        address_enc=ctx.services.vault.encrypt(ctx.reply_address),
        channel=ctx.event.channel,
        now=ctx.now,
    )
    await audit.record(
        ctx.session,
        actor=f"staff:{member.id}",
        action="invite.redeemed",
        target=f"invite:{invite.id}",
        detail={"role": member.role},
        at=ctx.now,
    )
    ctx.say(ctx.t(f"staff.joined_{member.role}", label=member.label))
    await core.reprompt(ctx)


# /invite [name]


async def make_invite(
    ctx: Context, actor: str, role: str, areas: Sequence[str], label: str
) -> None:
    """Store a one-time invite code for a role (an officer's with their areas) and show it."""
    code = new_invite_code()
    expires_at = ctx.now + timedelta(hours=INVITE_HOURS)
    created = await staff_repo.create_invite(
        ctx.session,
        code_hash=invite_hash(ctx.services.vault, code),
        role=role,
        areas=areas,
        label=label,
        created_by=actor,
        now=ctx.now,
        expires_at=expires_at,
    )
    await audit.record(
        ctx.session,
        actor=actor,
        action="invite.created",
        target=f"invite:{created.id}",
        detail={"role": role, "label": label, "areas": list(areas)},
        at=ctx.now,
    )
    link = ctx.services.invite_link(ctx.event.channel, code)
    where = ", ".join(_area_label(ctx, a) for a in areas) or ctx.t("staff.all_areas")
    text = ctx.t(
        f"staff.invite_created_{role}", code=code, label=label, hours=INVITE_HOURS, areas=where
    )
    ctx.say(f"{text}\n{ctx.t('staff.invite_link', link=link)}" if link else text)


def _area_label(ctx: Context, code: str) -> str:
    area = ctx.areas.get(code)
    return ctx.areas.label(area) if area else code


# /staff, and revoking with a confirmation


def _member_line(ctx: Context, member: StaffMember) -> str:
    line = ctx.t(
        "staff.line",
        label=member.label,
        role=ctx.t(f"role.{member.role}"),
        since=member.created_at.strftime("%d/%m/%Y"),
    )
    if member.role != staff_repo.OFFICER:
        return line
    areas = ", ".join(_area_label(ctx, code) for code in member.areas) or ctx.t("staff.all_areas")
    return f"{line} ({areas})"


async def list_staff(ctx: Context, core: FlowControl) -> None:
    """/staff: who is staff, each with a button to revoke them (admins only)."""
    if not await is_admin(ctx):
        await unknown_command(ctx, core)
        return
    members = await staff_repo.list_members(ctx.session)
    lines = [_member_line(ctx, member) for member in members]
    text = ctx.t("staff.list", lines="\n".join(lines)) if lines else ctx.t("staff.none")
    rows = [
        [(ctx.t("staff.revoke_button", label=member.label), f"staff:ask:{member.id}")]
        for member in members
    ]
    ctx.ask(f"{text}\n\n{ctx.t('staff.bootstrap_note')}", [*rows, [_back(ctx)]])


def _back(ctx: Context) -> tuple[str, str]:
    return (ctx.t("button.back_to_menu"), "staff:back")


async def press(ctx: Context, action: str, core: FlowControl) -> None:
    """The /staff buttons, each authorised again when pressed."""
    _, verb, value = [*action.split(":", 2), "", ""][:3]
    role, actor = await role_of(ctx)
    if role != staff_repo.ADMIN:
        await refuse_button(ctx, core)
        return
    if verb == "ask" and value.isdigit():
        member = await ctx.session.get(StaffMember, int(value))
        if member is not None and member.revoked_at is None:
            ctx.ask(
                ctx.t("staff.revoke_confirm", label=member.label),
                [
                    [(ctx.t("staff.revoke_yes"), f"staff:revoke:{member.id}")],
                    [(ctx.t("staff.revoke_no"), "staff:list")],
                ],
            )
            return
        ctx.say(ctx.t("staff.already_revoked"))
    elif verb == "revoke" and value.isdigit():
        member = await staff_repo.revoke(ctx.session, int(value), ctx.now)
        if member is None:
            ctx.say(ctx.t("staff.already_revoked"))
        else:
            await audit.record(
                ctx.session,
                actor=actor,
                action="staff.revoked",
                target=f"staff:{member.id}",
                detail={"role": member.role, "label": member.label},
                at=ctx.now,
            )
            ctx.say(ctx.t("staff.revoked", label=member.label))
    elif verb == "back":
        await core.reprompt(ctx)
        return
    await list_staff(ctx, core)


ROUTER = Router(
    "staff",
    commands=(
        Command("join", join, listed=False),
        Command("staff", list_staff, listed=False),
    ),
    prefixes=("staff:",),
    on_button=press,
)
