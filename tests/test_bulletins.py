"""/bulletins: an admin lists scheduled bulletins and pauses, resumes or cancels them."""

from __future__ import annotations

import os
import re
from pathlib import Path

from sqlalchemy import select

from bot.app import Core, schedule_problem
from handlers.bulletin_flow import parse_when
from storage.models import AuditEntry, Bulletin, Chat, Subscription, utcnow
from storage.repositories import bulletins, outbox
from tests.test_basics import run_cli
from tests.test_staff import admin_chat, visitor


async def make_bulletin(core: Core, text: str = "Cảnh giác lừa đảo qua điện thoại") -> int:
    """A weekly bulletin as `tipline bulletin create` stores it; its id."""
    async with core.dispatcher.services.sessions() as session, session.begin():
        bulletin = await bulletins.create_bulletin(
            session,
            text=text,
            target="W26743",
            areas=["W26743"],
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


def test_bulletin_command_line(tmp_path: Path) -> None:
    env = {**os.environ, "TIPLINE_DATA_DIR": str(tmp_path), "TIPLINE_SECRET_KEY": "k" * 40}
    made = run_cli(
        tmp_path, env, "bulletin", "create", "Cảnh giác lừa đảo", "--area", "W26743",
        "--topic", "scams", "--every", "weekly", "--days", "mon,thu", "--time", "19:30",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert "weekly on mon,thu at 19:30 (Asia/Ho_Chi_Minh)" in made.stdout
    [bulletin_id] = re.findall(r"bulletin (\d+) scheduled", made.stdout)
    for bad in (
        ["--every", "weekly", "--days", "someday"],
        ["--at", "2001-01-01 08:00"],
        ["--cron", "not a cron"],
        ["--every", "daily", "--tz", "Mars/Olympus"],
    ):
        refused = run_cli(tmp_path, env, "bulletin", "create", "x" * 20, "--area", "W26743", *bad)
        assert refused.returncode == 2 and "tipline:" in refused.stdout, bad
    unknown = run_cli(
        tmp_path, env, "bulletin", "create", "x" * 20, "--area", "NOPE", "--cron", "0 8 * * *"
    )
    assert unknown.returncode == 1 and "unknown area" in unknown.stdout
    listed = run_cli(tmp_path, env, "bulletin", "list")
    assert f"{bulletin_id}\tactive" in listed.stdout and "scams" in listed.stdout
    assert run_cli(tmp_path, env, "bulletin", "pause", bulletin_id).returncode == 0
    assert f"{bulletin_id}\tpaused" in run_cli(tmp_path, env, "bulletin", "list").stdout
    assert run_cli(tmp_path, env, "bulletin", "cancel", bulletin_id).returncode == 0
    assert run_cli(tmp_path, env, "bulletin", "resume", bulletin_id).returncode == 1
    assert "no scheduled bulletins" in run_cli(tmp_path, env, "bulletin", "list").stdout


async def test_outreach_report(core: Core, tmp_path: Path) -> None:
    services = core.dispatcher.services
    now = utcnow()
    async with services.sessions() as session, session.begin():
        run = await bulletins.create_alert(
            session,
            text="Trẻ em đi lạc gần chợ",
            target="W26743",
            areas=["W26743"],
            created_by="test",
            creator_address_enc="",
            now=now,
        )
        await outbox.enqueue(
            session,
            [
                {
                    "channel": "telegram",
                    "address_hash": f"h{n}",
                    "address_enc": "x",
                    "payload": {"text": "t"},
                    "run_id": run.id,
                    "created_at": now,
                    "status": "sent" if n < 3 else "blocked",
                    "is_group": n == 2,
                }
                for n in range(4)
            ],
        )
    env = {
        **os.environ,
        "TIPLINE_DATA_DIR": str(tmp_path),
        "TIPLINE_SECRET_KEY": "test-secret-key-0123456789-abcdefghijklmnop",
        "TIPLINE_DATABASE_URL": core.settings.resolved_database_url,
    }
    day = f"{now:%Y-%m-%d}"
    shown = run_cli(tmp_path, env, "bulletin", "report", "--from", day, "--to", day, "--tz", "UTC")
    assert shown.returncode == 0, shown.stderr
    assert "alerts sent: 1, bulletins sent: 0" in shown.stdout
    assert "messages delivered: 3, not delivered: 1" in shown.stdout
    assert "Phường Bến Thành" in shown.stdout
    assert "reached (summed over runs): 2 residents' chats, 1 groups" in shown.stdout
    assert "3 messages, 2 residents, 1 groups" in shown.stdout
    table = run_cli(
        tmp_path, env, "bulletin", "report", "--from", day, "--to", day, "--tz", "UTC", "--csv"
    )
    assert table.stdout.splitlines()[0].startswith("run,time,kind,area,topic,sent,residents,groups")
    assert ",alert," in table.stdout and ",3,2,1,1" in table.stdout
    wrong = run_cli(tmp_path, env, "bulletin", "report", "--from", day, "--to", "2000-01-01")
    assert wrong.returncode == 2


async def test_admin_schedules_a_weekly_bulletin_in_the_chat(core: Core) -> None:
    services = core.dispatcher.services
    services.check_schedule = schedule_problem
    changed: list[int] = []
    services.bulletin_changed = changed.append
    admin = await admin_chat(core)
    await admin.text("/bulletin")
    await admin.text("ngắn")
    assert "10–1500" in admin.all_text, "too short: the limits are said"
    await admin.text("Cảnh giác cuộc gọi giả danh công an yêu cầu chuyển tiền.")
    await admin.text("ben thanh")
    await admin.press("Lừa đảo")
    await admin.press("Hằng tuần")
    await admin.text("thứ hai lúc bảy giờ")
    assert "Không đọc được" in admin.all_text
    await admin.text("T2,T5 19h30")
    assert "📢 BẢN TIN — Phường Bến Thành · Hồ Chí Minh" in admin.all_text
    assert "Hằng tuần — T2,T5 19h30" in admin.all_text
    await admin.press("Lưu bản tin")
    async with services.sessions() as session:
        [stored] = await bulletins.list_bulletins(session)
    assert stored.schedule == {"every": "weekly", "days": ["mon", "thu"], "time": "19:30"}
    assert stored.topic == "scams" and "W26743" in stored.areas
    assert changed == [stored.id], "the scheduler hears of it after commit"


def test_typed_times_read_the_way_people_write_them() -> None:
    now = utcnow()
    assert parse_when("daily", "7.05", now) == {"every": "daily", "time": "07:05"}
    assert parse_when("monthly", "31 08:00", now) == {
        "every": "monthly",
        "day": 31,
        "time": "08:00",
    }
    assert parse_when("weekly", "mon, cn 6h00", now) == {
        "every": "weekly",
        "days": ["mon", "sun"],
        "time": "06:00",
    }
    once = parse_when("once", f"01/01/{now.year + 1} 08:00", now)
    assert once is not None and once["at"].startswith(f"{now.year + 1}-01-01T08:00:00+07:00")
    assert parse_when("cron", " 30 7  * * 1-5 ", now) == {"cron": "30 7 * * 1-5"}
    for kind, text in (
        ("daily", "25:00"),
        ("once", "01/01/2000 08:00"),
        ("weekly", "xyz 08:00"),
        ("cron", "every day"),
    ):
        assert parse_when(kind, text, now) is None, (kind, text)


async def test_staff_drafts_and_citizen_drafts_survive_the_wrong_words(core: Core) -> None:
    citizen = visitor(core, "mid-tip")
    await citizen.text("/tip")
    await citizen.press("Ma túy")
    for command in ("/alert", "/bulletin"):
        await citizen.text(command)
        assert "Tôi không biết lệnh này" in citizen.all_text, "no continue-or-discard question"
    async with core.dispatcher.services.sessions() as session:
        flows = [c.flow for c in await session.scalars(select(Chat))]
    assert "tip" in flows, "the citizen's tip draft is untouched"
    admin = await admin_chat(core)
    await admin.text("/subscribe")
    topics = await admin.text("ben thanh")
    assert topics.replies
    await admin.press("Lưu")
    await admin.text("/alert")
    await admin.text("hủy")
    assert "Đã hủy" in admin.all_text
    async with core.dispatcher.services.sessions() as session:
        kept = list(await session.scalars(select(Subscription)))
    assert len(kept) == 1, "cancelling an alert draft leaves the admin's subscriptions alone"
