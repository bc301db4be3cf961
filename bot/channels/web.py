"""The local web chat: a phone-friendly page on the same core, visitors known by a random cookie."""

from __future__ import annotations

import base64
import logging
import re
import secrets
import time
from pathlib import Path
from typing import Any

from aiohttp import BodyPartReader, web
from sqlalchemy.ext.asyncio import AsyncSession

from bot.i18n import Catalog
from handlers.dispatcher import Dispatcher
from handlers.limits import FloodGuard
from handlers.types import (
    Attachment,
    AttachmentKind,
    InboundEvent,
    Location,
    OutgoingFile,
    Response,
)
from storage.files import STORED_PREFIX
from storage.repositories import bulletins, cases, chats, inbox
from storage.repositories import staff as staff_repo

log = logging.getLogger(__name__)

CHANNEL = "web"
COOKIE = "tipline_chat"
COOKIE_MAX_AGE = 365 * 24 * 3600
STATIC_DIR = Path(__file__).parent / "static"
MAX_TEXT_BYTES = 64 * 1024
INBOX_REQUESTS, INBOX_WINDOW_SECONDS = 30, 60.0  # inbox checks and acks per visitor
_COOKIE_RE = re.compile(r"^[A-Za-z0-9_-]{32,64}$")
_KINDS = {
    "image": AttachmentKind.PHOTO,
    "video": AttachmentKind.VIDEO,
    "audio": AttachmentKind.AUDIO,
}


