"""Reports: /stats, /export and /audit for every kind of user, the files they send, and the
`tipline export` / `tipline audit` command line, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from openpyxl import load_workbook
from PIL import Image
from sqlalchemy import insert, select

from bot.app import Core
from handlers.reports import safe_cell
from handlers.types import OutgoingFile
from storage.models import AuditEntry, StaffMember, Tip, TipOwner
from storage.repositories import audit, cases
from tests.conftest import SECRET
from tests.flowchat import FlowChat
from tests.test_basics import run_cli
from tests.test_cases import BEN_THANH, HOAN_KIEM, officer_chat
from tests.test_staff import admin_chat, visitor

MARCH = "/stats 01/03/2026 31/03/2026"
CONTACT = "Nguyễn Văn Bí Mật 0901234567"
REPLY_ADDRESS = "telegram:987654321"


def at(day: int, hour: int = 3) -> datetime:
    """A time in March 2026 (UTC)."""
    return datetime(2026, 3, day, hour, 0, tzinfo=UTC)


async def seed_tip(core: Core, code: str, area: str, created: datetime, **fields: object) -> Tip:
    """A tip stored directly, as the tip flow stores one."""
    values: dict[str, object] = {
        "code": code,
        "pin_hash": "x",
        "channel": "web",
        "category": "drugs",
        "area_code": area,
        "description": "Hai thanh niên bán ma túy",
        "occurred": "now",
        "created_at": created,
        "updated_at": created,
        **fields,
    }
    async with core.dispatcher.services.sessions() as session, session.begin():
        tip = Tip(**values)
        session.add(tip)
        await session.flush()
        return tip


async def seed_march(core: Core) -> None:
    """Three tips in Hoàn Kiếm, one in Bến Thành, one in April (outside the period)."""
    await seed_tip(core, "HK1-0001", HOAN_KIEM, at(2), first_response_at=at(2, 4))
    await seed_tip(
        core, "HK1-0002", HOAN_KIEM, at(3), category="theft", status="closed",
        first_response_at=at(3, 5), closed_at=at(4, 3),
    )  # fmt: skip
    await seed_tip(
        core, "HK1-0003", HOAN_KIEM, at(3, 6), category="theft", status="in_review",
        first_response_at=at(3, 9),
    )  # fmt: skip
    await seed_tip(core, "BT1-0001", BEN_THANH, at(10), category="fraud")
    await seed_tip(core, "APR-0001", HOAN_KIEM, datetime(2026, 4, 2, tzinfo=UTC))


def files(chat: FlowChat) -> list[OutgoingFile]:
    """The files of the last response."""
    return [reply.file for reply in chat.last.replies if reply.file is not None]


async def audit_rows(core: Core, action: str) -> list[AuditEntry]:
    async with core.dispatcher.services.sessions() as session:
        found = await session.scalars(
            select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)
        )
        return list(found)


async def test_reports_are_unknown_to_citizens(core: Core) -> None:
    await seed_march(core)
    citizen = visitor(core, "curious")
    await citizen.text("/no-such-command")
    unknown = citizen.all_text
    for command in ("/stats", "/stats month", MARCH, "/export 01/03/2026 31/03/2026", "/audit"):
        await citizen.text(command)
        assert citizen.all_text == unknown, command
        assert not files(citizen)
    for forged in ("rep:stats:month:", "rep:audit:0"):
        await citizen.press_token(forged)
        assert citizen.last.button_notice is not None and not files(citizen)
    assert await audit_rows(core, "stats") == [] and await audit_rows(core, "export") == []


async def test_stats_figures_and_chart_by_jurisdiction(core: Core) -> None:
    await seed_march(core)
    admin = await admin_chat(core)
    await admin.text(MARCH)
    text = admin.all_text
    assert "Tin báo nhận được: 4" in text, text
    assert "• Trộm cắp, cướp giật: 2" in text or "Trộm" in text
    assert "Ma túy: 1" in text and ": 2" in text
    assert "Phường Hoàn Kiếm" in text and "Bến Thành" in text
    # First responses after 1 h, 2 h and 3 h: the median is 2 h; one closing after 24 h.
    assert "(trung vị): 2 giờ 0 phút" in text and "(trung vị): 1 ngày 0 giờ" in text
    [chart] = files(admin)
    assert chart.name == "tipline-stats.png" and chart.mime == "image/png"
    with Image.open(io.BytesIO(chart.data)) as image:
        assert image.format == "PNG" and image.width > 300

    officer = await officer_chat(core, "Mai", BEN_THANH)
    await officer.text(MARCH)
    text = officer.all_text
    assert "Tin báo nhận được: 1" in text and "Hoàn Kiếm" not in text, text
    await officer.text("/stats 01/03/2026 31/03/2026 Hoàn Kiếm")
    assert "Không có địa bàn nào của bạn" in officer.all_text, "another area is not offered"
    entries = await audit_rows(core, "stats")
    assert [e.detail["from"] for e in entries] == ["2026-03-01", "2026-03-01"]


async def test_stats_by_buttons_and_typed_area(core: Core) -> None:
    now = datetime.now(UTC)
    await seed_tip(core, "NOW-0001", HOAN_KIEM, now - timedelta(minutes=5))
    await seed_tip(core, "NOW-0002", BEN_THANH, now - timedelta(minutes=5))
    admin = await admin_chat(core)
    await admin.text("/stats")
    assert "khoảng thời gian nào" in admin.all_text and not files(admin)
    await admin.press("Năm nay")
    assert "Tin báo nhận được: 2" in admin.all_text and len(files(admin)) == 1
    await admin.text("/stats năm nay Bến Thành")
    assert "Tin báo nhận được: 1" in admin.all_text and "Bến Thành" in admin.all_text
    await admin.text(f"/stats {BEN_THANH}")
    await admin.press("Tháng này")
    assert "Tin báo nhận được: 1" in admin.all_text


async def test_bad_dates_get_a_clear_answer(core: Core) -> None:
    admin = await admin_chat(core)
    await admin.text("/stats 2026-13-01 2026-12-31")
    assert "Không đọc được “2026-13-01” là một ngày" in admin.all_text and not files(admin)
    await admin.text("/export 31/12/2026 01/12/2026")
    assert "Ngày thứ hai trước ngày thứ nhất" in admin.all_text and not files(admin)
    english = FlowChat(core.dispatcher, address="admin-cookie-0123456789abcdefghijklmnopqrst")
    await english.text("/language")
    await english.press("English")
    await english.text("/stats 32/01/2026 01/02/2026")
    assert "I could not read “32/01/2026” as a date" in english.all_text
    assert await audit_rows(core, "stats") == []


async def seed_with_tipster(core: Core) -> tuple[str, str]:
    """A tip with contact details and a link to its tipster; the link's hash and its code."""
    services = core.dispatcher.services
    vault = services.vault
    owner_hash = vault.keyed_hash("web:tipster-cookie")
    officer_label = "Trần Văn Cán Bộ"
    async with services.sessions() as session, session.begin():
        member = StaffMember(
            address_hash="h" * 64, address_enc="x", channel="web", role="officer",
            areas=[HOAN_KIEM], label=officer_label, invited_by="cli",
        )  # fmt: skip
        session.add(member)
        await session.flush()
        member_id = member.id
    tip = await seed_tip(
        core, "SEC-0001", HOAN_KIEM, at(5), contact_enc=vault.encrypt(CONTACT),
        description="=HYPERLINK(\"http://evil\",\"bấm\")", place_text="@SUM(A1)",
        owner=f"staff:{member_id}", latitude=21.03, longitude=105.85,
        reward_at=at(6), reward_note="thưởng",
    )  # fmt: skip
    async with services.sessions() as session, session.begin():
        session.add(
            TipOwner(
                tip_id=tip.id, owner_hash=owner_hash,
                reply_address_enc=vault.encrypt(REPLY_ADDRESS),
            )
        )  # fmt: skip
    return owner_hash, officer_label


