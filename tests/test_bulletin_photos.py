"""Alerts and bulletins with a photo: taken in the chat or from the command line, stored
re-encoded, previewed as sent, uploaded to Telegram once, and shown in the web chat."""

from __future__ import annotations

import asyncio
import io
import os
from pathlib import Path

import aiohttp
from PIL import Image
from sqlalchemy import select

from bot.app import Core
from storage.models import Bulletin, Tip, TipAttachment, utcnow
from storage.repositories import bulletins
from tests.fake_telegram import CallRecord, FakeTelegramServer
from tests.test_alerts_e2e import ALERT, STOP, alerts_received, bot, until
from tests.test_basics import run_cli
from tests.test_staff import make_invite
from tests.test_subscriptions_e2e import ADMIN_ID, citizen, joined, subscribe
from tests.test_telegram_e2e import server
from tests.test_web_inbox import event, inbox, site, token_of

__all__ = ["bot", "server", "site"]  # fixtures, shared

CAMERA = "SecretCam 3000"


def gps_jpeg() -> bytes:
    """A phone photo with its camera and GPS position in EXIF."""
    exif = Image.Exif()
    exif[0x010F] = CAMERA  # Make
    exif[0x8825] = {1: "N", 2: (21.0, 1.0, 30.0)}  # GPS IFD
    out = io.BytesIO()
    Image.new("RGB", (32, 24), "orange").save(out, format="JPEG", exif=exif)
    return out.getvalue()


def photos(records: list[CallRecord]) -> list[CallRecord]:
    """The sendPhoto calls among some records."""
    return [record for record in records if record["method"] == "sendPhoto"]


async def test_alert_with_a_photo_is_uploaded_once_without_its_metadata(
    bot: Core, server: FakeTelegramServer
) -> None:
    residents = [citizen(server, 931000000 + n) for n in range(3)]
    for resident in residents:
        await subscribe(resident, "ben thanh")
    admin = citizen(server, ADMIN_ID)
    await admin.send("/alert")
    replies = await admin.send_photo(data=gps_jpeg())
    assert "Bây giờ hãy gõ nội dung" in joined(replies), "a photo alone: kept, text asked for"
    replies = await admin.send(ALERT)
    await admin.send("ben thanh")
    [preview] = photos(admin.history())
    assert ALERT in str(preview["params"]["caption"]) and STOP in str(preview["params"]["caption"])
    assert admin.keyboard_labels()[0] == "🚨 Gửi ngay", "the preview's buttons sit on the photo"
    await admin.press("🚨 Gửi ngay")
    await until(lambda: all(photos(r.history()) for r in residents))
    sent = [photos(r.history())[0]["params"] for r in residents]
    uploads = [p["photo"] for p in sent if isinstance(p["photo"], dict)]
    assert len(uploads) == 1, "uploaded once; every later copy goes by Telegram's file id"
    file_id = uploads[0]["file_id"]
    assert all(p["photo"] in (file_id, uploads[0]) for p in sent)
    assert all(ALERT in str(p["caption"]) for p in sent)
    uploaded = server.file_bytes(file_id) or b""
    with Image.open(io.BytesIO(uploaded)) as image:
        assert not image.getexif(), "re-encoded from its pixels: no EXIF, no GPS"
    assert CAMERA.encode() not in uploaded
    assert all(len(alerts_received(r)) == 1 for r in residents), "one message: photo, caption"
    await until(lambda: "📊" in (admin.last_text() or ""))


async def test_a_long_bulletin_goes_as_the_photo_then_its_text(
    bot: Core, server: FakeTelegramServer
) -> None:
    resident = citizen(server, 931000010)
    await subscribe(resident, "ben thanh")
    admin = citizen(server, ADMIN_ID)
    await admin.send("/bulletin")
    await admin.send_photo(data=gps_jpeg(), caption="Ngắn quá")
    assert "cần từ 10 đến 1500 ký tự" in (admin.last_text() or "")
    assert "📷" in (admin.last_text() or ""), "the photo was kept; the text is asked again"
    await admin.press("🗑 Bỏ ảnh")
    await admin.send_photo(data=gps_jpeg())
    long = "Cảnh giác lừa đảo qua mạng. " * 45  # past a caption's 1,024 characters
    await admin.send(long)
    await admin.send("ben thanh")
    await admin.press("Tất cả chủ đề")
    await admin.press("Ngay bây giờ")
    await admin.press("✅ Lưu bản tin")
    await until(lambda: any(r["method"] == "sendMessage" for r in resident.history()[-1:]))
    await until(lambda: long.strip()[:50] in (resident.last_text() or ""), seconds=15)
    last_two = [r for r in resident.history() if r["method"] in ("sendPhoto", "sendMessage")][-2:]
    assert [r["method"] for r in last_two] == ["sendPhoto", "sendMessage"]
    assert "caption" not in last_two[0]["params"]
    assert resident.keyboard_labels() == [STOP], "the stop button under the text"
    async with bot.dispatcher.services.sessions() as session:
        [stored] = await session.scalars(select(Bulletin))
    path = bot.dispatcher.services.files.path(stored.photo_ref or "")
    assert path is not None and path.is_file()
    assert len(list(path.parent.iterdir())) == 1, "the removed photo's file is gone"


