"""Helpers for the outbox crash test and bench/fanout.py: a seeded database, `tipline run` as a
subprocess, and a fake Bot API that counts each chat's copies of an alert."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select

from storage.crypto import Vault
from storage.engine import create_engine, create_sessionmaker
from storage.migrate import upgrade
from storage.models import BulletinRun, Delivery, Subscription, utcnow
from storage.repositories import bulletins
from tests.fake_telegram import BotState, ChatKey, FakeTelegramServer, JSONDict

WARD = "W26743"  # Phường Bến Thành, Hồ Chí Minh (`tipline areas search "Bến Thành"`)
ALERT_TEXT = "Cháy lớn tại chợ Bến Thành, tránh khu vực cổng Nam, làm theo hướng dẫn của công an."
REPORT_MARK = "📊"
SEED_CHUNK = 5_000
START_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0
_DIGITS = re.compile(r"\d+")


def sqlite_url(data_dir: Path) -> str:
    """The database URL `tipline run` uses for a data folder by default."""
    return f"sqlite+aiosqlite:///{(data_dir / 'tipline.sqlite3').resolve()}"


async def migrate(url: str) -> None:
    """Create the schema, as a first start would."""
    engine = create_engine(url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()


def _subscription_rows(vault: Vault, chat_ids: Sequence[int], area: str) -> list[dict[str, Any]]:
    now = utcnow()
    return [
        {
            "address_hash": vault.keyed_hash(f"telegram:{chat_id}"),
            "address_enc": vault.encrypt(f"telegram:{chat_id}"),
            "channel": "telegram",
            "area_code": area,
            "topics": ["all"],
            "active": True,
            "created_at": now,
        }
        for chat_id in chat_ids
    ]


async def seed_subscribers(url: str, vault: Vault, chat_ids: Sequence[int], area: str) -> None:
    """Active subscriptions of these Telegram chats to one area, in a few bulk inserts."""
    engine = create_engine(url)
    sessions = create_sessionmaker(engine)
    try:
        for start in range(0, len(chat_ids), SEED_CHUNK):
            rows = _subscription_rows(vault, chat_ids[start : start + SEED_CHUNK], area)
            async with sessions() as session, session.begin():
                await session.execute(insert(Subscription), rows)
    finally:
        await engine.dispose()


async def create_alert_run(url: str, vault: Vault, *, text: str, area: str, admin_chat: int) -> int:
    """An admin's alert to one area with its pending run, as /alert makes it; the run's id."""
    engine = create_engine(url)
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            run = await bulletins.create_alert(
                session,
                text=text,
                target=area,
                areas=[area],
                created_by="test",
                creator_address_enc=vault.encrypt(f"telegram:{admin_chat}"),
                now=utcnow(),
            )
            return run.id
    finally:
        await engine.dispose()


async def run_state(url: str, run_id: int) -> tuple[str, dict[str, int]]:
    """A run's status and its deliveries by status."""
    engine = create_engine(url)
    try:
        async with create_sessionmaker(engine)() as session:
            status = await session.scalar(
                select(BulletinRun.status).where(BulletinRun.id == run_id)
            )
            rows = await session.execute(
                select(Delivery.status, func.count())
                .where(Delivery.run_id == run_id)
                .group_by(Delivery.status)
            )
            return str(status), {str(name): int(count) for name, count in rows}
    finally:
        await engine.dispose()


async def first_payload(url: str, run_id: int) -> JSONDict:
    """The payload of one of a run's deliveries: the message every recipient got."""
    engine = create_engine(url)
    try:
        async with create_sessionmaker(engine)() as session:
            payload = await session.scalar(
                select(Delivery.payload).where(Delivery.run_id == run_id).limit(1)
            )
            return dict(payload or {})
    finally:
        await engine.dispose()


