"""End to end in a real browser: the web chat page driven by headless Chromium.

Starts `python -m bot.cli run` as a subprocess (web chat only, temporary data folder),
completes a whole tip in Vietnamese on a phone-sized viewport, reloads, switches to
English, and checks the server stops cleanly on SIGTERM.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LISTENING_RE = re.compile(r"web chat listening on http://127\.0\.0\.1:(\d+)")
CODE_RE = re.compile(r"[2-9A-HJKMNP-Z]{3}-[2-9A-HJKMNP-Z]{4}")
STARTUP_TIMEOUT = 30.0
UI_TIMEOUT_MS = 15_000

pytestmark = pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"),
    reason="Debian's chromium is not installed (/usr/bin/chromium); "
    "this browser test needs it (in CI it must be present and the test fails instead)",
)


class Server:
    """The app running as a subprocess, with its stderr collected by a thread."""

    def __init__(self, data_dir: Path) -> None:
        env = dict(os.environ)
        env.update(
            TIPLINE_DATA_DIR=str(data_dir),
            TIPLINE_WEB_PORT="0",
            TIPLINE_TELEGRAM_TOKEN="",
            TIPLINE_SECRET_KEY="browser-test-secret-key-0123456789",
            PYTHONUNBUFFERED="1",
        )
        env.pop("TIPLINE_DATABASE_URL", None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "run"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
        )
        self.lines: list[str] = []
        self.port: int | None = None
        self._found = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)
            match = LISTENING_RE.search(line)
            if match and self.port is None:
                self.port = int(match.group(1))
                self._found.set()
        self._found.set()  # stderr closed: the process ended

    @property
    def log(self) -> str:
        return "".join(self.lines[-60:])

    def wait_for_port(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while self.port is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.proc.poll() is not None:
                break
            self._found.wait(min(remaining, 0.2))
        if self.port is None:
            raise AssertionError(
                f"server did not log its port within {timeout:.0f} s "
                f"(exit code {self.proc.poll()}):\n{self.log}"
            )
        return self.port

    def stop(self, timeout: float) -> int:
        """SIGTERM, then the exit code; kills it (and fails) if it does not stop in time."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
            raise AssertionError(
                f"server did not exit within {timeout:.0f} s of SIGTERM:\n{self.log}"
            ) from None
        self._reader.join(timeout=5)
        return code


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    srv = Server(data_dir)
    try:
        yield srv
    finally:
        if srv.proc.poll() is None:
            srv.proc.kill()
            srv.proc.wait(timeout=5)


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        instance = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            await instance.close()


async def wait_for_bot_text(page: Any, needle: str, timeout_ms: int = UI_TIMEOUT_MS) -> str:
    """Wait until a bot bubble contains needle; returns that bubble's text."""
    bubble = page.locator(".msg.bot", has_text=needle).last
    await bubble.wait_for(state="visible", timeout=timeout_ms)
    return str(await bubble.inner_text())


def live_button(page: Any, label: str) -> Any:
    """The newest enabled reply button whose label contains this text."""
    return page.locator(".choices button:not([disabled])", has_text=label).last


async def press(page: Any, label: str) -> None:
    """Press the live (enabled) reply button with this label."""
    button = live_button(page, label)
    await button.wait_for(state="visible", timeout=UI_TIMEOUT_MS)
    await button.click()


async def wait_idle(page: Any) -> None:
    """Wait until no request is in flight (the composer is enabled again)."""
    await page.wait_for_function(
        "() => !document.querySelector('#send').disabled", timeout=UI_TIMEOUT_MS
    )


async def send_text(page: Any, text: str) -> None:
    """Type into the composer and press Enter, then wait for the answer."""
    await wait_idle(page)
    await page.fill("#text", text)
    await page.press("#text", "Enter")
    await page.locator(".msg.user", has_text=text).last.wait_for(timeout=UI_TIMEOUT_MS)
    await wait_idle(page)


