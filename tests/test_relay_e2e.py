"""The officer workspace over Telegram, end to end: a tip's notice in the officers' group, View
to a private chat, claim, a reply relayed to the tipster, the answer back to the officer, and
nothing of the tipster in anything the officers' side receives."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.app import Core, start_broadcasts
from storage.models import TipEvent
from tests.fake_telegram import FakeTelegramServer
from tests.telegram_user import TelegramUser
from tests.test_alerts_e2e import until
from tests.test_staff import make_invite
from tests.test_telegram_e2e import TOKEN, running_bot, server

__all__ = ["server"]  # the fake Bot API fixture, shared

GROUP = -1009990002
TIPSTER_ID, TIPSTER_NAME, TIPSTER_USERNAME = 931777001, "Nguyễn Thị Mai", "mai_hoankiem"
OFFICER_ID = 931777100


@pytest.fixture
async def bot(tmp_path: Path, server: FakeTelegramServer) -> AsyncIterator[Core]:
    """A bot with its outbox running and an officers' group for new-tip notices."""
    overrides = {"provinces": ("01",), "officer_chat": str(GROUP), "unit_name": "Công an phường"}
    async with running_bot(tmp_path, server, **overrides) as (core, channel):
        await start_broadcasts(core, channel)
        yield core


def texts_and_markup(user: TelegramUser) -> str:
    """Everything the bot sent to a chat, its texts, captions and buttons, as one string."""
    return json.dumps([record["params"] for record in user.history()], ensure_ascii=False)


async def test_reply_and_answer_cross_without_identity(
    bot: Core, server: FakeTelegramServer
) -> None:
    tipster = TelegramUser(server, TOKEN, TIPSTER_ID, TIPSTER_NAME, TIPSTER_USERNAME)
    officer = TelegramUser(server, TOKEN, OFFICER_ID, "Trần Văn Lan", "lan_police")
    in_group = TelegramUser(server, TOKEN, OFFICER_ID, "Trần Văn Lan", chat_id=GROUP)
    code = await make_invite(bot, role="officer", label="Lan", areas=("W00070",))
    await officer.send(f"/join {code}")
    assert "cán bộ" in (officer.last_text() or "")

    await tipster.send("/tip")
    await tipster.press("Ma túy")
    await tipster.send("Hoàn Kiếm")
    await tipster.press("Bỏ qua")
    await tipster.send("Hai thanh niên bán ma túy ở hẻm sau chợ")
    await tipster.press("Bỏ qua")
    await tipster.press("Đang xảy ra")
    await tipster.press("Giữ ẩn danh")
    await tipster.press("Báo cho tôi khi tin")
    replies = await tipster.press("Gửi tin báo")
    found = re.search(r"[2-9A-HJ-NP-Z]{3}-[2-9A-HJ-NP-Z]{4}", " ".join(tipster.texts(replies)))
    assert found
    tip_code = found.group(0)

    await until(lambda: any(tip_code in t for t in in_group.texts(in_group.history())))
    assert "KHẨN" in (in_group.last_text() or "")
    await in_group.press("👁 Xem", expect_reply=False)
    assert in_group.keyboard_labels() == ["✋ Nhận xử lý", "👁 Xem"], "left for other officers"
    await until(lambda: any(tip_code in t for t in officer.texts(officer.history())))
    await officer.press("👁 Xem")
    assert "Hai thanh niên bán ma túy" in (officer.last_text() or "")
    await officer.press("Nhận xử lý")
    await officer.press("Trả lời người báo")
    await officer.send("Họ có đi xe máy không? Biển số nếu bạn thấy.")

    await until(lambda: "Họ có đi xe máy" in (tipster.last_text() or ""))
    relayed = tipster.last_text() or ""
    assert "Công an phường" in relayed
    for identity in ("Lan", "Trần Văn", "lan_police", str(OFFICER_ID)):
        assert identity not in relayed, identity
    await tipster.press("✍️ Trả lời")
    await tipster.send("Xe Wave màu đỏ, biển 29-X1 không rõ số cuối")
    assert "Đã gửi tới cán bộ" in (tipster.last_text() or "")

    await until(lambda: "Xe Wave màu đỏ" in (officer.last_text() or ""))
    async with bot.dispatcher.services.sessions() as session:
        kinds = [e.kind for e in await session.scalars(select(TipEvent).order_by(TipEvent.id))]
    assert kinds == ["claimed", "reply", "answer"]
    officer_side = texts_and_markup(officer) + texts_and_markup(in_group)
    for identity in (str(TIPSTER_ID), TIPSTER_NAME, TIPSTER_USERNAME, "Mai"):
        assert identity not in officer_side, identity
