"""The officer workspace on the core: queue, jurisdiction, case handling, relays, blocks,
rewards, notices and the audit log, each command and button tried by every kind of user."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta

from sqlalchemy import select, update

from bot.app import Core
from handlers.context import Workspace
from storage.models import AuditEntry, Chat, Delivery, StaffMember, Tip, TipEvent, utcnow
from storage.repositories import cases
from tests.flowchat import FlowChat
from tests.test_flows import complete_tip, reach_review
from tests.test_staff import admin_chat, make_invite, visitor

HOAN_KIEM, BEN_THANH = "W00070", "W26743"
OFFICERS_GROUP = "telegram:-1009990001"
PIN_RE = re.compile(r"PIN: (\d{6})")


async def officer_chat(core: Core, name: str, *areas: str) -> FlowChat:
    """A visitor who redeemed an officer invite for some areas (none: every area)."""
    chat = visitor(core, name)
    await chat.text(f"/join {await make_invite(core, role='officer', label=name, areas=areas)}")
    assert "cán bộ" in chat.all_text
    return chat


async def tip_in(core: Core, name: str, area: str, text: str = "Hai thanh niên bán ma túy") -> str:
    """A citizen's tip about an area (typed as its name); its code."""
    citizen = visitor(core, name)
    await citizen.text("/tip")
    await citizen.press("Ma túy")
    await citizen.text(area)
    if not any("Bỏ qua" in button.label for button in citizen.buttons):
        await citizen.press(f"Phường {area}")  # a name several areas share: the ward
    await citizen.press("Bỏ qua")
    await citizen.text(text)
    await citizen.press("Bỏ qua")
    await citizen.press("Đang xảy ra")
    await citizen.press("Giữ ẩn danh")
    await citizen.press("Gửi tin báo")
    found = re.search(r"[2-9A-HJ-NP-Z]{3}-[2-9A-HJ-NP-Z]{4}", citizen.all_text)
    assert found, citizen.all_text
    return found.group(0)


async def outbox_rows(core: Core) -> list[Delivery]:
    async with core.dispatcher.services.sessions() as session:
        return list(await session.scalars(select(Delivery).order_by(Delivery.id)))


async def audit_actions(core: Core) -> list[str]:
    async with core.dispatcher.services.sessions() as session:
        return [e.action for e in await session.scalars(select(AuditEntry).order_by(AuditEntry.id))]


async def tip_row(core: Core, code: str) -> Tip:
    async with core.dispatcher.services.sessions() as session:
        tip = await session.scalar(select(Tip).where(Tip.code == code))
        assert tip is not None
        return tip


def button_token(row: Delivery, label: str) -> str:
    """The callback token of a button on a queued proactive message."""
    for buttons in row.payload.get("buttons") or []:
        for shown, token in buttons:
            if label in shown:
                return str(token)
    raise AssertionError(f"no button {label!r} in {row.payload}")


async def test_an_officer_sees_only_their_areas(core: Core) -> None:
    here = await tip_in(core, "resident-a", "Hoàn Kiếm")
    there = await tip_in(core, "resident-b", "Bến Thành")
    officer = await officer_chat(core, "Lan", HOAN_KIEM)
    await officer.text("/queue")
    assert here in officer.all_text and there not in officer.all_text
    assert "1 tin" in officer.all_text
    await officer.text(f"/tip {there}")
    assert f"Không có tin {there}" in officer.all_text, "another area's tip is as if absent"
    await officer.text(f"/tip {here.lower().replace('-', '')}")
    assert f"Tin báo {here}" in officer.all_text and "Hai thanh niên" in officer.all_text
    admin = await admin_chat(core)
    await admin.text("/queue")
    assert here in admin.all_text and there in admin.all_text, "an admin sees every area"


async def test_citizens_get_no_workspace_at_all(core: Core) -> None:
    code = await tip_in(core, "resident", "Hoàn Kiếm")
    citizen = visitor(core, "curious")
    await citizen.text("/no-such-command")
    unknown = citizen.all_text
    for command in ("/queue", "/queue new drugs", "/notify"):
        await citizen.text(command)
        assert citizen.all_text == unknown, command
    await citizen.text(f"/tip {code}")
    assert "Bước 1/7" in citizen.all_text, "for a citizen /tip starts a tip"
    await citizen.text("/cancel")
    for forged in (f"case:claim:{code}", "AbCdEf.0", "AbCdEfGh.1"):
        await citizen.press_token(forged)
        assert citizen.last.button_notice is not None
    assert (await tip_row(core, code)).owner is None