def make_png(path: Path) -> Path:
    Image.new("RGB", (64, 48), (200, 30, 30)).save(path, format="PNG")
    return path


@pytest.mark.asyncio
async def test_whole_tip_in_browser(server: Server, browser: Any, tmp_path: Path) -> None:
    port = await asyncio.to_thread(server.wait_for_port, STARTUP_TIMEOUT)
    url = f"http://127.0.0.1:{port}/"

    context = await browser.new_context(
        viewport={"width": 390, "height": 844},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        locale="vi-VN",
    )
    page = await context.new_page()
    page_errors: list[str] = []
    page.on("pageerror", lambda exc: page_errors.append(str(exc)))
    page.on(
        "console",
        lambda msg: page_errors.append(msg.text) if msg.type == "error" else None,
    )
    try:
        await page.goto(url)
        assert await page.get_attribute("html", "lang") == "vi"
        assert await page.get_attribute("#messages", "aria-live") == "polite"

        # Welcome with the main menu.
        await press(page, "🚨 Gửi tin báo")
        await wait_for_bot_text(page, "Bước 1/7")
        await press(page, "Ma túy")
        await wait_for_bot_text(page, "Bước 2/7")
        # Only the latest buttons are live: the menu and categories are now disabled.
        stale = page.locator(".choices button", has_text="Ma túy").first
        assert await stale.is_disabled()

        await send_text(page, "ben thanh")
        await wait_for_bot_text(page, "Bước 3/7")
        await send_text(page, "Hẻm 12 đường Lê Lợi, phường Bến Thành")
        await wait_for_bot_text(page, "Bước 4/7")
        await send_text(page, "Có người bán ma túy ở quán nước đầu hẻm vào buổi tối.")
        await wait_for_bot_text(page, "Bước 5/7")
        assert await page.input_value("#text") == ""

        png = make_png(tmp_path / "evidence.png")
        await wait_idle(page)
        await page.set_input_files("#file", str(png))
        await wait_for_bot_text(page, "Đã nhận 1 tệp")
        await page.screenshot(path=str(tmp_path / "mid-flow.png"))

        await press(page, "✅ Xong")
        await wait_for_bot_text(page, "Bước 6/7")
        await press(page, "Đang xảy ra")
        await wait_for_bot_text(page, "Bước 7/7")
        await press(page, "🕶 Giữ ẩn danh")
        review = await wait_for_bot_text(page, "Hẻm 12 đường Lê Lợi")
        assert "Ma túy" in review
        assert "Phường Bến Thành · Hồ Chí Minh" in review
        assert "Tệp đính kèm: 1" in review
        await press(page, "✅ Gửi tin báo")

        sent = await wait_for_bot_text(page, "Mã tin báo:")
        match = CODE_RE.search(sent)
        assert match, sent
        code = match.group(0)
        await page.screenshot(path=str(tmp_path / "sent.png"), full_page=True)
        # The offer to get alerts for the tip's area subscribes in one tap.
        await press(page, "🔔 Có, gửi cảnh báo cho tôi")
        await wait_for_bot_text(page, "Đã đăng ký: Phường Bến Thành")

        # A reload resumes the same anonymous conversation: the page works and shows the menu.
        await page.reload()
        await page.locator(
            ".choices button:not([disabled])", has_text="🚨 Gửi tin báo"
        ).last.wait_for(timeout=UI_TIMEOUT_MS)
        assert await page.get_attribute("html", "lang") == "vi"
        assert code not in await page.locator("#messages").inner_text()

        # Switch to English: language, placeholder and labels follow.
        await press(page, "🌐 English")
        await page.wait_for_function(
            "() => document.documentElement.lang === 'en'", timeout=UI_TIMEOUT_MS
        )
        await wait_idle(page)
        placeholder = await page.get_attribute("#text", "placeholder")
        assert placeholder == "Type a message…"
        assert await page.inner_text("#send") == "Send"
        assert await page.inner_text("#title") == "Police tip line"
        assert await page.title() == "Police tip line"
        await page.locator(
            ".choices button:not([disabled])", has_text="🚨 Send a tip"
        ).last.wait_for(timeout=UI_TIMEOUT_MS)
        await page.screenshot(path=str(tmp_path / "english.png"))
        assert (tmp_path / "english.png").stat().st_size > 0
        assert not page_errors, page_errors

        # With the connection down, the error is shown and the typed text is kept.
        async def cut(route: Any) -> None:
            await route.abort()

        await page.route("**/api/event", cut)
        await page.fill("#text", "Text that must not be lost")
        await page.click("#send")
        await page.locator(".msg.system", has_text="Connection problem").last.wait_for(
            timeout=UI_TIMEOUT_MS
        )
        await wait_idle(page)
        assert await page.input_value("#text") == "Text that must not be lost"
        assert await page.locator(".msg.user", has_text="must not be lost").count() == 0
        await page.unroute("**/api/event", cut)
    except BaseException:
        # Shown by pytest on failure: what the page and the server said.
        print("--- page messages ---\n" + await page.locator("#messages").inner_text())
        await page.screenshot(path=str(tmp_path / "failure.png"))
        print(f"--- screenshot: {tmp_path / 'failure.png'}\n--- server log ---\n{server.log}")
        raise
    finally:
        await context.close()

    assert await asyncio.to_thread(server.stop, 10.0) == 0, server.log


