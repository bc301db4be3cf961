"""The tip flow and its guards, driven through the core with InboundEvents."""

from __future__ import annotations

import io
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import select

from bot.app import Core, build_core
from handlers import tip as tip_flow
from storage.area_catalog import Area, AreaCatalog, AreaKind, load_builtin
from storage.models import Chat, Subscription, Tip
from storage.repositories import subscriptions as subscriptions_repo
from storage.repositories import tips
from tests.conftest import make_settings
from tests.flowchat import FlowChat


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(out, format="PNG")
    return out.getvalue()


PNG = _png()

CODE_RE = re.compile(r"\b[2-9A-HJKMNP-Z]{3}-[2-9A-HJKMNP-Z]{4}\b")


async def reach_description(chat: FlowChat, area: str = "Hoàn Kiếm") -> None:
    """Start a tip and walk it to the description step (the exact place skipped)."""
    await chat.text("/tip")
    await chat.press("Ma túy")
    await chat.text(area)
    await chat.press("Bỏ qua")
    assert "Bước 4/7" in chat.all_text


async def reach_review(chat: FlowChat, description: str = "Hai thanh niên bán ma túy") -> None:
    """Walk a tip with valid input up to its review."""
    await reach_description(chat)
    await chat.text(description)
    await chat.press("Bỏ qua")
    await chat.press("Đang xảy ra")
    await chat.press("Giữ ẩn danh")
    assert "Vui lòng kiểm tra" in chat.all_text


async def complete_tip(chat: FlowChat, description: str = "Hai thanh niên bán ma túy") -> str:
    """Walk the whole tip flow with valid input; return the tip code."""
    await reach_review(chat, description)
    await chat.press("Gửi tin báo")
    match = CODE_RE.search(chat.all_text)
    assert match, chat.all_text
    return match.group(0)


async def test_welcome_then_full_tip(chat: FlowChat, core: Core) -> None:
    await chat.text("/start")
    assert "113" in chat.all_text
    await chat.press("Gửi tin báo")
    await chat.press("Ma túy")
    await chat.text("Hoàn Kiếm")
    await chat.text("Hẻm 12 Lê Lợi")
    await chat.text("Hai thanh niên bán ma túy")
    await chat.press("Bỏ qua")
    await chat.press("Đang xảy ra")
    await chat.press("Giữ ẩn danh")
    await chat.press("Gửi tin báo")
    match = CODE_RE.search(chat.all_text)
    assert match and "PIN:" in chat.all_text
    code = match.group(0)
    async with core.dispatcher.services.sessions() as session:
        tip = await session.scalar(select(Tip).where(Tip.code == code))
    assert tip is not None
    assert tip.category == "drugs"
    assert tip.area_code == "W00070"
    assert tip.place_text == "Hẻm 12 Lê Lợi"
    assert tip.occurred == "now"
    assert tip.contact_enc is None


async def test_text_where_button_expected_changes_nothing(chat: FlowChat) -> None:
    await chat.text("/tip")
    await chat.text("không biết")
    assert "nút" in chat.all_text
    await chat.sticker()
    assert "Bước 1/7" in chat.all_text
    await chat.press("Ma túy")
    assert "Bước 2/7" in chat.all_text


async def test_stale_and_forged_buttons(chat: FlowChat) -> None:
    await chat.text("/tip")
    old = chat.buttons[0].token
    await chat.press("Ma túy")
    await chat.press_token(old)
    assert chat.last.button_notice
    assert "Bước 2/7" in chat.all_text
    await chat.press_token("forged.0")
    assert chat.last.button_notice
    assert "Bước 2/7" in chat.all_text


async def test_description_limits(chat: FlowChat) -> None:
    await chat.text("/tip")
    await chat.press("Ma túy")
    await chat.text("Bến Thành")
    await chat.press("Bỏ qua")
    await chat.text("ngắn")
    assert "10" in chat.all_text
    await chat.text("x" * 4001)
    assert "4000" in chat.all_text and "4001" in chat.all_text
    await chat.text("x" * 4000)
    assert "Bước 5/7" in chat.all_text


async def test_cancel_at_every_step(chat: FlowChat) -> None:
    steps = [
        [],
        [("press", "Ma túy")],
        [("press", "Ma túy"), ("text", "Sài Gòn")],
        [("press", "Ma túy"), ("text", "Sài Gòn"), ("text", "Chợ")],
        [("press", "Ma túy"), ("text", "Sài Gòn"), ("text", "Chợ"), ("text", "Mô tả đủ dài")],
    ]
    for prefix in steps:
        await chat.text("/tip")
        for kind, value in prefix:
            await (chat.press(value) if kind == "press" else chat.text(value))
        await chat.text("/cancel")
        assert "Đã hủy" in chat.all_text
        await chat.text("/mytips")
        assert "chưa gửi" in chat.all_text
        await chat.text("/cancel")