async def test_queue_filters_by_words_and_buttons(core: Core) -> None:
    first = await tip_in(core, "resident-a", "Hoàn Kiếm", "Hai thanh niên bán ma túy ở hẻm")
    second = await tip_in(core, "resident-b", "Ba Đình", "Một nhóm người bán ma túy")
    officer = await officer_chat(core, "Lan")
    await officer.text("/queue ba dinh")
    await officer.press("Phường Ba Đình")
    assert second in officer.all_text and first not in officer.all_text
    await officer.press("Bỏ bộ lọc")
    await officer.press("Cũ nhất trước")
    assert officer.all_text.index(first) < officer.all_text.index(second)
    await officer.press("Chưa ai nhận")
    assert first in officer.all_text
    await officer.press(first)
    await officer.press("Nhận xử lý")
    await officer.press("Hàng đợi")
    assert first not in officer.all_text.split("Đang xem:")[1], "unclaimed hides a claimed tip"
    await officer.text("mine")
    assert "Của tôi ✓" in " ".join(b.label for b in officer.buttons)
    await officer.text("/queue closed")
    assert "0 tin" in officer.all_text
    await officer.text("/queue gibberish-words-xyz")
    assert "Không hiểu" in officer.all_text
    await officer.press("Bỏ bộ lọc")
    await officer.press("📍 Khu vực")
    await officer.text("Hoàn Kiếm")
    assert first in officer.all_text and second not in officer.all_text.split("Đang xem:")[1]
    await officer.press("📍 Khu vực")
    await officer.press("Mọi khu vực của tôi")
    assert second in officer.all_text


async def test_claim_status_note_and_timeline_with_audit(core: Core) -> None:
    code = await tip_in(core, "resident", "Hoàn Kiếm")
    lan = await officer_chat(core, "Lan", HOAN_KIEM)
    hoa = await officer_chat(core, "Hoa", HOAN_KIEM)
    await lan.text(f"/tip {code}")
    await hoa.text(f"/tip {code}")
    await lan.press("Nhận xử lý")
    assert "Bạn đã nhận xử lý" in lan.all_text
    await hoa.press("Nhận xử lý")
    assert "đã được Lan nhận" in hoa.all_text, "one owner; the other sees who"
    await hoa.press("Đóng")
    assert "Chỉ cán bộ đã nhận" in hoa.all_text, "another officer's tip is theirs"
    assert (await tip_row(core, code)).status == "new"
    await hoa.press("Ghi chú")
    await hoa.text("Đã kiểm tra camera khu vực")
    assert "Đã thêm ghi chú" in hoa.all_text, "any officer of the area may add a note"
    await lan.press("Đang xem xét")
    await lan.press("Ưu tiên")
    await lan.press("Đã xử lý")
    tip = await tip_row(core, code)
    assert (tip.status, tip.priority, tip.owner) == ("actioned", "high", tip.owner)
    assert tip.first_response_at is not None
    await lan.text(f"/tip {code}")
    shown = lan.all_text
    assert "Đã kiểm tra camera" in shown and "Diễn biến" in shown and "ưu tiên: cao" in shown
    await lan.press("Trả lại")
    assert (await tip_row(core, code)).owner is None
    actions = await audit_actions(core)
    for action in ("tip.viewed", "tip.claimed", "tip.note", "tip.status", "tip.priority"):
        assert action in actions, action
    assert "tip.released" in actions


async def test_two_officers_claiming_at_once_one_wins(core: Core) -> None:
    code = await tip_in(core, "resident", "Hoàn Kiếm")
    tip = await tip_row(core, code)
    sessions = core.dispatcher.services.sessions

    async def claim(actor: str) -> bool:
        async with sessions() as session, session.begin():
            return await cases.claim(session, tip.id, actor, utcnow())

    results = await asyncio.gather(*(claim(f"staff:{n}") for n in range(8)))
    assert sorted(results) == [False] * 7 + [True]
    owner = (await tip_row(core, code)).owner
    async with sessions() as session:
        claimed = await session.scalars(select(TipEvent).where(TipEvent.kind == "claimed"))
        assert [e.actor for e in claimed] == [owner]