def xlsx_cells(data: bytes) -> list[list[object]]:
    book = load_workbook(io.BytesIO(data), read_only=True)
    return [list(row) for row in book.worksheets[0].iter_rows(values_only=True)]


def assert_no_tipster(text: str, owner_hash: str) -> None:
    for secret in (CONTACT, "0901234567", REPLY_ADDRESS, "987654321", owner_hash):
        assert secret not in text, secret


async def test_exports_hold_no_tipster_data_and_no_formulas(core: Core) -> None:
    await seed_march(core)
    owner_hash, officer_label = await seed_with_tipster(core)
    admin = await admin_chat(core)
    await admin.text("/export 01/03/2026 31/03/2026")
    csv_file, xlsx_file = files(admin)
    assert csv_file.name.endswith(".csv") and xlsx_file.name.endswith(".xlsx")
    assert csv_file.data.startswith(b"\xef\xbb\xbf"), "UTF-8 with a byte-order mark"
    rows = list(csv.reader(io.StringIO(csv_file.data.decode("utf-8-sig"))))
    cells = xlsx_cells(xlsx_file.data)
    assert len(rows) == len(cells) == 6, "a header and the five March tips"
    assert rows[0][0] == "Mã tin" and cells[0][0] == "Mã tin"
    by_code = {row[0]: row for row in rows[1:]}
    secret_row = by_code["SEC-0001"]
    assert secret_row[1] == "2026-03-05 10:00", "received in Vietnam time"
    assert officer_label in secret_row and "có" in secret_row and "21.03" in secret_row
    assert secret_row[9].startswith("'=HYPERLINK") and secret_row[5] == "'@SUM(A1)"
    xlsx_row = next(row for row in cells if row[0] == "SEC-0001")
    assert str(xlsx_row[9]).startswith("'=HYPERLINK") and xlsx_row[5] == "'@SUM(A1)"
    assert officer_label in xlsx_row
    csv_text = csv_file.data.decode("utf-8-sig")
    xlsx_text = "\n".join(str(value) for row in cells for value in row)
    for text in (csv_text, xlsx_text):
        assert_no_tipster(text, owner_hash)
        assert "staff:" not in text, "officers by their label, never an id"
    entries = await audit_rows(core, "export")
    assert [(e.detail["format"], e.detail["count"]) for e in entries] == [("csv", 5), ("xlsx", 5)]

    officer = await officer_chat(core, "Mai", BEN_THANH)
    await officer.text("/export 01/03/2026 31/03/2026")
    rows = list(csv.reader(io.StringIO(files(officer)[0].data.decode("utf-8-sig"))))
    assert [row[0] for row in rows[1:]] == ["BT1-0001"], "another area's tips are not exported"