async def test_rate_limit(core: Core, chat: FlowChat) -> None:
    for _ in range(core.dispatcher.services.limits.tips_per_hour):
        await complete_tip(chat)
    await chat.text("/tip")
    assert "giới hạn" in chat.all_text


async def test_mytips_with_code_and_pin(chat: FlowChat, core: Core) -> None:
    code = await complete_tip(chat)
    pin = re.search(r"PIN: (\d{6})", chat.all_text)
    assert pin
    other = FlowChat(core.dispatcher, address="another-visitor-cookie-0123456789abcdefghij")
    await other.text("/mytips")
    assert "chưa gửi" in other.all_text
    await other.press("Tra cứu")
    await other.text(code.lower().replace("-", " "))
    await other.text("000000" if pin.group(1) != "000000" else "111111")
    assert "Không có tin báo" in other.all_text
    await other.text(code)
    await other.text(pin.group(1))
    assert code in other.all_text and "đang chờ" in other.all_text


@asynccontextmanager
async def custom_core(tmp_path: Path, **overrides: Any) -> AsyncIterator[Core]:
    """A core with some settings changed, closed afterwards."""
    built = await build_core(make_settings(tmp_path, **overrides))
    try:
        yield built
    finally:
        await built.close()


async def test_flood_is_answered_once_and_changes_nothing(tmp_path: Path) -> None:
    async with custom_core(tmp_path, flood_messages=5, flood_window_seconds=60) as built:
        chat = FlowChat(built.dispatcher, address="flooding-visitor-0123456789abcdefghijklmno")
        await chat.text("/tip")
        await chat.press("Ma túy")
        await chat.text("Sài Gòn")
        await chat.text("Chợ")
        await chat.text("Chợ")
        warned = await chat.text("Chợ")
        assert warned.flooded and "quá nhanh" in chat.all_text
        silent = await chat.text("Chợ")
        assert silent.flooded and not silent.replies
        async with built.dispatcher.services.sessions() as session:
            row = await session.scalar(select(Chat))
        assert row is not None and row.step == "description"