async def test_reply_answer_and_added_information_stay_anonymous(core: Core) -> None:
    services = core.dispatcher.services
    services.workspace = Workspace(officer_chats={"*": OFFICERS_GROUP}, unit_name="Công an phường")
    tipster = visitor(core, "tipster")
    await reach_review(tipster)
    await tipster.press("Báo cho tôi khi tin")
    assert "bật" in " ".join(b.label for b in tipster.buttons)
    await tipster.press("Gửi tin báo")
    code = re.search(r"[2-9A-HJ-NP-Z]{3}-[2-9A-HJ-NP-Z]{4}", tipster.all_text)
    pin = PIN_RE.search(tipster.all_text)
    assert code and pin
    code_text = code.group(0)
    [notice] = await outbox_rows(core)
    assert code_text in notice.payload["text"] and "KHẨN" in notice.payload["text"]
    assert notice.is_group and notice.address_hash == services.vault.keyed_hash(OFFICERS_GROUP)

    officer = await officer_chat(core, "Lan", HOAN_KIEM)
    await officer.text(f"/tip {code_text}")
    await officer.press("Đang xem xét")  # acting on it claims it
    update = (await outbox_rows(core))[-1]
    assert "đang được cán bộ xem xét" in update.payload["text"], "the tipster asked for updates"
    await officer.press("Trả lời người báo")
    await officer.text("Bạn có thể cho biết thêm giờ họ thường xuất hiện không?")
    relayed = (await outbox_rows(core))[-1]
    assert relayed.address_hash == services.vault.keyed_hash(f"web:{tipster.address}")
    assert "Công an phường" in relayed.payload["text"] and "Lan" not in relayed.payload["text"]

    await tipster.press_token(button_token(relayed, "Trả lời"))
    await tipster.text("Khoảng 9 giờ tối, gần cổng chợ")
    assert "Đã gửi tới cán bộ" in tipster.all_text
    told = (await outbox_rows(core))[-1]
    assert "Khoảng 9 giờ tối" in told.payload["text"]
    assert told.address_hash == services.vault.keyed_hash(f"web:{officer.address}")

    other_device = visitor(core, "tipster-phone")
    await other_device.text("/mytips")
    await other_device.press("Tra cứu bằng mã")
    await other_device.text(code_text)
    await other_device.text(pin.group(1))
    assert "Bạn có thể cho biết thêm" in other_device.all_text, "the officer's reply in the thread"
    await other_device.press("Bổ sung thông tin")
    await other_device.text("Họ đi xe máy màu đỏ")
    await officer.text(f"/tip {code_text}")
    page = officer.all_text
    assert "Khoảng 9 giờ tối" in page and "Họ đi xe máy màu đỏ" in page
    for leaked in (tipster.address, other_device.address, "tipster-cookie"):
        assert leaked not in page
        assert all(leaked not in str(row.payload) for row in await outbox_rows(core))


async def test_block_refuses_new_tips_and_unblock_lifts_it(core: Core) -> None:
    tipster = visitor(core, "spammer")
    code = await complete_tip(tipster)
    admin = await admin_chat(core)
    await admin.text(f"/tip {code}")
    await admin.press("Chặn người gửi")
    assert "Không ai, kể cả bạn, biết họ là ai" in admin.all_text
    await tipster.text("/tip")
    assert "không thể gửi tin báo nữa" in tipster.all_text
    assert tipster.last.replies[-1].buttons, "the menu follows"
    await admin.text(f"/tip {code}")
    await admin.press("Bỏ chặn")
    await tipster.text("/tip")
    assert "Bước 1/7" in tipster.all_text
    assert {"tip.block", "tip.unblock"} <= set(await audit_actions(core))