def test_formula_guard() -> None:
    for dangerous in ("=1+1", "+1", "-1", "@x", "\tx", "\rx"):
        assert safe_cell(dangerous) == f"'{dangerous}"
    assert safe_cell("Phường 1") == "Phường 1" and safe_cell("") == ""


async def test_audit_log_pages_for_admins_only(core: Core) -> None:
    admin = await admin_chat(core, "Hòa")
    officer = await officer_chat(core, "Mai", BEN_THANH)
    async with core.dispatcher.services.sessions() as session, session.begin():
        member = await session.scalar(select(StaffMember).where(StaffMember.label == "Mai"))
        assert member is not None
        for n in range(30):
            await audit.record(
                session, actor=f"staff:{member.id}", action="case.viewed", target=f"tip:{n}",
                at=datetime.now(UTC),
            )  # fmt: skip
    await officer.text("/no-such-command")
    unknown = officer.all_text
    await officer.text("/audit")
    assert officer.all_text == unknown
    await admin.text("/audit")
    page = admin.all_text
    assert page.count("case.viewed") == 20 and "Mai" in page and "tip:29" in page
    assert "staff:" not in page
    await admin.press("Cũ hơn")
    assert "tip:9" in admin.all_text and "tip:29" not in admin.all_text
    assert "invite.redeemed" in admin.all_text
    await admin.press("Mới hơn")
    assert "tip:29" in admin.all_text
    await officer.press_token("rep:audit:0")
    assert officer.last.button_notice is not None and "case.viewed" not in officer.all_text


