"""Guards found in review: logs on failure, location privacy, unstrippable files, STOP words,
editing from the review, PIN guessing, topics, and Telegram's UTF-16 length."""

from __future__ import annotations

import io
import logging
import re
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from bot.app import Core
from bot.channels.text import split_text, utf16_length
from bot.logs import setup_logging
from handlers.subscriptions import toggle
from storage.area_catalog import Area, AreaCatalog, AreaKind, load_builtin
from storage.files import FileStore
from storage.models import Subscription, Tip
from storage.repositories import tips
from tests.flowchat import FlowChat
from tests.test_flows import CODE_RE, PNG, complete_tip, reach_description, reach_review

SECRET_TEXT = "Nguyễn Văn Bí Mật ở số 12, SĐT 0912345678"


async def test_a_failing_insert_logs_no_citizen_text(
    chat: FlowChat, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    await reach_review(chat, SECRET_TEXT)

    async def failing_insert(session: AsyncSession, **kwargs: object) -> None:
        tip = kwargs["tip"]
        assert isinstance(tip, Tip)
        statement = text("INSERT INTO no_such_table VALUES (:d)")
        await session.execute(statement, {"d": tip.description})

    monkeypatch.setattr(tips, "create_tip", failing_insert)
    setup_logging("DEBUG")  # as `tipline run` with TIPLINE_LOG_LEVEL=DEBUG
    logging.getLogger().addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.DEBUG):
            await chat.press("Gửi tin báo")
    finally:
        logging.getLogger().handlers.clear()
    assert "hệ thống gặp sự cố" in chat.all_text
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "handling an event failed: " in logged  # OperationalError or ProgrammingError
    assert "0912345678" not in logged and "Bí Mật" not in logged
    monkeypatch.undo()
    await chat.press("Gửi tin báo")  # the draft survived: the review's buttons still work
    assert CODE_RE.search(chat.all_text)


async def test_a_location_shared_to_find_the_area_is_not_stored(core: Core) -> None:
    services = core.dispatcher.services
    ward = services.areas.get("W00070")
    assert ward is not None
    local = Area("N1", AreaKind.NEIGHBOURHOOD, "Tổ 5", "W00070", "P01", 21.029, 105.852)
    services.areas = AreaCatalog([*load_builtin(["01"]), local])
    chat = FlowChat(core.dispatcher, address="locating-visitor-0123456789abcdefghijklmnop")
    await chat.text("/tip")
    await chat.press("Ma túy")
    await chat.location(21.0291, 105.8521)
    assert "Khu vực: Tổ 5 · Phường Hoàn Kiếm · Hà Nội" in chat.all_text
    await chat.press("Bỏ qua")
    await chat.text("Mua bán ma túy ở quán nước")
    await chat.press("Bỏ qua")
    await chat.press("Không rõ")
    await chat.press("Giữ ẩn danh")
    assert "Vị trí đã gửi" not in chat.all_text
    await chat.press("Gửi tin báo")
    async with services.sessions() as session:
        tip = await session.scalar(select(Tip))
    assert tip is not None and tip.area_code == "N1"
    assert tip.latitude is None and tip.longitude is None


async def test_an_image_that_cannot_be_cleaned_is_refused(chat: FlowChat) -> None:
    await reach_review(chat)
    await chat.press("✏ Tệp")
    await chat.file(b"\x89PNG not really an image", mime="image/png")
    assert "Không lưu được tệp" in chat.all_text
    await chat.file(PNG)
    assert "Đã nhận 1 tệp" in chat.all_text
    await chat.press("Xóa tất cả tệp")
    assert "Đã xóa tất cả tệp" in chat.all_text
    await chat.press("Quay lại phần kiểm tra")
    assert "Tệp đính kèm: 0" in chat.all_text


def test_decompression_bombs_are_refused(tmp_path: Path) -> None:
    out = io.BytesIO()
    Image.new("1", (8000, 6000)).save(out, format="PNG")
    assert len(out.getvalue()) < 100_000
    assert FileStore(tmp_path).save_image(out.getvalue()) is None


async def test_editing_from_review_goes_back_not_away(chat: FlowChat) -> None:
    await reach_review(chat)
    await chat.press("✏ Khu vực")
    assert "Hủy" not in " ".join(b.label for b in chat.buttons)
    await chat.press("Quay lại phần kiểm tra")
    assert "Vui lòng kiểm tra" in chat.all_text and "Hoàn Kiếm" in chat.all_text


async def test_stop_words_mid_tip_cancel_only_the_tip(chat: FlowChat, core: Core) -> None:
    await chat.text("/subscribe")
    await chat.text("sai gon")
    await chat.press("Lưu")
    await reach_description(chat)
    await chat.text("Hủy")
    assert "Đã hủy" in chat.all_text
    async with core.dispatcher.services.sessions() as session:
        assert await session.scalar(select(Subscription.id)) is not None
    await reach_description(chat)
    await chat.text("Mua bán ma túy ở quán nước")
    await chat.press("Bỏ qua")
    await chat.press("Không rõ")
    await chat.press("Để lại thông tin")
    await chat.text("Huy")
    assert "Liên hệ: Huy" in chat.all_text


async def test_wrong_pins_lock_the_code_for_every_chat(chat: FlowChat, core: Core) -> None:
    code = await complete_tip(chat)
    pin_match = re.search(r"PIN: (\d{6})", chat.all_text)
    assert pin_match
    pin = pin_match.group(1)
    wrong = "000000" if pin != "000000" else "111111"
    for n in range(5):
        guesser = FlowChat(core.dispatcher, address=f"guesser-{n:02d}-0123456789abcdefghijklmnop")
        await guesser.text("/mytips")
        await guesser.press("Tra cứu")
        await guesser.text(code)
        await guesser.text(wrong)
    owner = FlowChat(core.dispatcher, address="owner-elsewhere-0123456789abcdefghijklmnopq")
    await owner.text("/mytips")
    await owner.press("Tra cứu")
    await owner.text(code)
    await owner.text(pin)
    assert "tạm khóa" in owner.all_text and "Trạng thái tin báo" not in owner.all_text


def test_topics_toggle() -> None:
    assert toggle(["all"], "drugs") == ["drugs"]
    assert toggle(["drugs"], "drugs") == ["all"]
    assert toggle(["drugs", "scams"], "all") == ["all"]
    chosen = ["all"]
    for topic in ("scams", "drugs", "traffic", "fire", "missing"):
        chosen = toggle(chosen, topic)
    assert chosen == ["all"]


def test_telegram_length_counts_utf16_units() -> None:
    text = "🚨" * 3000  # 6000 UTF-16 units
    parts = split_text(text, 4096)
    assert len(parts) == 2 and all(utf16_length(p) <= 4096 for p in parts)
    assert "".join(parts) == text