async def test_reward_is_seen_with_code_and_pin(core: Core) -> None:
    services = core.dispatcher.services
    services.workspace = Workspace(reward_instructions="Đến trụ sở, đọc mã tin và PIN.")
    tipster = visitor(core, "helpful")
    await reach_review(tipster)
    await tipster.press("Gửi tin báo")
    code = re.search(r"[2-9A-HJ-NP-Z]{3}-[2-9A-HJ-NP-Z]{4}", tipster.all_text)
    pin = PIN_RE.search(tipster.all_text)
    assert code and pin
    officer = await officer_chat(core, "Lan")
    other = await officer_chat(core, "Hoa")
    await officer.text(f"/tip {code.group(0)}")
    await other.text(f"/tip {code.group(0)}")
    await officer.press("Nhận xử lý")
    await other.press("Duyệt thưởng")
    assert "Chỉ cán bộ đã nhận" in other.all_text, "the owner approves rewards"
    await officer.press("Duyệt thưởng")
    await officer.text("500.000 đồng, tin giúp bắt quả tang")
    assert "Đã duyệt thưởng" in officer.all_text
    await tipster.text("/mytips")
    await tipster.press("Tra cứu bằng mã")
    await tipster.text(code.group(0))
    await tipster.text(pin.group(1))
    assert "đã được duyệt khen thưởng" in tipster.all_text
    assert "Đến trụ sở, đọc mã tin và PIN." in tipster.all_text
    assert "500.000" not in tipster.all_text, "the officers' note stays internal"


async def test_duplicate_and_spam(core: Core) -> None:
    original = await tip_in(core, "a", "Hoàn Kiếm", "Bán ma túy ở hẻm 12 Lê Lợi")
    repeat = await tip_in(core, "b", "Hoàn Kiếm", "Bán ma túy ở hẻm 12 Lê Lợi, lại nữa")
    spam = await tip_in(core, "c", "Hoàn Kiếm", "quảng cáo quảng cáo quảng cáo")
    officer = await officer_chat(core, "Lan", HOAN_KIEM)
    await officer.text(f"/tip {repeat}")
    await officer.press("Nhận xử lý")
    await officer.press("Trùng với")
    await officer.text("ZZZ-ZZZZ")
    assert "Không có tin nào khác" in officer.all_text
    await officer.text(original)
    row = await tip_row(core, repeat)
    assert (row.status, row.duplicate_of) == ("rejected", original)
    await officer.text(f"/tip {spam}")
    await officer.press("Nhận xử lý")
    await officer.press("Tin rác")
    assert (await tip_row(core, spam)).status == "rejected"
    await officer.text(f"/tip {original}")
    assert "bị trùng bởi" in officer.all_text and repeat in officer.all_text


async def test_notices_reach_the_areas_group_and_officers_who_asked(core: Core) -> None:
    services = core.dispatcher.services
    services.workspace = Workspace(
        officer_chats={"*": OFFICERS_GROUP, "P79": "telegram:-1009990079"}
    )
    hanoi = await officer_chat(core, "Lan", HOAN_KIEM)
    saigon = await officer_chat(core, "Minh", BEN_THANH)
    for officer in (hanoi, saigon):
        await officer.text("/notify")
        assert "cũng sẽ gửi vào" in officer.all_text
    await tip_in(core, "resident", "Bến Thành")
    rows = await outbox_rows(core)
    vault = services.vault
    reached = {row.address_hash for row in rows}
    assert vault.keyed_hash("telegram:-1009990079") in reached, "the province's own group"
    assert vault.keyed_hash(OFFICERS_GROUP) not in reached
    assert vault.keyed_hash(f"web:{saigon.address}") in reached
    assert vault.keyed_hash(f"web:{hanoi.address}") not in reached, "not their area"
    await saigon.press_token(button_token(rows[-1], "Nhận xử lý"))
    assert "Bạn đã nhận xử lý" in saigon.all_text