async def test_a_cancelled_draft_leaves_no_photo(bot: Core, server: FakeTelegramServer) -> None:
    admin = citizen(server, ADMIN_ID)
    await admin.send("/alert")
    await admin.send_photo(data=gps_jpeg(), caption=ALERT)
    folder = bot.dispatcher.services.files.folder
    assert len(list(folder.iterdir())) == 1
    await admin.press("Hủy")
    assert list(folder.iterdir()) == []
    await admin.send("/alert")
    replies = await admin.send_document(data=b"not an image at all", mime_type="image/jpeg")
    assert "Không dùng được tệp này làm ảnh" in joined(replies)


async def test_a_web_subscriber_sees_the_photo_and_nothing_else_is_served(
    site: tuple[Core, str],
) -> None:
    core, url = site
    files = core.dispatcher.services.files
    tip_file = files.save_image(gps_jpeg())
    assert tip_file is not None
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as client:
        await event(client, url, text="/subscribe")
        reply = (await event(client, url, text="ben thanh"))["replies"][-1]
        await event(client, url, button=token_of(reply, "Lưu"))
        photo = files.save_image(gps_jpeg())
        assert photo is not None
        services = core.dispatcher.services
        async with services.sessions() as session, session.begin():
            await bulletins.create_alert(
                session,
                text="Tìm trẻ lạc: bé trai 6 tuổi, áo đỏ, gần chợ Bến Thành.",
                target="W26743",
                areas=["W26743"],
                created_by="test",
                creator_address_enc="",
                now=utcnow(),
                photo_ref=photo,
            )
        services.wake_broadcasts()
        waiting: list[dict[str, object]] = []

        async def arrived() -> bool:
            waiting[:] = await inbox(client, url)
            return bool(waiting)

        for _ in range(100):
            if await arrived():
                break
            await asyncio.sleep(0.1)
        [message] = waiting
        assert isinstance(message["photo"], str)
        async with client.get(f"{url}{message['photo']}") as response:
            assert response.status == 200
            with Image.open(io.BytesIO(await response.read())) as image:
                assert image.size == (32, 24)
        private = tip_file.removeprefix("stored:")
        for name in (private, "../tipline.sqlite3", "nope.jpg"):
            async with client.get(f"{url}/api/photo/{name}") as response:
                assert response.status == 404, name


def test_command_line_bulletin_with_a_photo(tmp_path: Path) -> None:
    env = {**os.environ, "TIPLINE_DATA_DIR": str(tmp_path), "TIPLINE_SECRET_KEY": "k" * 40}
    picture = tmp_path / "poster.jpg"
    picture.write_bytes(gps_jpeg())
    made = run_cli(
        tmp_path, env, "bulletin", "create", "Cảnh giác lừa đảo", "--area", "W26743",
        "--every", "daily", "--photo", str(picture),
    )  # fmt: skip
    assert made.returncode == 0, made.stdout + made.stderr
    [stored] = list((tmp_path / "files").iterdir())
    assert CAMERA.encode() not in stored.read_bytes()
    text = tmp_path / "notes.txt"
    text.write_text("not a picture")
    for bad, said in ((text, "not an image"), (tmp_path / "missing.jpg", "cannot be read")):
        refused = run_cli(
            tmp_path, env, "bulletin", "create", "Cảnh giác lừa đảo", "--area", "W26743",
            "--every", "daily", "--photo", str(bad),
        )  # fmt: skip
        assert refused.returncode == 2 and said in refused.stdout, refused.stdout


async def test_a_tips_photo_goes_only_to_staff_of_its_area(site: tuple[Core, str]) -> None:
    core, url = site
    services = core.dispatcher.services
    ref = services.files.save_image(gps_jpeg())
    assert ref is not None
    async with services.sessions() as session, session.begin():
        tip = Tip(
            code="K7Q-2M9X",
            pin_hash="x",
            channel="web",
            category="drugs",
            area_code="W00070",
            description="Hai thanh niên bán ma túy ở hẻm",
            occurred="now",
            status="new",
            created_at=utcnow(),
            updated_at=utcnow(),
        )
        session.add(tip)
        await session.flush()
        session.add(TipAttachment(tip_id=tip.id, kind="photo", file_ref=ref, size=1))
    photo = f"{url}/api/photo/{ref.removeprefix('stored:')}"

    async def status_for(areas: tuple[str, ...] | None) -> int:
        """The answer to a visitor who is an officer of these areas (None: a citizen)."""
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(cookie_jar=jar) as client:
            await event(client, url, text="/start")
            if areas is not None:
                code = await make_invite(core, role="officer", label="Lan", areas=areas)
                await event(client, url, text=f"/join {code}")
            async with client.get(photo) as response:
                return response.status

    assert await status_for(("W00070",)) == 200, "an officer of the tip's ward"
    assert await status_for(("P01",)) == 200, "an officer of its province"
    assert await status_for(("W26743",)) == 404, "an officer of another ward"
    assert await status_for(None) == 404, "a citizen"
