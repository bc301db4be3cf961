"""`tipline admin ...`: invite staff, list them, revoke them, from the command line."""

from __future__ import annotations

from datetime import timedelta

from bot.app import load_areas
from bot.areas_cli import database
from bot.config import Settings
from bot.secret import load_secret
from handlers.staff import LABEL_MAX, invite_hash, new_invite_code
from storage.area_catalog import AreaCatalog
from storage.crypto import Vault
from storage.models import utcnow
from storage.repositories import audit
from storage.repositories import staff as staff_repo

ACTOR = "cli"


async def invite(
    settings: Settings, role: str, area_codes: list[str], hours: int, label: str
) -> int:
    """Print a one-time invite code (and link); exit code 1 for an unknown area."""
    async with database(settings) as sessions:
        catalog = await load_areas(sessions, settings.provinces)
        unknown = [code for code in area_codes if catalog.get(code) is None]
        if unknown:
            print(f"unknown area code(s): {', '.join(unknown)} (see `tipline areas search`)")
            return 1
        code = new_invite_code()
        now = utcnow()
        name = label[:LABEL_MAX] or role
        async with sessions() as session, session.begin():
            created = await staff_repo.create_invite(
                session,
                code_hash=invite_hash(Vault(load_secret(settings)), code),
                role=role,
                areas=area_codes,
                label=name,
                created_by=ACTOR,
                now=now,
                expires_at=now + timedelta(hours=hours),
            )
            await audit.record(
                session,
                actor=ACTOR,
                action="invite.created",
                target=f"invite:{created.id}",
                detail={"role": role, "areas": area_codes, "label": name},
                at=now,
            )
    print(f"{role} invite for {name!r}, valid once for {hours} hours: {code}")
    print(f"the invitee sends the bot, in a private chat: /join {code}")
    if settings.telegram_bot_username:
        payload = code.replace("-", "")
        print(f"or opens https://t.me/{settings.telegram_bot_username}?start=join_{payload}")
    if area_codes:
        print(f"jurisdiction: {_areas(catalog, area_codes)}")
    return 0


def _areas(catalog: AreaCatalog, codes: list[str]) -> str:
    return "; ".join(catalog.label(area) for code in codes if (area := catalog.get(code)))


async def list_staff(settings: Settings) -> int:
    """Print the active staff."""
    async with database(settings) as sessions:
        catalog = await load_areas(sessions, settings.provinces)
        async with sessions() as session:
            members = await staff_repo.list_members(session)
        for member in members:
            where = _areas(catalog, list(member.areas)) or "all areas"
            since = member.created_at.strftime("%Y-%m-%d")
            print(f"{member.id}\t{member.role}\t{member.label}\tsince {since}\t{where}")
        if not members:
            print("no staff yet (admins in TIPLINE_ADMIN_TELEGRAM_IDS are not listed)")
    return 0


async def revoke(settings: Settings, member_id: int) -> int:
    """End a staff role; exit code 1 when there is no such active member."""
    async with database(settings) as sessions, sessions() as session, session.begin():
        now = utcnow()
        member = await staff_repo.revoke(session, member_id, now)
        if member is None:
            print(f"no active staff member {member_id}")
            return 1
        await audit.record(
            session,
            actor=ACTOR,
            action="staff.revoked",
            target=f"staff:{member.id}",
            detail={"role": member.role, "label": member.label},
            at=now,
        )
    print(f"revoked {member.role} {member.label!r}")
    return 0