async def test_every_workspace_button_is_authorised_when_pressed(core: Core) -> None:
    code = await tip_in(core, "resident", "Hoàn Kiếm")
    services = core.dispatcher.services
    for change in ("areas", "revoked"):
        officer = await officer_chat(core, f"Lan-{change}", HOAN_KIEM)
        await officer.text(f"/tip {code}")
        page = list(officer.buttons)
        async with services.sessions() as session, session.begin():
            member = await session.scalar(
                select(StaffMember).where(StaffMember.label == f"Lan-{change}")
            )
            assert member is not None
            if change == "areas":
                member.areas = [BEN_THANH]  # an admin moved them to another ward
            else:
                member.revoked_at = utcnow()
        for button in page:
            officer.buttons = page  # the page as it still stands on their phone
            await officer.press(button.label)
            assert officer.last.button_notice is not None or "Không có tin" in officer.all_text
            assert "Hai thanh niên" not in officer.all_text, button.label
            if change == "revoked":
                break  # the first press already ended the workspace for a non-member
        tip = await tip_row(core, code)
        assert (tip.owner, tip.status, tip.priority) == (None, "new", "normal"), change
    async with services.sessions() as session:
        assert list(await session.scalars(select(TipEvent))) == []


async def test_an_idle_queue_expires_quietly_but_an_unsent_reply_is_told(core: Core) -> None:
    code = await tip_in(core, "resident", "Hoàn Kiếm")
    browsing = await officer_chat(core, "Lan", HOAN_KIEM)
    writing = await officer_chat(core, "Hoa", HOAN_KIEM)
    await browsing.text("/queue")
    await writing.text(f"/tip {code}")
    await writing.press("Ghi chú")
    services = core.dispatcher.services
    services.proactive_channels = {"web"}
    async with services.sessions() as session, session.begin():
        await session.execute(update(Chat).values(updated_at=utcnow() - timedelta(hours=2)))
    assert await core.dispatcher.sweep_expired() >= 2
    told = {row.address_hash for row in await outbox_rows(core)}
    assert services.vault.keyed_hash(f"web:{writing.address}") in told
    assert services.vault.keyed_hash(f"web:{browsing.address}") not in told
    await browsing.text("/queue")
    assert "phút không hoạt động" not in browsing.all_text, "nor told with the next message"


async def test_every_staff_command_as_each_kind_of_user(core: Core) -> None:
    code = await tip_in(core, "resident", "Hoàn Kiếm")
    citizen = visitor(core, "citizen")
    outsider = await officer_chat(core, "Minh", BEN_THANH)
    officer = await officer_chat(core, "Lan", HOAN_KIEM)
    admin = await admin_chat(core)
    await citizen.text("/no-such-command")
    unknown = citizen.all_text
    admin_only = ("/invite", "/staff", "/areas", "/alert", "/bulletin", "/bulletins")
    for command in ("/queue", "/notify", *admin_only):
        for user in (citizen, outsider, officer, admin):
            await user.text("/cancel")
            await user.text(command)
            refused = user.all_text == unknown
            expected = user is citizen or (command in admin_only and user is not admin)
            assert refused == expected, (command, user.address)
    for user, sees in ((outsider, False), (officer, True), (admin, True)):
        await user.text("/cancel")
        await user.text(f"/tip {code}")
        assert (f"Tin báo {code}" in user.all_text) is sees, user.address
        await user.text("/queue")
        assert (code in user.all_text) is sees, user.address


async def test_a_block_shows_on_its_own_tip_only(core: Core) -> None:
    tipster = visitor(core, "repeat-sender")
    first = await complete_tip(tipster, "Bán ma túy ở hẻm 12 Lê Lợi")
    second = await complete_tip(tipster, "Lại bán ma túy ở hẻm 14 Lê Lợi")
    admin = await admin_chat(core)
    await admin.text(f"/tip {first}")
    await admin.press("Chặn người gửi")
    blocked_answer = admin.texts[0]
    await admin.text(f"/tip {second}")
    assert "đã bị chặn" not in admin.all_text, "nothing ties the second tip to the first"
    assert any("Chặn người gửi" in b.label for b in admin.buttons)
    await admin.press("Chặn người gửi")
    assert admin.texts[0] == blocked_answer.replace(first, second), "the same answer either way"
    await admin.text(f"/tip {first}")
    assert "đã bị chặn" in admin.all_text
    await tipster.text("/mytips")
    assert "không thể gửi tin báo nữa" not in tipster.all_text
    await tipster.press("Tra cứu bằng mã")
    await tipster.text(first)