class WebChannel:
    """Serves the chat page and its JSON API."""

    def __init__(self, dispatcher: Dispatcher, catalog: Catalog, max_upload_bytes: int) -> None:
        self.dispatcher = dispatcher
        self.catalog = catalog
        self.max_upload_bytes = max_upload_bytes
        # The page checks its inbox every 15 s and when shown: far fewer than this.
        self.inbox_guard = FloodGuard(INBOX_REQUESTS, INBOX_WINDOW_SECONDS)
        self._inbox_pruned = time.monotonic()

    def add_routes(self, app: web.Application) -> None:
        """Register the page, static files and API on an aiohttp app."""
        app.router.add_get("/", self.page)
        app.router.add_static("/static/", STATIC_DIR, show_index=False)
        app.router.add_post("/api/event", self.post_event)
        app.router.add_post("/api/upload", self.post_upload)
        app.router.add_get("/api/inbox", self.get_inbox)
        app.router.add_post("/api/inbox/ack", self.post_inbox_ack)
        app.router.add_get("/api/photo/{name}", self.get_photo)

    async def page(self, request: web.Request) -> web.StreamResponse:
        """The chat page."""
        response = web.FileResponse(STATIC_DIR / "index.html")
        response.headers["Cache-Control"] = "no-store"
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'"
        )
        response.headers["Referrer-Policy"] = "no-referrer"
        self._ensure_cookie(request, response)
        return response

    async def post_event(self, request: web.Request) -> web.Response:
        """Text, a button token, a location, or a resume request, as JSON."""
        address = self._address(request)
        body = await request.read()
        if len(body) > MAX_TEXT_BYTES:
            # Far above any step's limit: let the core refuse it like any over-long text.
            event = InboundEvent(channel=CHANNEL, address=address, text="x" * (MAX_TEXT_BYTES + 1))
            return await self._answer(request, address, event, status=413)
        try:
            payload = await request.json()
        except ValueError:
            payload = None
        event = self._event(address, payload, _language(request))
        return await self._answer(request, address, event)

    async def get_inbox(self, request: web.Request) -> web.Response:
        """Proactive messages (alerts, bulletins, notices) waiting for this visitor.

        Read-only, off the write lock; a message stays until the page acknowledges it, so one
        fetched by a page that closed before showing it comes again.
        """
        address_hash = self._inbox_owner(request)
        if address_hash is not None and (refusal := self._inbox_flooded(address_hash)):
            return refusal
        messages: list[tuple[int, dict[str, Any]]] = []
        if address_hash is not None:
            async with self.dispatcher.services.reads() as session:
                messages = await inbox.waiting(session, address_hash)
        replies = [
            {
                "id": message_id,
                "text": str(message.get("text", "")),
                "buttons": [
                    [{"label": str(label), "token": str(token)} for label, token in row]
                    for row in message.get("buttons") or []
                ],
                "request_location": None,
                "photo": _photo_url(message.get("photo")),
            }
            for message_id, message in messages
        ]
        result = web.json_response({"replies": replies})
        result.headers["Cache-Control"] = "no-store"
        return result

    async def post_inbox_ack(self, request: web.Request) -> web.Response:
        """The page showed these messages: they are not sent again."""
        address_hash = self._inbox_owner(request)
        try:
            body = await request.json()
        except ValueError:
            body = None
        ids = body.get("ids") if isinstance(body, dict) else None
        if address_hash is None or not isinstance(ids, list):
            return web.json_response({"ok": False}, status=400)
        if refusal := self._inbox_flooded(address_hash):
            return refusal
        numbers = [n for n in ids[:50] if isinstance(n, int) and not isinstance(n, bool)]
        async with self.dispatcher.services.sessions() as session, session.begin():
            await inbox.acknowledge(session, address_hash, numbers)
        return web.json_response({"ok": True})

    async def get_photo(self, request: web.Request) -> web.StreamResponse:
        """A stored photo an alert or bulletin goes out with, one in the visitor's own draft
        (an admin's preview), or a tip's cleaned photo to staff whose areas hold the tip; any
        other stored file, and any file to anyone else, is not found."""
        services = self.dispatcher.services
        ref = STORED_PREFIX + request.match_info["name"]
        path = services.files.path(ref)
        if path is None or not path.is_file():
            raise web.HTTPNotFound()
        async with services.reads() as session:
            shown = await bulletins.has_photo(session, ref)
            owner = self._inbox_owner(request)
            if not shown and owner is not None:
                shown = (await chats.draft_of(session, owner)).get("photo") == ref
            if not shown and owner is not None:
                shown = await self._staff_may_see(session, owner, ref)
        if not shown:
            raise web.HTTPNotFound()
        response = web.FileResponse(path)
        response.headers["Cache-Control"] = "private, max-age=3600"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    async def _staff_may_see(self, session: AsyncSession, owner: str, ref: str) -> bool:
        """Whether a tip's file may go to this visitor: staff now, the tip in their areas."""
        is_tip_file, area = await cases.area_of_file(session, ref)
        member = await staff_repo.member_for(session, owner) if is_tip_file else None
        if member is None:
            return False
        if member.role == staff_repo.ADMIN or not member.areas:
            return True
        catalog = self.dispatcher.services.areas
        inside, stack = set(), list(member.areas)
        while stack:
            code = stack.pop()
            if code not in inside:
                inside.add(code)
                stack.extend(child.code for child in catalog.children(code))
        return area in inside

    def _inbox_flooded(self, address_hash: str) -> web.Response | None:
        """A 429 with Retry-After once a visitor asks too often; None while within the limit."""
        now = time.monotonic()
        if now - self._inbox_pruned > INBOX_WINDOW_SECONDS:
            self._inbox_pruned = now
            self.inbox_guard.prune()
        allowed, _ = self.inbox_guard.check(address_hash)
        if allowed:
            return None
        wait = self.inbox_guard.retry_after(address_hash)
        refusal = web.json_response({"replies": [], "retry_after": wait}, status=429)
        refusal.headers["Retry-After"] = str(wait)
        refusal.headers["Cache-Control"] = "no-store"
        return refusal

    def _inbox_owner(self, request: web.Request) -> str | None:
        """The keyed hash the visitor's messages are kept under, or None without a cookie."""
        value = request.cookies.get(COOKIE, "")
        if not _COOKIE_RE.match(value):
            return None
        return self.dispatcher.services.vault.keyed_hash(f"{CHANNEL}:{value}")

    async def post_upload(self, request: web.Request) -> web.Response:
        """One uploaded file, handed to the core as an attachment."""
        address = self._address(request)
        try:
            reader = await request.multipart()
            part = await reader.next()
        except (ValueError, AssertionError):
            part = None
        if not isinstance(part, BodyPartReader) or part.name != "file":
            event = InboundEvent(channel=CHANNEL, address=address, unsupported="upload")
            return await self._answer(request, address, event)
        data = bytearray()
        while chunk := await part.read_chunk(256 * 1024):
            data.extend(chunk)
            if len(data) > self.max_upload_bytes:
                event = InboundEvent(
                    channel=CHANNEL,
                    address=address,
                    attachments=(Attachment(AttachmentKind.DOCUMENT, "", None, len(data)),),
                )
                return await self._answer(request, address, event, status=413)
        mime = part.headers.get("Content-Type", "application/octet-stream").split(";")[0]
        content = bytes(data)

        async def fetch() -> bytes:
            return content

        kind = _KINDS.get(mime.split("/")[0], AttachmentKind.DOCUMENT)
        attachment = Attachment(kind, "", mime, len(content), fetch=fetch)
        event = InboundEvent(channel=CHANNEL, address=address, attachments=(attachment,))
        return await self._answer(request, address, event)

    def _event(self, address: str, payload: Any, language: str | None) -> InboundEvent:
        """Turn a JSON body into an event; anything malformed becomes an 'unsupported' event."""
        base: dict[str, Any] = {"channel": CHANNEL, "address": address, "language_hint": language}
        if isinstance(payload, dict):
            if isinstance(payload.get("text"), str):
                return InboundEvent(text=payload["text"], **base)
            if isinstance(payload.get("button"), str):
                return InboundEvent(button=payload["button"][:64], **base)
            if payload.get("resume") is True:
                return InboundEvent(resume=True, **base)
            location = _location(payload.get("location"))
            if location is not None:
                return InboundEvent(location=location, **base)
        return InboundEvent(unsupported="malformed", **base)

    async def _answer(
        self, request: web.Request, address: str, event: InboundEvent, status: int = 200
    ) -> web.Response:
        response = await self.dispatcher.handle(event)
        body = self._render(response)
        if response.flooded:
            notice: dict[str, Any] = {
                "text": response.button_notice,
                "buttons": [],
                "request_location": None,
            }
            body["replies"], body["notice"] = [notice], None
        result = web.json_response(body, status=429 if response.flooded else status)
        result.headers["Cache-Control"] = "no-store"
        self._ensure_cookie(request, result, address)
        return result

    def _render(self, response: Response) -> dict[str, Any]:
        language = response.language
        return {
            "replies": [
                {
                    "text": reply.text,
                    "buttons": [
                        [{"label": b.label, "token": b.token} for b in row] for row in reply.buttons
                    ],
                    "request_location": reply.request_location,
                    "photo": _photo_url(reply.photo),
                    "file": _file_json(reply.file),
                }
                for reply in response.replies
            ],
            "notice": response.button_notice,
            "language": language,
            "strings": self.catalog.section(language, "web"),
        }

    def _address(self, request: web.Request) -> str:
        """The visitor's anonymous cookie value, or a new one."""
        value = request.cookies.get(COOKIE, "")
        return value if _COOKIE_RE.match(value) else secrets.token_urlsafe(32)

    def _ensure_cookie(
        self, request: web.Request, response: web.StreamResponse, address: str | None = None
    ) -> None:
        value = address or self._address(request)
        if request.cookies.get(COOKIE) != value:
            response.set_cookie(
                COOKIE,
                value,
                max_age=COOKIE_MAX_AGE,
                httponly=True,
                samesite="Strict",
                path="/",
                secure=request.secure,
            )


def _file_json(file: OutgoingFile | None) -> dict[str, str] | None:
    """A made file (a chart, an export) inline, for the page to show or offer to save."""
    if file is None:
        return None
    data = base64.b64encode(file.data).decode()
    return {"name": file.name, "mime": file.mime, "data": data}


def _photo_url(ref: Any) -> str | None:
    """Where the page fetches a stored photo."""
    if not isinstance(ref, str) or not ref.startswith(STORED_PREFIX):
        return None
    return f"/api/photo/{ref[len(STORED_PREFIX) :]}"


def _language(request: web.Request) -> str | None:
    """The browser's first preferred language, as a hint for a new visitor."""
    header = request.headers.get("Accept-Language", "")
    return header.split(",")[0].split(";")[0].strip().lower() or None


def _location(value: Any) -> Location | None:
    """A valid latitude/longitude pair, or None."""
    if not isinstance(value, dict):
        return None
    lat, lon = value.get("latitude"), value.get("longitude")
    if not isinstance(lat, int | float) or not isinstance(lon, int | float):
        return None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    return Location(float(lat), float(lon))