async def test_export_and_audit_command_line(core: Core, tmp_path: Path) -> None:
    await seed_march(core)
    owner_hash, _ = await seed_with_tipster(core)
    env = {
        **os.environ,
        "TIPLINE_DATA_DIR": str(tmp_path),
        "TIPLINE_SECRET_KEY": SECRET,
        "TIPLINE_DATABASE_URL": core.settings.resolved_database_url,
    }
    period = ("--from", "2026-03-01", "--to", "2026-03-31")
    made = run_cli(tmp_path, env, "export", *period)
    assert made.returncode == 0, made.stderr
    rows = list(csv.reader(io.StringIO(made.stdout.lstrip("\ufeff"))))
    assert len(rows) == 6 and rows[0][0] == "Mã tin"
    assert_no_tipster(made.stdout, owner_hash)
    english = run_cli(tmp_path, env, "export", *period, "--area", BEN_THANH, "--lang", "en")
    assert english.returncode == 0 and english.stdout.lstrip("\ufeff").startswith("Code,")
    assert "BT1-0001" in english.stdout and "HK1-0001" not in english.stdout
    assert run_cli(tmp_path, env, "export", *period, "--format", "xlsx").returncode == 2
    out = tmp_path / "tips.xlsx"
    written = run_cli(tmp_path, env, "export", *period, "--format", "xlsx", "--out", str(out))
    assert written.returncode == 0, written.stderr
    cells = xlsx_cells(out.read_bytes())
    assert len(cells) == 6
    assert_no_tipster("\n".join(str(v) for row in cells for v in row), owner_hash)
    bad_periods = (
        ("--from", "2026-02-30", "--to", "2026-03-31"),
        ("--from", "01/03/2026", "--to", "2026-03-31"),
        ("--from", "2026-03-31", "--to", "2026-03-01"),
    )
    for bad in bad_periods:
        refused = run_cli(tmp_path, env, "export", *bad)
        assert refused.returncode == 2 and "tipline:" in refused.stderr, bad
    assert run_cli(tmp_path, env, "export", *period, "--area", "NOPE").returncode == 1
    log = run_cli(tmp_path, env, "audit", "--actor", "cli")
    assert log.returncode == 0 and log.stdout.count("\texport\t") == 3, log.stdout
    table = run_cli(tmp_path, env, "audit", "--csv", "--limit", "2")
    assert table.returncode == 0
    assert len(list(csv.reader(io.StringIO(table.stdout)))) == 3
    assert run_cli(tmp_path, env, "audit", "--from", "yesterday").returncode == 2
    entries = await audit_rows(core, "export")
    assert [e.actor for e in entries] == ["cli"] * 3
    assert [e.detail["format"] for e in entries] == ["csv", "csv", "xlsx"]


async def test_queue_count_stops_past_a_thousand(core: Core) -> None:
    now = datetime.now(UTC)
    rows = [
        {
            "code": f"CAP-{n:04d}", "pin_hash": "x", "channel": "web", "category": "drugs",
            "area_code": HOAN_KIEM, "description": "x", "occurred": "now", "status": "new",
            "created_at": now - timedelta(minutes=n), "updated_at": now,
        }
        for n in range(cases.COUNT_CAP + 5)
    ]  # fmt: skip
    async with core.dispatcher.services.sessions() as session, session.begin():
        await session.execute(insert(Tip), rows)
    async with core.dispatcher.services.sessions() as session:
        first, total = await cases.queue_page(session, cases.QueueFilter(), 0, 8)
        assert [tip.code for tip in first][:2] == ["CAP-0000", "CAP-0001"]
        assert total == cases.COUNT_CAP + 1, "counted only up to one past the cap"
        _, near_end = await cases.queue_page(session, cases.QueueFilter(), 1000, 8)
        assert near_end == cases.COUNT_CAP + 5, "deep pages still know what lies beyond"
    admin = await admin_chat(core)
    await admin.text("/queue")
    assert "1000+ tin · trang 1/125+" in admin.all_text, admin.all_text
    await admin.press("Trang sau")
    assert "trang 2/125+" in admin.all_text
