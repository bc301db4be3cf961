"""The web chat receives proactive messages: an alert reaches a web subscriber's page."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.app import Core, build_core, start_broadcasts, start_web
from bot.channels.web import INBOX_REQUESTS
from storage.models import utcnow
from storage.repositories import bulletins
from tests.conftest import make_settings


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[tuple[Core, str]]:
    """The web chat served on loopback, with its outbox running."""
    core = await build_core(
        make_settings(tmp_path, flood_messages=10_000, web_port=0), migrate_in_child=False
    )
    runner = await start_web(core, None)
    await start_broadcasts(core, None)
    host, port = runner.addresses[0][:2]
    try:
        yield core, f"http://{host}:{port}"
    finally:
        await runner.cleanup()
        await core.close()


async def event(client: aiohttp.ClientSession, url: str, **body: Any) -> dict[str, Any]:
    """Post one event as the page does; the JSON answer."""
    async with client.post(f"{url}/api/event", json=body) as response:
        result: dict[str, Any] = await response.json()
        return result


def token_of(reply: dict[str, Any], label: str) -> str:
    """The token of a reply's button whose label contains a text."""
    for row in reply["buttons"]:
        for button in row:
            if label in button["label"]:
                return str(button["token"])
    raise AssertionError(f"no button {label!r} in {reply['buttons']}")


async def inbox(client: aiohttp.ClientSession, url: str) -> list[dict[str, Any]]:
    """What the page's inbox check fetches."""
    async with client.get(f"{url}/api/inbox") as response:
        return list((await response.json())["replies"])


async def test_alert_reaches_a_web_subscriber_and_its_button_works(
    site: tuple[Core, str],
) -> None:
    core, url = site
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as client:
        await event(client, url, resume=True)
        await event(client, url, text="/subscribe")
        topics = await event(client, url, text="ben thanh")
        saved = await event(client, url, button=token_of(topics["replies"][-1], "Lưu"))
        assert "Đã đăng ký" in " ".join(r["text"] for r in saved["replies"])
        writing = await event(client, url, text="/tip")
        category = token_of(writing["replies"][-1], "Ma túy")
        async with core.dispatcher.services.sessions() as session, session.begin():
            await bulletins.create_alert(
                session,
                text="Mất điện diện rộng, tránh khu vực chợ.",
                target="W26743",
                areas=["W26743"],
                created_by="test",
                creator_address_enc="",
                now=utcnow(),
            )
        core.dispatcher.services.wake_broadcasts()
        waiting: list[dict[str, Any]] = []
        for _ in range(100):
            waiting = await inbox(client, url)
            if waiting:
                break
            await asyncio.sleep(0.05)
        [alert] = waiting
        assert alert["text"].startswith("🚨 CẢNH BÁO") and "Mất điện" in alert["text"]
        assert await inbox(client, url) == [alert], "kept until the page says it showed it"
        async with client.post(f"{url}/api/inbox/ack", json={"ids": [alert["id"]]}) as done:
            assert done.status == 200
        assert await inbox(client, url) == [], "then handed over no more"
        stopped = await event(client, url, button=token_of(alert, "Dừng"))
        assert "không nhận cảnh báo" in " ".join(r["text"] for r in stopped["replies"])
        going_on = await event(client, url, button=category)
        assert "Bước 2/7" in " ".join(r["text"] for r in going_on["replies"]), "the tip goes on"


async def test_the_inbox_refuses_a_visitor_who_asks_too_often(site: tuple[Core, str]) -> None:
    _, url = site
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as client:
        await event(client, url, text="/start")  # the visitor's cookie
        statuses = []
        for _ in range(INBOX_REQUESTS + 2):
            async with client.get(f"{url}/api/inbox") as response:
                statuses.append(response.status)
                retry_after = response.headers.get("Retry-After")
        assert statuses[:INBOX_REQUESTS] == [200] * INBOX_REQUESTS
        assert statuses[INBOX_REQUESTS:] == [429, 429] and retry_after and int(retry_after) >= 1
        async with client.post(f"{url}/api/inbox/ack", json={"ids": [1]}) as response:
            assert response.status == 429, "acknowledging counts too"
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as other:
        await event(other, url, text="/start")
        assert await inbox(other, url) == [], "another visitor is not held back"
