"""Staff roles: invites, /join, /invite, /staff and revoking, as citizens and as admins."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.app import Core
from handlers.staff import invite_hash, new_invite_code
from storage.models import AuditEntry, Invite, StaffMember, utcnow
from storage.repositories import staff as staff_repo
from tests.flowchat import FlowChat

INVITE_RE = re.compile(r"\b[2-9A-HJKMNP-Z]{5}-[2-9A-HJKMNP-Z]{5}\b")


def visitor(core: Core, name: str) -> FlowChat:
    """A web-chat visitor with its own cookie."""
    return FlowChat(core.dispatcher, address=f"{name}-cookie-0123456789abcdefghijklmnopqrst")


async def make_invite(
    core: Core,
    *,
    role: str = "admin",
    hours: float = 24,
    label: str = "Lan",
    areas: tuple[str, ...] = (),
) -> str:
    """An invite made as `tipline admin invite` makes it; the code."""
    services = core.dispatcher.services
    code = new_invite_code()
    now = utcnow()
    async with services.sessions() as session, session.begin():
        await staff_repo.create_invite(
            session,
            code_hash=invite_hash(services.vault, code),
            role=role,
            areas=list(areas),
            label=label,
            created_by="cli",
            now=now,
            expires_at=now + timedelta(hours=hours),
        )
    return code


async def count(core: Core, model: type[object]) -> int:
    """Rows of a table."""
    async with core.dispatcher.services.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def admin_chat(core: Core, name: str = "admin") -> FlowChat:
    """A visitor who has redeemed an admin invite."""
    chat = visitor(core, name)
    await chat.text(f"/join {await make_invite(core, label=name)}")
    assert "quản trị viên" in chat.all_text
    return chat


async def test_staff_commands_look_unknown_to_citizens(core: Core) -> None:
    citizen = visitor(core, "citizen")
    await citizen.text("/no-such-command")
    unknown = citizen.all_text
    for command in ("/invite", "/invite Lan", "/staff", "/areas"):
        await citizen.text(command)
        assert citizen.all_text == unknown, command
    assert await count(core, Invite) == 0


async def test_join_once_and_the_audit_log(core: Core) -> None:
    code = await make_invite(core, label="Officer Lan")
    first, second = visitor(core, "first"), visitor(core, "second")
    await first.text(f"/join {code.lower().replace('-', ' ')}")  # typed loosely
    assert "Officer Lan" in first.all_text and "quản trị viên" in first.all_text
    await second.text(f"/join {code}")
    assert "không dùng được" in second.all_text, "a used code works no more"
    async with core.dispatcher.services.sessions() as session:
        [member] = (await session.scalars(select(StaffMember))).all()
        actions = [e.action for e in (await session.scalars(select(AuditEntry))).all()]
    assert member.role == "admin" and member.label == "Officer Lan"
    assert actions == ["invite.redeemed"]
    await first.text("/staff")
    assert "Officer Lan" in first.all_text
    await second.text("/staff")
    assert "Tôi không biết lệnh này" in second.all_text


async def test_expired_unknown_and_guessed_codes(core: Core) -> None:
    expired = await make_invite(core, hours=-1)
    chat = visitor(core, "late")
    await chat.text(f"/join {expired}")
    assert "hết hạn" in chat.all_text
    await chat.text("/join")
    assert "/join 7KQ2M-9XH4P" in chat.all_text, "the bare command says how"
    for _ in range(4):
        await chat.text("/join AAAAA-BBBBB")
    valid = await make_invite(core)
    await chat.text(f"/join {valid}")
    assert "sai mã quá nhiều lần" in chat.all_text, "after five wrong codes, even a good one waits"
    assert await count(core, StaffMember) == 0


async def test_admin_invites_lists_and_revokes(core: Core) -> None:
    admin = await admin_chat(core, "chief")
    await admin.text("/invite Deputy Hoa")
    await admin.press("quản trị viên")
    [code] = set(INVITE_RE.findall(admin.all_text))
    assert "Deputy Hoa" in admin.all_text and "24" in admin.all_text
    deputy = visitor(core, "deputy")
    await deputy.text(f"/join {code}")
    assert "Deputy Hoa" in deputy.all_text
    await admin.text("/staff")
    assert "Deputy Hoa — quản trị viên" in admin.all_text
    await admin.press("Thu hồi quyền: Deputy Hoa")
    assert "Thu hồi quyền của Deputy Hoa?" in admin.all_text
    await admin.press("Không, quay lại")
    assert "Deputy Hoa — quản trị viên" in admin.all_text, "no: nothing revoked"
    await admin.press("Thu hồi quyền: Deputy Hoa")
    await admin.press("🚫 Thu hồi")
    assert "Đã thu hồi quyền của Deputy Hoa" in admin.all_text
    await deputy.text("/invite")
    assert "Tôi không biết lệnh này" in deputy.all_text, "revoked at once"
    async with core.dispatcher.services.sessions() as session:
        actions = [e.action for e in (await session.scalars(select(AuditEntry))).all()]
    assert actions == [
        "invite.redeemed",
        "invite.created",
        "invite.redeemed",
        "staff.revoked",
    ]


async def test_buttons_of_a_revoked_admin_change_nothing(core: Core) -> None:
    chief = await admin_chat(core, "chief")
    other = await admin_chat(core, "other")
    await other.text("/staff")
    await chief.text("/staff")
    await chief.press("Thu hồi quyền: other")
    await chief.press("🚫 Thu hồi")
    await other.press("Thu hồi quyền: chief")  # shown before the role was revoked
    assert other.last.button_notice is not None
    assert "Tôi không biết lệnh này" not in other.all_text
    async with core.dispatcher.services.sessions() as session:
        active = await staff_repo.list_members(session)
    assert [member.label for member in active] == ["chief"]


async def test_forged_staff_button_is_refused(core: Core) -> None:
    citizen = visitor(core, "forger")
    await citizen.text("/start")
    await citizen.press_token("zzzzzz.0")
    assert citizen.last.button_notice is not None
    assert await count(core, StaffMember) == 0


async def test_subscriber_counts_are_read_off_the_write_lock(core: Core, tmp_path: Path) -> None:
    services = core.dispatcher.services
    if core.settings.resolved_database_url.startswith("postgresql"):
        pytest.skip("SQLite's one write lock is what this guards")
    admin = await admin_chat(core)
    reads = services.reads
    lock_free: list[bool] = []

    @asynccontextmanager
    async def checking_reads() -> AsyncIterator[AsyncSession]:
        other = sqlite3.connect(tmp_path / "tipline.sqlite3", timeout=0)
        try:
            other.execute("BEGIN IMMEDIATE")
            other.rollback()
            lock_free.append(True)
        except sqlite3.OperationalError:
            lock_free.append(False)
        finally:
            other.close()
        async with reads() as session:
            yield session

    services.reads = checking_reads  # type: ignore[assignment]
    await admin.text("/areas")
    assert lock_free == [True], "the event's transaction had committed before the count"
    assert "Chưa có ai đăng ký nhận cảnh báo" in admin.all_text