async def test_restart_mid_flow_resumes(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    first = await build_core(settings)
    chat = FlowChat(first.dispatcher, address="restart-visitor-0123456789abcdefghijklmnop")
    await chat.text("/tip")
    await chat.press("Trộm cắp")
    await chat.text("Sài Gòn")
    await chat.text("Ngã tư Hàng Xanh")
    await first.close()
    second = await build_core(settings)
    try:
        chat.dispatcher = second.dispatcher
        await chat.text("Kẻ gian bẻ khóa xe máy trước nhà số 5")
        assert "Bước 5/7" in chat.all_text
    finally:
        await second.close()


async def test_idle_draft_expires_with_a_message(tmp_path: Path) -> None:
    async with custom_core(tmp_path, conversation_timeout_minutes=1) as built:
        chat = FlowChat(built.dispatcher, address="idle-visitor-0123456789abcdefghijklmnopqrs")
        await chat.text("/tip")
        await chat.press("Ma túy")
        async with built.dispatcher.services.sessions() as session, session.begin():
            row = await session.scalar(select(Chat))
            assert row is not None
            row.updated_at = row.updated_at - timedelta(minutes=5)
        assert await built.dispatcher.sweep_expired() == 1
        await chat.text("Chợ Bến Thành")
        assert "1 phút" in chat.all_text and "xóa" in chat.all_text
        async with built.dispatcher.services.sessions() as session:
            row = await session.scalar(select(Chat))
        assert row is not None and row.flow is None and row.data == {}


async def test_language_switch_mid_flow_keeps_draft(chat: FlowChat) -> None:
    await chat.text("/tip")
    await chat.press("Ma túy")
    await chat.text("/language")
    await chat.press("English")
    assert "Step 2 of 7" in chat.all_text
    await chat.text("Ben Thanh")
    assert "Step 3 of 7" in chat.all_text


async def test_start_mid_flow_asks_before_discarding(chat: FlowChat) -> None:
    await chat.text("/tip")
    await chat.press("Ma túy")
    await chat.text("/start")
    assert "làm dở" in chat.all_text
    await chat.press("Tiếp tục")
    assert "Bước 2/7" in chat.all_text
    await chat.text("/tip")
    await chat.press("Bỏ bản nháp")
    assert "Đã hủy" in chat.all_text


async def test_review_edit_and_contact(chat: FlowChat, core: Core) -> None:
    await chat.text("/tip")
    await chat.press("Lừa đảo")
    await chat.location(10.7769, 106.7009)
    assert "chưa thể xác định khu vực" in chat.all_text and "Bước 2/7" in chat.all_text
    await chat.text("ben thanh")
    assert "Bến Thành · Hồ Chí Minh" in chat.all_text
    await chat.location(10.7769, 106.7009)
    assert "Bước 4/7" in chat.all_text
    await chat.text("Gọi điện giả danh công an yêu cầu chuyển tiền")
    await chat.file(PNG)
    assert "Đã nhận 1 tệp" in chat.all_text
    await chat.press("Xong")
    await chat.press("Trước hôm nay")
    await chat.press("Để lại thông tin")
    await chat.text("0912 345 678 sau 18h")
    assert "0912 345 678" in chat.all_text
    await chat.press("✏ Mô tả")
    await chat.text("Gọi điện giả danh công an, yêu cầu chuyển 50 triệu")
    assert "50 triệu" in chat.all_text and "Vui lòng kiểm tra" in chat.all_text
    await chat.press("✏ Khu vực")
    await chat.text("phuong hoan kiem")
    assert "Khu vực: Phường Hoàn Kiếm · Hà Nội" in chat.all_text
    await chat.press("Gửi tin báo")
    code = CODE_RE.search(chat.all_text)
    assert code
    async with core.dispatcher.services.sessions() as session:
        tip = await tips.find_by_code(session, code.group(0))
    assert tip is not None
    assert tip.latitude == 10.7769 and tip.place_text is None
    assert tip.area_code == "W00070"
    assert tip.contact_enc and "0912" not in tip.contact_enc
    assert core.dispatcher.services.vault.decrypt(tip.contact_enc) == "0912 345 678 sau 18h"
    assert [a.kind for a in tip.attachments] == ["photo"]
    assert tip.attachments[0].file_ref.startswith("stored:")


async def test_an_area_that_disappeared_is_refused(chat: FlowChat, core: Core) -> None:
    await chat.text("/subscribe")
    await chat.text("hoang mai")
    assert "Phường Hoàng Mai · Hà Nội" in [b.label for b in chat.buttons]
    services = core.dispatcher.services
    services.areas = AreaCatalog(load_builtin(["Nghệ An"]))
    await chat.press("Phường Hoàng Mai · Hà Nội")
    assert "không còn trong danh sách" in chat.all_text
    await chat.text("hoang mai")
    assert "Cảnh báo cho Phường Hoàng Mai · Nghệ An" in chat.all_text
    async with services.sessions() as session:
        assert await session.scalar(select(Subscription.id)) is None


async def test_subscriptions_round_trip(chat: FlowChat, core: Core) -> None:
    await chat.text("/subscribe")
    await chat.text("phuong sai gon")
    await chat.press("Giao thông")
    await chat.press("Cháy nổ")
    await chat.press("Giao thông")
    await chat.press("Lưu")
    assert "Đã đăng ký: Phường Sài Gòn · Hồ Chí Minh — Cháy nổ" in chat.all_text
    await chat.text("/subscribe")
    await chat.text("sai gon")
    await chat.press("Tất cả chủ đề")
    await chat.press("Lưu")
    assert "Đã cập nhật" in chat.all_text
    await chat.text("/mysubscriptions")
    assert "Phường Sài Gòn · Hồ Chí Minh — Tất cả chủ đề" in chat.all_text
    await chat.text("stop")
    assert "đã xóa 1 đăng ký" in chat.all_text
    async with core.dispatcher.services.sessions() as session:
        assert await session.scalar(select(Subscription.id)) is None


async def test_a_failure_inside_a_step_is_answered_and_changes_nothing(
    chat: FlowChat, core: Core, monkeypatch: pytest.MonkeyPatch
) -> None:
    await chat.text("/tip")
    await chat.press("Ma túy")

    async def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("database went away")

    monkeypatch.setitem(tip_flow._HANDLERS, tip_flow.Step.AREA, broken)
    await chat.text("Bến Thành")
    assert "hệ thống gặp sự cố" in chat.all_text
    monkeypatch.undo()
    await chat.text("Bến Thành")
    assert "Bước 3/7" in chat.all_text


async def test_ward_subscribers_hear_about_their_neighbourhoods(core: Core) -> None:
    services = core.dispatcher.services
    local = Area("N1", AreaKind.NEIGHBOURHOOD, "Tổ 5", "W00070", "P01", 21.029, 105.852)
    services.areas = AreaCatalog([*load_builtin(["01"]), local])
    ward_fan = FlowChat(core.dispatcher, address="ward-subscriber-0123456789abcdefghijklmnopq")
    await ward_fan.text("/subscribe")
    await ward_fan.text("hoan kiem")
    await ward_fan.press("Toàn bộ Phường Hoàn Kiếm")
    await ward_fan.press("Ma túy")
    await ward_fan.press("Lưu")
    other = FlowChat(core.dispatcher, address="other-subscriber-0123456789abcdefghijklmnop")
    await other.text("/subscribe")
    await other.text("hoang liet")
    await other.press("Lưu")
    async with services.sessions() as session:
        chain = services.areas.ancestors("N1")
        drugs = await subscriptions_repo.subscribers_for(session, chain, "drugs")
        fire = await subscriptions_repo.subscribers_for(session, chain, "fire")
    assert [s.area_code for s in drugs] == ["W00070"] and fire == []