async def test_a_blocked_tipster_cannot_write_through_the_relay(core: Core) -> None:
    tipster = visitor(core, "blocked-writer")
    await reach_review(tipster)
    await tipster.press("Gửi tin báo")
    code = re.search(r"[2-9A-HJ-NP-Z]{3}-[2-9A-HJ-NP-Z]{4}", tipster.all_text)
    pin = PIN_RE.search(tipster.all_text)
    assert code and pin
    admin = await admin_chat(core)
    await admin.text(f"/tip {code.group(0)}")
    await admin.press("Chặn người gửi")
    await tipster.text("/mytips")
    await tipster.press("Tra cứu bằng mã")
    await tipster.text(code.group(0))
    await tipster.text(pin.group(1))
    await tipster.press("Bổ sung thông tin")
    assert "không thể gửi tin báo nữa" in tipster.all_text
    async with core.dispatcher.services.sessions() as session:
        kinds = {e.kind for e in await session.scalars(select(TipEvent))}
    assert "info" not in kinds


async def test_a_role_that_ends_gives_its_tips_back(core: Core) -> None:
    code = await tip_in(core, "resident", "Hoàn Kiếm")
    lan = await officer_chat(core, "Lan", HOAN_KIEM)
    await lan.text(f"/tip {code}")
    await lan.press("Nhận xử lý")
    await lan.text(
        f"/join {await make_invite(core, role='officer', label='Lan', areas=(HOAN_KIEM,))}"
    )
    assert (await tip_row(core, code)).owner is None, "the new role starts with a fresh queue"
    await lan.text(f"/tip {code}")
    await lan.press("Nhận xử lý")
    admin = await admin_chat(core)
    await admin.text(f"/tip {code}")
    await admin.press("Trả lại")
    assert (await tip_row(core, code)).owner is None, "an admin releases anyone's tip"


async def test_contact_details_the_tipster_left_are_shown_to_officers(core: Core) -> None:
    tipster = visitor(core, "named")
    await reach_review(tipster)
    await tipster.press("Liên hệ")
    await tipster.press("Để lại thông tin liên hệ")
    await tipster.text("Gọi 0912 000 111 sau 8 giờ tối")
    await tipster.press("Gửi tin báo")
    code = re.search(r"[2-9A-HJ-NP-Z]{3}-[2-9A-HJ-NP-Z]{4}", tipster.all_text)
    assert code
    officer = await officer_chat(core, "Lan", HOAN_KIEM)
    await officer.text(f"/tip {code.group(0)}")
    assert "Gọi 0912 000 111 sau 8 giờ tối" in officer.all_text


async def test_queue_words_in_vietnamese_and_places_that_look_like_them(core: Core) -> None:
    await tip_in(core, "a", "Hoàn Kiếm")
    officer = await officer_chat(core, "Lan")
    await officer.text("/queue Đống Đa")
    if "Khu vực nào?" in officer.all_text:  # several places share the name: it asks
        await officer.press("Phường Đống Đa · Hà Nội")
    shown = officer.all_text.split("Đang xem:")[1].split("\n")[0]
    assert "Đống Đa" in shown and "đã đóng" not in shown
    await officer.text("/queue tin mới ma túy của tôi")
    shown = officer.all_text.split("Đang xem:")[1].split("\n")[0]
    assert "mới" in shown and "Ma túy" in shown and "Của tôi" in shown
    await officer.press("Bỏ bộ lọc")
    await officer.press("📍 Khu vực")
    await officer.text("Chiến Thắng")
    assert "31 ngày qua" not in officer.all_text, "an area's name, not the month filter"
    assert "Chiến Thắng" in officer.all_text


async def test_a_non_staff_press_in_the_officers_group_leaves_the_notice(core: Core) -> None:
    services = core.dispatcher.services
    services.workspace = Workspace(officer_chats={"*": OFFICERS_GROUP})
    await tip_in(core, "resident", "Hoàn Kiếm")
    [notice] = await outbox_rows(core)
    stranger = FlowChat(core.dispatcher, address=OFFICERS_GROUP.split(":")[1], channel="telegram")
    response = await stranger._send(
        button=button_token(notice, "Nhận xử lý"), group=True, actor="931000999"
    )
    assert response.keep_pressed and response.button_notice is not None
    assert not response.replies
