"""A tipster with a known id, username, name and phone leaves no trace of them anywhere."""

from __future__ import annotations

import base64
import hashlib
import logging
import sqlite3
import struct
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.app import Core
from bot.logs import setup_logging
from storage.models import TipOwner
from tests.fake_telegram import FakeTelegramServer
from tests.telegram_user import TelegramUser
from tests.test_telegram_e2e import TOKEN, jpeg_with_gps, running_bot, walk_tip_vi

USER_ID = 987654321
USERNAME = "hidden_tipster_42"
FIRST_NAME = "Bímật"
LAST_NAME = "Nguyễn Thị"
PHONE = "+84912345678"


def needles() -> dict[str, bytes]:
    """Every encoding of the tipster's identity we look for."""
    text_id = str(USER_ID)
    found: dict[str, bytes] = {
        "id as text": text_id.encode(),
        "id as utf-16": text_id.encode("utf-16-le"),
        "username": USERNAME.encode(),
        "first name": FIRST_NAME.encode(),
        "last name": LAST_NAME.encode(),
        "phone": PHONE[3:].encode(),
        "id as 32-bit big-endian": struct.pack(">i", USER_ID),
        "id as 32-bit little-endian": struct.pack("<i", USER_ID),
        "id as 64-bit big-endian": struct.pack(">q", USER_ID),
        "id as 64-bit little-endian": struct.pack("<q", USER_ID),
        "id as base64": base64.b64encode(text_id.encode()).rstrip(b"="),
    }
    for value in (text_id, f"telegram:{text_id}", USERNAME):
        for name in ("md5", "sha1", "sha256", "sha512", "blake2b"):
            digest = hashlib.new(name, value.encode())
            found[f"{name}({value})"] = digest.hexdigest().encode()
            found[f"{name}({value}) raw"] = digest.digest()
    return found


def integer_columns_holding(db: Path, value: int) -> list[str]:
    """Table.column names where an integer column holds the value."""
    hits = []
    with sqlite3.connect(db) as connection:
        tables = [
            r[0] for r in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
        ]
        for table in tables:
            for column in connection.execute(f'PRAGMA table_info("{table}")'):
                name = column[1]
                query = f'SELECT 1 FROM "{table}" WHERE "{name}" = ? LIMIT 1'
                if connection.execute(query, (value,)).fetchone():
                    hits.append(f"{table}.{name}")
    return hits


async def tip_as_known_citizen(server: FakeTelegramServer, core: Core) -> None:
    """Send a contact card, cancel, then a whole tip with a photo, and check /mytips."""
    user = TelegramUser(
        server,
        TOKEN,
        USER_ID,
        first_name=FIRST_NAME,
        username=USERNAME,
        language_code="vi",
    )
    user.user["last_name"] = LAST_NAME
    await user.send("/start")
    await user.press("🚨 Gửi tin báo")
    contact = server.message_update(user.user, user.chat_id)
    contact["message"]["contact"] = {
        "phone_number": PHONE,
        "first_name": FIRST_NAME,
        "user_id": USER_ID,
    }
    replies = await user.send_update(contact)
    assert "không dùng được" in "\n".join(TelegramUser.texts(replies))
    await user.send("/cancel")
    code = await walk_tip_vi(user, photo=jpeg_with_gps())
    await user.send("/mytips")
    assert code in "\n".join(TelegramUser.texts(user.history()[-3:]))
    async with core.dispatcher.services.sessions() as session:
        owner = await session.scalar(select(TipOwner))
    assert owner is not None and owner.reply_address_enc is not None
    vault = core.dispatcher.services.vault
    assert vault.decrypt(owner.reply_address_enc) == f"telegram:{USER_ID}"
    logging.getLogger("tipline.test").info("citizen %s wrote", USER_ID)


async def test_no_trace_of_the_tipster(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    setup_logging("DEBUG")
    data_dir = tmp_path / "data"
    try:
        async with FakeTelegramServer() as server, running_bot(data_dir, server) as bot:
            core, _channel = bot
            await tip_as_known_citizen(server, core)
    finally:
        logging.getLogger().handlers.clear()
    logs = capfd.readouterr().err
    assert "hidden_tipster" not in logs and str(USER_ID) not in logs
    assert "[redacted]" in logs  # the deliberate leak above was masked

    files = [p for p in data_dir.rglob("*") if p.is_file()]
    assert any(p.suffix == ".sqlite3" for p in files)
    assert any(p.parent.name == "files" for p in files)
    assert not [p for p in files if p.suffix in (".pickle", ".pkl")]
    for path in files:
        content = path.read_bytes()
        for label, needle in needles().items():
            assert needle not in content, f"{label} found in {path.name}"
    assert integer_columns_holding(data_dir / "tipline.sqlite3", USER_ID) == []