async def queue_alert(data_dir: Path, text: str) -> None:
    """An admin's alert for Phường Bến Thành, stored as /alert stores it."""
    from storage.engine import create_engine, create_sessionmaker
    from storage.models import utcnow
    from storage.repositories import bulletins

    engine = create_engine(f"sqlite:///{data_dir / 'tipline.sqlite3'}")
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            await bulletins.create_alert(
                session,
                text=text,
                target="W26743",
                areas=["W26743"],
                created_by="test",
                creator_address_enc="",
                now=utcnow(),
            )
    finally:
        await engine.dispose()


async def test_alert_reaches_the_page_beside_a_tip(
    server: Server, browser: Any, tmp_path: Path
) -> None:
    port = await asyncio.to_thread(server.wait_for_port, STARTUP_TIMEOUT)
    context = await browser.new_context(viewport={"width": 390, "height": 844}, locale="vi-VN")
    page = await context.new_page()
    page_errors: list[str] = []
    page.on("pageerror", lambda exc: page_errors.append(str(exc)))
    try:
        await page.goto(f"http://127.0.0.1:{port}/")
        await send_text(page, "/subscribe")
        await send_text(page, "ben thanh")
        await press(page, "Lưu")
        await wait_for_bot_text(page, "Đã đăng ký")
        await send_text(page, "/tip")
        await press(page, "Ma túy")
        await wait_for_bot_text(page, "Bước 2/7")
        await queue_alert(tmp_path / "data", "Cháy chợ, tránh cổng Nam.")
        for _ in range(40):  # the page checks its inbox when it becomes visible, and every 15 s
            await page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
            if await page.locator(".proactive", has_text="Cháy chợ").count():
                break
            await asyncio.sleep(0.25)
        await wait_for_bot_text(page, "CẢNH BÁO")
        stop = page.locator(".proactive .choices button", has_text="Dừng nhận")
        await press(page, "Xem danh sách")  # the tip's own button, after the alert arrived
        await wait_for_bot_text(page, "trang 1/")
        assert await stop.is_enabled(), "the tip's next step leaves the alert's button live"
        await stop.click()
        await wait_for_bot_text(page, "không nhận cảnh báo")
        assert await live_button(page, "Nhập tên").count(), "and the tip's buttons stay live"
        assert await stop.is_disabled(), "a pressed alert button is spent"
        assert page_errors == []
    finally:
        await context.close()
    assert server.stop(timeout=20) == 0