class CountingServer(FakeTelegramServer):
    """The fake Bot API, counting each chat's successful sendMessage calls that carry a marker.

    Also counts reports (texts starting with REPORT_MARK) per chat, and calls `on_send` with the
    chat of every successful sendMessage.
    """

    def __init__(self, marker: str, **options: Any) -> None:
        super().__init__(**options)
        self.marker = marker
        self.copies: Counter[ChatKey] = Counter()
        self.reports: Counter[ChatKey] = Counter()
        self.copy_times: list[float] = []  # perf_counter of each copy, in order
        self.on_send: Callable[[ChatKey], None] = lambda _chat: None
        self.register_method("sendMessage", self._count_send)

    @property
    def delivered(self) -> int:
        """Chats that got at least one copy."""
        return len(self.copies)

    def _count_send(self, bot: BotState, params: JSONDict) -> JSONDict:
        message = self._send_message(bot, params)
        chat = message["chat"]["id"]
        text = str(message.get("text", ""))
        if self.marker in text:
            self.copies[chat] += 1
            self.copy_times.append(time.perf_counter())
        elif text.startswith(REPORT_MARK):
            self.reports[chat] += 1
        self.on_send(chat)
        return message


def _clean_env() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if not key.startswith("TIPLINE_")}


def tipline_command() -> list[str]:
    """How to start `tipline run` from this virtualenv."""
    script = Path(sys.executable).with_name("tipline")
    return [str(script), "run"] if script.exists() else [sys.executable, "-m", "bot.cli", "run"]


async def start_tipline(
    server: FakeTelegramServer,
    token: str,
    data_dir: Path,
    log_path: Path,
    *,
    secret_key: str,
    extra_env: dict[str, str] | None = None,
) -> asyncio.subprocess.Process:
    """`tipline run` polling the fake server on a data folder; its output appended to a log."""
    env = _clean_env() | {
        "TIPLINE_TELEGRAM_TOKEN": token,
        "TIPLINE_TELEGRAM_API_URL": server.base_url,
        "TIPLINE_TELEGRAM_FILE_URL": server.base_file_url,
        "TIPLINE_DATA_DIR": str(data_dir),
        "TIPLINE_SECRET_KEY": secret_key,
        "TIPLINE_WEB_ENABLED": "false",
        "TIPLINE_LOG_LEVEL": "INFO",
        **(extra_env or {}),
    }
    with log_path.open("ab") as log:
        return await asyncio.create_subprocess_exec(
            *tipline_command(), env=env, cwd=data_dir, stdout=log, stderr=log
        )


async def wait_until_polling(
    server: FakeTelegramServer,
    process: asyncio.subprocess.Process,
    token: str,
    *,
    since: int,
    seconds: float = START_TIMEOUT,
) -> bool:
    """True once the bot called getUpdates (after call `since`); False if it exited first."""
    polled = asyncio.ensure_future(
        server.wait_for_call("getUpdates", token=token, since=since, max_wait=seconds)
    )
    exited = asyncio.ensure_future(process.wait())
    await asyncio.wait({polled, exited}, return_when=asyncio.FIRST_COMPLETED)
    for waiter in (polled, exited):
        waiter.cancel()
    await asyncio.gather(polled, exited, return_exceptions=True)
    return not polled.cancelled() and polled.exception() is None


async def kill(process: asyncio.subprocess.Process) -> None:
    """SIGKILL, and reap it."""
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
    await process.wait()


async def stop(process: asyncio.subprocess.Process, seconds: float = STOP_TIMEOUT) -> int:
    """SIGTERM, then SIGKILL if it has not stopped within `seconds`; the exit code."""
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), seconds)
        except TimeoutError:
            await kill(process)
    return int(process.returncode if process.returncode is not None else -1)


async def until(check: Callable[[], bool], seconds: float, interval: float = 0.01) -> bool:
    """Wait until a condition holds; False if it did not within `seconds`."""
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(interval)
    return True


def log_tail(log_path: Path, characters: int = 2000) -> str:
    """The end of a bot's log, for a failure's message."""
    return log_path.read_text(errors="replace")[-characters:] if log_path.exists() else ""


def log_leaks(log_path: Path, chat_ids: Iterable[int]) -> list[str]:
    """Lines of a bot's log that carry one of these chat ids (there must be none)."""
    wanted = {str(chat_id) for chat_id in chat_ids}
    lines = log_path.read_text(errors="replace").splitlines() if log_path.exists() else []
    return [line for line in lines if wanted.intersection(_DIGITS.findall(line))]
