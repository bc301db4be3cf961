"""/bulletins: an admin lists scheduled bulletins and pauses, resumes or cancels them."""

from __future__ import annotations

from sqlalchemy import select

from bot.app import Core
from storage.models import AuditEntry, Bulletin, utcnow
from storage.repositories import bulletins
from tests.test_staff import admin_chat, visitor


async def make_bulletin(core: Core, text: str = "Cảnh giác lừa đảo qua điện thoại") -> int:
    """A weekly bulletin as `tipline bulletin create` stores it; its id."""
    async with core.dispatcher.services.sessions() as session, session.begin():
        bulletin = await bulletins.create_bulletin(
            session,
            text=text,
            target="W26734",
            areas=["W26734"],
            topic="scams",
            schedule={"every": "weekly", "days": ["mon"], "time": "08:00"},
            timezone="Asia/Ho_Chi_Minh",
            created_by="cli",
            creator_address_enc=None,
            now=utcnow(),
        )
        return bulletin.id


async def status_of(core: Core, bulletin_id: int) -> str:
    """A bulletin's status now."""
    async with core.dispatcher.services.sessions() as session:
        bulletin = await session.get(Bulletin, bulletin_id)
        assert bulletin is not None
        return bulletin.status


async def test_admin_pauses_resumes_and_cancels(core: Core) -> None:
    changed: list[int] = []
    core.dispatcher.services.bulletin_changed = changed.append
    bulletin_id = await make_bulletin(core)
    admin = await admin_chat(core)
    await admin.text("/bulletins")
    assert f"#{bulletin_id}" in admin.all_text and "lừa đảo" in admin.all_text
    await admin.press(f"Dừng #{bulletin_id}")
    assert await status_of(core, bulletin_id) == "paused"
    assert "tạm dừng" in admin.all_text
    await admin.press(f"Tiếp tục #{bulletin_id}")
    assert await status_of(core, bulletin_id) == "active"
    await admin.press(f"Hủy #{bulletin_id}")
    assert await status_of(core, bulletin_id) == "cancelled"
    assert changed == [bulletin_id] * 3, "the scheduler heard of each change, after commit"
    assert "Chưa có bản tin" in admin.all_text, "a cancelled bulletin leaves the list"
    async with core.dispatcher.services.sessions() as session:
        actions = [e.action for e in await session.scalars(select(AuditEntry))]
    assert actions[-3:] == ["bulletin.paused", "bulletin.active", "bulletin.cancelled"]


async def test_bulletins_are_no_command_for_citizens(core: Core) -> None:
    await make_bulletin(core)
    citizen = visitor(core, "curious")
    await citizen.text("/no-such-command")
    unknown = citizen.all_text
    await citizen.text("/bulletins")
    assert citizen.all_text == unknown
